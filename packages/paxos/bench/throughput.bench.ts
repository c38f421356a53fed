/**
 * Committed entries per second for 3 in-process Multi-Paxos replicas: core/testing's one harness for every
 * protocol (`runThroughputBench`: no I/O, no serialization, synchronous MemoryStorage, 256-byte commands batched
 * between Ready cycles), so raft's, paxos' and zab's figures compare in one run.
 */
import { runThroughputBench } from '@consensus-kit/core/testing';
import { PaxosNode } from '../src/paxos';

runThroughputBench(
  'paxos',
  {
    create: (id, peers, storage) => new PaxosNode({ id, peers, storage }),
    elect(replicas, pump) {
      const a = replicas.get('a') as PaxosNode;
      a.campaign(false);
      pump();
      return a;
    },
  },
  Number(process.env.PAXOS_BENCH_ENTRIES ?? 1_000_000),
);
