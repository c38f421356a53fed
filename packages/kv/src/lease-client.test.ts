import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, MemoryStorage, NotLeaderError, TransportError } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork, ManualClock } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { KvClient } from './client';
import { LeaseNotFoundError } from './errors';
import { KvStateMachine, type KvQueryResult } from './kv-state-machine';
import type { LeaseLost } from './lease-keeper';
import { createKvService } from './service';
import type { KvChannel } from './wire';

const running: { stop(): Promise<void> }[] = [];
const clients: KvClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of running.splice(0)) await r.stop();
});

/** A one-node cluster on real timers: 5 ms ticks, a time entry every 10 ms, leases from 60 ms (the tests use 300 ms). */
async function cluster() {
  const stateMachine = new KvStateMachine({ minLeaseTtlMs: 60 });
  const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
    id: 'n1',
    peers: ['n1'],
    protocol: solo,
    storage: new MemoryStorage(),
    transport: new LocalNetwork().transport('n1'),
    stateMachine,
    tickMs: 5,
    electionTicks: 2,
    timeIntervalMs: 10,
  });
  running.push(node);
  await node.start();
  await node.waitForLeader();
  return { node, stateMachine, service: createKvService({ node, stateMachine }) };
}

/** A request body as the tests read it back. */
interface Body {
  req?: { cmd?: { op?: string; ids?: number[] } };
}

/** An in-process channel that records what it carried; `fault` fails a call before or after the service ran it. */
function channelTo(service: (b: unknown) => Promise<unknown>, fault?: (call: number, body: unknown) => 'before' | 'after' | undefined) {
  const ch = {
    calls: 0,
    bodies: [] as Body[],
    async request<T>(body: unknown): Promise<T> {
      const n = ++ch.calls;
      ch.bodies.push(body as Body);
      const f = fault?.(n, body);
      if (f === 'before') throw new NotLeaderError(undefined);
      const answer = await service(structuredClone(body));
      if (f === 'after') throw new TransportError('connection lost after the request was sent');
      return answer as T;
    },
    async close() {},
  };
  return ch;
}

const client = (channel: KvChannel) => {
  const kv = new KvClient({ channel });
  clients.push(kv);
  return kv;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('kv.leases through a node', () => {
  it('grant, put with lease, timeToLive with keys, list and revoke (which deletes the key)', async () => {
    const { service } = await cluster();
    const kv = client(channelTo(service));
    const { id, ttl } = await kv.leases.grant(5000);
    expect([id, ttl]).toEqual([1, 5000]);
    await kv.put('svc/a', 'x', { lease: id });
    expect(await kv.get('svc/a')).toMatchObject({ lease: id });
    const info = await kv.leases.timeToLive(id, { keys: true });
    expect(info).toMatchObject({ id, ttl: 5000, keys: ['svc/a'] });
    expect(info.remaining).toBeGreaterThan(4000);
    expect((await kv.leases.list()).map((l) => l.id)).toEqual([id]);
    expect(await kv.leases.revoke(id)).toMatchObject({ deleted: 1 });
    expect(await kv.get('svc/a')).toBeUndefined();
    await expect(kv.leases.timeToLive(id)).rejects.toSatisfy(LeaseNotFoundError.is);
    await expect(kv.put('svc/a', 'x', { lease: id })).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  it('a grant whose answer was lost is retried through the session and grants one lease', async () => {
    const { service, stateMachine } = await cluster();
    const kv = client(channelTo(service, (n) => (n === 1 ? 'after' : undefined)));
    expect(await kv.leases.grant(5000)).toMatchObject({ id: 1 });
    expect(stateMachine.leaseCount).toBe(1);
  });

  it('the service refuses a time command from a client: clients cannot forge time', async () => {
    const { service, stateMachine } = await cluster();
    const now = stateMachine.now;
    await expect(service({ t: 'kv.write', req: { cmd: { op: 'time', term: 99, ms: 1e12 } } })).rejects.toThrow(InvalidArgumentError);
    expect(stateMachine.now).toBeLessThan(now + 1e9);
  });

  it('a key without keepalive vanishes after its TTL; with keepAlive it outlives many TTLs, then expires after stop()', async () => {
    const { service } = await cluster();
    const kv = client(channelTo(service));
    const idle = (await kv.leases.grant(300)).id;
    const kept = (await kv.leases.grant(300)).id;
    await kv.put('idle', 'x', { lease: idle });
    await kv.put('kept', 'x', { lease: kept });
    const keeper = kv.leases.keepAlive(kept);
    await until(async () => (await kv.get('idle')) === undefined);
    await sleep(1500); // five TTLs
    expect(await kv.get('kept')).toBeDefined();
    expect(keeper.ttl).toBe(300);
    keeper.stop();
    await until(async () => (await kv.get('kept')) === undefined);
  });

  it('one keepalive command per round renews every lease the client keeps', async () => {
    const { service } = await cluster();
    const ch = channelTo(service);
    const kv = client(ch);
    const ids: number[] = [];
    for (let i = 0; i < 200; i++) ids.push((await kv.leases.grant(300)).id);
    const keepers = ids.map((id) => kv.leases.keepAlive(id));
    await sleep(1000);
    const rounds = ch.bodies.filter((b) => b.req?.cmd?.op === 'leaseKeepAlive');
    expect(rounds.length).toBeGreaterThan(3);
    // Every round names all 200 leases; roughly one round per TTL/3 (100 ms), not one per lease.
    expect(rounds.slice(1).every((b) => b.req?.cmd?.ids?.length === 200)).toBe(true);
    expect(rounds.length).toBeLessThan(40);
    expect((await kv.leases.list()).length).toBe(200);
    for (const k of keepers) k.stop();
  });

  it('a kept lease revoked elsewhere is reported lost (not-found), once', async () => {
    const { service } = await cluster();
    const kv = client(channelTo(service));
    const other = client(channelTo(service));
    const { id } = await kv.leases.grant(300);
    const seen: LeaseLost[] = [];
    const keeper = kv.leases.keepAlive(id, { onLost: (l) => seen.push(l) });
    await sleep(50);
    await other.leases.revoke(id);
    const lost = await keeper.lost;
    expect(lost).toMatchObject({ id, reason: 'not-found' });
    expect(LeaseNotFoundError.is(lost.error)).toBe(true);
    await sleep(300);
    expect(seen).toHaveLength(1);
    expect(kv.leases.keptAlive).toBe(0);
  });
});

describe('LeaseKeeper on a manual clock', () => {
  it('reports a lease lost when no keepalive is acknowledged for a whole TTL', async () => {
    const clock = new ManualClock();
    let up = true;
    const channel: KvChannel = {
      async request<T>(body: unknown): Promise<T> {
        if (!up) throw new TransportError('unreachable');
        return { op: 'leaseKeepAlive', kept: ((body as Body).req?.cmd?.ids ?? []).map((id) => [id, 300]), missing: [], revision: 0 } as T;
      },
      async close() {},
    };
    const kv = new KvClient({ channel, clock, timeoutMs: 50 });
    clients.push(kv);
    const keeper = kv.leases.keepAlive(7);
    let lost: LeaseLost | undefined;
    void keeper.lost.then((l) => (lost = l));
    const step = async (ms: number) => {
      for (let t = 0; t < ms; t++) {
        clock.advance(1);
        await new Promise((r) => setImmediate(r));
      }
    };
    await step(5);
    expect(keeper.ttl).toBe(300);
    await step(1000);
    expect(lost).toBeUndefined();
    up = false;
    await step(250);
    expect(lost).toBeUndefined(); // not yet a whole TTL since the last acknowledged send
    await step(200);
    expect(lost).toMatchObject({ id: 7, reason: 'unacknowledged' });
  });

  it('leaves no timer behind once every kept lease is stopped (a process can exit)', async () => {
    const manual = new ManualClock();
    const live = new Set<unknown>();
    const clock = {
      now: () => manual.now(),
      setInterval: (fn: () => void, ms: number) => manual.setInterval(fn, ms),
      clearInterval: (h: unknown) => manual.clearInterval(h),
      setTimeout: (fn: () => void, ms: number) => {
        const h = manual.setTimeout(() => {
          live.delete(h);
          fn();
        }, ms);
        live.add(h);
        return h;
      },
      clearTimeout: (h: unknown) => {
        live.delete(h);
        manual.clearTimeout(h);
      },
    };
    const channel: KvChannel = {
      async request<T>(body: unknown): Promise<T> {
        return { op: 'leaseKeepAlive', kept: ((body as Body).req?.cmd?.ids ?? []).map((id) => [id, 60_000]), missing: [], revision: 0 } as T;
      },
      async close() {},
    };
    const kv = new KvClient({ channel, clock, timeoutMs: 1000 });
    clients.push(kv);
    const keeper = kv.leases.keepAlive(7);
    for (let t = 0; t < 5; t++) {
      manual.advance(1);
      await new Promise((r) => setImmediate(r));
    }
    expect(keeper.ttl).toBe(60_000);
    keeper.stop();
    // The next round finds nothing to keep and schedules no other.
    manual.advance(20_000);
    await new Promise((r) => setImmediate(r));
    expect(live.size).toBe(0);
  });

  it('counts the TTL from when the acknowledged keepalive was sent, not from when its slow answer came', async () => {
    // The node renews at apply time, between the send and the answer: the lease may end TTL after the send.
    const clock = new ManualClock();
    let calls = 0;
    const channel: KvChannel = {
      request<T>(body: unknown): Promise<T> {
        const n = ++calls;
        const answer = { op: 'leaseKeepAlive', kept: ((body as Body).req?.cmd?.ids ?? []).map((id) => [id, 350]), missing: [], revision: 0 } as T;
        if (n === 1) return Promise.resolve(answer);
        // The second keepalive is answered 90 ms after it was sent; every later one is lost.
        if (n === 2) return new Promise((resolve) => clock.setTimeout(() => resolve(answer), 90));
        // Refused at once (not retried by the client): each later round ends as soon as it starts.
        return Promise.reject(new InvalidArgumentError('refused'));
      },
      async close() {},
    };
    const kv = new KvClient({ channel, clock, timeoutMs: 1000, attemptTimeoutMs: 1000 });
    clients.push(kv);
    const keeper = kv.leases.keepAlive(7);
    let lost: LeaseLost | undefined;
    let lostAt = 0;
    void keeper.lost.then((l) => {
      lost = l;
      lostAt = clock.now();
    });
    let sentSecond = 0;
    for (let t = 0; t < 1000 && lost === undefined; t++) {
      clock.advance(1);
      if (calls === 2 && sentSecond === 0) sentSecond = clock.now();
      await new Promise((r) => setImmediate(r));
    }
    expect(lost).toMatchObject({ id: 7, reason: 'unacknowledged' });
    // Rounds every 116 ms (TTL / 3) from the answer (90 ms after the send). Lost at the first round a whole TTL
    // after the second send (438 ms after it): not a TTL after its answer (then 554 ms after the send).
    expect(lostAt - sentSecond).toBeGreaterThanOrEqual(350);
    expect(lostAt - sentSecond).toBeLessThan(350 + 116);
  });
});
