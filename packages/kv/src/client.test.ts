import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConfigError,
  InvalidArgumentError,
  MemoryStorage,
  NotLeaderError,
  StoppedError,
  TransportError,
} from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork, ManualClock } from '@consensus-kit/core/host';
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
    expect(await kv.delete('a/', { prefix: true })).toEqual({ op: 'delete', revision: 4, deleted: 2 });
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

  it('backs off exponentially between retries and gives up at its deadline with the last retryable error', async () => {
    const clock = new ManualClock();
    const sentAt: number[] = [];
    const channel: KvChannel = {
      async request<T>(): Promise<T> {
        sentAt.push(clock.now());
        throw new NotLeaderError(undefined);
      },
      async close() {},
    };
    const kv = new KvClient({ channel, timeoutMs: 200, clock });
    let outcome: unknown;
    const call = kv.put('k', 'v').catch((e: unknown) => (outcome = e));
    // Time moves only here, one millisecond at a time, with the client's continuations run in between.
    for (let t = 0; t < 250 && outcome === undefined; t++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(1);
    }
    await call;
    expect(NotLeaderError.is(outcome)).toBe(true);
    // Pauses of 25, 50 and 100 ms; the next one (200) is cut short by the deadline, which ends the call.
    expect(sentAt).toEqual([0, 25, 75, 175]);
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

  it('delete answers the deleted keys only when asked (prevKv), and range pages with after', async () => {
    const { service } = await cluster();
    const kv = new KvClient({ channel: channelTo(service) });
    for (const k of ['d/1', 'd/2', 'd/3', 'e']) await kv.put(k, k);
    expect((await kv.range('d/', { limit: 2 })).map((x) => x.key)).toEqual(['d/1', 'd/2']);
    expect((await kv.range('d/', { limit: 2, after: 'd/2' })).map((x) => x.key)).toEqual(['d/3']);
    const r = await kv.delete('d/', { prefix: true, prevKv: true });
    expect(r.deleted).toBe(3);
    expect(r.prevKvs?.map((x) => x.value)).toEqual(['d/1', 'd/2', 'd/3']);
  });

  it('refuses text with no exact UTF-8 form and misspelt compare fields before sending, and so does the service', async () => {
    const { service, stateMachine } = await cluster();
    const channel = channelTo(service);
    const kv = new KvClient({ channel });
    // Sent as msgpack text, both lone surrogates would arrive as U+FFFD and the two keys would be one.
    await expect(kv.put('lone/\uD800', 'first')).rejects.toThrow(/lone UTF-16 surrogate/);
    await expect(kv.put('lone/\uDC00', 'second')).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.put('k', 'x\uD800y')).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.cas('k', { value: '\uDFFF' }, 'v')).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.get('\uD800')).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(kv.range('p', { after: 'p\uDC00' })).rejects.toSatisfy(InvalidArgumentError.is);
    // A misspelt field would otherwise make the compare hold always: an unconditional write.
    await expect(kv.cas('k', { versoin: 99 } as never, 'x')).rejects.toThrow(/unknown field "versoin"/);
    await expect(kv.get('k', { consistency: 'strong' as never })).rejects.toSatisfy(InvalidArgumentError.is);
    expect(channel.calls).toBe(0);
    // Well-formed text outside the BMP is fine.
    expect(await kv.put('emoji/\u{1F600}', '\u{1F600}')).toMatchObject({ revision: 1 });
    // A client that skips these checks is refused by the node's service, before anything is proposed.
    const cas = { t: 'kv.write', req: { cmd: { op: 'cas', key: 'k', compare: { mod_revision: 1 }, value: 'x' } } };
    await expect(service(cas)).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(service({ t: 'kv.write', req: { cmd: { op: 'put', key: 'k\uD800', value: 'v' } } })).rejects.toSatisfy(InvalidArgumentError.is);
    expect(stateMachine.currentRevision).toBe(1);
  });

  it('checks its options: typed ConfigError at construction, InvalidArgumentError per call', async () => {
    const { service } = await cluster();
    const channel = channelTo(service);
    expect(() => new KvClient(undefined as never)).toThrow(ConfigError);
    for (const bad of [{ sessionId: '' }, { sessionId: 'x'.repeat(129) }, { attemptTimeoutMs: 0 }, { attemptTimeoutMs: Infinity }, { timeoutMs: -1 }, { timeoutMs: Number.NaN }]) {
      expect(() => new KvClient({ channel, ...bad })).toThrow(ConfigError);
    }
    const kv = new KvClient({ channel, timeoutMs: Infinity });
    for (const timeoutMs of [0, -5, Number.NaN]) await expect(kv.put('k', 'v', { timeoutMs })).rejects.toSatisfy(InvalidArgumentError.is);
    expect(channel.calls).toBe(0);
    expect(await kv.put('k', 'v')).toMatchObject({ revision: 1 });
    const aborted = AbortSignal.abort();
    await expect(kv.put('k', 'v', { signal: aborted })).rejects.toThrow(/before it was sent/);
  });

  it('close() settles calls in flight at once with StoppedError, even without a deadline', async () => {
    // A channel that never answers until it is closed, then refuses like a closed rpc client.
    let closed = false;
    const pending: ((e: Error) => void)[] = [];
    const channel: KvChannel = {
      request<T>(): Promise<T> {
        if (closed) return Promise.reject(new StoppedError('the rpc client is closed'));
        return new Promise<T>((_, reject) => pending.push(reject));
      },
      async close() {
        closed = true;
        for (const r of pending.splice(0)) r(new StoppedError('the rpc client is closed'));
      },
    };
    const kv = new KvClient({ channel, timeoutMs: Infinity });
    const inFlight = Array.from({ length: 5 }, (_, i) => kv.put(`k${i}`, 'v'));
    // A call waiting between retries (its first attempt failed with a retryable error).
    const retrying = new KvClient({ channel: channelTo(async () => undefined, () => 'before'), timeoutMs: Infinity, clock: new ManualClock() });
    const waiting = retrying.put('k', 'v');
    await new Promise((r) => setTimeout(r, 50));
    await kv.close();
    await retrying.close();
    // Settled without any time passing on the retrying client's clock: close() does not wait out a pause.
    const settled = await Promise.allSettled([...inFlight, waiting]);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect(StoppedError.is((s as PromiseRejectedResult).reason)).toBe(true);
    }
    await expect(kv.get('k')).rejects.toSatisfy(StoppedError.is);
  });

  it('does not retry a handshake refusal that a retry cannot cure (another cluster, a wrong secret)', async () => {
    let calls = 0;
    const refusal = Object.assign(new TransportError('handshake refused by the remote side (cluster-mismatch): cluster "b" is not this cluster ("a")'), {
      reason: 'cluster-mismatch',
      remote: true,
    });
    const channel: KvChannel = {
      async request<T>(): Promise<T> {
        calls++;
        throw refusal;
      },
      async close() {},
    };
    // On a clock that never moves a retry would wait forever: the call settling at all shows it did not retry.
    const kv = new KvClient({ channel, timeoutMs: 5000, clock: new ManualClock() });
    await expect(kv.put('k', 'v')).rejects.toBe(refusal);
    expect(calls).toBe(1);
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
