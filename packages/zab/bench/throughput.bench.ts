/**
 * Committed entries per second for 3 in-process ZAB replicas: core/testing's one harness for every protocol
 * (`runThroughputBench`: no I/O, no serialization, synchronous MemoryStorage, 256-byte commands batched between
 * Ready cycles), so raft's, paxos' and zab's figures compare in one run. Fast Leader Election runs first, by ticks.
 */
import { runThroughputBench } from '@consensus-kit/core/testing';
import { ZabNode } from '../src/zab';

runThroughputBench(
  'zab',
  {
    create: (id, peers, storage) => new ZabNode({ id, peers, storage, maxBatch: 4096 }),
    elect(replicas, pump) {
      for (let t = 0; t < 1000; t++) {
        for (const n of replicas.values()) n.tick();
        pump();
        const leader = [...replicas.values()].find((n) => n.status().role === 'leader');
        if (leader !== undefined) return leader;
      }
      throw new Error('no leader');
    },
  },
  Number(process.env.ZAB_BENCH_ENTRIES ?? 1_000_000),
);
