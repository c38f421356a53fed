import { hashString, seededRandom } from '@consensus-kit/core';

/**
 * The simulator's only source of randomness: core's seeded mulberry32, wrapped with the draws the simulator
 * needs. Each concern (network, faults, each client, each replica) gets its own stream forked by a label, so
 * that adding a draw in one place does not shift every other draw of the run: a seed stays meaningful while
 * the simulator evolves, as in FoundationDB's deterministic simulation.
 */
export class Rng {
  readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = seededRandom(seed >>> 0);
  }

  /** An independent stream for `label`, derived from this stream's seed only (not from its position). */
  fork(label: string): Rng {
    return new Rng((hashString(label) ^ Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b)) >>> 0);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    if (hi <= lo) return lo;
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** A random subset of `items` of size `k` (order preserved). */
  sample<T>(items: readonly T[], k: number): T[] {
    const idx = items.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
    }
    return idx
      .slice(0, k)
      .sort((a, b) => a - b)
      .map((i) => items[i] as T);
  }
}
