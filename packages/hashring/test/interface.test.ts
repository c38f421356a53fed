/**
 * The shared interface, for every algorithm: getN returns distinct nodes in a stable order, bad input gives a
 * typed error, membership bookkeeping is consistent.
 */
import { describe, expect, it } from 'vitest';
import { ALL_ALGORITHMS as ALL, build, expectCode, randomKeys, randomNodes, shuffled } from './helpers.js';

describe.each(ALL)('%s: getN', (algorithm) => {
  const keys = randomKeys(300, 99);
  const names = randomNodes(12, 99);

  it('returns n distinct nodes, the owner first, the same order every time', () => {
    const ring = build(algorithm, names);
    for (const key of keys) {
      const five = ring.getN(key, 5);
      expect(five).toHaveLength(5);
      expect(new Set(five).size).toBe(5);
      expect(five[0]).toBe(ring.get(key));
      expect(ring.getN(key, 5)).toEqual(five);
      // Stable order: asking for fewer gives a prefix, asking for more extends it.
      expect(ring.getN(key, 3)).toEqual(five.slice(0, 3));
      expect(ring.getN(key, 8).slice(0, 5)).toEqual(five);
    }
  });

  it('clamps n to the node count and returns [] for n = 0', () => {
    const ring = build(algorithm, names);
    const all = ring.getN(keys[0]!, 100);
    expect(all).toHaveLength(names.length);
    expect(new Set(all)).toEqual(new Set(names));
    expect(ring.getN(keys[0]!, 0)).toEqual([]);
  });

  if (algorithm !== 'jump' && algorithm !== 'ketama') {
    it('does not depend on the order nodes were added in', () => {
      const a = build(algorithm, names);
      const b = build(algorithm, shuffled(names, 5));
      const c = build(algorithm, []);
      for (const node of shuffled(names, 6)) c.add(node);
      for (const key of keys) {
        expect(b.getN(key, 4)).toEqual(a.getN(key, 4));
        expect(c.getN(key, 4)).toEqual(a.getN(key, 4));
      }
    });
  }
});

describe.each(ALL)('%s: bad input gives a typed error', (algorithm) => {
  it('empty ring', () => {
    const ring = build(algorithm, []);
    expectCode('EMPTY_RING', () => ring.get('k'));
    expect(ring.getN('k', 3)).toEqual([]);
    ring.add('a');
    ring.remove('a');
    expectCode('EMPTY_RING', () => ring.get('k'));
  });

  it('unknown node', () => {
    const ring = build(algorithm, ['a', 'b']);
    expectCode('UNKNOWN_NODE', () => ring.remove('c'));
    expectCode('UNKNOWN_NODE', () => ring.weight('c'));
    expect(ring.nodes()).toEqual(['a', 'b']);
  });

  it('weight <= 0, NaN, Infinity or not a number', () => {
    const ring = build(algorithm, ['a']);
    for (const weight of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '2' as unknown as number]) {
      expectCode('INVALID_WEIGHT', () => ring.add('b', weight));
    }
    expectCode('INVALID_WEIGHT', () => build(algorithm, [{ node: 'x', weight: 0 }]));
    expect(ring.nodes()).toEqual(['a']);
  });

  it('duplicate node', () => {
    const ring = build(algorithm, ['a']);
    expectCode('DUPLICATE_NODE', () => ring.add('a'));
    expectCode('DUPLICATE_NODE', () => build(algorithm, ['x', 'x']));
    expect(ring.size).toBe(1);
  });

  it('invalid arguments', () => {
    const ring = build(algorithm, ['a', 'b']);
    expectCode('INVALID_ARGUMENT', () => ring.getN('k', -1));
    expectCode('INVALID_ARGUMENT', () => ring.getN('k', 1.5));
    expectCode('INVALID_ARGUMENT', () => ring.get(42 as unknown as string));
    expectCode('INVALID_ARGUMENT', () => ring.add(''));
  });
});

describe.each(ALL)('%s: membership bookkeeping', (algorithm) => {
  it('add/remove/has/nodes/size/weight and distribution over every node', () => {
    const ring = build(algorithm, ['a', 'b']);
    ring.add('c');
    expect(ring.size).toBe(3);
    expect(ring.has('c')).toBe(true);
    expect(ring.weight('c')).toBe(1);
    ring.remove('a');
    expect(ring.has('a')).toBe(false);
    expect(new Set(ring.nodes())).toEqual(new Set(['b', 'c']));
    const dist = ring.distribution(randomKeys(1000, 1));
    expect(new Set(dist.keys())).toEqual(new Set(['b', 'c']));
    expect([...dist.values()].reduce((a, b) => a + b, 0)).toBe(1000);
    // Re-adding a removed name works and the ring keeps answering.
    ring.add('a');
    expect(['a', 'b', 'c']).toContain(ring.get('anything'));
  });
});
