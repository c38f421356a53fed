import { describe, expect, it } from 'vitest';
import { PointIndex, sortPoints } from './point-index.js';
import { mulberry32 } from '../test/helpers.js';

function randomCircle(count: number, owners: number, seed: number): { points: Uint32Array; owners: Uint32Array } {
  const random = mulberry32(seed);
  const points = new Uint32Array(count);
  const own = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    points[i] = Math.floor(random() * 2 ** 32);
    own[i] = Math.floor(random() * owners);
  }
  sortPoints(points, own);
  return { points, owners: own };
}

describe('sortPoints', () => {
  it('sorts ascending and keeps equal points in input order (stable)', () => {
    const points = new Uint32Array([5, 0xffffffff, 5, 0, 70000, 5, 65536]);
    const owners = new Uint16Array([0, 1, 2, 3, 4, 5, 6]);
    sortPoints(points, owners);
    expect([...points]).toEqual([0, 5, 5, 5, 65536, 70000, 0xffffffff]);
    expect([...owners]).toEqual([3, 0, 2, 5, 6, 4, 1]);
  });
});

describe('PointIndex', () => {
  it.each([
    [1, 3],
    [7, 2],
    [1000, 50],
    [50_000, 300],
    [20_000, 100_000], // owners wider than 16 bits
  ])('locate finds the first point >= hash, wrapping to 0 (%i points, %i owners)', (count, ownerCount) => {
    const { points, owners } = randomCircle(count, ownerCount, count);
    const index = new PointIndex();
    index.set(points, owners, ownerCount);
    const random = mulberry32(count + 1);
    const probes = [0, 0xffffffff, points[0]!, points[count - 1]!, points[0]! + 1];
    for (let i = 0; i < 2000; i++) probes.push(Math.floor(random() * 2 ** 32));
    for (const hash of probes) {
      let expected = points.findIndex((p) => p >= hash);
      if (expected === -1) expected = 0;
      expect(index.locate(hash)).toBe(expected);
      expect(index.ownerOf(hash)).toBe(owners[expected]);
    }
    const unpacked = index.unpack();
    expect(unpacked.points).toEqual(points);
    expect(unpacked.owners).toEqual(owners);
  });

  it('arcShares gives each owner the hashes up to and including its points, summing to 1', () => {
    const index = new PointIndex();
    index.set(new Uint32Array([0x40000000, 0xc0000000]), new Uint16Array([0, 1]), 2);
    // Point 0 owns (0xc0000000, 2^32) and [0, 0x40000000]: half the circle; point 1 the other half.
    expect([...index.arcShares(2)]).toEqual([0.5, 0.5]);
    const { points, owners } = randomCircle(5000, 7, 3);
    index.set(points, owners, 7);
    expect(index.arcShares(7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('packs a point and its owner into 4 bytes', () => {
    const { points, owners } = randomCircle(40_000, 10, 4);
    const index = new PointIndex();
    index.set(points, owners, 10);
    expect(index.count).toBe(40_000);
    // entries (4 B each) + a bucket index of ~1 B per point
    expect(index.byteLength).toBeLessThan(40_000 * 6);
  });
});
