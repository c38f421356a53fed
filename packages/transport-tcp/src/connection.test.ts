import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, FramedConnection, HANDSHAKE_FRAME_LIMIT, type ConnectionLimits } from './connection';
import { FrameFlag, FrameParser, FrameType, type Frame } from './frame';

/** A connected socket pair on 127.0.0.1. */
async function socketPair(): Promise<{ client: Socket; server: Socket; close(): Promise<void> }> {
  let server!: Socket;
  const srv: Server = createServer((s) => (server = s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = connect({ host: '127.0.0.1', port: (srv.address() as { port: number }).port });
  await new Promise((r) => client.once('connect', r));
  while (server === undefined) await new Promise((r) => setTimeout(r, 1));
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

function rawFrames(socket: Socket): Frame[] {
  const parser = new FrameParser(1 << 24);
  const frames: Frame[] = [];
  socket.on('data', (d) => frames.push(...parser.push(d)));
  return frames;
}

/** Polls `cond` until it holds, for up to 10 s (generous: CI machines can be slow), then asserts it. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe('FramedConnection', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function setup(limits: Partial<ConnectionLimits> = {}) {
    const pair = await socketPair();
    cleanups.push(pair.close);
    const conn = new FramedConnection(pair.client, { ...DEFAULT_LIMITS, ...limits }, { message() {}, close() {} });
    conn.establish();
    return { pair, conn };
  }

  it('splits a large message into parts of at most partSize, first and last flagged', async () => {
    const { pair, conn } = await setup({ partSize: 64 * 1024 });
    const frames = rawFrames(pair.server);
    const size = 1024 * 1024 + 123;
    expect(conn.send(FrameType.Message, Buffer.alloc(size, 7))).toBe('queued');
    const parts = Math.ceil((size + 5) / (64 * 1024));
    await until(() => frames.length === parts);
    expect(frames.every((f) => f.type === FrameType.Part && f.body.byteLength <= 64 * 1024)).toBe(true);
    expect(frames.map((f) => f.flags & (FrameFlag.First | FrameFlag.Last))).toEqual([
      FrameFlag.First,
      ...Array(parts - 2).fill(0),
      FrameFlag.Last,
    ]);
    expect(frames.reduce((n, f) => n + f.body.byteLength, 0)).toBe(size + 5);
  });

  it('reassembles parts into one message of the announced size', async () => {
    const { pair, conn } = await setup({ partSize: 4096 });
    const got: Array<[number, number, boolean]> = [];
    new FramedConnection(pair.server, { ...DEFAULT_LIMITS, partSize: 4096 }, { message: (t, b, own) => got.push([t, b.byteLength, own]), close() {} }).establish();
    conn.send(FrameType.Message, Buffer.alloc(100_000, 1));
    conn.send(FrameType.Message, Buffer.alloc(10, 1));
    await until(() => got.length === 2);
    // The small one was queued after the big one and still arrived first.
    expect(got).toEqual([
      [FrameType.Message, 10, false],
      [FrameType.Message, 100_000, true],
    ]);
  });

  it('a small frame sent while a 16 MiB message is in flight overtakes most of it', async () => {
    const { pair, conn } = await setup({ partSize: 64 * 1024, maxMessageSize: 32 << 20, maxQueueBytes: 64 << 20 });
    const frames = rawFrames(pair.server);
    // Queue the heartbeat the moment the 8th part arrives. (Polling for it could notice only much later on a
    // busy machine, after most of the message went through, and the test would measure the poll, not the lanes.)
    let heartbeatQueued = false;
    pair.server.on('data', () => {
      if (heartbeatQueued || frames.length < 8) return;
      heartbeatQueued = true;
      conn.send(FrameType.Message, Buffer.from('heartbeat'));
    });
    conn.send(FrameType.Message, Buffer.alloc(16 << 20, 3));
    await until(() => frames.some((f) => f.type === FrameType.Message));
    const at = frames.findIndex((f) => f.type === FrameType.Message);
    const totalParts = Math.ceil(((16 << 20) + 5) / (64 * 1024));
    // At most what the kernel already held went first, never the rest of the 256 parts.
    expect(at).toBeLessThan(totalParts / 2);
    await until(() => frames.length === totalParts + 1);
  });

  it('bounds what it queues when the other side does not read, and reports full', async () => {
    const { pair, conn } = await setup({ maxQueueBytes: 1 << 20, maxQueueMessages: 100_000 });
    pair.server.pause();
    const body = Buffer.alloc(1024, 1);
    const results = new Map<string, number>();
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 500; i++) {
        const r = conn.send(FrameType.Message, body);
        results.set(r, (results.get(r) ?? 0) + 1);
      }
      await new Promise((r) => setImmediate(r));
      expect(conn.pendingBytes).toBeLessThanOrEqual((1 << 20) + 64 * 1024);
    }
    expect(results.get('full')).toBeGreaterThan(0);
    // What went out is what the kernel took; it is far less than the 20 MB offered.
    expect(results.get('queued')! * 1036).toBeLessThan(20_000 * 1036);
  });

  it('closes a connection whose other side stops reading for stallTimeoutMs', async () => {
    const { pair, conn } = await setup({ stallTimeoutMs: 100 });
    let closedWith: Error | undefined;
    conn.setEvents({ message() {}, close: (e) => (closedWith = e) });
    pair.server.pause();
    // Keep offering data until the kernel buffers are full and the stall timer closes the connection.
    const deadline = Date.now() + 10_000;
    while (!conn.isClosed && Date.now() < deadline) {
      conn.send(FrameType.Message, Buffer.alloc(32 * 1024));
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => closedWith !== undefined);
    expect(closedWith!.message).toContain('read nothing');
  });

  it('bounds queued messages by count', async () => {
    const { pair, conn } = await setup({ maxQueueMessages: 10 });
    pair.server.pause();
    const r = Array.from({ length: 20 }, () => conn.send(FrameType.Message, Buffer.from('x')));
    expect(r.filter((x) => x === 'queued')).toHaveLength(10);
    expect(r.filter((x) => x === 'full')).toHaveLength(10);
  });

  it('before the handshake, refuses split messages and frames above the handshake limit', async () => {
    for (const [size, partSize, reason] of [
      [100_000, 4096, 'bad-part'],
      [HANDSHAKE_FRAME_LIMIT + 1, 64 * 1024, 'too-large'],
    ] as const) {
      const { pair, conn } = await setup({ partSize });
      let closedWith: Error | undefined;
      new FramedConnection(pair.server, DEFAULT_LIMITS, { message() {}, close: (e) => (closedWith = e) });
      conn.send(FrameType.Message, Buffer.alloc(size));
      await until(() => closedWith !== undefined);
      expect(closedWith).toMatchObject({ reason });
    }
  });

  it('refuses messages above maxMessageSize and sends after close report closed', async () => {
    const { conn } = await setup({ maxMessageSize: 1000 });
    expect(conn.send(FrameType.Message, Buffer.alloc(1001))).toBe('too-large');
    conn.destroy();
    expect(conn.send(FrameType.Message, Buffer.alloc(1))).toBe('closed');
  });
});
