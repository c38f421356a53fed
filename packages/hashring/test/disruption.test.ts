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
import { type HashRingAlgorithm } from '../src/index.js';
import { SEEDS, build, placements, randomKeys, randomNodes } from './helpers.js';

const KEYS = 100_000;
const SLACK = 1.05;
const MINIMAL: HashRingAlgorithm[] = ['ring', 'rendezvous', 'jump'];

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
      let stranded = 0;
      for (let i = 0; i < keys.length; i++) {
        if (after[i] === nodes[0]) stranded++;
        if (before[i] !== nodes[0] && after[i] !== before[i]) others++;
      }
      expect(stranded).toBe(0);
      expect(others / keys.length).toBeLessThanOrEqual(0.01);
    });
  });

});
