/**
 * `BoundedLoadRing`: consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, "Consistent
 * Hashing with Bounded Loads", SODA 2018), on the same vnode circle as `VnodeRing`.
 *
 * The ring tracks a load per node (requests in flight, open connections, assigned tasks...). With m units
 * of load already placed, a new unit may go to a node only while the node stays within its capacity
 * `ceil(c * (m + 1) * w / W)` (the paper's `ceil((1 + eps) * m / n)`, generalised to weights w of total W).
 * A key starts at its usual point and walks clockwise to the first node with room (paper §2), so it stays
 * on its own node while that node is not overloaded, and spills to the ring's next nodes when it is.
 * No node ever holds more than `c` times its fair share, whatever the key skew; `c` defaults to 1.25.
 *
 * Fallback, so it never throws when capacity is tight: for any c >= 1 some node always has room (the
 * capacities add up to at least c * (m + 1) > m), but floating-point rounding of the capacities can in rare
 * cases leave none. Then the key goes to the node with the lowest load / weight among all nodes, ties to the
 * one met first on the walk. `getN` likewise lists nodes with room first, then full ones, in walk order.
 *
 * The load model is the one load balancers use (HAProxy's `hash-balance-factor`, Vimeo's Skyfire):
 * `acquire(key)` picks a node and adds one unit to it, `release(node)` takes it back. `get` and `getN` only
 * look. `distribution(keys)` replays `acquire` for every key on empty loads, without touching the live ones.
 */
import { HashRingError } from './errors.js';
import { murmur3String } from './murmur3.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { DEFAULT_VNODES, tableBitsOption } from './ring.js';
import { assertKey, emptyRing, integerOption, nodeEntries, replicaCount } from './validate.js';
import { VnodePoints } from './vnode-points.js';

export const DEFAULT_LOAD_FACTOR = 1.25;

export interface BoundedLoadOptions {
  nodes?: NodesInput;
  /** Load factor c >= 1: no node takes more than c times its weighted share. Default 1.25. */
  c?: number;
  /** Points per unit of weight on the underlying circle. Default 8192, as `VnodeRing`. */
  vnodes?: number;
  /** Key position grid, as `VnodeRing` (default 20). */
  tableBits?: number;
}

export class BoundedLoadRing implements HashRing {
  readonly algorithm = 'bounded-load' as const;
  readonly c: number;
  private readonly ring: VnodePoints;
  private loads = new Float64Array(0);
  private total = 0;
  private seen = new Uint32Array(0);
  private stamp = 0;

  constructor(options: BoundedLoadOptions = {}) {
    const c = options.c ?? DEFAULT_LOAD_FACTOR;
    if (typeof c !== 'number' || !Number.isFinite(c) || c < 1) {
      throw new HashRingError('INVALID_ARGUMENT', `load factor c must be a finite number >= 1, got ${String(c)}`);
    }
    this.c = c;
    this.ring = new VnodePoints(integerOption('vnodes', options.vnodes ?? DEFAULT_VNODES, 1, 1 << 20), tableBitsOption(options.tableBits));
    for (const [node, weight] of nodeEntries(options.nodes)) this.add(node, weight);
  }

  get size(): number {
    return this.ring.set.size;
  }

  /** Units of load currently placed (acquired and not released). */
  get totalLoad(): number {
    return this.total;
  }

  /** Where one more unit for `key` would go now. Does not change any load. */
  get(key: string): string {
    assertKey(key);
    return this.ring.set.names[this.place(murmur3String(key, 0), this.loads, this.total)]!;
  }

  /** Places one unit of load for `key` and returns its node. */
  acquire(key: string): string {
    assertKey(key);
    const slot = this.place(murmur3String(key, 0), this.loads, this.total);
    this.loads[slot]!++;
    this.total++;
    return this.ring.set.names[slot]!;
  }

  /** Takes back one unit of load from `node`. Throws UNKNOWN_NODE, or INVALID_ARGUMENT if it has none. */
  release(node: string): this {
    const slot = this.ring.set.slotOf(node);
    if (!(this.loads[slot]! > 0)) {
      throw new HashRingError('INVALID_ARGUMENT', `node ${JSON.stringify(node)} has no load to release`, { node });
    }
    this.loads[slot]!--;
    this.total--;
    return this;
  }

  /** Current load of a node. */
  load(node: string): number {
    return this.loads[this.ring.set.slotOf(node)] ?? 0;
  }

  /** Current loads, in `nodes()` order. */
  loadsByNode(): Map<string, number> {
    const out = this.ring.set.emptyDistribution();
    for (const node of out.keys()) out.set(node, this.load(node));
    return out;
  }

  /** The most load `node` may hold once one more unit is placed: ceil(c * (m + 1) * w / W). */
  capacity(node: string): number {
    const set = this.ring.set;
    return Math.ceil((this.c * (this.total + 1) * set.weightOf(node)) / set.totalWeight);
  }

  /** n distinct nodes in walk order: first those with room for one more unit, then the full ones. */
  getN(key: string, n: number): string[] {
    assertKey(key);
    const ring = this.ring;
    ring.prepare();
    const set = ring.set;
    const want = replicaCount(n, set.size);
    if (want === 0) return [];
    const index = ring.index;
    const count = index.count;
    const factor = (this.c * (this.total + 1)) / set.totalWeight;
    const seen = this.nextStamp();
    const stamp = this.stamp;
    const open: string[] = [];
    const full: string[] = [];
    let i = index.locate(ring.position(murmur3String(key, 0)));
    for (let steps = count; steps > 0 && open.length < want && open.length + full.length < set.size; steps--) {
      const slot = index.ownerAt(i);
      if (seen[slot] !== stamp) {
        seen[slot] = stamp;
        const hasRoom = this.loads[slot]! < Math.ceil(factor * set.weights[slot]!);
        (hasRoom ? open : full).push(set.names[slot]!);
      }
      if (++i === count) i = 0;
    }
    return open.concat(full).slice(0, want);
  }

  add(node: string, weight?: number): this {
    const slot = this.ring.add(node, weight);
    if (this.loads.length <= slot) {
      const grown = new Float64Array(Math.max(slot + 1, this.loads.length * 2));
      grown.set(this.loads);
      this.loads = grown;
    }
    this.loads[slot] = 0;
    return this;
  }

  /** Removes a node; its load leaves with it (its keys' next units land elsewhere). */
  remove(node: string): this {
    const slot = this.ring.set.slotOf(node);
    this.total -= this.loads[slot]!;
    this.loads[slot] = 0;
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

  /** Replays `acquire` for each key, in order, starting from empty loads; live loads are untouched. */
  distribution(keys: Iterable<string>): Distribution {
    const loads = new Float64Array(this.loads.length);
    let total = 0;
    for (const key of keys) {
      assertKey(key);
      loads[this.place(murmur3String(key, 0), loads, total)]!++;
      total++;
    }
    const out = this.ring.set.emptyDistribution();
    for (const node of out.keys()) out.set(node, loads[this.ring.set.slotOf(node)]!);
    return out;
  }

  /** Bytes held by the lookup arrays (packed points and owners, bucket index, successor table) and the loads. */
  get byteLength(): number {
    return this.ring.byteLength + this.loads.byteLength;
  }

  /** The walk of the paper's §2, with the documented fallback. Returns a slot. */
  private place(hash: number, loads: Float64Array, total: number): number {
    const ring = this.ring;
    ring.prepare();
    const set = ring.set;
    const nodeCount = set.size;
    if (nodeCount === 0) throw emptyRing();
    const index = ring.index;
    const count = index.count;
    const weights = set.weights;
    const factor = (this.c * (total + 1)) / set.totalWeight;
    // Fast path: the key's own node has room (almost always, unless it is overloaded).
    const first = ring.ownerOf(hash);
    if (loads[first]! < Math.ceil(factor * weights[first]!)) return first;
    let i = index.locate(ring.position(hash));
    const seen = this.nextStamp();
    const stamp = this.stamp;
    seen[first] = stamp;
    let met = 1;
    let fallback = first;
    let fallbackRatio = loads[first]! / weights[first]!;
    for (let steps = count; steps > 0 && met < nodeCount; steps--) {
      if (++i === count) i = 0;
      const slot = index.ownerAt(i);
      if (seen[slot] === stamp) continue;
      seen[slot] = stamp;
      met++;
      if (loads[slot]! < Math.ceil(factor * weights[slot]!)) return slot;
      const ratio = loads[slot]! / weights[slot]!;
      if (ratio < fallbackRatio) {
        fallbackRatio = ratio;
        fallback = slot;
      }
    }
    return fallback;
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
