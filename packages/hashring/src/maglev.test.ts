import { describe, expect, it } from 'vitest';
import { MaglevHash, isPrime } from './maglev.js';
import { randomKeys, randomNodes } from '../test/helpers.js';

describe('MaglevHash', () => {
  it('golden: placements are part of the format and never change', () => {
    const maglev = new MaglevHash({ nodes: ['cache-a', 'cache-b', 'cache-c', { node: 'cache-d', weight: 2 }] });
    const keys = ['', 'a', 'user:42', 'session/9f8e7d', 'ключ', '😀 emoji', 'x'.repeat(100)];
    expect(keys.map((k) => maglev.get(k))).toEqual(['cache-a', 'cache-c', 'cache-b', 'cache-a', 'cache-d', 'cache-d', 'cache-d']);
    expect(maglev.getN('user:42', 3)).toEqual(['cache-b', 'cache-a', 'cache-c']);
  });

  it('gives equal nodes floor(M/n) or ceil(M/n) entries each (paper §3.4)', () => {
    for (const n of [3, 10, 97, 500]) {
      const maglev = new MaglevHash({ nodes: randomNodes(n, n) });
      const entries = [...maglev.entries().values()];
      expect(entries.reduce((a, b) => a + b, 0)).toBe(65537);
      expect(Math.min(...entries)).toBeGreaterThanOrEqual(Math.floor(65537 / n));
      expect(Math.max(...entries)).toBeLessThanOrEqual(Math.ceil(65537 / n));
    }
  });

  it('splits entries in proportion to weight (within one entry per turn)', () => {
    const weights = [1, 2, 3, 0.5, 3.5];
    const nodes = randomNodes(5, 1).map((node, i) => ({ node, weight: weights[i]! }));
    const maglev = new MaglevHash({ tableSize: 10007, nodes });
    const shares = maglev.shares();
    nodes.forEach(({ node, weight }) => {
      expect(Math.abs(shares.get(node)! - weight / 10)).toBeLessThan(0.002);
    });
  });

  it('table and placements do not depend on insertion order', () => {
    const nodes = randomNodes(20, 2);
    const a = new MaglevHash({ nodes });
    const b = new MaglevHash({ nodes: [...nodes].reverse() });
    for (const key of randomKeys(2000, 3)) expect(b.get(key)).toBe(a.get(key));
  });

  it('the table is rebuilt once per burst of changes and tracks membership', () => {
    const maglev = new MaglevHash({ tableSize: 101, nodes: ['a', 'b'] });
    maglev.add('c').add('d').remove('a');
    expect(new Set(maglev.entries().keys())).toEqual(new Set(['b', 'c', 'd']));
    for (const key of randomKeys(500, 4)) expect(['b', 'c', 'd']).toContain(maglev.get(key));
    expect(maglev.byteLength).toBe(101 * 2);
  });

  it('getN still lists every node when the table is too small to give each an entry', () => {
    const maglev = new MaglevHash({ tableSize: 5, nodes: randomNodes(8, 5) });
    const all = maglev.getN('k', 8);
    expect(new Set(all).size).toBe(8);
    expect(all[0]).toBe(maglev.get('k'));
  });

  it('rejects a table size that is not a prime in [2, 2^21]', () => {
    for (const tableSize of [1, 65536, 65535.5, 2 ** 21 + 1, 4_194_319]) {
      expect(() => new MaglevHash({ tableSize })).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(new MaglevHash({ tableSize: 655373 }).tableSize).toBe(655373);
  });

  it('isPrime', () => {
    expect([0, 1, 2, 3, 4, 9, 65537, 65539, 655373, 1_000_003].map(isPrime)).toEqual([false, false, true, true, false, false, true, true, true, true]);
  });
});
