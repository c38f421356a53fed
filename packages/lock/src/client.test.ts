import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, MemoryStorage, combineStateMachines, NotLeaderError, SessionExpiredError, TimeoutError, TransportError } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork, ManualClock } from '@consensus-kit/core/host';
import { raft } from '@consensus-kit/raft';
import { KvStateMachine } from '@consensus-kit/kv';
import { solo } from '@consensus-kit/core/testing';
import { LockClient } from './client';
import type { LockQuery, LockResult } from './commands';
import { LockLostError, StaleTokenError } from './errors';
import { FencedResource } from './fenced-resource';
import { LockStateMachine, type LockInfo, type LockQueryResult, type LockRequest } from './lock-state-machine';
import { createLockService } from './service';
import type { LockChannel, PushSink } from './wire';

type Node = ConsensusNode<LockRequest, LockResult, LockQuery, LockQueryResult>;

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** A 3-node raft cluster on real timers (5 ms ticks, a time entry every 10 ms), each node serving the lock protocol. */
async function cluster(lockDelayMs = 100) {
  const net = new LocalNetwork();
  const ids = ['n1', 'n2', 'n3'];
  const nodes = ids.map((id) => {
    const stateMachine = new LockStateMachine({ minSessionTtlMs: 50, lockDelayMs });
    const node: Node = new ConsensusNode({ id, peers: ids, protocol: raft, storage: new MemoryStorage(), transport: net.transport(id), stateMachine, tickMs: 5, electionTicks: 10, timeIntervalMs: 10 });
    return { id, node, stateMachine, service: createLockService({ node, stateMachine }) };
  });
  for (const n of nodes) stops.push(() => n.service.close(), () => n.node.stop());
  await Promise.all(nodes.map((n) => n.node.start()));
  await Promise.all(nodes.map((n) => n.node.waitForLeader()));
  return nodes;
}

type Member = Awaited<ReturnType<typeof cluster>>[number];

/**
 * An in-process channel: requests go to the leader (a follower's NotLeaderError is retried by the client);
 * subscriptions to `listen`'s node. `cut()` makes every call fail (a client cut off from the cluster).
 */
function channel(nodes: Member[], listen = 0) {
  const state = { cut: false, calls: 0 };
  const ch: LockChannel & { state: typeof state } = {
    state,
    async request<T>(body: unknown): Promise<T> {
      state.calls++;
      if (state.cut) throw new TransportError('cut off');
      const leader = nodes.find((n) => n.node.status().role === 'leader');
      if (leader === undefined) throw new NotLeaderError(undefined);
      return (await leader.service(structuredClone(body))) as T;
    },
    async subscribe<T>(body: unknown, onPush: (v: unknown) => void, options?: { signal?: AbortSignal }): Promise<T> {
      if (state.cut) throw new TransportError('cut off');
      const ctl = new AbortController();
      options?.signal?.addEventListener('abort', () => ctl.abort(), { once: true });
      const sink: PushSink = {
        push: (v) => {
          if (!state.cut) onPush(structuredClone(v));
          return !ctl.signal.aborted;
        },
        signal: ctl.signal,
      };
      return (await (nodes[listen] as Member).service(structuredClone(body), { subscription: sink })) as T;
    },
    async close() {},
  };
  return ch;
}

/**
 * A client on the in-process cluster. Its TTL is 3 s unless a test is about expiry: the client gives a session up
 * on its own a TTL after its last acknowledged keepalive, and a loaded CI machine delayed acks past 300 ms once.
 */
function client(nodes: Member[], options: { ttlMs?: number; listen?: number } = {}) {
  const ch = channel(nodes, options.listen ?? 0);
  const c = new LockClient({ channel: ch, ttlMs: options.ttlMs ?? 3000, attemptTimeoutMs: 500, timeoutMs: 3000 });
  stops.push(() => c.close());
  return { c, ch };
}

const info = (n: Member, name = 'm') => n.stateMachine.query({ op: 'lock', name }) as LockInfo | undefined;

describe('LockClient on a 3-node raft cluster', () => {
  it('acquire, handoff by server push to the next waiter (FIFO), with a higher fencing token', async () => {
    const nodes = await cluster();
    const a = client(nodes);
    const b = client(nodes, { listen: 1 });
    const c = client(nodes, { listen: 2 });
    const ha = await a.c.acquire('m');
    const pb = b.c.acquire('m');
    await until(() => (info(nodes[0] as Member)?.waiters.length ?? 0) === 1);
    const pc = c.c.acquire('m');
    await until(() => (info(nodes[0] as Member)?.waiters.length ?? 0) === 2);
    await ha.release();
    const hb = await pb;
    expect(hb.token).toBeGreaterThan(ha.token);
    await hb.release();
    const hc = await pc;
    expect(hc.token).toBeGreaterThan(hb.token);
    await hc.release();
  });

  it('tryAcquire answers undefined when the lock is taken, and queues nothing', async () => {
    const nodes = await cluster();
    const a = client(nodes);
    const b = client(nodes);
    const h = await a.c.acquire('m');
    expect(await b.c.tryAcquire('m')).toBeUndefined();
    expect(info(nodes[0] as Member)?.waiters).toEqual([]);
    await h.release();
    const h2 = await b.c.tryAcquire('m');
    expect(h2?.token).toBeGreaterThan(h.token);
  });

  it('an acquire timeout and an abort both take the waiter out of the queue', async () => {
    const nodes = await cluster();
    const a = client(nodes);
    const b = client(nodes);
    const h = await a.c.acquire('m');
    await expect(b.c.acquire('m', { timeoutMs: 50 })).rejects.toThrow(TimeoutError);
    const leader = nodes.find((n) => n.node.status().role === 'leader') as Member;
    await until(() => info(leader)?.waiters.length === 0);
    const ctl = new AbortController();
    const p = b.c.acquire('m', { signal: ctl.signal });
    await until(() => info(leader)?.waiters.length === 1);
    ctl.abort();
    await expect(p).rejects.toThrow(AbortedError);
    await until(() => info(leader)?.waiters.length === 0);
    await h.release();
  });

  it('await using releases the lock at the end of the block', async () => {
    const nodes = await cluster();
    const a = client(nodes);
    let token = 0;
    {
      await using h = await a.c.acquire('m');
      token = h.token;
      expect(h.held).toBe(true);
    }
    const leader = nodes.find((n) => n.node.status().role === 'leader') as Member;
    await until(() => info(leader) === undefined);
    expect(token).toBeGreaterThan(0);
  });

  it('read/write lock and semaphore through the client', async () => {
    const nodes = await cluster();
    const a = client(nodes);
    const b = client(nodes);
    const r1 = await a.c.acquire('rw', { mode: 'read' });
    const r2 = await b.c.acquire('rw', { mode: 'read' });
    expect(await a.c.tryAcquire('rw2', { mode: 'write' })).toBeDefined();
    await Promise.all([r1.release(), r2.release()]);
    const s1 = await a.c.acquire('s', { mode: 'semaphore', permits: 2 });
    const s2 = await b.c.acquire('s', { mode: 'semaphore', permits: 2 });
    expect(await b.c.tryAcquire('s', { mode: 'semaphore', permits: 2 })).toBeUndefined();
    await s1.release();
    await s2.release();
  });

  it('holder loss: a client cut off from the cluster aborts its hold on its own within a TTL; the next holder gets a higher token and the stale write is refused', async () => {
    const nodes = await cluster(100);
    const a = client(nodes, { ttlMs: 200 });
    const b = client(nodes, { ttlMs: 1000, listen: 1 });
    const resource = new FencedResource('store');
    const ha = await a.c.acquire('m');
    resource.ifOwner(ha.token, () => 'first write');
    const pb = b.c.acquire('m');
    a.ch.state.cut = true; // keepalives stop reaching the cluster
    const lostAt = Date.now();
    await new Promise<void>((resolve) => ha.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(Date.now() - lostAt).toBeLessThan(1000);
    expect(ha.signal.reason).toBeInstanceOf(LockLostError);
    expect(() => ha.ifOwner(() => 'x')).toThrow(LockLostError);
    const hb = await pb;
    expect(hb.token).toBeGreaterThan(ha.token);
    resource.ifOwner(hb.token, () => 'new holder');
    expect(() => resource.ifOwner(ha.token, () => 'stale')).toThrow(StaleTokenError);
    await hb.release();
  });

  it('holder loss pushed by the cluster: the hold aborts when the cluster expires the session, with no local timer involved', async () => {
    const nodes = await cluster(0);
    // The client's clock never moves: no keepalive is sent and its own deadline never passes, so only the
    // cluster's expiry, pushed over its subscription, can end the hold.
    const clock = new ManualClock();
    const c = new LockClient({ channel: channel(nodes, 2), ttlMs: 300, clock });
    stops.push(() => c.close());
    const h = await c.acquire('m');
    const t0 = Date.now();
    await new Promise<void>((resolve) => h.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect((h.signal.reason as Error).message).toMatch(/expired in the cluster/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(c.sessionId).toBeUndefined();
  });

  it('a session the cluster expired unheard (no push, no keepalive yet) ends at the next call, and the next acquire opens a new one', async () => {
    const nodes = await cluster(0);
    const ch = channel(nodes);
    ch.subscribe = () => new Promise(() => undefined); // pushes never arrive
    const c = new LockClient({ channel: ch, ttlMs: 100, clock: new ManualClock() }); // and no keepalive is ever sent
    stops.push(() => c.close());
    const first = await c.acquire('m');
    const leader = nodes.find((n) => n.node.status().role === 'leader') as Member;
    await until(() => leader.stateMachine.sessionCount === 0);
    await expect(c.acquire('other')).rejects.toThrow(SessionExpiredError);
    expect(first.held).toBe(false);
    const again = await c.acquire('m');
    expect(again.token).toBeGreaterThan(first.token);
  });

  it('on a node running { kv, lock } (combined, kv primary): locks hand off by push while kv keeps its keys', async () => {
    const kv = new KvStateMachine();
    const lock = new LockStateMachine({ minSessionTtlMs: 50, lockDelayMs: 0 });
    const stateMachine = combineStateMachines({ kv, lock }, { primary: 'kv' });
    const node = new ConsensusNode({ id: 'n1', peers: ['n1'], protocol: solo, storage: new MemoryStorage(), transport: new LocalNetwork().transport('n1'), stateMachine, tickMs: 5, electionTicks: 2, timeIntervalMs: 10 });
    const service = createLockService({ node, stateMachine: lock, route: 'lock' });
    stops.push(() => service.close(), () => node.stop());
    await node.start();
    await node.waitForLeader();
    await node.propose({ cmd: { op: 'put', key: 'k', value: 'v' } } as never);
    const member = { id: 'n1', node, stateMachine: lock, service } as unknown as Member;
    const a = client([member]);
    const b = client([member]);
    const ha = await a.c.acquire('m');
    const pb = b.c.acquire('m');
    await until(() => (info(member)?.waiters.length ?? 0) === 1);
    await ha.release();
    expect((await pb).token).toBeGreaterThan(ha.token);
    expect(kv.query({ op: 'get', key: 'k' })).toMatchObject({ value: 'v' });
  });
});
