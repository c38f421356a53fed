/**
 * Issue #17, finding 4, at full size against a node in a child process (default limits):
 *  - idle: LIMITS_IDLE (default 1,023: with the one peer, the 1,024 slots the node had) client connections that complete the handshake and then say nothing,
 *    from 127.0.0.2-127.0.0.17; then a peer message and a client request from 127.0.0.1;
 *  - memory: LIMITS_HOLDERS (default 24) client connections each sending a split request of 32 MiB, all but
 *    its last byte; the node's RSS before and after, and whether a small request still gets through.
 * Prints figures; asserts nothing. Run: pnpm --filter @consensus-kit/transport-tcp bench:limits
 * (LIMITS_SRC=<path of an index.ts> runs the node from other sources, e.g. a copy of an older src/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodePlain } from '../src/codec';
import { FrameFlag, FrameType, HEADER_SIZE, allocHeader, encodeFrame } from '../src/frame';
import { createRpcClient, tcpTransport } from '../src/index';
import type * as TransportTcp from '../src/index';

const IDLE = Number(process.env.LIMITS_IDLE ?? 1023);
const HOLDERS = Number(process.env.LIMITS_HOLDERS ?? 24);
const CLUSTER = 'limits-bench';

if (process.argv[2] === 'node') await runNode();
else await drive();

/** The node: a tcpTransport with peer 'b' and an echo request handler; prints its port, answers 'rss' on stdin. */
async function runNode(): Promise<void> {
  const src = process.env.LIMITS_SRC ?? '../src/index';
  const mod = (await import(src)) as typeof TransportTcp;
  let delivered = 0;
  const t = mod.tcpTransport({ id: 'a', clusterId: CLUSTER, listen: { host: '127.0.0.1', port: 0 }, peers: { b: process.argv[3]! } });
  await t.start({ deliver: () => void delivered++ });
  t.onRequest((body) => (typeof body === 'string' ? body.length : body));
  process.stdout.write(`port ${t.address().port}\n`);
  process.stdin.on('data', (d) => {
    if (String(d).includes('rss')) {
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
      process.stdout.write(`rss ${Math.round(Number(rss) / 1024)} delivered ${delivered}\n`);
    }
  });
}

function hello(from: string): Buffer {
  return encodeFrame(FrameType.Hello, encodePlain({ v: 1, cluster: CLUSTER, kind: 'client', from, nonce: randomBytes(32) }));
}

function open(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Opens a client connection and handshakes; resolves with whether it was welcomed (frame type 4). */
async function idleClient(port: number, localAddress: string, i: number): Promise<{ socket: Socket; welcomed: boolean }> {
  const socket = await open(port, localAddress);
  socket.on('error', () => {});
  const first = new Promise<number>((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d[2] ?? -1));
    socket.once('close', () => resolve(-1));
  });
  socket.write(hello(`idle-${i}`));
  return { socket, welcomed: (await first) === FrameType.Welcome };
}

function lines(child: ChildProcess): (prefix: string) => Promise<string> {
  let buf = '';
  const waiters: Array<[string, (l: string) => void]> = [];
  child.stdout!.on('data', (d) => {
    buf += String(d);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.findIndex(([p]) => line.startsWith(p));
      if (w >= 0) waiters.splice(w, 1)[0]![1](line);
    }
  });
  return (prefix) => new Promise((resolve) => waiters.push([prefix, resolve]));
}

async function drive(): Promise<void> {
  const b = tcpTransport({ id: 'b', clusterId: CLUSTER, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  let fromA = 0;
  await b.start({ deliver: () => void fromA++ });
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'node', b.endpoint()], { stdio: ['pipe', 'pipe', 'inherit'] });
  const next = lines(child);
  const port = Number((await next('port')).split(' ')[1]);
  const endpoint = `127.0.0.1:${port}`;
  b.setPeers({ a: endpoint });
  const rss = async () => {
    child.stdin!.write('rss\n');
    const l = (await next('rss')).split(' ');
    return { rss: Number(l[1]), delivered: Number(l[3]) };
  };
  const sockets: Socket[] = [];
  const request = async (what: string) => {
    const c = createRpcClient({ endpoints: [endpoint], clusterId: CLUSTER, connectTimeoutMs: 2000, handshakeTimeoutMs: 2000, timeoutMs: 5000 });
    const t0 = performance.now();
    const out = await c.request('ping').then(
      (v) => `ok (${String(v)})`,
      (e: Error) => `failed: ${e.message}`,
    );
    await c.close();
    console.log(`${what}: client request from 127.0.0.1 ${out} in ${(performance.now() - t0).toFixed(0)} ms`);
  };

  // Idle connections.
  let welcomed = 0;
  for (let i = 0; i < IDLE; i++) {
    const r = await idleClient(port, `127.0.0.${2 + (i % 16)}`, i).catch(() => undefined);
    if (r === undefined) continue;
    sockets.push(r.socket);
    if (r.welcomed) welcomed++;
  }
  console.log(`idle: ${IDLE} handshakes from 127.0.0.2-17, ${welcomed} welcomed, ${IDLE - welcomed} refused or closed`);
  b.send([{ from: 'b', to: 'a', msg: { n: 1 } }]);
  const until = Date.now() + 5000;
  let delivered = 0;
  while (Date.now() < until && (delivered = (await rss()).delivered) === 0) await new Promise((r) => setTimeout(r, 50));
  console.log(`idle: peer message b -> a ${delivered > 0 ? 'delivered' : 'NOT delivered within 5 s'}`);
  await request('idle');
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise((r) => setTimeout(r, 500));

  // Memory: split requests one byte short.
  const before = (await rss()).rss;
  const total = 32 * 1024 * 1024 - 64;
  const part = 64 * 1024;
  for (let i = 0; i < HOLDERS; i++) {
    // Handshake first, as any client does (the unfixed node dropped what came in the hello's write).
    const { socket: s, welcomed } = await idleClient(port, `127.0.0.${20 + (i % 8)}`, 10_000 + i);
    sockets.push(s);
    if (!welcomed) console.log(`memory: holder ${i} not welcomed`);
    // [type][total] prefix, then parts of `part` bytes up to total - 1 byte, written as the socket drains (a
    // node that stops reading keeps the rest here, not in this process's heap).
    let sent = 0;
    let first = true;
    const pump = () => {
      while (sent < total - 1) {
        const n = Math.min(part - (first ? 5 : 0), total - 1 - sent);
        const header = allocHeader(FrameType.Part, first ? FrameFlag.First : 0, n + (first ? 5 : 0), first ? 5 : 0);
        if (first) {
          header.writeUInt8(FrameType.Request, HEADER_SIZE);
          header.writeUInt32BE(total, HEADER_SIZE + 1);
        }
        first = false;
        s.write(header);
        sent += n;
        if (!s.write(Buffer.alloc(n, 0x61))) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }
  await new Promise((r) => setTimeout(r, 5000));
  const after = (await rss()).rss;
  console.log(`memory: ${HOLDERS} connections each holding a 32 MiB request one byte short: node RSS ${before} MB -> ${after} MB`);
  await request('memory');
  for (const s of sockets.splice(0)) s.destroy();
  child.kill();
  await b.stop();
}
