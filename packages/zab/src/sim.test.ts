import { checkSeeds, simulate } from '@consensus-kit/sim';
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
  // With 3 nodes, PROPOSAL and Sync messages carry at most 4 entries, so synchronisation goes in several parts.
  for (const [nodes, protocolOptions] of [
    [3, { maxBatch: 4 }],
    [5, {}],
  ] as const) {
    it(`${SEEDS} seeds, ${nodes} nodes, heavy faults, snapshots${nodes === 3 ? ', small batches' : ''}: invariants and linearizability hold`, () => {
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 20, protocol: zab, protocolOptions, invariants: zabInvariants }, SEEDS);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      // Not vacuous: clients completed many operations in all those runs.
      expect(ops / SEEDS).toBeGreaterThan(20);
    }, 600_000);
  }

  it('a duplicated SNAP that answers an old ACKEPOCH, at or below the follower\'s commit point, is taken as a DIFF, not installed twice', () => {
    // Heavy seed 15 with 3 nodes and batches of 4: n2 is synchronised in parts (SNAP at 80, then more); a duplicate
    // of its first ACKEPOCH makes the leader send the same snapshot again, which storage would refuse.
    const run = simulate({ seed: 15, nodes: 3, faults: 'heavy', snapshotEvery: 20, protocol: zab, protocolOptions: { maxBatch: 4 }, invariants: zabInvariants });
    expect(run.violation).toBeUndefined();
  });

  it('a delayed Sync that answers an older ACKEPOCH is ignored: it would truncate entries the follower holds rightly', () => {
    // Heavy seed 400 with 3 nodes and batches of 4: n3 is synchronised in parts; a reordered first part (TRUNC to 5)
    // arrives after the second, and taking it would drop index 13, committed on the others.
    const run = simulate({ seed: 400, nodes: 3, faults: 'heavy', snapshotEvery: 20, protocol: zab, protocolOptions: { maxBatch: 4 }, invariants: zabInvariants });
    expect(run.violation).toBeUndefined();
  });

  it('PrimaryIntegrity asks a primary for the earlier epochs\' transactions only: a primary of an older epoch may finish its establishment late', () => {
    // Heavy seed 2444 with 3 nodes and batches of 4: n2, paused, completes epoch 3 with an ACK(NEWLEADER) n1 sent
    // before n1 restarted and led epoch 4, whose transaction 35 n2 does not hold (and n2 can commit nothing more).
    const run = simulate({ seed: 2444, nodes: 3, faults: 'heavy', snapshotEvery: 20, protocol: zab, protocolOptions: { maxBatch: 4 }, invariants: zabInvariants });
    expect(run.violation).toBeUndefined();
  });
});
