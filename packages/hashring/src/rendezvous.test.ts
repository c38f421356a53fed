import { describe, expect, it } from 'vitest';
import { murmur3, murmur3Uint32 } from './murmur3.js';
import { RendezvousHash } from './rendezvous.js';
import { SEED_A } from './vnode-points.js';
import { randomKeys, randomNodes } from '../test/helpers.js';

describe('RendezvousHash', () => {
  it('picks the node with the highest murmur3 score (the documented formula)', () => {
    const nodes = randomNodes(9, 1);
    const hrw = new RendezvousHash({ nodes });
    for (const key of randomKeys(1000, 2)) {
      const h = murmur3(key);
      const scores = nodes.map((node) => murmur3Uint32(h, murmur3(node, SEED_A)));
      expect(hrw.get(key)).toBe(nodes[scores.indexOf(Math.max(...scores))]);
    }
  });

  it('getN is the top-n by score: replica sets nest, and removing a replica promotes the next one', () => {
    const nodes = randomNodes(10, 3);
    const hrw = new RendezvousHash({ nodes });
    const keys = randomKeys(500, 4);
    const before = keys.map((k) => hrw.getN(k, 4));
    hrw.remove(nodes[0]!);
    keys.forEach((k, i) => {
      const expected = before[i]!.filter((n) => n !== nodes[0]);
      expect(hrw.getN(k, 4).slice(0, expected.length)).toEqual(expected);
    });
  });

  it('equal weights other than 1 behave like weight 1', () => {
    const nodes = randomNodes(6, 5);
    const ones = new RendezvousHash({ nodes });
    const threes = new RendezvousHash({ nodes: nodes.map((node) => ({ node, weight: 3 })) });
    for (const key of randomKeys(1000, 6)) expect(threes.get(key)).toBe(ones.get(key));
  });

  it('on the weighted (logarithmic) path, nodes of equal weight still rank by raw score', () => {
    // One node of a different weight switches every score to w / -ln(u), which is monotone in the raw score
    // for a fixed w: among the weight-1 nodes the winner must not change.
    const nodes = randomNodes(6, 7);
    const weighted = new RendezvousHash({ nodes: [...nodes.map((node) => ({ node, weight: 1 })), { node: 'light', weight: 1e-9 }] });
    const plain = new RendezvousHash({ nodes });
    for (const key of randomKeys(2000, 8)) {
      const w = weighted.get(key);
      if (w !== 'light') expect(w).toBe(plain.get(key));
    }
  });

  it('reports its memory', () => {
    expect(new RendezvousHash({ nodes: ['a', 'b', 'c'] }).byteLength).toBe(3 * 4 + 3 * 8);
  });
});
