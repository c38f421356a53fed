/**
 * Jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014), and
 * `JumpHash`, which names its numbered buckets.
 *
 * `jumpHash(key, buckets)` is the paper's Figure 1, bit for bit: the 64-bit linear congruential step
 * `key = key * 2862933555777941757 + 1 (mod 2^64)` is done on two 32-bit halves (no BigInt on the hot path),
 * and `j = floor((b + 1) * 2^31 / ((key >>> 33) + 1))` is computed in doubles exactly as the C++ does.
 * Golden vectors from the reference C++ are in `jump.test.ts`.
 *
 * Jump gives perfect balance and minimal disruption with no memory at all, but only for buckets numbered
 * 0..n-1 that grow and shrink at the end. `JumpHash` therefore:
 * - takes no weights (a weight other than 1 is INVALID_WEIGHT);
 * - `add` appends a bucket; removing the last bucket is minimal (only its keys move);
 * - removing any other node moves the last bucket's node into the freed number, so the removed node's keys
 *   AND the last node's keys move (about 2/n of all keys). Use the ring or rendezvous when arbitrary nodes
 *   fail; use jump for shards you add and retire in order.
 */
import { murmur3String, murmur3Uint32 } from './murmur3.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { HashRingError } from './errors.js';
import { assertKey, assertNodeName, duplicateNode, emptyRing, integerOption, nodeEntries, replicaCount, unknownNode } from './validate.js';

// 2862933555777941757 = 0x27BB2EE6_87B0B0FD
const MUL_HI = 0x27bb2ee6;
const MUL_LO = 0x87b0b0fd;
const TWO_POW_31 = 2147483648;

/**
 * The paper's jump hash of a uint64 key given as two uint32 halves. `buckets` in [1, 2^31).
 */
export function jumpHash64(hi: number, lo: number, buckets: number): number {
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // (hi:lo) = (hi:lo) * (MUL_HI:MUL_LO) + 1 mod 2^64. Low word via imul; high word = mulhi(lo, MUL_LO)
    // + lo * MUL_HI + hi * MUL_LO (mod 2^32), with mulhi from 16-bit limbs (every partial sum < 2^53).
    const a0 = lo & 0xffff;
    const a1 = lo >>> 16;
    const t0 = a0 * (MUL_LO & 0xffff);
    const t1 = a1 * (MUL_LO & 0xffff) + (t0 >>> 16);
    const t2 = a0 * (MUL_LO >>> 16) + (t1 % 65536);
    const mulhi = a1 * (MUL_LO >>> 16) + Math.floor(t1 / 65536) + Math.floor(t2 / 65536);
    let newHi = (mulhi + Math.imul(lo, MUL_HI) + Math.imul(hi, MUL_LO)) >>> 0;
    let newLo = Math.imul(lo, MUL_LO) >>> 0;
    newLo = (newLo + 1) >>> 0;
    if (newLo === 0) newHi = (newHi + 1) >>> 0;
    hi = newHi;
    lo = newLo;
    j = Math.floor((b + 1) * (TWO_POW_31 / ((hi >>> 1) + 1)));
  }
  return b;
}

/** Jump hash of a uint64 key (a bigint, or a non-negative safe integer) into `buckets` buckets. */
export function jumpHash(key: bigint | number, buckets: number): number {
  integerOption('buckets', buckets, 1, 0x7fffffff);
  if (typeof key === 'bigint') {
    if (key < 0n || key > 0xffffffffffffffffn) throw new HashRingError('INVALID_ARGUMENT', 'key must be a uint64');
    return jumpHash64(Number(key >> 32n), Number(key & 0xffffffffn), buckets);
  }
  integerOption('key', key, 0, Number.MAX_SAFE_INTEGER);
  return jumpHash64(Math.floor(key / 0x100000000), key >>> 0, buckets);
}

export interface JumpHashOptions {
  /** Initial buckets, numbered in this order (weights other than 1 are rejected). */
  nodes?: NodesInput;
}

export class JumpHash implements HashRing {
  readonly algorithm = 'jump' as const;
  private readonly buckets: string[] = [];
  private readonly numbers = new Map<string, number>();

  constructor(options: JumpHashOptions = {}) {
    for (const [node, weight] of nodeEntries(options.nodes)) this.add(node, weight);
  }

  get size(): number {
    return this.buckets.length;
  }

  /** String keys are hashed with `murmur3(key, 0)` and used as the low half of the 64-bit jump key. */
  get(key: string): string {
    assertKey(key);
    const n = this.buckets.length;
    if (n === 0) throw emptyRing();
    return this.buckets[jumpHash64(0, murmur3String(key, 0), n)]!;
  }

  /**
   * Replica r (r >= 1) is the jump bucket of `murmur3Uint32(h, r)`, skipping buckets already chosen; after
   * 4n + 16 draws without finding enough, the rest are taken in bucket order after the owner. Every draw
   * is consistent in the bucket count, so replicas move as little as the owner does.
   */
  getN(key: string, n: number): string[] {
    assertKey(key);
    const count = this.buckets.length;
    const want = replicaCount(n, count);
    if (want === 0) return [];
    const h = murmur3String(key, 0);
    const chosen: number[] = [jumpHash64(0, h, count)];
    for (let r = 1, tries = 4 * want + 16; chosen.length < want && tries > 0; r++, tries--) {
      const b = jumpHash64(0, murmur3Uint32(h, r), count);
      if (!chosen.includes(b)) chosen.push(b);
    }
    for (let b = chosen[0]! + 1; chosen.length < want; b++) {
      const bucket = b % count;
      if (!chosen.includes(bucket)) chosen.push(bucket);
    }
    return chosen.map((b) => this.buckets[b]!);
  }

  add(node: string, weight?: number): this {
    assertNodeName(node);
    if (weight !== undefined && weight !== 1) {
      throw new HashRingError('INVALID_WEIGHT', `jump hash buckets are unweighted; got weight ${String(weight)} for ${JSON.stringify(node)}`, { node });
    }
    if (this.numbers.has(node)) throw duplicateNode(node);
    this.numbers.set(node, this.buckets.length);
    this.buckets.push(node);
    return this;
  }

  /** Minimal for the last bucket; otherwise the last bucket's node takes the freed number (see above). */
  remove(node: string): this {
    const number = this.numbers.get(node);
    if (number === undefined) throw unknownNode(node);
    this.numbers.delete(node);
    const last = this.buckets.pop()!;
    if (last !== node) {
      this.buckets[number] = last;
      this.numbers.set(last, number);
    }
    return this;
  }

  has(node: string): boolean {
    return this.numbers.has(node);
  }

  weight(node: string): number {
    if (!this.numbers.has(node)) throw unknownNode(node);
    return 1;
  }

  /** Bucket number of a node. */
  bucketOf(node: string): number {
    const number = this.numbers.get(node);
    if (number === undefined) throw unknownNode(node);
    return number;
  }

  /** Node names in bucket order: nodes()[i] is bucket i. */
  nodes(): string[] {
    return [...this.buckets];
  }

  distribution(keys: Iterable<string>): Distribution {
    const out = new Map<string, number>(this.buckets.map((b) => [b, 0]));
    for (const key of keys) {
      const node = this.get(key);
      out.set(node, out.get(node)! + 1);
    }
    return out;
  }
}
