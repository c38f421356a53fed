import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decodePlain, encodePlain } from './codec';
import { HandshakeError } from './errors';
import { FrameFlag, FrameParser, FrameType, HEADER_SIZE, allocHeader, encodeFrame, type Frame } from './frame';
import { PROTOCOL_VERSION } from './handshake';
import { EVICT_IDLE_CLIENT_MS } from './listener';
import { createRequestServer, type RequestServer, type RequestServerOptions } from './request-server';
import { createRpcClient } from './rpc-client';
import { memoryLogger, startTcpCluster, type MemoryLogger } from './testing';

/**
 * Issue #17, finding 4: connection slots, idle clients, per-address caps, the node-wide budget of buffered
 * request bytes, and a request that arrives in the same write as the handshake. Limits are set small through
 * options, so that a handful of sockets shows what a thousand would.
 */

/** Polls `cond` until it holds; fails naming `what` after 10 s (generous: CI machines can be slow). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A handler answering with the request body's length (answers stay small, one frame). */
const length = (body: unknown) => (body as string).length;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A hand-driven client socket: writes raw bytes, collects the frames the server sends back. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly parser = new FrameParser(64 * 1024 * 1024);
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.frames.push(...this.parser.push(chunk)));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async open(endpoint: string): Promise<RawClient> {
    const [host, port] = endpoint.split(':');
    const socket = connect({ host: host!, port: Number(port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Opens a connection and completes a client handshake (no secret). */
  static async handshake(endpoint: string, clusterId: string, id = `raw-${randomBytes(4).toString('hex')}`): Promise<RawClient> {
    const c = await RawClient.open(endpoint);
    c.socket.write(hello(clusterId, id));
    await until(() => c.frames.length > 0 || c.closed, 'an answer to the hello');
    return c;
  }

  get welcomed(): boolean {
    return this.frames.some((f) => f.type === FrameType.Welcome);
  }

  rejectCode(): string | undefined {
    const r = this.frames.find((f) => f.type === FrameType.Reject);
    return r === undefined ? undefined : (decodePlain(r.body) as { code: string }).code;
  }

  responses(): Array<{ id: number; ok?: unknown; error?: unknown }> {
    return this.frames.filter((f) => f.type === FrameType.Response).map((f) => decodePlain(f.body) as { id: number; ok?: unknown });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function hello(clusterId: string, from: string, kind: 'client' | 'peer' = 'client'): Buffer {
  return encodeFrame(FrameType.Hello, encodePlain({ v: PROTOCOL_VERSION, cluster: clusterId, kind, from, nonce: randomBytes(32) }));
}

function request(id: number, body: unknown): Buffer {
  return encodeFrame(FrameType.Request, encodePlain({ id, body }));
}

/** A request split into Part frames of `part` bytes; returns the frames' bytes, one buffer per part. */
function splitRequest(id: number, body: unknown, part: number): Buffer[] {
  const bytes = encodePlain({ id, body });
  const out: Buffer[] = [];
  for (let off = 0; off < bytes.byteLength; ) {
    const first = off === 0;
    const n = Math.min(part - (first ? 5 : 0), bytes.byteLength - off);
    const last = off + n === bytes.byteLength;
    const header = allocHeader(FrameType.Part, (first ? FrameFlag.First : 0) | (last ? FrameFlag.Last : 0), n + (first ? 5 : 0), first ? 5 : 0);
    if (first) {
      header.writeUInt8(FrameType.Request, HEADER_SIZE);
      header.writeUInt32BE(bytes.byteLength, HEADER_SIZE + 1);
    }
    out.push(Buffer.concat([header, bytes.subarray(off, off + n)]));
    off += n;
  }
  return out;
}

describe('connection limits (issue #17, finding 4)', () => {
  const stops: Array<() => unknown> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });

  async function server(options: Partial<RequestServerOptions> = {}, handler: (body: unknown) => unknown = (body) => ({ echo: body })): Promise<{ s: RequestServer; logger: MemoryLogger }> {
    const logger = memoryLogger();
    const s = createRequestServer({ clusterId: 'limits', listen: { host: '127.0.0.1', port: 0 }, logger, ...options });
    s.onRequest(handler);
    await s.start();
    stops.push(() => s.stop());
    return { s, logger };
  }

  async function raw(endpoint: string, clusterId = 'limits'): Promise<RawClient> {
    const c = await RawClient.handshake(endpoint, clusterId);
    stops.push(() => c.destroy());
    return c;
  }

  it('answers a request sent in the same write as the hello', async () => {
    const { s } = await server();
    const c = await RawClient.open(s.endpoint());
    stops.push(() => c.destroy());
    // A small request, and one larger than the handshake's frame limit (4 KiB): both follow the hello at once.
    c.socket.write(Buffer.concat([hello('limits', 'eager'), request(1, 'first'), request(2, 'x'.repeat(10_000))]));
    await until(() => c.responses().length === 2 || c.closed, 'two answers');
    expect(c.closed).toBe(false);
    expect(c.responses()).toEqual([
      { id: 1, ok: { echo: 'first' } },
      { id: 2, ok: { echo: 'x'.repeat(10_000) } },
    ]);
  });

  it('peer links do not compete with clients for connection slots', async () => {
    // Two client slots, both held by idle clients; the peers still connect and exchange messages both ways.
    const cluster = await startTcpCluster(['a', 'b'], 'limits', () => ({ maxConnections: 2 }));
    stops.push(() => cluster.stop());
    for (let i = 0; i < 2; i++) await raw(cluster.endpoints.a!);
    for (let i = 0; i < 2; i++) await raw(cluster.endpoints.b!);
    cluster.transports.a!.send([{ from: 'a', to: 'b', msg: { n: 1 } }]);
    cluster.transports.b!.send([{ from: 'b', to: 'a', msg: { n: 2 } }]);
    await cluster.handlers.b!.waitUntil((env) => env.from === 'a', 5000);
    await cluster.handlers.a!.waitUntil((env) => env.from === 'b', 5000);
  });

  it('a client refused for lack of slots gets a typed error and a logged reason', async () => {
    // The one slot is held by a client with a request in flight (an idle one would make room).
    const { s, logger } = await server({ maxConnections: 1 }, () => new Promise(() => {}));
    (await raw(s.endpoint())).socket.write(request(1, 'forever'));
    await sleep(50);
    const c = createRpcClient({ endpoints: [s.endpoint()], clusterId: 'limits', connectTimeoutMs: 5000, handshakeTimeoutMs: 5000 });
    stops.push(() => c.close());
    const err = await c.request('hi').catch((e: unknown) => e);
    expect(HandshakeError.is(err)).toBe(true);
    expect((err as HandshakeError).reason).toBe('too-many-connections');
    expect(logger.withCode('too-many-connections').length).toBeGreaterThan(0);
  });

  it('connections still in their handshake cannot hold every slot: the oldest gives way', async () => {
    const cluster = await startTcpCluster(['a', 'b'], 'limits', () => ({ maxHandshakes: 3, handshakeTimeoutMs: 60_000 }));
    stops.push(() => cluster.stop());
    const silent: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.open(cluster.endpoints.b!);
      stops.push(() => c.destroy());
      silent.push(c);
    }
    cluster.transports.a!.send([{ from: 'a', to: 'b', msg: { n: 1 } }]);
    await cluster.handlers.b!.waitUntil((env) => env.from === 'a', 5000);
    await until(() => silent[0]!.closed, 'the oldest silent connection to be closed');
  });

  it('when client slots run out, the client idle longest makes room; a busy one never does', async () => {
    let release: (() => void) | undefined;
    const { s } = await server({ maxConnections: 2 }, (body) => (body === 'slow' ? new Promise((r) => (release = () => r('done'))) : body));
    const busy = await raw(s.endpoint());
    busy.socket.write(request(1, 'slow'));
    const idle = await raw(s.endpoint());
    await sleep(EVICT_IDLE_CLIENT_MS + 100);
    const late = await raw(s.endpoint());
    expect(late.welcomed).toBe(true);
    await until(() => idle.closed, 'the idle client to be closed');
    expect(busy.closed).toBe(false);
    release!();
    await until(() => busy.responses().length === 1, 'the slow answer');
  });

  it('closes a client connection that stays idle past clientIdleTimeoutMs, never one with a request in flight', async () => {
    let release: (() => void) | undefined;
    const { s, logger } = await server({ clientIdleTimeoutMs: 100 }, (body) => {
      if (body === 'slow') return new Promise((r) => (release = () => r('done')));
      return body;
    });
    const idle = await raw(s.endpoint());
    const busy = await raw(s.endpoint());
    busy.socket.write(request(1, 'slow'));
    await until(() => idle.closed, 'the idle connection to be closed');
    expect(logger.lines.some((l) => l.msg.includes('idle'))).toBe(true);
    // The busy one outlived several idle periods, its answer still arrives.
    await sleep(400);
    expect(busy.closed).toBe(false);
    release!();
    await until(() => busy.responses().length === 1, 'the slow answer');
    expect(busy.responses()[0]).toEqual({ id: 1, ok: 'done' });
  });

  it('caps client connections per remote address', async () => {
    const { s } = await server({ maxConnectionsPerAddress: 2 });
    const a = await raw(s.endpoint());
    const b = await raw(s.endpoint());
    const c = await raw(s.endpoint());
    expect(a.welcomed && b.welcomed).toBe(true);
    expect(c.rejectCode()).toBe('too-many-connections');
    // One leaves: the next one from that address is welcomed.
    a.destroy();
    await sleep(50);
    const d = await raw(s.endpoint());
    expect(d.welcomed).toBe(true);
  });

  it('buffers at most maxInboundBytes of requests node-wide; further readers wait (paused, not dropped)', async () => {
    const maxMessageSize = 256 * 1024;
    const maxFrameSize = 16 * 1024;
    // Room for one split request of maxMessageSize at a time (the budget's minimum).
    const { s } = await server({ maxMessageSize, maxFrameSize, partSize: 16 * 1024, maxInboundBytes: maxMessageSize + maxFrameSize }, length);
    const body = 'y'.repeat(maxMessageSize - 1024);
    const holder = await raw(s.endpoint());
    const waiter = await raw(s.endpoint());
    const parts = splitRequest(1, body, 16 * 1024);
    // The holder sends all but the last part: its request is buffered, one byte-range short of complete.
    holder.socket.write(Buffer.concat(parts.slice(0, -1)));
    await sleep(50);
    // The waiter sends a whole request of the same size: it must wait for the holder's bytes to be released.
    waiter.socket.write(Buffer.concat(splitRequest(7, body, 16 * 1024)));
    await sleep(200);
    expect(waiter.responses()).toEqual([]);
    expect(waiter.closed).toBe(false);
    holder.socket.write(parts.at(-1)!);
    await until(() => holder.responses().length === 1 && waiter.responses().length === 1, 'both answers');
    expect(holder.responses()[0]).toEqual({ id: 1, ok: body.length });
    expect(waiter.responses()[0]).toEqual({ id: 7, ok: body.length });
  });

  it('a connection that goes away releases what it had buffered', async () => {
    const maxMessageSize = 256 * 1024;
    const maxFrameSize = 16 * 1024;
    const { s } = await server({ maxMessageSize, maxFrameSize, partSize: 16 * 1024, maxInboundBytes: maxMessageSize + maxFrameSize }, length);
    const body = 'z'.repeat(maxMessageSize - 1024);
    const holder = await raw(s.endpoint());
    holder.socket.write(Buffer.concat(splitRequest(1, body, 16 * 1024).slice(0, -1)));
    await sleep(50);
    const c = await raw(s.endpoint());
    c.socket.write(Buffer.concat(splitRequest(2, body, 16 * 1024)));
    await sleep(100);
    expect(c.responses()).toEqual([]);
    holder.destroy();
    await until(() => c.responses().length === 1, 'the answer once the holder left');
    expect(c.responses()[0]).toEqual({ id: 2, ok: body.length });
  });

  it('a client that stops in the middle of a request is closed as idle and gives its budget back', async () => {
    const maxMessageSize = 256 * 1024;
    const maxFrameSize = 16 * 1024;
    const { s } = await server({ maxMessageSize, maxFrameSize, partSize: 16 * 1024, maxInboundBytes: maxMessageSize + maxFrameSize, clientIdleTimeoutMs: 100 }, length);
    const body = 'w'.repeat(maxMessageSize - 1024);
    const stalled = await raw(s.endpoint());
    stalled.socket.write(splitRequest(1, body, 16 * 1024)[0]!);
    await sleep(50);
    const c = await raw(s.endpoint());
    c.socket.write(Buffer.concat(splitRequest(2, body, 16 * 1024)));
    await until(() => c.responses().length === 1, 'the answer once the stalled client was closed');
    expect(stalled.closed).toBe(true);
    expect(c.responses()[0]).toEqual({ id: 2, ok: body.length });
  });

  it('refuses a maxInboundBytes that cannot hold one largest message', () => {
    expect(() => createRequestServer({ clusterId: 'limits', listen: { port: 0 }, maxMessageSize: 1024 * 1024, maxInboundBytes: 1024 * 1024 })).toThrow(/maxInboundBytes/);
  });
});
