import { connect, type Socket } from 'node:net';
import { seededRandom } from '@consensus-kit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePlain } from './codec';
import { FrameFlag, FrameParser, FrameType, HEADER_SIZE, allocHeader, encodeFrame, writeHeader, type Frame } from './frame';
import { PROTOCOL_VERSION } from './handshake';
import { createRpcClient, type RpcClient } from './rpc-client';
import { memoryLogger, startTcpCluster, type MemoryLogger, type TcpCluster } from './testing';

const SEED = Number(process.env.CONSENSUS_KIT_SEEDS?.split(',')[0] ?? 20261122);

interface Raw {
  socket: Socket;
  frames: Frame[];
  closed: Promise<void>;
}

async function raw(port: number): Promise<Raw> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  const parser = new FrameParser(1 << 20);
  const frames: Frame[] = [];
  socket.on('data', (d) => {
    try {
      frames.push(...parser.push(d));
    } catch {
      socket.destroy();
    }
  });
  return { socket, frames, closed };
}

async function handshaken(port: number, kind: 'peer' | 'client'): Promise<Raw> {
  const r = await raw(port);
  r.socket.write(
    encodeFrame(FrameType.Hello, encodePlain({ v: PROTOCOL_VERSION, cluster: 'fuzz', kind, from: kind === 'peer' ? 'a' : 'fuzzer', nonce: new Uint8Array(32) })),
  );
  const deadline = Date.now() + 10_000;
  while (r.frames.length === 0 && !r.socket.destroyed && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
  expect(r.frames[0]?.type).toBe(FrameType.Welcome);
  return r;
}

function header(type: number, flags: number, length: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  writeHeader(h, 0, type, flags, length);
  return h;
}

describe('fuzz: a listening node under bad input', () => {
  let cluster: TcpCluster | undefined;
  let client: RpcClient | undefined;
  let log: MemoryLogger;
  afterEach(async () => {
    await client?.close();
    await cluster?.stop();
    cluster = undefined;
    client = undefined;
  });

  /** The node still serves a real peer and a real client. */
  async function stillServes(round: number): Promise<void> {
    const { transports: t, handlers: h } = cluster!;
    // Best effort: resend like heartbeats until one arrives (the fuzzer impersonating peer a replaces a's
    // inbound connection, and a's link then backs off before redialing).
    const resend = setInterval(() => t.a!.send([{ from: 'a', to: 'b', msg: { round } }]), 20);
    try {
      t.a!.send([{ from: 'a', to: 'b', msg: { round } }]);
      await h.b!.waitUntil((e) => (e.msg as { round?: number }).round === round);
    } finally {
      clearInterval(resend);
    }
    expect(await client!.request({ echo: round })).toEqual({ echo: round });
  }

  it(`survives random bytes, truncated frames, oversize lengths, bad checksums and garbage bodies (seed ${SEED})`, async () => {
    log = memoryLogger();
    // The handshake timeout closes the few inputs that stop mid-header before the handshake. It also bounds the
    // real handshakes (peer a, the client, the fuzzer's own): short enough to keep the test quick, long enough
    // that a busy machine does not time out a handshake that is merely slow.
    cluster = await startTcpCluster(['a', 'b'], 'fuzz', (id) => ({ logger: id === 'b' ? log : memoryLogger(), maxFrameSize: 64 * 1024, partSize: 4096, maxMessageSize: 1 << 20, handshakeTimeoutMs: 2000 }));
    const b = cluster.transports.b!;
    b.onRequest((body) => body);
    client = createRpcClient({ endpoints: [b.endpoint()], clusterId: 'fuzz', connectTimeoutMs: 5000, handshakeTimeoutMs: 5000 });
    const port = b.address().port;
    const rand = seededRandom(SEED);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    await stillServes(0);

    const cases: Array<[string, () => Promise<Raw>]> = [];
    for (let i = 0; i < 25; i++) {
      cases.push([`random bytes ${i}`, async () => {
        const r = await raw(port);
        r.socket.write(bytes(1 + Math.floor(rand() * 4096)));
        return r;
      }]);
    }
    cases.push(['random bytes after a valid peer handshake', async () => {
      const r = await handshaken(port, 'peer');
      r.socket.write(bytes(2000));
      return r;
    }]);
    cases.push(['oversize length with a valid checksum', async () => {
      const r = await raw(port);
      r.socket.write(header(FrameType.Hello, 0, 64 * 1024 + 1));
      return r;
    }]);
    cases.push(['oversize length (4 GiB) after the handshake', async () => {
      const r = await handshaken(port, 'peer');
      r.socket.write(header(FrameType.Message, 0, 0xffff_ffff));
      return r;
    }]);
    cases.push(['wrong header checksum', async () => {
      const r = await handshaken(port, 'peer');
      const f = encodeFrame(FrameType.Message, Buffer.from([0x01]));
      f[10] = f[10]! ^ 0xff;
      r.socket.write(f);
      return r;
    }]);
    for (let i = 0; i < 10; i++) {
      cases.push([`truncated frame ${i}`, async () => {
        const r = await handshaken(port, 'peer');
        const f = encodeFrame(FrameType.Message, bytes(100 + i * 50));
        r.socket.end(f.subarray(0, Math.floor(rand() * f.length)));
        return r;
      }]);
    }
    for (let i = 0; i < 15; i++) {
      cases.push([`valid frame, garbage msgpack body ${i}`, async () => {
        const r = await handshaken(port, i % 2 === 0 ? 'peer' : 'client');
        r.socket.write(encodeFrame(i % 2 === 0 ? FrameType.Message : FrameType.Request, Buffer.concat([Buffer.from([0xdd, 0xff, 0xff]), bytes(5 + i)])));
        return r;
      }]);
    }
    cases.push(['garbage hello body', async () => {
      const r = await raw(port);
      r.socket.write(encodeFrame(FrameType.Hello, bytes(40)));
      return r;
    }]);
    cases.push(['request without an id', async () => {
      const r = await handshaken(port, 'client');
      r.socket.write(encodeFrame(FrameType.Request, encodePlain({ body: 1 })));
      return r;
    }]);
    cases.push(['frame type not allowed on a peer connection', async () => {
      const r = await handshaken(port, 'peer');
      r.socket.write(encodeFrame(FrameType.Request, encodePlain({ id: 1, body: 1 })));
      return r;
    }]);
    cases.push(['part without a first part', async () => {
      const r = await handshaken(port, 'peer');
      r.socket.write(encodeFrame(FrameType.Part, bytes(100), FrameFlag.Last));
      return r;
    }]);
    cases.push(['split message announcing more than maxMessageSize', async () => {
      const r = await handshaken(port, 'peer');
      const h = allocHeader(FrameType.Part, FrameFlag.First, 5, 5);
      h.writeUInt8(FrameType.Message, HEADER_SIZE);
      h.writeUInt32BE(0xffff_fff0, HEADER_SIZE + 1);
      r.socket.write(h);
      return r;
    }]);
    cases.push(['parts overrunning their announced length', async () => {
      const r = await handshaken(port, 'peer');
      const first = Buffer.concat([Buffer.from([FrameType.Message, 0, 0, 0x20, 0]), bytes(4000)]);
      r.socket.write(encodeFrame(FrameType.Part, first, FrameFlag.First));
      r.socket.write(encodeFrame(FrameType.Part, bytes(4096), 0));
      r.socket.write(encodeFrame(FrameType.Part, bytes(4096), FrameFlag.Last));
      return r;
    }]);

    let round = 1;
    for (const [name, run] of cases) {
      const r = await run();
      await r.closed.catch(() => {});
      expect(r.socket.destroyed, name).toBe(true);
      if (round % 5 === 0) await stillServes(round);
      round++;
    }
    await stillServes(round);
    // Every refusal was logged with a reason; nothing was logged as an error thrown by a handler.
    expect(log.lines.filter((l) => l.level === 'warn').length).toBeGreaterThanOrEqual(cases.length - 10);
    expect(log.lines.filter((l) => l.msg.includes('threw'))).toEqual([]);
  });
});
