/**
 * Watch fan-out: 1 writer, N watchers on one prefix (default 1,000), over real TCP on 127.0.0.1, against a
 * one-node kv service (solo protocol, in-memory storage) in this same process, so that commit time is
 * observable: each revision's apply on the node is timestamped, and each delivery to a watcher is measured
 * from it (commit -> delivery). Watchers are spread over several client connections (rpc clients), as many
 * processes would be.
 *
 *   npx tsx --conditions=@consensus-kit/source bench/watch-fanout.bench.ts [watchers] [connections] [seconds] [writesInFlight]
 *
 * Prints events/s delivered (summed over watchers), writes/s, and the commit -> delivery delay percentiles.
 * Client and node share one process and its event loop (and the machine's cores), so the delays include the
 * clients' decoding of every push: an upper bound on what a node with remote watchers shows.
 */
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { createRpcClient, tcpTransport } from '@consensus-kit/transport-tcp';
import { KvStateMachine, createKvClient, createKvService, watchKeys, type KvQuery, type KvQueryResult, type KvRequest, type KvResult } from '@consensus-kit/kv';

const watchers = Number(process.argv[2] ?? 1000);
const connections = Number(process.argv[3] ?? 10);
const seconds = Number(process.argv[4] ?? 5);
const inflight = Number(process.argv[5] ?? 1);

const clusterId = 'watch-bench';
const transport = tcpTransport({ id: 'n1', clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
const stateMachine = new KvStateMachine();
const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
  id: 'n1',
  peers: ['n1'],
  protocol: solo,
  storage: new MemoryStorage(),
  transport,
  stateMachine,
  tickMs: 5,
  electionTicks: 2,
});
transport.onRequest(createKvService({ node, stateMachine }));
await node.start();
await node.waitForLeader();

/** When each revision was applied on the node (commit, as the serving node sees it). */
const appliedAt = new Map<number, number>();
node.on('apply', () => appliedAt.set(stateMachine.currentRevision, performance.now()));

const rpcs = Array.from({ length: connections }, () => createRpcClient({ endpoints: [transport.endpoint()], clusterId }));
const delays: number[] = [];
let delivered = 0;
let measuring = false;
const watches = [];
for (let w = 0; w < watchers; w++) {
  const watch = watchKeys(rpcs[w % connections]!, 'bench/', { prefix: true, maxBufferedBatches: 100_000 });
  watches.push(watch);
  void (async () => {
    for await (const batch of watch) {
      const now = performance.now();
      for (const e of batch.events) {
        if (!measuring) continue;
        delivered++;
        const t = appliedAt.get(e.revision);
        if (t !== undefined) delays.push(now - t);
      }
    }
  })();
}
await Promise.all(watches.map((w) => w.created));

const kv = createKvClient({ endpoints: [transport.endpoint()], clusterId });
const value = 'v'.repeat(64);
let writes = 0;
let stop = false;
measuring = true;
const started = performance.now();
const writer = async (lane: number) => {
  for (let i = 0; !stop; i++) {
    await kv.put(`bench/${lane}/${i % 100}`, value);
    writes++;
  }
};
const timer = setTimeout(() => (stop = true), seconds * 1000);
await Promise.all(Array.from({ length: inflight }, (_, l) => writer(l)));
clearTimeout(timer);
const lastRevision = stateMachine.currentRevision;
// Let the last deliveries land (bounded).
const until = performance.now() + 5000;
while (watches.some((w) => w.revision < lastRevision) && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
const elapsed = (performance.now() - started) / 1000;
measuring = false;

delays.sort((a, b) => a - b);
const pct = (p: number) => (delays.length === 0 ? NaN : delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]!);
const behind = watches.filter((w) => w.revision < lastRevision).length;
console.log(`watch fan-out: ${watchers} watchers on one prefix over ${connections} connections, 1 writer (${inflight} in flight), ${seconds}s`);
console.log(`  writes: ${writes} (${(writes / elapsed).toFixed(0)}/s)   events delivered: ${delivered} (${(delivered / elapsed).toFixed(0)}/s)   expected ${writes * watchers}`);
console.log(`  commit -> delivery: p50 ${pct(50).toFixed(2)} ms   p90 ${pct(90).toFixed(2)} ms   p99 ${pct(99).toFixed(2)} ms   max ${pct(100).toFixed(2)} ms`);
console.log(`  watchers behind at the end: ${behind}   reconnects: ${watches.reduce((n, w) => n + w.reconnects, 0)}`);

for (const w of watches) w.cancel();
await kv.close();
await Promise.all(rpcs.map((r) => r.close()));
await node.stop();
