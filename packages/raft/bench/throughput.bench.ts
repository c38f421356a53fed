/**
 * Committed entries per second for 3 in-process Raft replicas: core/testing's one harness for every protocol
 * (`runThroughputBench`: no I/O, no serialization, synchronous MemoryStorage, 256-byte commands batched between
 * Ready cycles), so raft's, paxos' and zab's figures compare in one run.
 */
import { runThroughputBench } from '@consensus-kit/core/testing';
import { RaftNode } from '../src/rawnode';

runThroughputBench(
  'raft',
  {
    create: (id, peers, storage) => new RaftNode({ id, peers, storage }),
    elect(replicas, pump) {
      const a = replicas.get('a') as RaftNode;
      a.campaign();
      pump();
      return a;
    },
  },
  Number(process.env.RAFT_BENCH_ENTRIES ?? 1_000_000),
);
