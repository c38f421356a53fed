/**
 * A sorted circle of 32-bit points with an owner per point, in two parallel typed arrays (no object per
 * point), and successor lookup: the owner of a hash is the owner of the first point >= hash, wrapping to
 * point 0 past the last one. Shared by the vnode ring, the bounded-load ring and the ketama mode.
 *
 * Lookup is a binary search narrowed by a bucket table on the hash's top bits: `buckets[b]` is the index of
 * the first point whose top bits are >= b, so the search only runs inside `[buckets[b], buckets[b + 1])`,
 * which holds about 4 points. That turns ~20 dependent, cache-missing probes at 1e6 points into 2-3.
 */

export type OwnerArray = Uint16Array | Uint32Array;

/** Owner arrays hold slots; 16 bits are enough (and half the memory) until there are more than 65536. */
export function ownerArray(length: number, slotCapacity: number): OwnerArray {
  return slotCapacity <= 0x10000 ? new Uint16Array(length) : new Uint32Array(length);
}

export class PointIndex {
  /** Sorted ascending; equal points are ordered by the owning algorithm's tie rule. */
  points: Uint32Array = new Uint32Array(0);
  /** owners[i] owns points[i]. */
  owners: OwnerArray = new Uint16Array(0);
  private buckets: Uint32Array = new Uint32Array(3);
  private shift = 31;

  get count(): number {
    return this.points.length;
  }

  set(points: Uint32Array, owners: OwnerArray): void {
    this.points = points;
    this.owners = owners;
    const count = points.length;
    // ~4 points per bucket; at least 2 buckets so the shift stays < 32 (x >>> 32 is x >>> 0 in JS).
    const bits = Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(1, count / 4)))));
    const shift = 32 - bits;
    const bucketCount = 1 << bits;
    const buckets = new Uint32Array(bucketCount + 1);
    let b = 0;
    for (let i = 0; i < count; i++) {
      const top = points[i]! >>> shift;
      while (b <= top) buckets[b++] = i;
    }
    while (b <= bucketCount) buckets[b++] = count;
    this.buckets = buckets;
    this.shift = shift;
  }

  /** Index of the first point >= hash, or 0 when hash is above every point. Requires count > 0. */
  locate(hash: number): number {
    const points = this.points;
    const b = hash >>> this.shift;
    let lo = this.buckets[b]!;
    let hi = this.buckets[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }

  /**
   * Fraction of the 2^32 hash space each owner gets: point i owns the hashes in (points[i - 1], points[i]],
   * point 0 also the wrap-around above the last point. Indexed by owner; sums to 1 when count > 0.
   */
  arcShares(ownerCount: number): Float64Array {
    const shares = new Float64Array(ownerCount);
    const { points, owners } = this;
    const count = points.length;
    if (count === 0) return shares;
    shares[owners[0]!]! += points[0]! - points[count - 1]! + 4294967296;
    for (let i = 1; i < count; i++) shares[owners[i]!]! += points[i]! - points[i - 1]!;
    for (let o = 0; o < ownerCount; o++) shares[o]! /= 4294967296;
    return shares;
  }

  /** Bytes held by the typed arrays. */
  get byteLength(): number {
    return this.points.byteLength + this.owners.byteLength + this.buckets.byteLength;
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
