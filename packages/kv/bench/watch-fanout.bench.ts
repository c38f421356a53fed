/**
 * Watch fan-out: 1 writer, N watchers on one prefix (default 1,000), over real TCP on 127.0.0.1, against a
 * one-node kv service (solo protocol, in-memory storage) in this same process, so that commit time is
 * observable: each revision's apply on the node is timestamped, and each delivery to a watcher is measured
 * from it (commit -> delivery). Watchers are spread over several client connections (rpc clients), as many
 * processes would be.
 *
 *   npx tsx --conditions=@consensus-kit/source bench/watch-fanout.bench.ts [watchers] [connections] [seconds] [writesInFlight] [process]
 *   (WATCH_BENCH_RATE=<writes/s> paces the writer)
 *
 * Prints events/s delivered (summed over watchers), writes/s, and the commit -> delivery delay percentiles.
 * By default the watchers share the node's process and event loop, so the delays include the clients'
 * decoding of every push (an upper bound). With `process` as the fifth argument they run in a child process
 * (their own event loop, as remote clients would have; the machine's cores are still shared): the node's
 * process tells it when each revision was applied, on the machine's clock (timeOrigin + now()).
 */
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { createRpcClient, tcpTransport } from '@consensus-kit/transport-tcp';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { fork } from 'node:child_process';
import { KvStateMachine, createKvClient, createKvService, watchKeys, type KvQuery, type KvQueryResult, type KvRequest, type KvResult, type Watch } from '@consensus-kit/kv';

/** Milliseconds on a clock shared by threads. */
const now = () => performance.timeOrigin + performance.now();

interface WatcherReport {
  delivered: number;
  delays: number[];
  behind: number;
  reconnects: number;
}

/**
 * Runs `watchers` watches on 'bench/' spread over `connections` rpc clients; `appliedAt` gives a revision's
 * commit time (it may arrive after the event: deliveries wait for it). `report()` ends them.
 */
async function runWatchers(endpoint: string, watchers: number, connections: number): Promise<{
  applied(revision: number, t: number): void;
  measure(on: boolean): void;
  caughtUp(revision: number): boolean;
  report(): Promise<WatcherReport>;
}> {
  const rpcs = Array.from({ length: connections }, () => createRpcClient({ endpoints: [endpoint], clusterId: 'watch-bench' }));
  const appliedAt = new Map<number, number>();
  const early = new Map<number, number[]>();
  const delays: number[] = [];
  let delivered = 0;
  let measuring = false;
  const watches: Watch[] = [];
  for (let w = 0; w < watchers; w++) {
    const watch = watchKeys(rpcs[w % connections]!, 'bench/', { prefix: true, maxBufferedBatches: 100_000 });
    watches.push(watch);
    void (async () => {
      for await (const batch of watch) {
        const t = now();
        for (const e of batch.events) {
          if (!measuring) continue;
          delivered++;
          const a = appliedAt.get(e.revision);
          if (a !== undefined) delays.push(t - a);
          else {
            let list = early.get(e.revision);
            if (list === undefined) early.set(e.revision, (list = []));
            list.push(t);
          }
        }
      }
    })();
  }
  await Promise.all(watches.map((w) => w.created));
  return {
    applied(revision, t) {
      appliedAt.set(revision, t);
      const list = early.get(revision);
      if (list !== undefined) {
        early.delete(revision);
        for (const d of list) delays.push(d - t);
      }
    },
    measure(on) {
      measuring = on;
    },
    caughtUp: (revision) => watches.every((w) => w.revision >= revision),
    async report() {
      const r = { delivered, delays, behind: 0, reconnects: watches.reduce((n, w) => n + w.reconnects, 0) };
      for (const w of watches) w.cancel();
      await Promise.all(rpcs.map((c) => c.close()));
      return r;
    },
  };
}

if (process.env.WATCH_BENCH_CHILD !== undefined) {
  // The watchers' process: follows the node's process's commands.
  const { endpoint, watchers, connections } = JSON.parse(process.env.WATCH_BENCH_CHILD) as { endpoint: string; watchers: number; connections: number };
  const side = await runWatchers(endpoint, watchers, connections);
  const parentPort = { postMessage: (m: unknown) => process.send!(m) };
  process.on('message', (m: { t: 'applied'; revision: number; at: number } | { t: 'measure'; on: boolean } | { t: 'caughtUp'; revision: number } | { t: 'report' }) => {
    if (m.t === 'applied') side.applied(m.revision, m.at);
    else if (m.t === 'measure') side.measure(m.on);
    else if ((m as { t: string }).t === 'ping') parentPort.postMessage({ t: 'pong', at: now() });
    else if (m.t === 'caughtUp') parentPort.postMessage({ t: 'caughtUp', ok: side.caughtUp(m.revision) });
    else void side.report().then((r) => parentPort.postMessage({ t: 'report', r }));
  });
  parentPort.postMessage({ t: 'ready' });
  await new Promise(() => undefined);
}

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

const threaded = process.argv[6] === 'process';
let side: Awaited<ReturnType<typeof runWatchers>>;
if (threaded) {
  // The watchers' process runs this file from source too (tsx and the source condition).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const worker = fork(new URL(import.meta.url).pathname, [], {
    execArgv: ['--import', tsx, '--conditions=@consensus-kit/source'],
    env: { ...process.env, WATCH_BENCH_CHILD: JSON.stringify({ endpoint: transport.endpoint(), watchers, connections }) },
  });
  const replies: ((m: unknown) => void)[] = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  worker.on('message', (m: { t: string }) => (m.t === 'ready' ? ready() : replies.shift()?.(m)));
  await readyP;
  const ask = <T>(m: unknown) =>
    new Promise<T>((resolve) => {
      replies.push(resolve as (m: unknown) => void);
      worker.send(m as object);
    });
  // The two processes' clocks: the child's reading minus ours, at the middle of a round trip (best of 20).
  let offset = 0;
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 20; i++) {
    const sent = now();
    const { at } = await ask<{ at: number }>({ t: 'ping' });
    const back = now();
    if (back - sent < best) {
      best = back - sent;
      offset = at - (sent + back) / 2;
    }
  }
  console.log(`  clocks: the watchers' process reads ${offset.toFixed(3)} ms from the node's (round trip ${best.toFixed(3)} ms); delays are corrected by it`);
  let caught = false;
  side = {
    applied: (revision, at) => worker.send({ t: 'applied', revision, at: at + offset }),
    measure: (on) => worker.send({ t: 'measure', on }),
    caughtUp: () => caught,
    report: async () => {
      const { r } = await ask<{ r: WatcherReport }>({ t: 'report' });
      worker.kill();
      return r;
    },
  };
  // caughtUp is asked asynchronously in the wait loop below.
  (side as { poll?: (rev: number) => Promise<void> }).poll = async (rev: number) => {
    caught = (await ask<{ ok: boolean }>({ t: 'caughtUp', revision: rev })).ok;
  };
} else side = await runWatchers(transport.endpoint(), watchers, connections);
// Commit time of each revision, as the serving node applies it.
node.on('apply', () => side.applied(stateMachine.currentRevision, now()));

const kv = createKvClient({ endpoints: [transport.endpoint()], clusterId });
const value = 'v'.repeat(64);
let writes = 0;
let stop = false;
side.measure(true);
const started = performance.now();
// WATCH_BENCH_RATE=<writes/s> paces the writer (all lanes together): with watchers in another process, an
// unpaced writer outruns one process decoding every event for all of them, and the delay then only grows.
const rate = Number(process.env.WATCH_BENCH_RATE ?? 0);
const writer = async (lane: number) => {
  for (let i = 0; !stop; i++) {
    if (rate > 0) {
      const due = started + (writes / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stop) break;
    }
    await kv.put(`bench/${lane}/${i % 100}`, value);
    writes++;
  }
};
const timer = setTimeout(() => (stop = true), seconds * 1000);
await Promise.all(Array.from({ length: inflight }, (_, l) => writer(l)));
clearTimeout(timer);
const lastRevision = stateMachine.currentRevision;
// Let the last deliveries land (bounded).
const poll = (side as { poll?: (rev: number) => Promise<void> }).poll;
const until = performance.now() + 5000;
for (;;) {
  await poll?.(lastRevision);
  if (side.caughtUp(lastRevision) || performance.now() > until) break;
  await new Promise((r) => setTimeout(r, 10));
}
const elapsed = (performance.now() - started) / 1000;
side.measure(false);
const behind = side.caughtUp(lastRevision) ? 0 : 1;
const { delivered, delays, reconnects } = await side.report();

delays.sort((a, b) => a - b);
const pct = (p: number) => (delays.length === 0 ? NaN : delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]!);
console.log(
  `watch fan-out: ${watchers} watchers on one prefix over ${connections} connections${threaded ? ' (in another process)' : ' (in the node\'s thread)'}, 1 writer (${inflight} in flight${rate > 0 ? `, paced at ${rate}/s` : ''}), ${seconds}s`,
);
console.log(`  writes: ${writes} (${(writes / elapsed).toFixed(0)}/s)   events delivered: ${delivered} (${(delivered / elapsed).toFixed(0)}/s)   expected ${writes * watchers}`);
console.log(`  commit -> delivery: p50 ${pct(50).toFixed(2)} ms   p90 ${pct(90).toFixed(2)} ms   p99 ${pct(99).toFixed(2)} ms   max ${pct(100).toFixed(2)} ms`);
console.log(`  all watchers caught up at the end: ${behind === 0 ? 'yes' : 'no'}   reconnects: ${reconnects}`);

await kv.close();
await node.stop();
