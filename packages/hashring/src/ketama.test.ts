import NpmHashRing from 'hashring';
import { describe, expect, it } from 'vitest';
import { KetamaRing } from './ketama.js';
import { mulberry32, randomKeys, randomNodes, randomUnicode } from '../test/helpers.js';

/** Compares get and getN/range on `keys`; returns the number of differences (expected 0). */
function differences(ours: KetamaRing, npm: NpmHashRing, keys: readonly string[]): number {
  let diff = 0;
  for (const key of keys) {
    if (ours.get(key) !== npm.get(key)) diff++;
    if (ours.getN(key, 3).join('\n') !== npm.range(key, 3).join('\n')) diff++;
  }
  return diff;
}

describe('KetamaRing matches the npm hashring package', () => {
  it.each([1, 2, 3, 4, 5, 6])('weighted servers, seed %i: same get and range on 3,000 keys', (seed) => {
    const random = mulberry32(seed);
    const names = randomNodes(1 + Math.floor(random() * 120), seed);
    const servers: Record<string, number> = {};
    for (const name of names) {
      const r = random();
      // integers, fractions (float summation order matters), and tiny weights that get 0 vnodes
      servers[name] = r < 0.5 ? 1 : r < 0.8 ? 1 + Math.floor(random() * 6) : r < 0.95 ? Math.round(random() * 1000) / 100 + 0.01 : 0.001;
    }
    const npm = new NpmHashRing(servers);
    const ours = new KetamaRing({ nodes: servers });
    expect(ours.nodes()).toEqual(npm.servers.map((s) => s.string));
    expect(ours.pointCount).toBe(npm.ring.length);
    expect(differences(ours, npm, randomKeys(3000, seed))).toBe(0);
  });

  it('a plain list of servers, and UTF-8 keys', () => {
    const names = randomNodes(40, 7);
    const npm = new NpmHashRing(names);
    const ours = new KetamaRing({ nodes: names });
    const random = mulberry32(8);
    const keys = Array.from({ length: 3000 }, () => randomUnicode(random, 30));
    expect(differences(ours, npm, keys)).toBe(0);
  });

  it('after adds and removes, server order included (array-index names move first, as object keys do)', () => {
    const names = ['cache-b:11211', 'cache-a:11211', '7', 'cache-c:11211'];
    const npm = new NpmHashRing(names);
    const ours = new KetamaRing({ nodes: names });
    const keys = randomKeys(3000, 9);
    expect(differences(ours, npm, keys)).toBe(0);
    const steps: Array<[op: 'add' | 'remove', name: string, weight?: number]> = [
      ['add', 'cache-d:11211', 3],
      ['add', '42'],
      ['remove', 'cache-a:11211'],
      ['add', '3', 0.5],
      ['remove', '7'],
      ['add', 'cache-a:11211', 2],
    ];
    for (const [op, name, weight] of steps) {
      if (op === 'add') {
        npm.add(weight === undefined ? name : { [name]: weight });
        ours.add(name, weight);
      } else {
        npm.remove(name);
        ours.remove(name);
      }
      expect(ours.nodes()).toEqual(npm.servers.map((s) => s.string));
      expect(differences(ours, npm, keys)).toBe(0);
    }
  });

  it("the 'hash_ring' compatibility flavour (3 points per vnode) and a custom vnode count", () => {
    const names = randomNodes(25, 10);
    const keys = randomKeys(2000, 11);
    const npmHashRing = new NpmHashRing(names, 'md5', { compatibility: 'hash_ring' });
    const oursHashRing = new KetamaRing({ nodes: names, compatibility: 'hash_ring' });
    expect(oursHashRing.replicas).toBe(3);
    expect(differences(oursHashRing, npmHashRing, keys)).toBe(0);
    const npmVnodes = new NpmHashRing(names, 'md5', { 'vnode count': 100 });
    const oursVnodes = new KetamaRing({ nodes: names, vnodeCount: 100 });
    expect(differences(oursVnodes, npmVnodes, keys)).toBe(0);
  });

  it('many servers (ties between 32-bit points become likely) and getN over every server', () => {
    const names = randomNodes(600, 12);
    const npm = new NpmHashRing(names);
    const ours = new KetamaRing({ nodes: names });
    const keys = randomKeys(2000, 13);
    expect(differences(ours, npm, keys)).toBe(0);
    for (const key of keys.slice(0, 20)) expect(ours.getN(key, 600)).toEqual(npm.range(key, 600));
  });

  it('shares() sums to 1 and a zero-point server gets nothing', () => {
    const ours = new KetamaRing({ nodes: { a: 1, b: 1, tiny: 0.0001 } });
    const shares = ours.shares();
    expect([...shares.values()].reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    expect(shares.get('tiny')).toBe(0);
    expect(ours.distribution(randomKeys(1000, 14)).get('tiny')).toBe(0);
    expect(ours.weight('tiny')).toBe(0.0001);
    expect(ours.byteLength).toBeGreaterThan(0);
  });
});
