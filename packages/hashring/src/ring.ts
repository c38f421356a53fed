/**
 * `VnodeRing`: the default algorithm (what `createHashRing()` returns). A consistent-hash ring with virtual
 * nodes and weights, points in typed arrays, bucket-narrowed binary search, incremental add/remove, and a
 * precomputed successor table for O(1) `get`; see `vnode-points.ts` for the placement rules.
 *
 * Why it is the default: it is the only general-purpose algorithm here that has all three of
 * - minimal disruption: adding a node moves keys only to that node, removing one moves only its keys
 *   (Maglev moves some keys between surviving nodes; jump can only grow or shrink at the end);
 * - arbitrary names, weights and removals (unlike jump);
 * - O(1)-ish lookups that do not grow with the node count (unlike rendezvous's O(n)).
 * Its cost is memory: balance comes from the number of points per node. A node's share of the circle has a
 * relative standard deviation of about 1/sqrt(vnodes), so the default of 8192 points (~1.1%) keeps the most
 * loaded of 100 nodes within ~4% of the mean on 1e6 keys, at ~40 KiB per node plus the lookup table
 * (1-2 MiB). Lower `vnodes` to trade balance for memory (1024 -> ~3% deviation, ~5 KiB per node).
 */
import { murmur3String } from './murmur3.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { assertKey, emptyRing, integerOption, nodeEntries, replicaCount } from './validate.js';
import { VnodePoints } from './vnode-points.js';

export const DEFAULT_VNODES = 8192;
export const DEFAULT_TABLE_BITS = 20;

export interface VnodeRingOptions {
  nodes?: NodesInput;
  /** Points per unit of weight (a node of weight w gets round(vnodes * w), at least 1). Default 8192. */
  vnodes?: number;
  /**
   * Keys are placed on a grid of 2^tableBits positions whose owners are precomputed, so `get` is one table
   * read. 8..24, default 20 (a 1-4 MiB table); raise it for many hundreds of nodes. 0 places keys at their
   * full 32-bit hash and looks them up by binary search (slower, no table). Changing it moves keys: every
   * process sharing a ring must use the same value, as with `vnodes`.
   */
  tableBits?: number;
}

export function tableBitsOption(value: unknown): number {
  return value === 0 ? 0 : integerOption('tableBits', value ?? DEFAULT_TABLE_BITS, 8, 24);
}

export class VnodeRing implements HashRing {
  readonly algorithm = 'ring' as const;
  private readonly ring: VnodePoints;
  private seen = new Uint32Array(0);
  private stamp = 0;

  constructor(options: VnodeRingOptions = {}) {
    this.ring = new VnodePoints(integerOption('vnodes', options.vnodes ?? DEFAULT_VNODES, 1, 1 << 20), tableBitsOption(options.tableBits));
    for (const [node, weight] of nodeEntries(options.nodes)) this.ring.add(node, weight);
  }

  get vnodes(): number {
    return this.ring.vnodes;
  }

  get tableBits(): number {
    return this.ring.tableBits;
  }

  get size(): number {
    return this.ring.set.size;
  }

  get(key: string): string {
    assertKey(key);
    const ring = this.ring;
    ring.prepare();
    if (ring.index.count === 0) throw emptyRing();
    return ring.set.names[ring.ownerOf(murmur3String(key, 0))]!;
  }

  /** Walks clockwise from the key's point, keeping each node the first time it is met. */
  getN(key: string, n: number): string[] {
    assertKey(key);
    const ring = this.ring;
    ring.prepare();
    const want = replicaCount(n, ring.set.size);
    const out: string[] = [];
    if (want === 0) return out;
    const index = ring.index;
    const count = index.count;
    const names = ring.set.names;
    const seen = this.nextStamp();
    const stamp = this.stamp;
    let i = index.locate(ring.position(murmur3String(key, 0)));
    for (let steps = count; steps > 0 && out.length < want; steps--) {
      const owner = index.ownerAt(i);
      if (seen[owner] !== stamp) {
        seen[owner] = stamp;
        out.push(names[owner]!);
      }
      if (++i === count) i = 0;
    }
    return out;
  }

  add(node: string, weight?: number): this {
    this.ring.add(node, weight);
    return this;
  }

  remove(node: string): this {
    this.ring.remove(node);
    return this;
  }

  has(node: string): boolean {
    return this.ring.set.has(node);
  }

  weight(node: string): number {
    return this.ring.set.weightOf(node);
  }

  nodes(): string[] {
    return this.ring.set.nodes();
  }

  distribution(keys: Iterable<string>): Distribution {
    const out = this.ring.set.emptyDistribution();
    for (const key of keys) {
      const node = this.get(key);
      out.set(node, out.get(node)! + 1);
    }
    return out;
  }

  /**
   * Exact fraction of key positions each node owns (what its share of uniformly random keys converges to),
   * in `nodes()` order.
   */
  shares(): Map<string, number> {
    const ring = this.ring;
    ring.prepare();
    const bySlot = ring.tableBits === 0 ? ring.index.arcShares(ring.set.capacity) : tableShares(ring.table, ring.set.capacity);
    const out = new Map<string, number>();
    for (const node of ring.set.nodes()) out.set(node, bySlot[ring.set.slotOf(node)]!);
    return out;
  }

  /** Number of points on the circle (after pending changes). */
  get pointCount(): number {
    this.ring.prepare();
    return this.ring.index.count;
  }

  /** Bytes held by the lookup arrays (packed points and owners, bucket index, successor table). */
  get byteLength(): number {
    return this.ring.byteLength;
  }

  private nextStamp(): Uint32Array {
    const capacity = this.ring.set.capacity;
    if (this.seen.length < capacity) this.seen = new Uint32Array(Math.max(capacity, this.seen.length * 2));
    if (++this.stamp === 0x100000000) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    return this.seen;
  }
}

function tableShares(table: ArrayLike<number>, capacity: number): Float64Array {
  const shares = new Float64Array(capacity);
  for (let g = 0; g < table.length; g++) shares[table[g]!]!++;
  for (let i = 0; i < capacity; i++) shares[i]! /= table.length;
  return shares;
}
