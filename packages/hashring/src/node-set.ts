/**
 * The membership table every algorithm shares: node name <-> dense slot number, plus weights.
 *
 * Lookup structures store slots (small integers in typed arrays) rather than names. A removed node's slot is
 * parked until its owner calls `release(slot)` (after it has dropped every reference to the slot), so a node
 * added in the same burst can never be confused with the one that left.
 */
import { assertNodeName, duplicateNode, normalizeWeight, unknownNode } from './validate.js';

export class NodeSet {
  /** slot -> name; `undefined` for a free slot. */
  readonly names: Array<string | undefined> = [];
  /** slot -> weight (0 for a free slot). */
  readonly weights: number[] = [];
  /** Live nodes in insertion order. */
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private total = 0;

  get size(): number {
    return this.slots.size;
  }

  /** Number of slots ever in use (live, parked or free): typed arrays indexed by slot need this length. */
  get capacity(): number {
    return this.names.length;
  }

  get totalWeight(): number {
    return this.total;
  }

  has(node: string): boolean {
    return this.slots.has(node);
  }

  slotOf(node: string): number {
    const slot = this.slots.get(node);
    if (slot === undefined) throw unknownNode(node);
    return slot;
  }

  weightOf(node: string): number {
    return this.weights[this.slotOf(node)]!;
  }

  /** Validates and registers a node; returns its slot. */
  add(node: string, weight: number | undefined): number {
    assertNodeName(node);
    const w = normalizeWeight(weight, node);
    if (this.slots.has(node)) throw duplicateNode(node);
    const slot = this.free.length > 0 ? this.free.pop()! : this.names.length;
    this.names[slot] = node;
    this.weights[slot] = w;
    this.slots.set(node, slot);
    this.total += w;
    return slot;
  }

  /** Unregisters a node and returns its slot, which stays reserved until `release(slot)`. */
  remove(node: string): number {
    const slot = this.slotOf(node);
    this.slots.delete(node);
    this.total -= this.weights[slot]!;
    if (this.slots.size === 0) this.total = 0; // no float residue once empty
    return slot;
  }

  /** Makes a removed node's slot reusable. */
  release(slot: number): void {
    this.names[slot] = undefined;
    this.weights[slot] = 0;
    this.free.push(slot);
  }

  nodes(): string[] {
    return [...this.slots.keys()];
  }

  /** A zeroed distribution in `nodes()` order. */
  emptyDistribution(): Map<string, number> {
    const out = new Map<string, number>();
    for (const node of this.slots.keys()) out.set(node, 0);
    return out;
  }
}
