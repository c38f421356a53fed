import { setMaxListeners } from 'node:events';
import { silentLogger } from '@consensus-kit/core/host';
import { AbortedError, InvalidArgumentError, TransportError } from '@consensus-kit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createCodec, isRecord } from './codec';
import { DEFAULT_LIMITS, type FramedConnection } from './connection';
import { dial } from './dial';
import { FrameType } from './frame';
import { createRequestServer, type RequestContext, type RequestServer } from './request-server';
import { createRpcClient, type RpcClient } from './rpc-client';
import { DEFAULT_PUSH_LIMITS, SlowSubscriberError, encodePush, type Subscription } from './subscription';

/** A decoded value with every Uint8Array (Buffer or not) turned into a plain array of its bytes. */
function bytesAsArrays(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(bytesAsArrays);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesAsArrays(x)]));
  return v;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error('condition not reached in time');
}

describe('server push (subscriptions)', () => {
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });

  async function server(handler: Parameters<RequestServer['onRequest']>[0], options: Partial<Parameters<typeof createRequestServer>[0]> = {}): Promise<RequestServer> {
    const s = createRequestServer({ clusterId: 'push', listen: { host: '127.0.0.1', port: 0 }, ...options });
    s.onRequest(handler);
    await s.start();
    stops.push(() => s.stop());
    return s;
  }

  function client(endpoints: string[]): RpcClient {
    const c = createRpcClient({ endpoints, clusterId: 'push', connectTimeoutMs: 5000, handshakeTimeoutMs: 5000 });
    stops.push(() => c.close());
    return c;
  }

  /** A handler that pushes `count` numbers, then answers 'done'. */
  const counter = (body: unknown, ctx: RequestContext) => {
    const sub = ctx.subscription;
    if (sub === undefined) throw new InvalidArgumentError('open this as a subscription');
    const count = (body as { count: number }).count;
    for (let i = 0; i < count; i++) sub.push(i);
    return 'done';
  };

  it('pushes values in order, then the final answer', async () => {
    const s = await server(counter);
    const c = client([s.endpoint()]);
    const seen: unknown[] = [];
    const final = await c.subscribe({ count: 1000 }, (v) => seen.push(v));
    expect(final).toBe('done');
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('refuses a subscription past maxSubscriptions on one connection with a typed error, and takes one again once another ends', async () => {
    const subs: Subscription[] = [];
    const s = await server(
      (_body, ctx) => {
        subs.push(ctx.subscription!);
        return new Promise((resolve) => ctx.subscription!.signal.addEventListener('abort', () => resolve(undefined)));
      },
      { push: { ...DEFAULT_PUSH_LIMITS, maxSubscriptions: 3 } },
    );
    const c = client([s.endpoint()]);
    const acs = [0, 1, 2].map(() => new AbortController());
    const open = acs.map((ac) => c.subscribe({ t: 'watch' }, () => undefined, { signal: ac.signal }).catch((e: unknown) => e));
    await waitFor(() => subs.length === 3);
    const fourth = await c.subscribe({ t: 'watch' }, () => undefined).catch((e: unknown) => e);
    expect(fourth).toBeInstanceOf(TransportError);
    expect((fourth as Error).message).toMatch(/too many subscriptions on one connection \(at most 3\)/);
    expect(subs).toHaveLength(3);
    acs[0]!.abort();
    const again = new AbortController();
    const fifth = c.subscribe({ t: 'watch' }, () => undefined, { signal: again.signal }).catch((e: unknown) => e);
    // Opened right after the cancel, before the cancelled handler has settled: taken all the same.
    await waitFor(() => subs.length === 4);
    again.abort();
    for (const ac of acs) ac.abort();
    await Promise.all([...open, fifth]);
  });

  it('a plain request has no subscription, and requests keep working beside open subscriptions', async () => {
    const subs: Subscription[] = [];
    const s = await server((body, ctx) => {
      if ((body as { t: string }).t === 'ping') return { hasSubscription: ctx.subscription !== undefined };
      subs.push(ctx.subscription!);
      return new Promise((resolve) => ctx.subscription!.signal.addEventListener('abort', () => resolve(undefined)));
    });
    const c = client([s.endpoint()]);
    const ac = new AbortController();
    setMaxListeners(300, ac.signal);
    // More open subscriptions than the request concurrency bound: they are not counted as requests in flight.
    const open = Array.from({ length: 200 }, () => c.subscribe({ t: 'watch' }, () => undefined, { signal: ac.signal }).catch((e: unknown) => e));
    await waitFor(() => subs.length === 200);
    expect(await c.request({ t: 'ping' })).toEqual({ hasSubscription: false });
    ac.abort();
    for (const r of await Promise.all(open)) expect(r).toBeInstanceOf(AbortedError);
  });

  it('a cancel from the client aborts the subscription on the server, and nothing more is pushed', async () => {
    let sub: Subscription | undefined;
    let stopped: unknown;
    const s = await server((_body, ctx) => {
      sub = ctx.subscription!;
      return new Promise((resolve) =>
        sub!.signal.addEventListener('abort', () => {
          stopped = sub!.signal.reason;
          resolve('never seen');
        }),
      );
    });
    const c = client([s.endpoint()]);
    const ac = new AbortController();
    const seen: unknown[] = [];
    const p = c.subscribe({}, (v) => seen.push(v), { signal: ac.signal });
    await waitFor(() => sub !== undefined);
    sub!.push('a');
    await waitFor(() => seen.length === 1);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    await waitFor(() => stopped !== undefined);
    expect(TransportError.is(stopped)).toBe(true);
    expect((stopped as Error).message).toMatch(/cancelled by the client/);
    expect(sub!.push('b')).toBe(false);
    expect(seen).toEqual(['a']);
  });

  it('the server closing ends the subscription with a TransportError on the client', async () => {
    const s = await server((_b, ctx) => {
      ctx.subscription!.push('hello');
      return new Promise(() => undefined);
    });
    const c = client([s.endpoint()]);
    const seen: unknown[] = [];
    const p = c.subscribe({}, (v) => seen.push(v));
    await waitFor(() => seen.length === 1);
    await s.stop();
    const e = await p.catch((x: unknown) => x);
    expect(TransportError.is(e)).toBe(true);
    expect((e as Error).message).toMatch(/^connection lost: the subscription ended/);
    expect(seen).toEqual(['hello']);
  });

  it('an error from the handler is the final answer, with its type', async () => {
    const s = await server(() => {
      throw new InvalidArgumentError('no such stream');
    });
    const c = client([s.endpoint()]);
    const e = await c.subscribe({}, () => undefined).catch((x: unknown) => x);
    expect(InvalidArgumentError.is(e)).toBe(true);
    expect((e as Error).message).toMatch(/no such stream/);
  });

  it('a server without subscriptions (the handler ignores them) answers as a request: the usual typed error', async () => {
    // What an old server does with { id, body, sub: 1 }: hands the body to a handler that does not know it.
    const s = await server((body) => {
      if ((body as { t: string }).t !== 'kv.read') throw new InvalidArgumentError(`unknown kv request type '${(body as { t: string }).t}'`);
      return 1;
    });
    const c = client([s.endpoint()]);
    const e = await c.subscribe({ t: 'kv.watch' }, () => undefined).catch((x: unknown) => x);
    expect(InvalidArgumentError.is(e)).toBe(true);
  });

  /** A raw client connection that opens a subscription and can stop reading (a slow subscriber). */
  async function rawSubscriber(endpoint: string): Promise<{ conn: FramedConnection; frames: Record<string, unknown>[]; closed: () => boolean }> {
    const { conn } = await dial({
      address: endpoint,
      connectTimeoutMs: 5000,
      limits: DEFAULT_LIMITS,
      handshake: { clusterId: 'push', id: 'slow-client', timeoutMs: 5000, kind: 'client', logger: silentLogger },
    });
    const codec = createCodec();
    const frames: Record<string, unknown>[] = [];
    let closed = false;
    conn.setEvents({
      message(type, body) {
        if (type === FrameType.Response) {
          const v = codec.decode(body);
          if (isRecord(v)) frames.push(v);
        }
      },
      close() {
        closed = true;
      },
    });
    stops.push(async () => conn.destroy());
    conn.send(FrameType.Request, codec.encode({ id: 1, body: {}, sub: 1 }));
    return { conn, frames, closed: () => closed };
  }

  it('a slow subscriber is cancelled with a reason once it holds more than its bound, and the server holds no more than that', async () => {
    const bound = 256 * 1024;
    let sub: Subscription | undefined;
    let ended: unknown;
    const s = await server(
      (_b, ctx) => {
        sub = ctx.subscription!;
        return new Promise((resolve) =>
          sub!.signal.addEventListener('abort', () => {
            ended = sub!.signal.reason;
            resolve('unused');
          }),
        );
      },
      { push: { pushHighWaterBytes: 64 * 1024, maxSubscriptionBufferBytes: bound, maxConnectionPushBytes: 1024 * 1024 } },
    );
    const raw = await rawSubscriber(s.endpoint());
    await waitFor(() => sub !== undefined);
    raw.conn.pause(); // stops reading: the kernel buffers fill, then the server's
    const chunk = 'x'.repeat(16 * 1024);
    let accepted = 0;
    // Bounded: the kernel's socket buffers plus the server's bounds are far below 64 MiB.
    while (accepted < 4096 && sub!.push({ n: accepted, chunk })) {
      accepted++;
      if (accepted % 32 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(accepted).toBeLessThan(4096);
    expect(SlowSubscriberError.is(ended)).toBe(true);
    expect(String((ended as Error).message)).toMatch(/slow subscriber/);
    expect(sub!.push({ n: -1, chunk })).toBe(false);
    // The client reads again: every accepted push arrives, in order, then the final error with the reason.
    raw.conn.resume();
    await waitFor(() => raw.frames.some((f) => 'error' in f), 10_000);
    const pushes = raw.frames.filter((f) => 'push' in f).map((f) => (f.push as { n: number }).n);
    expect(pushes).toEqual(Array.from({ length: accepted }, (_, i) => i));
    const last = raw.frames[raw.frames.length - 1]!;
    expect((last.error as { message: string }).message).toMatch(/slow subscriber/);
  });

  it('the connection-wide bound cancels a subscription even when each one stays under its own', async () => {
    const subs: Subscription[] = [];
    const s = await server(
      (_b, ctx) => {
        subs.push(ctx.subscription!);
        return new Promise((resolve) => ctx.subscription!.signal.addEventListener('abort', () => resolve(undefined)));
      },
      { push: { pushHighWaterBytes: 32 * 1024, maxSubscriptionBufferBytes: 1024 * 1024, maxConnectionPushBytes: 256 * 1024 } },
    );
    const raw = await rawSubscriber(s.endpoint());
    const codec = createCodec();
    raw.conn.send(FrameType.Request, codec.encode({ id: 2, body: {}, sub: 1 }));
    await waitFor(() => subs.length === 2);
    raw.conn.pause();
    const chunk = 'y'.repeat(16 * 1024);
    let i = 0;
    while (i < 4096 && subs.every((x) => !x.signal.aborted)) {
      subs[i % 2]!.push({ i, chunk });
      i++;
      if (i % 32 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(i).toBeLessThan(4096);
    const cancelled = subs.filter((x) => x.signal.aborted);
    expect(cancelled).toHaveLength(1);
    expect(String((cancelled[0]!.signal.reason as Error).message)).toMatch(/slow subscriber.*one connection/);
  });

  it('a push over maxMessageSize ends the subscription with a non-retryable InvalidArgumentError, after the pushes before it', async () => {
    let aborted: unknown;
    const s = await server(
      (_b, ctx) => {
        const sub = ctx.subscription!;
        sub.push('small');
        expect(sub.push(new Uint8Array(2 * 1024 * 1024))).toBe(false);
        aborted = sub.signal.reason;
        return new Promise(() => undefined); // the handler never settles: the server's cancel ends it
      },
      { maxMessageSize: 1024 * 1024 },
    );
    const c = client([s.endpoint()]);
    const got: unknown[] = [];
    const err = await c.subscribe('x', (v) => got.push(v)).catch((e: unknown) => e);
    expect(got).toEqual(['small']);
    // The same push would be refused at every attempt: a TransportError would have a client retry forever.
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/a push of \d+ bytes exceeds maxMessageSize \(1048576 bytes\)/);
    expect(InvalidArgumentError.is(aborted)).toBe(true);
  });

  it('a client that disconnects aborts its subscriptions on the server', async () => {
    let sub: Subscription | undefined;
    const s = await server((_b, ctx) => {
      sub = ctx.subscription!;
      return new Promise(() => undefined);
    });
    const raw = await rawSubscriber(s.endpoint());
    await waitFor(() => sub !== undefined);
    raw.conn.destroy();
    await waitFor(() => sub!.signal.aborted);
    expect(sub!.push('late')).toBe(false);
  });

  it('a subscription skips an endpoint that is down', async () => {
    const s = await server(counter);
    const dead = createRequestServer({ clusterId: 'push', listen: { host: '127.0.0.1', port: 0 } });
    await dead.start();
    const deadEndpoint = dead.endpoint();
    await dead.stop();
    const c = createRpcClient({ endpoints: [deadEndpoint, s.endpoint()], clusterId: 'push', connectTimeoutMs: 2000 });
    stops.push(() => c.close());
    const seen: unknown[] = [];
    expect(await c.subscribe({ count: 3 }, (v) => seen.push(v))).toBe('done');
    expect(seen).toEqual([0, 1, 2]);
    expect(c.subscribeEndpoint).toBe(s.endpoint());
  });

  it('a value pushed to many subscriptions is encoded once and decodes the same for every id size', () => {
    const codec = createCodec();
    const value = { events: [{ type: 'put', revision: 7, kv: { key: 'k', value: new Uint8Array([1, 2]) } }], revision: 7 };
    for (const id of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff, 2 ** 40, -3]) {
      // Decodes exactly as the plain encoding of { id, push } does.
      // (Binary fields may come back as Buffer or as Uint8Array: both are Uint8Arrays with the same bytes.)
      expect(bytesAsArrays(codec.decode(encodePush(codec, id, value)))).toEqual(bytesAsArrays(codec.decode(codec.encode({ id, push: value }))));
    }
    const a = encodePush(codec, 5, value);
    const b = encodePush(codec, 6, value);
    expect(a.subarray(5)).toEqual(b.subarray(5)); // the same payload bytes after the id
  });
});
