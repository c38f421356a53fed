/**
 * `RendezvousHash`: highest random weight hashing (Thaler & Ravishankar, "Using Name-Based Mappings to
 * Increase Hit Rates", IEEE/ACM ToN 1998). Every node scores the key; the highest score wins; `getN` is the
 * top n scores, so replica sets are nested and stable.
 *
 * - Score: `s = murmur3(h as 4 LE bytes, seed = murmur3(name, SEED_A))` with `h = murmur3(key, 0)`.
 * - Weights use the logarithmic method (Schindelhauer & Schomaker, "Weighted Distributed Hash Tables",
 *   SPAA 2005; the form used by Resch's "weighted rendezvous"): score `w / -ln(u)` with
 *   `u = (s + 0.5) / 2^32` in (0, 1), which picks each node with probability exactly w / W. When all weights
 *   are equal the comparison is done on `s` directly (same winner, no logarithm).
 * - Equal scores (32-bit collisions) go to the lower node name, so results never depend on insertion order.
 *
 * Perfect minimal disruption and balance, no lookup structure, O(1) memory per node, but O(n) work per
 * lookup: the right pick for a few dozen nodes, or when `getN` replica sets must be nested.
 */
import { murmur3String, murmur3Uint32 } from './murmur3.js';
import { NodeSet } from './node-set.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { assertKey, emptyRing, nodeEntries, replicaCount } from './validate.js';
import { SEED_A, compareNames } from './vnode-points.js';

export interface RendezvousOptions {
  nodes?: NodesInput;
}

const TWO_POW_MINUS_32 = 2.3283064365386963e-10;

export class RendezvousHash implements HashRing {
  readonly algorithm = 'rendezvous' as const;
  private readonly set = new NodeSet();
  // Dense views of the live nodes, rebuilt after a change.
  private liveNames: string[] = [];
  private liveSeeds = new Int32Array(0);
  private liveWeights = new Float64Array(0);
  private uniform = true;
  private dirty = false;
  private scores = new Float64Array(0);

  constructor(options: RendezvousOptions = {}) {
    for (const [node, weight] of nodeEntries(options.nodes)) this.add(node, weight);
  }

  get size(): number {
    return this.set.size;
  }

  get(key: string): string {
    assertKey(key);
    if (this.dirty) this.refresh();
    const n = this.liveNames.length;
    if (n === 0) throw emptyRing();
    const h = murmur3String(key, 0);
    const seeds = this.liveSeeds;
    const names = this.liveNames;
    let best = 0;
    if (this.uniform) {
      let bestScore = murmur3Uint32(h, seeds[0]!);
      for (let i = 1; i < n; i++) {
        const s = murmur3Uint32(h, seeds[i]!);
        if (s > bestScore || (s === bestScore && names[i]! < names[best]!)) {
          bestScore = s;
          best = i;
        }
      }
    } else {
      const weights = this.liveWeights;
      let bestScore = weightedScore(murmur3Uint32(h, seeds[0]!), weights[0]!);
      for (let i = 1; i < n; i++) {
        const s = weightedScore(murmur3Uint32(h, seeds[i]!), weights[i]!);
        if (s > bestScore || (s === bestScore && names[i]! < names[best]!)) {
          bestScore = s;
          best = i;
        }
      }
    }
    return names[best]!;
  }

  /** The n highest-scoring nodes, best first. */
  getN(key: string, n: number): string[] {
    assertKey(key);
    if (this.dirty) this.refresh();
    const want = replicaCount(n, this.liveNames.length);
    if (want === 0) return [];
    const h = murmur3String(key, 0);
    const count = this.liveNames.length;
    if (this.scores.length < count) this.scores = new Float64Array(count);
    const scores = this.scores;
    for (let i = 0; i < count; i++) {
      const s = murmur3Uint32(h, this.liveSeeds[i]!);
      scores[i] = this.uniform ? s : weightedScore(s, this.liveWeights[i]!);
    }
    const names = this.liveNames;
    const order = Array.from({ length: count }, (_, i) => i);
    order.sort((a, b) => scores[b]! - scores[a]! || compareNames(names[a]!, names[b]!));
    return order.slice(0, want).map((i) => names[i]!);
  }

  add(node: string, weight?: number): this {
    this.set.add(node, weight);
    this.dirty = true;
    return this;
  }

  remove(node: string): this {
    this.set.release(this.set.remove(node));
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

  /** Bytes held by the per-node arrays. */
  get byteLength(): number {
    if (this.dirty) this.refresh();
    return this.liveSeeds.byteLength + this.liveWeights.byteLength;
  }

  private refresh(): void {
    this.dirty = false;
    const nodes = this.set.nodes();
    this.liveNames = nodes;
    this.liveSeeds = Int32Array.from(nodes, (name) => murmur3String(name, SEED_A));
    this.liveWeights = Float64Array.from(nodes, (name) => this.set.weightOf(name));
    this.uniform = this.liveWeights.every((w) => w === this.liveWeights[0]);
  }
}

/** w / -ln(u), u = (s + 0.5) / 2^32 in (0, 1): larger is better, P(win) = w / W. */
function weightedScore(s: number, weight: number): number {
  return weight / -Math.log((s + 0.5) * TWO_POW_MINUS_32);
}
