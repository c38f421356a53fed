/**
 * Committed entries per second for 3 in-process Multi-Paxos replicas exchanging messages directly (no I/O, no
 * serialization), MemoryStorage written synchronously (saveNow), 256-byte commands, proposals batched between
 * Ready cycles. Measures the protocol's own cost: step, accept, send, commit, Ready/advance. Same shape as
 * raft's bench/throughput.bench.ts, so the two can be compared in one run.
 */
import { MemoryStorage, type Envelope } from '@consensus-kit/core';
import { PaxosNode } from '../src/paxos';

const ids = ['a', 'b', 'c'];
const COMMAND_BYTES = 256;

function run(total: number, batch: number): { seconds: number; applied: number } {
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const nodes = new Map(ids.map((id) => [id, new PaxosNode({ id, peers: ids, storage: storages.get(id) as MemoryStorage })]));
  let inbox: Envelope[] = [];
  let applied = 0;
  const pump = () => {
    for (let guard = 0; guard < 100_000; guard++) {
      let any = false;
      for (const id of ids) {
        const node = nodes.get(id) as PaxosNode;
        if (!node.hasReady()) continue;
        any = true;
        const rd = node.ready();
        (storages.get(id) as MemoryStorage).saveNow(rd);
        for (const m of rd.messages) inbox.push(m);
        if (id === 'a') for (const e of rd.committed) if (e.type === 'command') applied++;
        node.advance(rd);
      }
      if (inbox.length > 0) {
        any = true;
        const batchMsgs = inbox;
        inbox = [];
        for (const env of batchMsgs) (nodes.get(env.to) as PaxosNode).step(env);
      }
      if (!any) return;
    }
  };
  const leader = nodes.get('a') as PaxosNode;
  leader.campaign(false);
  pump();
  if (leader.status().role !== 'leader') throw new Error('no leader');
  applied = 0;
  const payload = new Uint8Array(COMMAND_BYTES).fill(7);
  const start = performance.now();
  let proposed = 0;
  while (proposed < total) {
    const n = Math.min(batch, total - proposed);
    for (let i = 0; i < n; i++) leader.propose(payload);
    proposed += n;
    pump();
  }
  pump();
  const seconds = (performance.now() - start) / 1000;
  return { seconds, applied };
}

const total = Number(process.env.PAXOS_BENCH_ENTRIES ?? 1_000_000);
run(100_000, 1000); // warm-up
for (const batch of [100, 1000, 4096]) {
  const { seconds, applied } = run(total, batch);
  if (applied !== total) throw new Error(`expected ${total} applied, got ${applied}`);
  console.log(
    `paxos 3 replicas, ${COMMAND_BYTES}B commands, batch ${String(batch).padStart(4)}: ${Math.round(applied / seconds).toLocaleString('en-US')} committed entries/s (${applied.toLocaleString('en-US')} in ${seconds.toFixed(2)} s)`,
  );
}
