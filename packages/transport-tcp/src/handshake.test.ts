import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { decodePlain, encodePlain } from './codec';
import { FrameParser, FrameType, encodeFrame, type Frame } from './frame';
import { PROTOCOL_VERSION } from './handshake';
import { memoryLogger, startTcpCluster, type MemoryLogger, type TcpCluster } from './testing';
import type { TcpTransportOptions } from './transport';

const tlsFile = (name: string) => readFileSync(fileURLToPath(new URL(`../testdata/tls/${name}`, import.meta.url)), 'utf8');

/** Waits until `cond` holds, polling; fails with `what` after 10 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A raw client speaking frames by hand. */
async function rawClient(port: number): Promise<{ socket: Socket; frames: Frame[]; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((r) => socket.once('connect', r));
  const parser = new FrameParser(1 << 20);
  const frames: Frame[] = [];
  socket.on('data', (d) => frames.push(...parser.push(d)));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, frames, closed };
}

function hello(overrides: Record<string, unknown> = {}): Buffer {
  return encodeFrame(
    FrameType.Hello,
    encodePlain({ v: PROTOCOL_VERSION, cluster: 'c', kind: 'peer', from: 'a', nonce: new Uint8Array(32), ...overrides }),
  );
}

describe('handshake', () => {
  let cluster: TcpCluster | undefined;
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    for (const c of closers.splice(0)) await c();
  });

  async function pair(a: Partial<TcpTransportOptions>, b: Partial<TcpTransportOptions>): Promise<{ la: MemoryLogger; lb: MemoryLogger; c: TcpCluster }> {
    const la = memoryLogger();
    const lb = memoryLogger();
    cluster = await startTcpCluster(['a', 'b'], 'c', (id) => ({ logger: id === 'a' ? la : lb, ...(id === 'a' ? a : b) }));
    return { la, lb, c: cluster };
  }

  it('connects with a shared secret and never sends the secret', async () => {
    const secret = 'correct-horse-battery-staple';
    const { c } = await pair({ secret }, { secret });
    // Put a recording proxy between a and b.
    const seen: Buffer[] = [];
    const proxy: Server = createServer((down) => {
      const up = connect({ host: '127.0.0.1', port: c.transports.b!.address().port });
      down.on('data', (d) => (seen.push(d), up.write(d)));
      up.on('data', (d) => (seen.push(d), down.write(d)));
      const end = () => (down.destroy(), up.destroy());
      down.on('close', end).on('error', end);
      up.on('close', end).on('error', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => proxy.close(r)));
    const port = (proxy.address() as { port: number }).port;
    c.transports.a!.setPeers({ a: c.endpoints.a!, b: `127.0.0.1:${port}` });
    c.transports.a!.send([{ from: 'a', to: 'b', msg: 'authenticated' }]);
    const [env] = await c.handlers.b!.waitFor(1);
    expect(env!.msg).toBe('authenticated');
    const wire = Buffer.concat(seen);
    expect(wire.length).toBeGreaterThan(0);
    expect(wire.includes(Buffer.from(secret))).toBe(false);
  });

  it.each([
    ['cluster-mismatch', { clusterId: 'other' }, {}],
    ['bad-secret', { secret: 'one' }, { secret: 'two' }],
  ] as const)('refuses %s with a logged reason on the accepting node and a typed code on the dialer', async (code, a, b) => {
    const { la, lb, c } = await pair(a, b);
    c.transports.a!.send([{ from: 'a', to: 'b', msg: 'x' }]);
    await c.handlers.a!.waitUnreachable('b');
    await until(() => lb.withCode(code).length > 0, `b to log ${code}`);
    expect(lb.withCode(code)[0]!.msg).toBe('handshake refused');
    await until(() => la.withCode(code).length > 0, `a to log ${code}`);
    expect(la.withCode(code)[0]!.msg).toBe('handshake refused by the remote side');
    expect(c.handlers.b!.received).toHaveLength(0);
  });

  it('refuses a node id the acceptor does not know', async () => {
    const { lb, c } = await pair({}, {});
    c.transports.b!.setPeers({ b: c.endpoints.b!, z: '127.0.0.1:1' });
    c.transports.a!.send([{ from: 'a', to: 'b', msg: 'x' }]);
    await until(() => lb.withCode('unknown-node').length > 0, 'unknown-node');
    await c.handlers.a!.waitUnreachable('b');
    expect(c.handlers.b!.received).toHaveLength(0);
  });

  it('refuses a dialer that reached the wrong node', async () => {
    const { la, c } = await pair({}, {});
    // a believes b lives at a's own address.
    c.transports.a!.setPeers({ a: c.endpoints.a!, b: c.endpoints.a! });
    c.transports.a!.send([{ from: 'a', to: 'b', msg: 'x' }]);
    await until(() => la.withCode('wrong-node').length > 0, 'wrong-node');
  });

  it('a secret on one side only is refused both ways', async () => {
    const { la, lb, c } = await pair({}, { secret: 's' });
    c.transports.a!.send([{ from: 'a', to: 'b', msg: 'x' }]);
    await until(() => la.withCode('secret-required').length > 0 && lb.withCode('secret-required').length > 0, 'secret-required on both');
    // b (with a secret) dialing a (without): a cannot prove it holds the secret, b refuses it.
    c.transports.b!.send([{ from: 'b', to: 'a', msg: 'y' }]);
    await until(() => lb.withCode('secret-required').length > 1, 'b refusing a');
    expect(c.handlers.a!.received).toHaveLength(0);
    expect(c.handlers.b!.received).toHaveLength(0);
  });

  it('refuses a protocol version it does not speak, answering with a REJECT frame', async () => {
    const { lb, c } = await pair({}, {});
    const raw = await rawClient(c.transports.b!.address().port);
    raw.socket.write(hello({ v: PROTOCOL_VERSION + 1 }));
    await raw.closed;
    expect(raw.frames.map((f) => f.type)).toEqual([FrameType.Reject]);
    expect(decodePlain(raw.frames[0]!.body)).toMatchObject({ code: 'version-mismatch' });
    expect(lb.withCode('version-mismatch')).toHaveLength(1);
  });

  it('closes a connection that never says hello', async () => {
    const lb = memoryLogger();
    cluster = await startTcpCluster(['b'], 'c', () => ({ logger: lb, handshakeTimeoutMs: 100 }));
    const raw = await rawClient(cluster.transports.b!.address().port);
    await raw.closed;
    expect(lb.withCode('timeout')).toHaveLength(1);
  });

  it('runs over TLS, and with mutual TLS refuses a client certificate from another CA', async () => {
    const ca = tlsFile('ca.crt');
    const tls = { ca, cert: tlsFile('node.crt'), key: tlsFile('node.key'), mutual: true };
    const lb = memoryLogger();
    cluster = await startTcpCluster(['a', 'b', 'r'], 'c', (id) =>
      id === 'r' ? { tls: { ca, cert: tlsFile('rogue.crt'), key: tlsFile('rogue.key') } } : { tls, logger: id === 'b' ? lb : memoryLogger() },
    );
    const { transports: t, handlers: h } = cluster;
    t.a!.send([{ from: 'a', to: 'b', msg: 'over tls' }]);
    expect((await h.b!.waitFor(1))[0]!.msg).toBe('over tls');
    t.r!.send([{ from: 'r', to: 'b', msg: 'rogue' }]);
    await h.r!.waitUnreachable('b');
    await until(() => lb.lines.some((l) => l.msg === 'tls handshake failed'), 'tls refusal logged');
    expect(h.b!.received.map((e) => e.msg)).toEqual(['over tls']);
  });
});
