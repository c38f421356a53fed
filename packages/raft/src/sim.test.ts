import { checkSeeds, type Invariant } from '@consensus-kit/sim';
import { describe, expect, it } from 'vitest';
import { raft, raftInvariants } from './index';

/**
 * Simulator seeds (`@consensus-kit/sim`): random network and node faults (drops, duplicates, reordering,
 * partitions, partial connectivity, crash-restart with lost fsyncs, pauses, clock skew), a KV workload through
 * propose / readIndex, Raft's invariants after every step and the client history checked for
 * linearizability at the end. SIM_SEEDS=<n> runs more; `pnpm sim --protocol raft --seed <s>` replays one.
 */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);

// Compile-time check that raft's structural hook type matches the simulator's.
const hooks: readonly Invariant[] = raftInvariants();
void hooks;

describe('simulator seeds', () => {
  for (const nodes of [3, 5]) {
    it(`${SEEDS} seeds, ${nodes} nodes, heavy faults, log compaction: invariants and linearizability hold`, () => {
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 25, protocol: raft, invariants: raftInvariants }, SEEDS);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      // Not vacuous: clients completed many operations in all those runs.
      expect(ops / SEEDS).toBeGreaterThan(20);
    }, 600_000);
  }
});
