/**
 * The virtual-node circle behind `VnodeRing` and `BoundedLoadRing` (Karger et al. 1997, with virtual nodes
 * as in Dynamo and ketama): each node owns `round(vnodes * weight)` pseudo-random 32-bit points, and a key
 * belongs to the owner of the first point at or after the key's position.
 *
 * Placement rules (stable across versions, pinned by the golden tests in `ring.test.ts`):
 * - key hash: `h = murmur3(key, 0)` (UTF-8 bytes);
 * - key position: h with its low `32 - tableBits` bits cleared, i.e. keys sit on a grid of 2^tableBits
 *   positions (tableBits = 20 by default); with tableBits = 0 the position is h itself;
 * - node identity: `a = murmur3(name, SEED_A)`, `b = murmur3(name, SEED_B)`;
 * - point i of a node: `fmix32(a ^ fmix32(b + i * 0x9e3779b9))` (32-bit wrap-around), i = 0, 1, ...;
 *   so a node's points depend only on its name: every process with the same node set builds the same ring,
 *   whatever order the nodes were added in, and a higher weight only appends points;
 * - equal points (rare 32-bit collisions) are ordered by node name (UTF-16 code unit order), so ties too are
 *   independent of insertion order.
 *
 * Why the grid: with 8192 points per node the circle is megabytes, and a binary search over it costs two or
 * three dependent cache misses per lookup. Since a key can only sit on 2^tableBits positions, the owner of
 * every position is precomputed into a table of 2^tableBits node numbers (1 MiB with <= 256 node slots, else
 * 2 or 4 MiB), and `get` is one hash and one table read. The table is a function of the ring, so it inherits
 * the ring's guarantees: adding a node moves keys only to it, removing one moves only its keys. The grid
 * adds a little imbalance, ~sqrt(nodes / (12 * 2^tableBits)) relative (under 0.3% at 100 nodes), and below
 * ~sqrt(nodes / 2^tableBits) once points outnumber grid positions (~3% at 1000 nodes with 8192 vnodes):
 * raise tableBits there. Binary search over the circle remains for `getN` walks and table updates.
 *
 * Changes are incremental: `add` and `remove` only queue; the next lookup folds the queue in one pass, sorting
 * just the new nodes' points and merging them into the existing arrays (O(P + Q log Q)), dropping removed
 * nodes' points in the same pass, then patching only the table entries whose owner changed. A burst of
 * changes costs one merge, not one rebuild per change.
 */
import { fmix32, murmur3String } from './murmur3.js';
import { NodeSet } from './node-set.js';
import { PointIndex, ownerArray, sortPoints } from './point-index.js';

export const SEED_A = 0x6a09e667;
export const SEED_B = 0xbb67ae85;
const GOLDEN = 0x9e3779b9;

type Table = Uint8Array | Uint16Array | Uint32Array;

export class VnodePoints {
  readonly set = new NodeSet();
  readonly index = new PointIndex();
  /** table[g] = owner slot of grid position g << shift (empty when tableBits = 0). */
  table: Table = new Uint8Array(0);
  /** 32 - tableBits; 0 when there is no table (keys keep their full hash). */
  readonly shift: number;
  /** Clears the bits below the grid: position = hash & gridMask. */
  readonly gridMask: number;
  private readonly pendingAdd = new Set<number>();
  private readonly pendingRemove: number[] = [];
  private dirty = false;

  constructor(
    readonly vnodes: number,
    readonly tableBits: number,
  ) {
    this.shift = tableBits === 0 ? 0 : 32 - tableBits;
    this.gridMask = tableBits === 0 ? 0xffffffff : (0xffffffff << this.shift) >>> 0;
  }

  pointsFor(weight: number): number {
    return Math.max(1, Math.round(this.vnodes * weight));
  }

  /** The key's position on the circle (its hash, on the grid). */
  position(hash: number): number {
    return (hash & this.gridMask) >>> 0;
  }

  /** Owner slot of a key hash. Requires a prepared, non-empty ring. */
  ownerOf(hash: number): number {
    return this.tableBits === 0 ? this.index.ownerOf(hash) : this.table[hash >>> this.shift]!;
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

  /** Bytes held by the circle and the table. */
  get byteLength(): number {
    this.prepare();
    return this.index.byteLength + this.table.byteLength;
  }

  private materialize(): void {
    const names = this.set.names;
    const { points, owners } = this.index.unpack();
    let count = points.length;
    const gone = new Uint8Array(this.set.capacity);
    for (const slot of this.pendingRemove) gone[slot] = 1;

    if (this.pendingRemove.length > 0) {
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
    const outOwners = new Uint32Array(total);
    const addedAt = new Uint32Array(addedCount); // where each new point landed, for the table patch
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
        addedAt[j] = k;
        outPoints[k] = q;
        outOwners[k++] = newOwners[j++]!;
      }
    }
    while (i < count) {
      outPoints[k] = points[i]!;
      outOwners[k++] = owners[i++]!;
    }
    while (j < addedCount) {
      addedAt[j] = k;
      outPoints[k] = newPoints[j]!;
      outOwners[k++] = newOwners[j++]!;
    }
    this.index.set(outPoints, outOwners, capacity);
    if (this.tableBits > 0) this.updateTable(outPoints, outOwners, addedAt, gone, this.pendingRemove.length > 0);

    for (const slot of this.pendingRemove) this.set.release(slot);
    this.pendingRemove.length = 0;
    this.pendingAdd.clear();
    this.dirty = false;
  }

  /**
   * Brings table[g] = owner(successor(g << shift)) up to date with the new circle: entries of removed nodes
   * are looked up again, and each new point claims the grid positions between its predecessor and itself.
   * A first build (or a table that must widen its element type) is filled in one sweep instead.
   */
  private updateTable(points: Uint32Array, owners: Uint32Array, addedAt: Uint32Array, gone: Uint8Array, removed: boolean): void {
    const size = 2 ** this.tableBits;
    const capacity = this.set.capacity;
    const count = points.length;
    const Type = capacity <= 0x100 ? Uint8Array : capacity <= 0x10000 ? Uint16Array : Uint32Array;
    if (count === 0) {
      this.table = new Uint8Array(0);
      return;
    }
    const step = 2 ** this.shift;
    if (this.table.length !== size || !(this.table instanceof Type) || addedAt.length > size / 8) {
      const table = new Type(size);
      let p = 0;
      for (let g = 0; g < size; g++) {
        const position = g * step;
        while (p < count && points[p]! < position) p++;
        table[g] = owners[p === count ? 0 : p]!;
      }
      this.table = table;
      return;
    }
    const table = this.table;
    if (removed) {
      for (let g = 0; g < size; g++) {
        if (gone[table[g]!] === 1) table[g] = owners[this.index.locate(g * step)]!;
      }
    }
    for (const at of addedAt) {
      // Grid positions in (predecessor, point] now belong to this point.
      const point = points[at]!;
      const before = points[at === 0 ? count - 1 : at - 1]!;
      const owner = owners[at]!;
      const last = Math.floor(point / step);
      if (at === 0) {
        // Point 0 also owns the wrap-around: (last point, 2^32) and [0, point]; a lone point owns it all.
        for (let g = Math.floor(before / step) + 1; g < size; g++) table[g] = owner;
        for (let g = 0; g <= last; g++) table[g] = owner;
      } else {
        for (let g = Math.floor(before / step) + 1; g <= last; g++) table[g] = owner;
      }
    }
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
