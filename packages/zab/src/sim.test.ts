import { checkSeeds, simulate } from '@consensus-kit/sim';
import { describe, expect, it } from 'vitest';
import type { Protocol, ProtocolModule, ProtocolOptions, Ready } from '@consensus-kit/core';
import { zab, zabInvariants, type ZabSpecificOptions } from './index';
import type { SnapChunk, ZabMessage } from './messages';

/**
 * Simulator seeds (`@consensus-kit/sim`): random drops, duplicates, reordering, partitions, crash-restart with
 * torn saves (a crash in the middle of a save keeps a prefix of it), pauses and clock skew, snapshots and log
 * compaction, a KV workload through propose / readIndex, ZAB's invariants after every step and the client history
 * checked for linearizability. SIM_SEEDS=<n> runs more.
 */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);
/** Seeds of the small-chunk set (SNAP in 64-byte chunks): a fifth of SIM_SEEDS, at least 20 (enough transfers to count). */
const CHUNK_SEEDS = Math.max(20, Math.round(SEEDS / 5));

/** The zab module, counting the SNAP chunks its nodes send: the small-chunk set must really stream snapshots. */
function countingChunks() {
  const seen = { chunks: 0, transfers: 0 };
  const protocol: ProtocolModule<ZabSpecificOptions> = {
    ...zab,
    create(options: ProtocolOptions & ZabSpecificOptions): Protocol {
      const node = zab.create(options);
      const ready = node.ready.bind(node);
      node.ready = (): Ready => {
        const rd = ready();
        for (const e of rd.messages) {
          const m = e.msg as ZabMessage;
          if (m.type !== 'SnapChunk') continue;
          seen.chunks++;
          if ((m as SnapChunk).offset === 0) seen.transfers++;
        }
        return rd;
      };
      return node;
    },
  };
  return { protocol, seen };
}

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

  // SNAP in 64-byte chunks (a snapshot of this workload is a few hundred bytes): transfers of many chunks under
  // drops, duplicates, reordering and crashes, resumed from the follower's offset.
  for (const nodes of [3, 5]) {
    it(`${CHUNK_SEEDS} seeds, ${nodes} nodes, heavy faults, SNAP in 64-byte chunks: invariants and linearizability hold`, () => {
      const { protocol, seen } = countingChunks();
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 20, protocol, protocolOptions: { snapshotChunkBytes: 64 }, invariants: zabInvariants }, CHUNK_SEEDS, 5000);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      expect(ops / CHUNK_SEEDS).toBeGreaterThan(20);
      // Not vacuous: snapshots went to followers, each in several chunks.
      expect(seen.transfers).toBeGreaterThan(0);
      expect(seen.chunks).toBeGreaterThan(3 * seen.transfers);
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
