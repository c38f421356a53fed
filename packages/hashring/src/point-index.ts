/**
 * A sorted circle of 32-bit points with an owner per point, and successor lookup: the owner of a hash is
 * the owner of the first point >= hash, wrapping to point 0 past the last one. Shared by the vnode ring, the
 * bounded-load ring and the ketama mode. No object per point: two typed arrays.
 *
 * Layout, chosen because a lookup is bound by dependent cache misses, not by arithmetic:
 * - `buckets` (2^bits + 1 entries) cuts the circle by the hash's top `bits` bits: `buckets[b]` is the index
 *   of the first point whose top bits are >= b. bits = ceil(log2(count / 4)), so ~4 points per bucket.
 * - `entries[i]` packs point i's low `32 - bits` bits (its top bits are implied by its bucket) above its
 *   owner's `bits` bits: `entries[i] = low << bits | owner`. Comparing and reading the owner touch the same
 *   4 bytes, so a lookup costs one bucket read and one cache line of entries (a binary search over ~4
 *   neighbours), instead of bucket + points + owners. It is also 4 bytes per point instead of 6 or 8.
 * `bits` is also at least log2(owner capacity), so every owner fits its field.
 */
import { HashRingError } from './errors.js';

export type OwnerArray = Uint16Array | Uint32Array;

const MAX_BITS = 26;

/** Owner arrays hold slots; 16 bits are enough (and half the memory) until there are more than 65536. */
export function ownerArray(length: number, slotCapacity: number): OwnerArray {
  return slotCapacity <= 0x10000 ? new Uint16Array(length) : new Uint32Array(length);
}

export class PointIndex {
  private entries: Uint32Array = new Uint32Array(0);
  private buckets: Uint32Array = new Uint32Array(0);
  private bits = 1;
  private shift = 31;
  private lowMask = 0x7fffffff;
  private ownerMask = 1;

  get count(): number {
    return this.entries.length;
  }

  /** Replaces the circle. `points` sorted ascending (ties in the caller's order); owners < ownerCapacity. */
  set(points: Uint32Array, owners: OwnerArray, ownerCapacity: number): void {
    const count = points.length;
    const ownerBits = Math.ceil(Math.log2(Math.max(2, ownerCapacity)));
    if (ownerBits > MAX_BITS) {
      throw new HashRingError('INVALID_ARGUMENT', `at most ${2 ** MAX_BITS} nodes are supported, got ${ownerCapacity}`);
    }
    const bits = Math.min(MAX_BITS, Math.max(ownerBits, Math.ceil(Math.log2(Math.max(1, count / 4)))));
    const shift = 32 - bits;
    const lowMask = 2 ** shift - 1;
    const bucketCount = 2 ** bits;
    const buckets = new Uint32Array(bucketCount + 1);
    const entries = new Uint32Array(count);
    let b = 0;
    for (let i = 0; i < count; i++) {
      const p = points[i]!;
      const top = p >>> shift;
      while (b <= top) buckets[b++] = i;
      entries[i] = ((p & lowMask) << bits) | owners[i]!;
    }
    while (b <= bucketCount) buckets[b++] = count;
    this.entries = entries;
    this.buckets = buckets;
    this.bits = bits;
    this.shift = shift;
    this.lowMask = lowMask;
    this.ownerMask = bucketCount - 1;
  }

  /** Index of the first point >= hash, or 0 when hash is above every point. Requires count > 0. */
  locate(hash: number): number {
    const entries = this.entries;
    const bits = this.bits;
    const b = hash >>> this.shift;
    const low = hash & this.lowMask;
    let lo = this.buckets[b]!;
    let hi = this.buckets[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid]! >>> bits < low) lo = mid + 1;
      else hi = mid;
    }
    return lo === entries.length ? 0 : lo;
  }

  /** Owner of the first point >= hash (the hot path: `ownerAt(locate(hash))`). Requires count > 0. */
  ownerOf(hash: number): number {
    return this.entries[this.locate(hash)]! & this.ownerMask;
  }

  /** Owner of point i. */
  ownerAt(i: number): number {
    return this.entries[i]! & this.ownerMask;
  }

  /** The full sorted points and their owners (for merging in changes). */
  unpack(): { points: Uint32Array; owners: Uint32Array } {
    const count = this.entries.length;
    const points = new Uint32Array(count);
    const owners = new Uint32Array(count);
    const { entries, buckets, bits, shift, ownerMask } = this;
    for (let b = 0, bucketCount = buckets.length - 1; b < bucketCount; b++) {
      const high = (b << shift) >>> 0;
      for (let i = buckets[b]!, end = buckets[b + 1]!; i < end; i++) {
        points[i] = (high | (entries[i]! >>> bits)) >>> 0;
        owners[i] = entries[i]! & ownerMask;
      }
    }
    return { points, owners };
  }

  /**
   * Fraction of the 2^32 hash space each owner gets: point i owns the hashes in (points[i - 1], points[i]],
   * point 0 also the wrap-around above the last point. Indexed by owner; sums to 1 when count > 0.
   */
  arcShares(ownerCount: number): Float64Array {
    const shares = new Float64Array(ownerCount);
    const count = this.entries.length;
    if (count === 0) return shares;
    const { points, owners } = this.unpack();
    shares[owners[0]!]! += points[0]! - points[count - 1]! + 4294967296;
    for (let i = 1; i < count; i++) shares[owners[i]!]! += points[i]! - points[i - 1]!;
    for (let o = 0; o < ownerCount; o++) shares[o]! /= 4294967296;
    return shares;
  }

  /** Bytes held by the typed arrays. */
  get byteLength(): number {
    return this.entries.byteLength + this.buckets.byteLength;
  }
}

/**
 * Stable LSD radix sort of `points` (two 16-bit passes), carrying `owners` along. Equal points keep their
 * input order, which is how callers impose their tie-breaking rule.
 */
export function sortPoints(points: Uint32Array, owners: OwnerArray): void {
  const n = points.length;
  if (n < 2) return;
  const tmpPoints = new Uint32Array(n);
  const tmpOwners = owners instanceof Uint16Array ? new Uint16Array(n) : new Uint32Array(n);
  const low = new Uint32Array(0x10001);
  const high = new Uint32Array(0x10001);
  for (let i = 0; i < n; i++) {
    const p = points[i]!;
    low[(p & 0xffff) + 1]!++;
    high[(p >>> 16) + 1]!++;
  }
  for (let i = 1; i <= 0x10000; i++) {
    low[i]! += low[i - 1]!;
    high[i]! += high[i - 1]!;
  }
  for (let i = 0; i < n; i++) {
    const p = points[i]!;
    const at = low[p & 0xffff]!++;
    tmpPoints[at] = p;
    tmpOwners[at] = owners[i]!;
  }
  for (let i = 0; i < n; i++) {
    const p = tmpPoints[i]!;
    const at = high[p >>> 16]!++;
    points[at] = p;
    owners[at] = tmpOwners[i]!;
  }
}
