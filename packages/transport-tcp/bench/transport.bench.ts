/**
 * Throughput between two tcpTransports on 127.0.0.1, and request/response round trips on the client channel.
 * Prints figures; asserts nothing. Run: pnpm --filter @consensus-kit/transport-tcp bench
 */
import type { Envelope } from '@consensus-kit/core';
import { createRpcClient, tcpTransport, type TcpTransport } from '../src/index';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

async function pair(): Promise<{ a: TcpTransport; b: TcpTransport; onDeliver: (fn: () => void) => void; stop(): Promise<void> }> {
  let hook: () => void = () => {};
  const a = tcpTransport({ id: 'a', clusterId: 'bench', listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  const b = tcpTransport({ id: 'b', clusterId: 'bench', listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  await a.start({ deliver() {} });
  await b.start({ deliver: () => hook() });
  const peers = { a: a.endpoint(), b: b.endpoint() };
  a.setPeers(peers);
  b.setPeers(peers);
  return {
    a,
    b,
    onDeliver: (fn) => (hook = fn),
    async stop() {
      await a.stop();
      await b.stop();
    },
  };
}

/** Streams `msg` from a to b for SECONDS with a window of messages in flight; returns messages/s and MB/s. */
async function stream(label: string, payloadBytes: number, window: number, batch: number): Promise<void> {
  const p = await pair();
  const payload = new Uint8Array(payloadBytes).fill(7);
  const msg = { type: 'AppendEntries', term: 1, payload };
  const envs: Envelope[] = Array.from({ length: batch }, () => ({ from: 'a', to: 'b', msg }));
  let sent = 0;
  let received = 0;
  let stopAt = 0;
  let scheduled = false;
  const refill = () => {
    scheduled = false;
    while (sent - received + batch <= window && performance.now() < stopAt) {
      p.a.send(envs);
      sent += batch;
    }
  };
  const done = new Promise<void>((resolve) => {
    p.onDeliver(() => {
      received++;
      if (performance.now() >= stopAt && received === sent) resolve();
      else if (!scheduled && sent - received + batch <= window) {
        scheduled = true;
        setImmediate(refill);
      }
    });
  });
  // Warm-up connection.
  p.a.send([{ from: 'a', to: 'b', msg: 'warm' }]);
  await new Promise((r) => setTimeout(r, 100));
  received = 0;
  const start = performance.now();
  stopAt = start + SECONDS * 1000;
  refill();
  await done;
  const secs = (performance.now() - start) / 1000;
  const stats = p.a.peerStats().b!;
  await p.stop();
  const rate = received / secs;
  console.log(
    `${label.padEnd(34)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} msg/s  ${((rate * payloadBytes) / 1e6).toFixed(1).padStart(8)} MB/s payload  (dropped ${stats.dropped})`,
  );
}

async function roundTrips(label: string, concurrency: number): Promise<void> {
  const node = tcpTransport({ id: 'n', clusterId: 'bench', listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  await node.start({ deliver() {} });
  node.onRequest((body) => body);
  const client = createRpcClient({ endpoints: [node.endpoint()], clusterId: 'bench' });
  await client.request('warm');
  let count = 0;
  const stopAt = performance.now() + SECONDS * 1000;
  const start = performance.now();
  const body = { op: 'get', key: 'user:42', pad: 'x'.repeat(60) };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt) {
        await client.request(body);
        count++;
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  await client.close();
  await node.stop();
  console.log(`${label.padEnd(34)} ${Math.round(count / secs).toLocaleString('en-US').padStart(10)} req/s`);
}

console.log(`transport-tcp bench (${SECONDS}s per case, Node ${process.version}, 127.0.0.1)`);
await stream('peer stream, 100 B payloads', 100, 4000, 200);
await stream('peer stream, 64 KiB payloads', 64 * 1024, 64, 8);
await roundTrips('client round trips, 1 in flight', 1);
await roundTrips('client round trips, 64 in flight', 64);
