import { ConfigError, InvalidArgumentError } from './errors';
import type { NodeId, ProtocolOptions, Snapshot } from './types';

const NODE_ID = /^[^\s]{1,128}$/;

/** Throws `InvalidArgumentError` unless `id` is a valid node id (1-128 characters, no whitespace). */
/** Whether `id` is a valid node id: a non-empty string of at most 128 characters without whitespace. */
export function isNodeId(id: unknown): id is NodeId {
  return typeof id === 'string' && NODE_ID.test(id);
}

export function assertNodeId(id: unknown, what = 'node id'): asserts id is NodeId {
  if (typeof id !== 'string' || !NODE_ID.test(id)) {
    throw new InvalidArgumentError(`${what} must be a non-empty string of at most 128 characters without whitespace, got ${preview(id)}`);
  }
}

export function assertBytes(data: unknown, what = 'data'): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new InvalidArgumentError(`${what} must be a Uint8Array, got ${preview(data)}`);
  }
}

export function assertPositiveInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${preview(value)}`);
  }
}

export function assertNonNegativeInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${preview(value)}`);
  }
}

/** A short, safe rendering of an unexpected value for error messages. */
export function preview(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return String(value);
    case 'function':
      return 'a function';
    default:
      return `an ${value?.constructor?.name ?? 'object'}`;
  }
}

export interface ResolvedProtocolOptions {
  id: NodeId;
  peers: NodeId[];
  applied: number;
  electionTicks: number;
  heartbeatTicks: number;
  random: () => number;
}

/**
 * Validates and fills in the defaults of `ProtocolOptions`; every protocol calls it first so that bad options
 * fail the same way everywhere (`ConfigError` naming the option).
 */
export function resolveProtocolOptions(options: ProtocolOptions): ResolvedProtocolOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError('protocol options must be an object');
  assertNodeId(options.id, 'options.id');
  if (!Array.isArray(options.peers)) throw new ConfigError('options.peers must be an array of node ids');
  const seen = new Set<NodeId>();
  for (const p of options.peers) {
    assertNodeId(p, 'options.peers[]');
    if (seen.has(p)) throw new ConfigError(`options.peers lists ${p} twice`);
    seen.add(p);
  }
  if (options.peers.length > 0 && !seen.has(options.id)) {
    throw new ConfigError(`options.peers must include the node's own id ${options.id}`);
  }
  if (options.storage === undefined || typeof options.storage !== 'object') throw new ConfigError('options.storage is required');
  const electionTicks = options.electionTicks ?? 10;
  const heartbeatTicks = options.heartbeatTicks ?? 1;
  if (!Number.isSafeInteger(electionTicks) || electionTicks <= 0) throw new ConfigError(`electionTicks must be a positive integer, got ${preview(electionTicks)}`);
  if (!Number.isSafeInteger(heartbeatTicks) || heartbeatTicks <= 0) throw new ConfigError(`heartbeatTicks must be a positive integer, got ${preview(heartbeatTicks)}`);
  if (electionTicks <= heartbeatTicks) {
    throw new ConfigError(`electionTicks (${electionTicks}) must be greater than heartbeatTicks (${heartbeatTicks})`);
  }
  const applied = options.applied ?? 0;
  if (!Number.isSafeInteger(applied) || applied < 0) throw new ConfigError(`options.applied must be a non-negative integer, got ${preview(applied)}`);
  if (options.random !== undefined && typeof options.random !== 'function') throw new ConfigError('options.random must be a function returning [0, 1)');
  return {
    id: options.id,
    peers: [...options.peers],
    applied,
    electionTicks,
    heartbeatTicks,
    random: options.random ?? seededRandom(hashString(options.id)),
  };
}

/** A small, fast, seedable PRNG (mulberry32). Deterministic for a given seed; never `Math.random`. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over UTF-16 code units: a stable 32-bit seed from a string. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Throws `InvalidArgumentError` unless `snapshot` is a well-formed `Snapshot` (storage implementations share it). */
export function assertSnapshot(snapshot: unknown): asserts snapshot is Snapshot {
  if (typeof snapshot !== 'object' || snapshot === null) throw new InvalidArgumentError('snapshot must be an object');
  const s = snapshot as Partial<Snapshot>;
  if (!Number.isSafeInteger(s.index) || (s.index as number) < 0) throw new InvalidArgumentError(`snapshot index ${s.index} is invalid`);
  if (!Number.isSafeInteger(s.term) || (s.term as number) < 0) throw new InvalidArgumentError(`snapshot term ${s.term} is invalid`);
  if (!(s.data instanceof Uint8Array)) throw new InvalidArgumentError('snapshot data must be a Uint8Array');
  if (typeof s.config !== 'object' || s.config === null || !Array.isArray(s.config.voters)) {
    throw new InvalidArgumentError('snapshot config must be a ClusterConfig');
  }
}
