import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConsensusNode,
  InvalidArgumentError,
  LocalNetwork,
  MemoryStorage,
  NotLeaderError,
  TransportError,
} from '@consensus-kit/core';
import { solo } from '@consensus-kit/core/testing';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { KvClient } from './client';
import { KvStateMachine, type KvQueryResult } from './kv-state-machine';
import { createKvService } from './service';
import type { KvChannel } from './wire';

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

async function cluster() {
  const stateMachine = new KvStateMachine();
  const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
    id: 'n1',
    peers: ['n1'],
    protocol: solo,
    storage: new MemoryStorage(),
    transport: new LocalNetwork().transport('n1'),
    stateMachine,
    tickMs: 5,
    electionTicks: 2,
  });
  running.push(node);
  await node.start();
  await node.waitForLeader();
  return { node, stateMachine, service: createKvService({ node, stateMachine }) };
}

/** An in-process channel; `fault` can fail a call before or after the service handled it. */
function channelTo(service: (b: unknown) => Promise<unknown>, fault?: (call: number) => 'before' | 'after' | undefined): KvChannel & { calls: number } {
  const ch = {
    calls: 0,
    async request<T>(body: unknown): Promise<T> {
      const n = ++ch.calls;
      const f = fault?.(n);
      if (f === 'before') throw new NotLeaderError(undefined);
      const answer = await service(structuredClone(body));
      if (f === 'after') throw new TransportError('connection lost after the request was sent');
      return answer as T;
    },
    async close() {},
  };
  return ch;
}

describe('KvClient over the kv service', () => {
  it("the service ties an operation to the connection's signal when the transport gives one", async () => {
    const { service } = await cluster();
    const gone = new AbortController();
    gone.abort(new Error('client disconnected'));
    const perRequest = new AbortController();
    const write = { t: 'kv.write', req: { cmd: { op: 'put', key: 'k', value: 'v' } } };
    // connectionSignal wins over signal: the connection is gone, so the write is not even proposed.
    await expect(service(write, { signal: perRequest.signal, connectionSignal: gone.signal })).rejects.toSatisfy(AbortedError.is);
    // Without one, the per-request signal is used.
    await expect(service(write, { signal: gone.signal })).rejects.toSatisfy(AbortedError.is);
    expect(await service(write, { signal: perRequest.signal })).toMatchObject({ op: 'put', revision: 1 });
  });

  it('put, get, cas, range and delete round-trip through a node', async () => {
    const { service } = await cluster();
    const kv = new KvClient({ channel: channelTo(service) });
    expect(await kv.put('a/1', 'one')).toMatchObject({ revision: 1 });
    expect(await kv.put('a/2', 'two')).toMatchObject({ revision: 2 });
    expect(await kv.get('a/1')).toMatchObject({ value: 'one', version: 1 });
    expect(await kv.cas('a/1', { value: 'one' }, 'uno')).toMatchObject({ succeeded: true, revision: 3 });
    expect(await kv.cas('a/1', { value: 'one' }, 'nope')).toMatchObject({ succeeded: false });
    expect((await kv.range('a/')).map((x) => x.value)).toEqual(['uno', 'two']);
    expect(await kv.delete('a/', { prefix: true })).toMatchObject({ revision: 4 });
    expect(await kv.get('a/1')).toBeUndefined();
    expect(await kv.get('a/2', { consistency: 'serializable' })).toBeUndefined();
  });

  it('a put answers the previous key only when asked (prevKv)', async () => {
    const { service } = await cluster();
    const kv = new KvClient({ channel: channelTo(service) });
    await kv.put('k', 'v1');
    expect(await kv.put('k', 'v2')).toEqual({ op: 'put', revision: 2 });
    const r = await kv.put('k', 'v3', { prevKv: true });
    expect(r.prev).toMatchObject({ key: 'k', value: 'v2', version: 2, modRevision: 2 });
  });

  it('a write whose answer was lost is retried and applied exactly once', async () => {
    const { service, stateMachine } = await cluster();
    // The first attempt reaches the cluster and applies, then the connection drops before the answer.
    const channel = channelTo(service, (n) => (n === 1 ? 'after' : undefined));
    const kv = new KvClient({ channel });
    const r = await kv.put('counter', '1');
    expect(channel.calls).toBe(2);
    expect(r.revision).toBe(1);
    expect(stateMachine.currentRevision).toBe(1);
    expect(await kv.get('counter')).toMatchObject({ version: 1 });
  });

  it('a cas retried after a lost answer reports its one success', async () => {
    const { service, stateMachine } = await cluster();
    const kv = new KvClient({ channel: channelTo(service, (n) => (n === 1 ? 'after' : undefined)) });
    expect(await kv.cas('lock', { exists: false }, 'me')).toMatchObject({ succeeded: true, revision: 1 });
    expect(stateMachine.currentRevision).toBe(1);
  });

  it('retries while no leader answers, then succeeds', async () => {
    const { service } = await cluster();
    const channel = channelTo(service, (n) => (n <= 3 ? 'before' : undefined));
    const kv = new KvClient({ channel });
    expect(await kv.put('k', 'v')).toMatchObject({ revision: 1 });
    expect(channel.calls).toBe(4);
  });

  it('gives up at its deadline with the last retryable error', async () => {
    const { service } = await cluster();
    const kv = new KvClient({ channel: channelTo(service, () => 'before'), timeoutMs: 200 });
    await expect(kv.put('k', 'v')).rejects.toSatisfy(NotLeaderError.is);
  });

  it('rejects bad input at once, without a round trip', async () => {
    const { service } = await cluster();
    const channel = channelTo(service);
    const kv = new KvClient({ channel });
    await expect(kv.put('', 'v')).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.put('k', 42 as unknown as string)).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.range('p', { limit: -1 })).rejects.toSatisfy(InvalidArgumentError.is);
    expect(channel.calls).toBe(0);
  });

  it('the service refuses malformed request bodies with InvalidArgumentError', async () => {
    const { service, stateMachine } = await cluster();
    for (const body of [null, 'put', { t: 'kv.nope' }, { t: 'kv.write' }, { t: 'kv.write', req: { cmd: { op: 'put' } } }, { t: 'kv.read', q: { op: 'get', key: 'k' }, consistency: 'eventual' }]) {
      await expect(service(body)).rejects.toSatisfy(InvalidArgumentError.is);
    }
    expect(stateMachine.currentRevision).toBe(0);
  });

  it('honours an AbortSignal', async () => {
    const { service } = await cluster();
    const kv = new KvClient({ channel: channelTo(service, () => 'before') });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await expect(kv.put('k', 'v', { signal: ac.signal })).rejects.toSatisfy(AbortedError.is);
  });

  it('acknowledges up to the lowest write still unanswered, whatever order answers come in', async () => {
    const sent: { seq: number; ack?: number }[] = [];
    const answers: (() => void)[] = [];
    const channel: KvChannel = {
      request<T>(body: unknown): Promise<T> {
        sent.push((body as { req: { session: { seq: number; ack?: number } } }).req.session);
        return new Promise<T>((resolve) => answers.push(() => resolve({ op: 'put', revision: 1 } as T)));
      },
      async close() {},
    };
    const kv = new KvClient({ channel });
    const w1 = kv.put('a', '1');
    const w2 = kv.put('b', '2');
    const w3 = kv.put('c', '3');
    (answers[1] as () => void)(); // seq 2 answered first: seq 1 still bounds the ack
    await w2;
    const w4 = kv.put('d', '4');
    (answers[0] as () => void)();
    await w1;
    const w5 = kv.put('e', '5'); // seq 3 is now the lowest unanswered
    for (const a of answers.slice(2)) a();
    await Promise.all([w3, w4, w5]);
    const w6 = kv.put('f', '6');
    (answers[5] as () => void)();
    await w6;
    expect(sent.map((s) => s.ack)).toEqual([undefined, undefined, undefined, undefined, 2, 5]);
  });
});
