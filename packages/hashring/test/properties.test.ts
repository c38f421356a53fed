/**
 * The properties issue #8 asks of every algorithm, checked over seeds (set CONSENSUS_KIT_SEEDS=7,8,9 to try
 * others; a failing test names its seed, and re-running with that seed replays it exactly).
 *
 * Strict minimal disruption is asserted for the algorithms that promise it (ring, rendezvous, jump when it
 * grows or shrinks at the end). Maglev does not promise it; its documented, weaker bounds are asserted
 * instead. Bounded-load and ketama have their own suites (their placements depend on loads / on every
 * server's weight by design).
 */
import { describe, expect, it } from 'vitest';
import {
  type HashRing,
  type HashRingAlgorithm,
  type NodesInput,
  createHashRing,
  isHashRingError,
  summarizeDistribution,
} from '../src/index.js';
import { randomKeys, randomNodes, shuffled } from './helpers.js';

const SEEDS = (process.env.CONSENSUS_KIT_SEEDS ?? '1,2,3').split(',').map(Number);
const KEYS = 100_000;
const SLACK = 1.05;

function build(algorithm: HashRingAlgorithm, nodes: NodesInput): HashRing {
  return createHashRing({ algorithm, nodes } as Parameters<typeof createHashRing>[0]);
}

function placements(ring: HashRing, keys: readonly string[]): string[] {
  return keys.map((k) => ring.get(k));
}

function expectCode(code: string, call: () => unknown): void {
  let error: unknown;
  try {
    call();
  } catch (e) {
    error = e;
  }
  expect(isHashRingError(error), `expected a HashRingError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

const MINIMAL: HashRingAlgorithm[] = ['ring', 'rendezvous', 'jump'];
const ALL: HashRingAlgorithm[] = ['ring', 'maglev', 'jump', 'rendezvous', 'bounded-load', 'ketama'];

describe.each(SEEDS)('seed %i', (seed) => {
  const keys = randomKeys(KEYS, seed);

  describe.each(MINIMAL)('%s: minimal disruption', (algorithm) => {
    it.each([10, 40])('adding a node to %i moves <= 1/(n+1) (+5%) of keys, all to the new node', (n) => {
      const nodes = randomNodes(n + 1, seed * 1000 + n);
      const ring = build(algorithm, nodes.slice(0, n));
      const before = placements(ring, keys);
      ring.add(nodes[n]!);
      const after = placements(ring, keys);
      let moved = 0;
      let elsewhere = 0;
      for (let i = 0; i < keys.length; i++) {
        if (after[i] !== before[i]) {
          moved++;
          if (after[i] !== nodes[n]) elsewhere++;
        }
      }
      expect(elsewhere).toBe(0);
      expect(moved).toBeLessThanOrEqual((keys.length / (n + 1)) * SLACK);
      expect(moved).toBeGreaterThan(0);
    });

    it.each([10, 40])('removing one of %i nodes moves only its keys', (n) => {
      const nodes = randomNodes(n, seed * 1000 + n);
      const ring = build(algorithm, nodes);
      const before = placements(ring, keys);
      // Jump only shrinks minimally at the end (see jump.test.ts for a middle removal).
      const victim = algorithm === 'jump' ? nodes[n - 1]! : nodes[seed % n]!;
      ring.remove(victim);
      const after = placements(ring, keys);
      let mismatched = 0;
      let stranded = 0;
      for (let i = 0; i < keys.length; i++) {
        if (before[i] !== victim && after[i] !== before[i]) mismatched++;
        if (after[i] === victim) stranded++;
      }
      expect(mismatched).toBe(0);
      expect(stranded).toBe(0);
    });
  });

  describe('maglev: bounded (not minimal) disruption', () => {
    it.each([10, 40])('adding a node to %i moves <= 1/(n+1) + 1% of keys, <= 1% between old nodes', (n) => {
      const nodes = randomNodes(n + 1, seed * 1000 + n);
      const ring = build('maglev', nodes.slice(0, n));
      const before = placements(ring, keys);
      ring.add(nodes[n]!);
      const after = placements(ring, keys);
      let moved = 0;
      let elsewhere = 0;
      for (let i = 0; i < keys.length; i++) {
        if (after[i] !== before[i]) {
          moved++;
          if (after[i] !== nodes[n]) elsewhere++;
        }
      }
      expect(moved / keys.length).toBeLessThanOrEqual(1 / (n + 1) + 0.01);
      expect(elsewhere / keys.length).toBeLessThanOrEqual(0.01);
    });

    it('removing a node moves its keys and <= 1% of the others', () => {
      const nodes = randomNodes(20, seed);
      const ring = build('maglev', nodes);
      const before = placements(ring, keys);
      ring.remove(nodes[0]!);
      const after = placements(ring, keys);
      let others = 0;
      for (let i = 0; i < keys.length; i++) {
        expect(after[i]).not.toBe(nodes[0]);
        if (before[i] !== nodes[0] && after[i] !== before[i]) others++;
      }
      expect(others / keys.length).toBeLessThanOrEqual(0.01);
    });
  });

  describe.each(['ring', 'maglev', 'jump', 'rendezvous'] as const)('%s: balance', (algorithm) => {
    it('10 equal nodes: max/mean <= 1.05 and stddev/mean <= 0.02 on 100k keys', () => {
      const ring = build(algorithm, randomNodes(10, seed));
      const summary = summarizeDistribution(ring.distribution(keys));
      expect(summary.keys).toBe(KEYS);
      expect(summary.maxOverMean).toBeLessThanOrEqual(1.05);
      expect(summary.stddevOverMean).toBeLessThanOrEqual(0.02);
    });
  });

  describe.each(['ring', 'maglev', 'rendezvous', 'bounded-load'] as const)('%s: weights', (algorithm) => {
    it('a node of weight w gets w/W of the keys, within 4 standard deviations', () => {
      const names = randomNodes(5, seed);
      const weights = [1, 2, 3, 0.5, 3.5];
      const total = weights.reduce((a, b) => a + b, 0);
      const ring = build(algorithm, names.map((node, i) => ({ node, weight: weights[i]! })));
      const dist = ring.distribution(keys);
      names.forEach((node, i) => {
        const expected = (KEYS * weights[i]!) / total;
        // Relative variance: sampling (binomial) plus, for the vnode circle, the share of a node with
        // 8192 * w random points (~1 / (8192 * w)). Maglev and rendezvous have no structural term.
        const structural = algorithm === 'ring' || algorithm === 'bounded-load' ? 1 / (8192 * weights[i]!) : 0;
        const tolerance = 4 * Math.sqrt(structural + 1 / expected);
        expect(Math.abs(dist.get(node)! - expected) / expected, node).toBeLessThanOrEqual(tolerance);
      });
    });
  });
});

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
