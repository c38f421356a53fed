import { HashRingError } from './errors.js';
import type { NodesInput, WeightedNode } from './types.js';

export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new HashRingError('INVALID_ARGUMENT', `keys are strings, got ${typeof key}`);
  }
}

export function assertNodeName(node: unknown): asserts node is string {
  if (typeof node !== 'string' || node.length === 0) {
    throw new HashRingError('INVALID_ARGUMENT', `a node name is a non-empty string, got ${JSON.stringify(node)}`);
  }
}

/** `undefined` -> 1; anything but a finite number > 0 -> INVALID_WEIGHT. */
export function normalizeWeight(weight: unknown, node: string): number {
  if (weight === undefined) return 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new HashRingError('INVALID_WEIGHT', `weight of ${JSON.stringify(node)} must be a finite number > 0, got ${String(weight)}`, { node });
  }
  return weight;
}

/** Validates `n` for getN and clamps it to `size`. */
export function replicaCount(n: unknown, size: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new HashRingError('INVALID_ARGUMENT', `getN needs an integer n >= 0, got ${String(n)}`);
  }
  return n < size ? n : size;
}

export function emptyRing(): HashRingError {
  return new HashRingError('EMPTY_RING', 'the ring has no nodes');
}

export function unknownNode(node: string): HashRingError {
  return new HashRingError('UNKNOWN_NODE', `no node named ${JSON.stringify(node)}`, { node });
}

export function duplicateNode(node: string): HashRingError {
  return new HashRingError('DUPLICATE_NODE', `node ${JSON.stringify(node)} is already in the ring`, { node });
}

/** Flattens `NodesInput` to `[name, weight | undefined]` pairs in order. */
export function nodeEntries(input: NodesInput | undefined): Array<[string, number | undefined]> {
  if (input === undefined) return [];
  if (Array.isArray(input)) {
    return (input as ReadonlyArray<string | WeightedNode>).map((item) =>
      typeof item === 'string' ? [item, undefined] : [item.node, item.weight],
    );
  }
  if (typeof input !== 'object' || input === null) {
    throw new HashRingError('INVALID_ARGUMENT', 'nodes must be an array or a { node: weight } record');
  }
  return Object.entries(input as Record<string, number>);
}

/** Rejects an option that is not an integer within [min, max]. */
export function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HashRingError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
