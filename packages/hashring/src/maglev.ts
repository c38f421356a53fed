/**
 * `MaglevHash`: Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016, §3.4). Each node walks its own permutation of a prime-sized table, the nodes take
 * turns claiming their next free entry until the table is full, and a key's node is one table read.
 *
 * - Permutation (paper §3.4): `offset = h1(name) mod M`, `skip = h2(name) mod (M - 1) + 1`, entry j of the
 *   node's preference list is `(offset + j * skip) mod M`; M prime makes every list a full permutation.
 *   h1, h2 are `murmur3(name, SEED_A)` and `murmur3(name, SEED_B)`.
 * - Turn order is node-name order (the paper uses the configured backend order), so the table depends only on
 *   the node set, not on insertion order.
 * - Weights: the paper only says weighted backends change the relative frequency of turns. Here each round
 *   adds `weight / maxWeight` to a node's credit and the node claims one entry per whole unit of credit, so
 *   entries are split in proportion to weight and equal weights reduce to the paper's round robin.
 * - Lookup: entry `floor(h * M / 2^32)` with `h = murmur3(key, 0)` (Lemire's multiply-shift range reduction;
 *   exact in doubles because M <= 2^21).
 *
 * Trade-offs: the best balance here (each node holds floor or ceil of M*w/W entries) and the fastest,
 * smallest lookup (one read of a 128 KiB table for M = 65537), but NOT minimal disruption: a membership change
 * rebuilds the table (O(M log M), lazily on the next lookup), and besides the keys that must move, a few
 * keys move between surviving nodes (~0.5% of all keys going from 100 to 101 nodes with M = 65537; see the
 * bench). Keep M >= 100 x nodes for <1% entry imbalance (paper §5.3); M is fixed, not grown with the node
 * count, because changing M reshuffles every key.
 */
import { HashRingError } from './errors.js';
import { murmur3String } from './murmur3.js';
import { NodeSet } from './node-set.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { assertKey, emptyRing, integerOption, nodeEntries, replicaCount } from './validate.js';
import { SEED_A, SEED_B, compareNames } from './vnode-points.js';

export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
const MAX_TABLE_SIZE = 1 << 21;
const TWO_POW_MINUS_32 = 2.3283064365386963e-10;

export interface MaglevOptions {
  nodes?: NodesInput;
  /** Lookup table size M: a prime in [2, 2^21]. Default 65537. Keep it >= 100 x the node count. */
  tableSize?: number;
}

export class MaglevHash implements HashRing {
  readonly algorithm = 'maglev' as const;
  readonly tableSize: number;
  private readonly set = new NodeSet();
  private table: Uint16Array | Uint32Array = new Uint16Array(0);
  private dirty = false;
  private seen = new Uint32Array(0);
  private stamp = 0;

  constructor(options: MaglevOptions = {}) {
    const m = integerOption('tableSize', options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE, 2, MAX_TABLE_SIZE);
    if (!isPrime(m)) throw new HashRingError('INVALID_ARGUMENT', `tableSize must be prime, got ${m}`);
    this.tableSize = m;
    for (const [node, weight] of nodeEntries(options.nodes)) this.add(node, weight);
  }

  get size(): number {
    return this.set.size;
  }

  get(key: string): string {
    assertKey(key);
    if (this.dirty) this.populate();
    if (this.set.size === 0) throw emptyRing();
    const entry = (murmur3String(key, 0) * this.tableSize * TWO_POW_MINUS_32) | 0;
    return this.set.names[this.table[entry]!]!;
  }

  /** The owner, then the next distinct nodes met walking the table forward from the key's entry. */
  getN(key: string, n: number): string[] {
    assertKey(key);
    if (this.dirty) this.populate();
    const want = replicaCount(n, this.set.size);
    const out: string[] = [];
    if (want === 0) return out;
    const m = this.tableSize;
    const table = this.table;
    const names = this.set.names;
    const capacity = this.set.capacity;
    if (this.seen.length < capacity) this.seen = new Uint32Array(Math.max(capacity, this.seen.length * 2));
    if (++this.stamp === 0x100000000) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    const seen = this.seen;
    const stamp = this.stamp;
    let entry = (murmur3String(key, 0) * m * TWO_POW_MINUS_32) | 0;
    for (let steps = m; steps > 0 && out.length < want; steps--) {
      const slot = table[entry]!;
      if (seen[slot] !== stamp) {
        seen[slot] = stamp;
        out.push(names[slot]!);
      }
      if (++entry === m) entry = 0;
    }
    if (out.length < want) {
      // Only when some node holds no entry at all (more nodes than a small table can give one each).
      for (const node of this.set.nodes().sort(compareNames)) {
        if (out.length === want) break;
        if (seen[this.set.slotOf(node)] !== stamp) out.push(node);
      }
    }
    return out;
  }

  add(node: string, weight?: number): this {
    this.set.add(node, weight);
    this.dirty = true;
    return this;
  }

  remove(node: string): this {
    this.set.release(this.set.remove(node)); // the table is rebuilt before any slot is read again
    this.dirty = true;
    return this;
  }

  has(node: string): boolean {
    return this.set.has(node);
  }

  weight(node: string): number {
    return this.set.weightOf(node);
  }

  nodes(): string[] {
    return this.set.nodes();
  }

  distribution(keys: Iterable<string>): Distribution {
    const out = this.set.emptyDistribution();
    for (const key of keys) {
      const node = this.get(key);
      out.set(node, out.get(node)! + 1);
    }
    return out;
  }

  /** Table entries per node (after pending changes), in `nodes()` order. */
  entries(): Map<string, number> {
    if (this.dirty) this.populate();
    const out = this.set.emptyDistribution();
    const names = this.set.names;
    if (this.set.size === 0) return out;
    for (let i = 0; i < this.table.length; i++) {
      const node = names[this.table[i]!]!;
      out.set(node, out.get(node)! + 1);
    }
    return out;
  }

  /** Fraction of the table (so of uniformly random keys) each node owns, in `nodes()` order. */
  shares(): Map<string, number> {
    const out = this.entries();
    for (const [node, count] of out) out.set(node, count / this.tableSize);
    return out;
  }

  /** Bytes held by the lookup table. */
  get byteLength(): number {
    if (this.dirty) this.populate();
    return this.table.byteLength;
  }

  /** Fills the table (paper §3.4, Pseudocode 1), with weighted turns. */
  private populate(): void {
    this.dirty = false;
    const set = this.set;
    const m = this.tableSize;
    const n = set.size;
    if (n === 0) {
      this.table = new Uint16Array(0);
      return;
    }
    const nodes = set.nodes().sort(compareNames);
    const slots = new Uint32Array(n);
    const position = new Float64Array(n);
    const skip = new Float64Array(n);
    const share = new Float64Array(n);
    const credit = new Float64Array(n);
    let maxWeight = 0;
    for (let i = 0; i < n; i++) maxWeight = Math.max(maxWeight, set.weightOf(nodes[i]!));
    for (let i = 0; i < n; i++) {
      const name = nodes[i]!;
      slots[i] = set.slotOf(name);
      position[i] = murmur3String(name, SEED_A) % m;
      skip[i] = (murmur3String(name, SEED_B) % (m - 1)) + 1;
      share[i] = set.weightOf(name) / maxWeight;
    }
    const entries = new Int32Array(m).fill(-1);
    let filled = 0;
    fill: for (;;) {
      for (let i = 0; i < n; i++) {
        credit[i]! += share[i]!;
        while (credit[i]! >= 1) {
          credit[i]! -= 1;
          let c = position[i]!;
          while (entries[c] !== -1) {
            c += skip[i]!;
            if (c >= m) c -= m;
          }
          entries[c] = slots[i]!;
          c += skip[i]!;
          position[i] = c >= m ? c - m : c;
          if (++filled === m) break fill;
        }
      }
    }
    this.table = set.capacity <= 0x10000 ? Uint16Array.from(entries) : Uint32Array.from(entries);
  }
}

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
