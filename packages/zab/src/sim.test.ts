import { checkSeeds } from '@consensus-kit/sim';
import { describe, expect, it } from 'vitest';
import { zab, zabInvariants } from './index';

/**
 * Simulator seeds (`@consensus-kit/sim`): random drops, duplicates, reordering, partitions, crash-restart with
 * torn saves (a crash in the middle of a save keeps a prefix of it), pauses and clock skew, snapshots and log
 * compaction, a KV workload through propose / readIndex, ZAB's invariants after every step and the client history
 * checked for linearizability. SIM_SEEDS=<n> runs more.
 */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);

describe('simulator seeds', () => {
  for (const nodes of [3, 5]) {
    it(`${SEEDS} seeds, ${nodes} nodes, heavy faults, snapshots: invariants and linearizability hold`, () => {
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 20, protocol: zab, invariants: zabInvariants }, SEEDS);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      // Not vacuous: clients completed many operations in all those runs.
      expect(ops / SEEDS).toBeGreaterThan(20);
    }, 600_000);
  }
});
