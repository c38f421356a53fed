import { checkSeeds, simulate, simulateOptions } from '@consensus-kit/sim';
import { describe, expect, it } from 'vitest';
import { paxos, paxosInvariants } from './index';

/**
 * Simulator seeds (`@consensus-kit/sim`): random drops, duplicates, reordering, partitions, crash-restart with
 * torn saves, pauses and clock skew, a KV workload through propose / readIndex, Multi-Paxos' invariants after
 * every step (election safety, a chosen value never changes, one value per slot and ballot, promises kept
 * across restarts) and the client history checked for linearizability. SIM_SEEDS=<n> runs more.
 */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);

describe('simulator seeds', () => {
  // With 3 nodes the in-memory log releases decided slots 4 at a time (`logChunkBits: 2`), so Accepts, Learns and
  // Promises for lagging replicas read them back from the storage, across crashes and compactions.
  for (const [nodes, protocolOptions] of [
    [3, { logChunkBits: 2 }],
    [5, {}],
  ] as const) {
    it(`${SEEDS} seeds, ${nodes} nodes, heavy faults, log compaction${nodes === 3 ? ', small log chunks' : ''}: invariants and linearizability hold`, () => {
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 20, protocol: paxos, protocolOptions, invariants: paxosInvariants }, SEEDS);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      // Not vacuous: clients completed many operations in all those runs.
      expect(ops / SEEDS).toBeGreaterThan(20);
    }, 600_000);
  }

  // Snapshots in chunks of 16 bytes (the sim's snapshots are 60-200 bytes: a handful of chunks each), so every
  // transfer to a lagging replica is a chunked one, resumed through drops, duplicates, reorders and crashes.
  const SMALL_CHUNK_SEEDS = Number(process.env.SIM_SEEDS ?? 40);
  for (const [nodes, seeds] of [
    [3, SMALL_CHUNK_SEEDS],
    [5, Math.ceil(SMALL_CHUNK_SEEDS / 2)],
  ] as const) {
    it(`${seeds} seeds, ${nodes} nodes, heavy faults, snapshots in 16-byte chunks: invariants and linearizability hold`, () => {
      const { failures, ops, unknown } = checkSeeds({ nodes, faults: 'heavy', snapshotEvery: 20, protocol: paxos, protocolOptions: { snapshotChunkBytes: 16 }, invariants: paxosInvariants }, seeds, 1001);
      expect(failures).toEqual([]);
      expect(unknown).toBe(0);
      expect(ops / seeds).toBeGreaterThan(20);
    }, 600_000);
  }

  it('the small-chunk runs are not vacuous: snapshots reach lagging replicas as many chunks', () => {
    const module = { name: 'paxos', module: paxos, invariants: paxosInvariants };
    let chunked = 0;
    for (let seed = 1001; seed < 1006; seed++) {
      const run = simulate(simulateOptions({ protocol: module, nodes: 3, faults: 'heavy', snapshotEvery: 20, protocolOptions: { snapshotChunkBytes: 16 } }, seed, true));
      expect(run.violation).toBeUndefined();
      chunked += (run.trace ?? []).filter((l) => l.includes('"ev":"send"') && / SnapshotChunk .* offset=(?!0 )\d+/.test(l)).length;
    }
    expect(chunked).toBeGreaterThan(10);
  });

  it('a crash that tears a snapshot install, which rewrote accepted slots above the snapshot, loses no chosen value (Paxos Made Live 5.1: the amnesia mark)', () => {
    // Heavy seed 267 with the sweep's defaults: n3 installs the leader's snapshot at 151 with its accepted slots
    // 152-156 rewritten after it; a crash keeps the install and 152-154 only. The mark written before the
    // install keeps n3 from promising until those slots are decided again.
    const run = simulate(simulateOptions({ protocol: { name: 'paxos', module: paxos, invariants: paxosInvariants }, nodes: 3, faults: 'heavy' }, 267, true));
    expect(run.violation).toBeUndefined();
    const torn = (run.trace ?? []).map((l) => JSON.parse(l) as { ev: string; node?: string; save?: { steps: number; survived: number }; lostBatch?: string[] }).find((e) => e.ev === 'crash' && e.save !== undefined && e.save.survived > 0 && (e.lostBatch?.length ?? 0) > 0);
    expect(torn).toMatchObject({ node: 'n3', lostBatch: ['155/16385 command 44B', '156/16385 command 41B'] });
  });
});
