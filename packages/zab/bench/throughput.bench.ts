/**
 * Committed entries per second for 3 in-process ZAB replicas exchanging messages directly (no I/O, no
 * serialization), MemoryStorage written synchronously (saveNow), 256-byte commands, proposals batched between
 * Ready cycles. Measures the protocol's own cost: step, PROPOSAL, ACK, COMMIT, Ready/advance. Same shape as
 * raft's and paxos' bench/throughput.bench.ts, so the three can be compared in one run.
 */
import { MemoryStorage, type Envelope } from '@consensus-kit/core';
import { ZabNode } from '../src/zab';

const ids = ['a', 'b', 'c'];
const COMMAND_BYTES = 256;

function run(total: number, batch: number): { seconds: number; applied: number } {
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const nodes = new Map(ids.map((id) => [id, new ZabNode({ id, peers: ids, storage: storages.get(id) as MemoryStorage, maxBatch: 4096 })]));
  let inbox: Envelope[] = [];
  let applied = 0;
  const pump = () => {
    for (let guard = 0; guard < 100_000; guard++) {
      let any = false;
      for (const id of ids) {
        const node = nodes.get(id) as ZabNode;
        if (!node.hasReady()) continue;
        any = true;
        const rd = node.ready();
        (storages.get(id) as MemoryStorage).saveNow(rd);
        for (const m of rd.messages) inbox.push(m);
        for (const e of rd.committed) if (e.type === 'command' && node === leader) applied++;
        node.advance(rd);
      }
      if (inbox.length > 0) {
        any = true;
        const batchMsgs = inbox;
        inbox = [];
        for (const env of batchMsgs) (nodes.get(env.to) as ZabNode).step(env);
      }
      if (!any) return;
    }
  };
  let leader: ZabNode | undefined;
  for (let t = 0; t < 1000 && leader === undefined; t++) {
    for (const n of nodes.values()) n.tick();
    pump();
    leader = [...nodes.values()].find((n) => n.status().role === 'leader');
  }
  if (leader === undefined) throw new Error('no leader');
  const l = leader;
  applied = 0;
  const payload = new Uint8Array(COMMAND_BYTES).fill(7);
  const start = performance.now();
  let proposed = 0;
  while (proposed < total) {
    const n = Math.min(batch, total - proposed);
    for (let i = 0; i < n; i++) l.propose(payload);
    proposed += n;
    pump();
  }
  pump();
  const seconds = (performance.now() - start) / 1000;
  return { seconds, applied };
}

const total = Number(process.env.ZAB_BENCH_ENTRIES ?? 1_000_000);
run(100_000, 1000); // warm-up
for (const batch of [100, 1000, 4096]) {
  const { seconds, applied } = run(total, batch);
  if (applied !== total) throw new Error(`expected ${total} applied, got ${applied}`);
  console.log(
    `zab 3 replicas, ${COMMAND_BYTES}B commands, batch ${String(batch).padStart(4)}: ${Math.round(applied / seconds).toLocaleString('en-US')} committed entries/s (${applied.toLocaleString('en-US')} in ${seconds.toFixed(2)} s)`,
  );
}
