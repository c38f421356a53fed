/**
 * The virtual-node circle behind `VnodeRing` and `BoundedLoadRing` (Karger et al. 1997, with virtual nodes
 * as in Dynamo and ketama): each node owns `round(vnodes * weight)` pseudo-random 32-bit points, and a key
 * belongs to the owner of the first point at or after the key's hash.
 *
 * Placement rules (stable across versions, pinned by the golden tests in `ring.test.ts`):
 * - key position: `murmur3(key, 0)` (UTF-8 bytes);
 * - node identity: `a = murmur3(name, SEED_A)`, `b = murmur3(name, SEED_B)`;
 * - point i of a node: `fmix32(a ^ fmix32(b + i * 0x9e3779b9))` (32-bit wrap-around), i = 0, 1, ...;
 *   so a node's points depend only on its name: every process with the same node set builds the same ring,
 *   whatever order the nodes were added in, and a higher weight only appends points;
 * - equal points (rare 32-bit collisions) are ordered by node name (UTF-16 code unit order), so ties too are
 *   independent of insertion order.
 *
 * Changes are incremental: `add` and `remove` only queue; the next lookup folds the queue in one pass, sorting
 * just the new nodes' points and merging them into the existing arrays (O(P + Q log Q)), and dropping removed
 * nodes' points in the same pass. A burst of changes costs one merge, not one rebuild per change.
 */
import { fmix32, murmur3String } from './murmur3.js';
import { NodeSet } from './node-set.js';
import { type OwnerArray, PointIndex, ownerArray, sortPoints } from './point-index.js';

export const SEED_A = 0x6a09e667;
export const SEED_B = 0xbb67ae85;
const GOLDEN = 0x9e3779b9;

export class VnodePoints {
  readonly set = new NodeSet();
  readonly index = new PointIndex();
  private readonly pendingAdd = new Set<number>();
  private readonly pendingRemove: number[] = [];
  private dirty = false;

  constructor(readonly vnodes: number) {}

  pointsFor(weight: number): number {
    return Math.max(1, Math.round(this.vnodes * weight));
  }

  add(node: string, weight: number | undefined): number {
    const slot = this.set.add(node, weight);
    this.pendingAdd.add(slot);
    this.dirty = true;
    return slot;
  }

  remove(node: string): number {
    const slot = this.set.remove(node);
    if (this.pendingAdd.delete(slot)) {
      this.set.release(slot); // never reached the arrays
    } else {
      this.pendingRemove.push(slot);
      this.dirty = true;
    }
    return slot;
  }

  /** Applies queued changes; cheap no-op when there are none. */
  prepare(): void {
    if (this.dirty) this.materialize();
  }

  private materialize(): void {
    const names = this.set.names;
    let points = this.index.points;
    let owners = this.index.owners;
    let count = points.length;

    if (this.pendingRemove.length > 0) {
      const gone = new Uint8Array(this.set.capacity);
      for (const slot of this.pendingRemove) gone[slot] = 1;
      let kept = 0;
      for (let i = 0; i < count; i++) {
        const owner = owners[i]!;
        if (gone[owner] === 0) {
          points[kept] = points[i]!;
          owners[kept] = owner;
          kept++;
        }
      }
      count = kept;
    }

    const capacity = this.set.capacity;
    const added = [...this.pendingAdd].sort((x, y) => compareNames(names[x]!, names[y]!));
    let addedCount = 0;
    for (const slot of added) addedCount += this.pointsFor(this.set.weights[slot]!);
    const newPoints = new Uint32Array(addedCount);
    const newOwners = ownerArray(addedCount, capacity);
    let at = 0;
    for (const slot of added) {
      const n = this.pointsFor(this.set.weights[slot]!);
      generatePoints(names[slot]!, n, newPoints, at);
      newOwners.fill(slot, at, at + n);
      at += n;
    }
    // Stable sort; generated in name order, so equal points end up ordered by name.
    sortPoints(newPoints, newOwners);

    const total = count + addedCount;
    const outPoints = new Uint32Array(total);
    const outOwners: OwnerArray = ownerArray(total, capacity);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < count && j < addedCount) {
      const p = points[i]!;
      const q = newPoints[j]!;
      if (p < q || (p === q && compareNames(names[owners[i]!]!, names[newOwners[j]!]!) < 0)) {
        outPoints[k] = p;
        outOwners[k++] = owners[i++]!;
      } else {
        outPoints[k] = q;
        outOwners[k++] = newOwners[j++]!;
      }
    }
    while (i < count) {
      outPoints[k] = points[i]!;
      outOwners[k++] = owners[i++]!;
    }
    while (j < addedCount) {
      outPoints[k] = newPoints[j]!;
      outOwners[k++] = newOwners[j++]!;
    }
    points = outPoints;
    owners = outOwners;
    this.index.set(points, owners);

    for (const slot of this.pendingRemove) this.set.release(slot);
    this.pendingRemove.length = 0;
    this.pendingAdd.clear();
    this.dirty = false;
  }
}

/** Writes the first `count` points of node `name` into `out` from `offset`. */
export function generatePoints(name: string, count: number, out: Uint32Array, offset: number): void {
  const a = murmur3String(name, SEED_A);
  const b = murmur3String(name, SEED_B);
  for (let i = 0; i < count; i++) out[offset + i] = fmix32(a ^ fmix32((b + Math.imul(i, GOLDEN)) | 0));
}

export function compareNames(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}
