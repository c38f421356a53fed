import { createServer, type Server, type Socket } from 'node:net';
import {
  AbortedError,
  ErrorCode,
  InvalidArgumentError,
  NotLeaderError,
  ProposalDroppedError,
  TimeoutError,
  TransportError,
  isConsensusError,
} from '@consensus-kit/core';
import { ManualClock } from '@consensus-kit/core/host';
import { afterEach, describe, expect, it } from 'vitest';
import { HandshakeError } from './errors';
import { createRequestServer, redirect, type RequestContext, type RequestServer } from './request-server';
import { createRpcClient, type RpcClient } from './rpc-client';
import { memoryLogger, startTcpCluster, type TcpCluster } from './testing';

/** Polls `cond` until it holds or `ms` pass (generous: CI machines can be slow). */
async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
}

describe('client channel', () => {
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });

  async function server(handler: Parameters<RequestServer['onRequest']>[0], options: Partial<Parameters<typeof createRequestServer>[0]> = {}): Promise<RequestServer> {
    const s = createRequestServer({ clusterId: 'rpc', listen: { host: '127.0.0.1', port: 0 }, ...options });
    s.onRequest(handler);
    await s.start();
    stops.push(() => s.stop());
    return s;
  }

  // Connect and handshake timeouts well above what a busy machine needs for a local connection (the defaults are
  // tuned for skipping dead nodes quickly); tests about those timeouts set their own.
  function client(endpoints: string[], options: Partial<Parameters<typeof createRpcClient>[0]> = {}): RpcClient {
    const c = createRpcClient({ endpoints, clusterId: 'rpc', connectTimeoutMs: 5000, handshakeTimeoutMs: 5000, ...options });
    stops.push(() => c.close());
    return c;
  }

  it('matches responses to requests by id, whatever order they finish in', async () => {
    const s = await server(async (body) => {
      const n = (body as { n: number }).n;
      await new Promise((r) => setTimeout(r, (n * 7) % 13));
      return { n, square: n * n };
    });
    const c = client([s.endpoint()]);
    const out = await Promise.all(Array.from({ length: 200 }, (_, n) => c.request<{ n: number; square: number }>({ n })));
    expect(out).toEqual(Array.from({ length: 200 }, (_, n) => ({ n, square: n * n })));
  });

  it('carries large bodies both ways', async () => {
    const s = await server((body) => ({ echoed: body }));
    const c = client([s.endpoint()]);
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
    const out = await c.request<{ echoed: { data: Uint8Array } }>({ data });
    expect(Buffer.from(out.echoed.data).equals(Buffer.from(data))).toBe(true);
  });

  it('times out with TimeoutError and cancels the request on the server', async () => {
    let serverSignal: AbortSignal | undefined;
    const s = await server((body, ctx) => {
      if (body === 'ping') return 'pong';
      serverSignal = ctx.signal;
      return new Promise(() => {});
    });
    const c = client([s.endpoint()]);
    // Connect first, so the request surely leaves before its deadline (a timeout during connect sends nothing).
    expect(await c.request('ping')).toBe('pong');
    const err = await c.request('slow', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(TimeoutError.is(err)).toBe(true);
    await waitFor(() => serverSignal?.aborted === true);
    expect(serverSignal?.aborted).toBe(true);
  });

  it('moves off an endpoint that let a request time out: a frozen node keeps its connection open and answers nothing', async () => {
    let frozen = false;
    const a = await server((body) => (frozen ? new Promise(() => {}) : { from: 'a', body }));
    const b = await server((body) => ({ from: 'b', body }));
    const c = client([a.endpoint(), b.endpoint()]);
    expect(await c.request('ping')).toEqual({ from: 'a', body: 'ping' });
    frozen = true;
    const err = await c.request('first', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(TimeoutError.is(err)).toBe(true);
    // Without moving on, every later request would wait on the frozen node again and time out the same way.
    expect(await c.request('second', { timeoutMs: 2000 })).toEqual({ from: 'b', body: 'second' });
    expect(c.preferred).toBe(b.endpoint());
  });

  it('calls in flight time out each at its own deadline, in deadline order, and answered ones are untouched', async () => {
    let release: (() => void) | undefined;
    const s = await server(async (body) => {
      if (body === 'ping') return 'pong';
      if (body === 'late') {
        await new Promise<void>((r) => (release = r));
        return 'done';
      }
      return new Promise(() => {});
    });
    // Deadlines run on the injected clock: time moves only when the test says so, never with the machine's load.
    const clock = new ManualClock();
    const c = client([s.endpoint()], { clock });
    expect(await c.request('ping')).toBe('pong');
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>) =>
      p.then(
        (v) => settled.push(`${name} ok ${String(v)} at ${clock.now()}`),
        (e: unknown) => settled.push(`${name} ${TimeoutError.is(e) ? 'timeout' : String(e)} at ${clock.now()}`),
      );
    // The longer deadline is set first: the shorter one, set after it, must still fire first.
    const a = track('a', c.request('slow-a', { timeoutMs: 600 }));
    const b = track('b', c.request('slow-b', { timeoutMs: 150 }));
    const late = track('late', c.request('late', { timeoutMs: 5000 }));
    await waitFor(() => release !== undefined);
    release!();
    await late;
    clock.advance(149);
    await Promise.resolve();
    expect(settled).toEqual(['late ok done at 0']);
    clock.advance(1);
    await b;
    clock.advance(449);
    await Promise.resolve();
    expect(settled).toEqual(['late ok done at 0', 'b timeout at 150']);
    clock.advance(1);
    await a;
    expect(settled).toEqual(['late ok done at 0', 'b timeout at 150', 'a timeout at 600']);
    expect(await c.request('ping')).toBe('pong');
  });

  it('aborts with AbortedError when the signal fires, and cancels on the server', async () => {
    let serverSignal: AbortSignal | undefined;
    const s = await server((_body, ctx) => {
      serverSignal = ctx.signal;
      return new Promise(() => {});
    });
    const c = client([s.endpoint()]);
    const ac = new AbortController();
    const p = c.request('x', { signal: ac.signal, timeoutMs: 10_000 });
    await waitFor(() => serverSignal !== undefined);
    ac.abort(new Error('user gave up'));
    const err = await p.catch((e: unknown) => e);
    expect(AbortedError.is(err)).toBe(true);
    await waitFor(() => serverSignal?.aborted === true);
    expect(serverSignal?.aborted).toBe(true);
    // An already-aborted signal fails at once.
    expect(AbortedError.is(await c.request('y', { signal: ac.signal }).catch((e: unknown) => e))).toBe(true);
  });

  it('a signal first read after the cancel is born aborted; connectionSignal aborts when the client goes away', async () => {
    let release: (() => void) | undefined;
    let ctxSeen: RequestContext | undefined;
    const s = await server(async (body, ctx) => {
      if (body === 'ping') return 'pong';
      ctxSeen = ctx;
      await new Promise<void>((r) => (release = r));
      return 'late';
    });
    const c = client([s.endpoint()]);
    expect(await c.request('ping')).toBe('pong');
    const p = c.request('x', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(TimeoutError.is(await p)).toBe(true);
    await waitFor(() => ctxSeen !== undefined);
    // The handler never looked at `signal`, so the cancel had no controller to abort: it is created aborted.
    // Frames on one connection are handled in order, so once this ping is answered the cancel was handled.
    expect(await c.request('ping')).toBe('pong');
    expect(ctxSeen?.signal.aborted).toBe(true);
    expect(ctxSeen?.connectionSignal.aborted).toBe(false);
    release?.();
    await c.close();
    await waitFor(() => ctxSeen?.connectionSignal.aborted === true);
    expect(ctxSeen?.connectionSignal.aborted).toBe(true);
  });

  it('follows redirects to the leader (NotLeaderError with a hint, or redirect())', async () => {
    let cluster: TcpCluster | undefined = await startTcpCluster(['a', 'b', 'c'], 'rpc');
    stops.push(async () => cluster?.stop());
    const { transports: t } = cluster;
    t.a!.onRequest(() => {
      throw new NotLeaderError('b');
    });
    t.b!.onRequest(() => redirect(t.c!.endpoint(), 'c'));
    t.c!.onRequest((body) => ({ servedBy: 'c', body }));
    const c = client([t.a!.endpoint()]);
    expect(await c.request('hello')).toEqual({ servedBy: 'c', body: 'hello' });
    expect(c.preferred).toBe(t.c!.endpoint());
    void cluster;
    cluster = undefined;
  });

  it('gives up with NotLeaderError after maxRedirects', async () => {
    const s1 = await server(() => redirect(s2addr, 'x'));
    const s2 = await server(() => redirect(s1.endpoint(), 'y'));
    const s2addr = s2.endpoint();
    const c = client([s1.endpoint()], { maxRedirects: 3 });
    const err = await c.request('loop').catch((e: unknown) => e);
    expect(NotLeaderError.is(err)).toBe(true);
  });

  it('a redirect naming a leader id no node can have (a megabyte of text) is not carried into the error', async () => {
    const s1 = await server(() => redirect(undefined, 'x'.repeat(1 << 20)));
    const c = client([s1.endpoint()], { timeoutMs: 300 });
    const err = await c.request('hi').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message.length).toBeLessThan(10_000);
    if (NotLeaderError.is(err)) expect(err.leaderHint).toBeUndefined();
  });

  it('tries the next endpoint when one is dead or silent', async () => {
    // A closed port (refused) and a listener that accepts but never answers (a hung node).
    const silent: Socket[] = [];
    const hung: Server = createServer((s) => silent.push(s));
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    stops.push(async () => {
      for (const s of silent) s.destroy();
      await new Promise((r) => hung.close(r));
    });
    const closed = await server(() => 'never');
    const closedAddr = closed.endpoint();
    await closed.stop();
    const live = await server(() => 'alive');
    // The handshake timeout is what moves the client past the hung node, and it applies to the live node too:
    // short enough to keep the test quick, long enough that a slow but live handshake on a busy machine fits.
    // Every connect here is to a local port, so its timeout need not be short.
    const c = client([closedAddr, `127.0.0.1:${(hung.address() as { port: number }).port}`, live.endpoint()], {
      connectTimeoutMs: 5000,
      handshakeTimeoutMs: 1000,
    });
    expect(await c.request('ping', { timeoutMs: 15_000 })).toBe('alive');
    expect(c.preferred).toBe(live.endpoint());
    expect(silent.length).toBe(1);
  });

  it('rejects with TransportError when every endpoint is down', async () => {
    const s = await server(() => 'x');
    const addr = s.endpoint();
    await s.stop();
    const err = await client([addr]).request('x').catch((e: unknown) => e);
    expect(TransportError.is(err)).toBe(true);
  });

  it('limits concurrent requests per connection on the server', async () => {
    let running = 0;
    let peak = 0;
    const s = await server(
      async (body) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return body;
      },
      { maxConcurrentRequests: 4 },
    );
    const c = client([s.endpoint()]);
    const out = await Promise.all(Array.from({ length: 100 }, (_, i) => c.request(i)));
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(peak).toBe(4);
  });

  it('passes typed errors back and hides internal ones', async () => {
    const log = memoryLogger();
    const s = await server(
      (body) => {
        if (body === 'drop') throw new ProposalDroppedError('queue-full');
        throw new Error('secret internals');
      },
      { logger: log },
    );
    const c = client([s.endpoint()]);
    const dropped = await c.request('drop').catch((e: unknown) => e);
    expect(isConsensusError(dropped, ErrorCode.PROPOSAL_DROPPED)).toBe(true);
    const internal = await c.request('boom').catch((e: unknown) => e);
    expect(isConsensusError(internal, ErrorCode.INVARIANT)).toBe(true);
    expect((internal as Error).message).not.toContain('secret internals');
    expect(log.lines.some((l) => l.level === 'error' && l.fields?.reason === 'secret internals')).toBe(true);
  });

  it('a remote error arrives as the class of its code, so instanceof works on the client too', async () => {
    const s = await server(() => {
      throw new InvalidArgumentError('key must be a non-empty string');
    });
    const err = await client([s.endpoint()]).request('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe('remote: key must be a non-empty string');
  });

  it('an answer over maxMessageSize comes back as a non-retryable InvalidArgumentError that says the request was carried out', async () => {
    let handled = 0;
    const s = await server(
      (body) => {
        handled++;
        return body === 'big' ? new Uint8Array(2 * 1024 * 1024) : 'small';
      },
      { maxMessageSize: 1024 * 1024 },
    );
    const c = client([s.endpoint()]);
    const err = await c.request('big').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/answer \(\d+ bytes\) exceeds maxMessageSize \(1048576 bytes\): the request was carried out/);
    expect(handled).toBe(1); // not retried
    expect(await c.request('next')).toBe('small'); // and the connection goes on
  });

  it('a foreign cluster refuses the client with a typed handshake error', async () => {
    const s = await server(() => 'x', { clusterId: 'elsewhere' });
    const err = await client([s.endpoint()]).request('x').catch((e: unknown) => e);
    expect(HandshakeError.is(err)).toBe(true);
    expect((err as HandshakeError).reason).toBe('cluster-mismatch');
  });

  it('authenticates clients with the cluster secret', async () => {
    const s = await server((b) => b, { secret: 'k' });
    expect(await client([s.endpoint()], { secret: 'k' }).request('ok')).toBe('ok');
    const err = await client([s.endpoint()], { secret: 'wrong' }).request('x').catch((e: unknown) => e);
    expect((err as HandshakeError).reason).toBe('bad-secret');
  });

  it('a connection lost after sending rejects with TransportError (outcome unknown), not a retry', async () => {
    let calls = 0;
    const s = await server(() => {
      calls++;
      setTimeout(() => void s.stop(), 10);
      return new Promise(() => {});
    });
    const err = await client([s.endpoint()]).request('x', { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(TransportError.is(err)).toBe(true);
    expect(calls).toBe(1);
  });
});
