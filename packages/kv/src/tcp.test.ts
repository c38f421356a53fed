import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { tcpTransport } from '@consensus-kit/transport-tcp';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { KvStateMachine, type KvQueryResult } from './kv-state-machine';
import { createKvService } from './service';
import { FutureRevisionError, InvalidTxnError, LeaseNotFoundError, RevisionCompactedError, createKvClient, type WatchBatch } from './index';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A one-node kv service over transport-tcp and a client for it (`deadFirst`: endpoints listed before the live one). */
async function soloNode(clusterId: string, options: { historyRevisions?: number } = {}, deadFirst: string[] = []) {
  const transport = tcpTransport({ id: 'n1', clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  const stateMachine = new KvStateMachine(options);
  const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
    id: 'n1',
    peers: ['n1'],
    protocol: solo,
    storage: new MemoryStorage(),
    transport,
    stateMachine,
    tickMs: 5,
    electionTicks: 2,
  });
  transport.onRequest(createKvService({ node, stateMachine }));
  await node.start();
  cleanups.push(() => node.stop());
  await node.waitForLeader();
  const kv = createKvClient({ endpoints: [...deadFirst, transport.endpoint()], clusterId });
  cleanups.push(() => kv.close());
  return kv;
}

describe('createKvClient over TCP', () => {
  it('txn, reads at a past revision and compaction, with typed errors that survive the wire', async () => {
    const kv = await soloNode('kv-tcp-txn', { historyRevisions: 1000 });
    await kv.put('cfg/a', '1'); // rev 1
    await kv.put('cfg/b', '1'); // rev 2
    const t = await kv.txn({
      if: [{ key: 'cfg/a', target: 'value', cmp: '=', value: '1' }, { key: 'lock', target: 'version', cmp: '=', value: 0 }],
      then: [{ op: 'put', key: 'cfg/a', value: '2', prevKv: true }, { op: 'delete', key: 'cfg/b' }, { op: 'put', key: 'lock', value: 'me' }, { op: 'range', prefix: 'cfg/' }],
      else: [{ op: 'get', key: 'lock' }],
    });
    expect(t).toMatchObject({ op: 'txn', succeeded: true, revision: 3 });
    expect(t.responses[0]).toMatchObject({ op: 'put', revision: 3, prev: { value: '1', modRevision: 1 } });
    expect(t.responses[3]).toMatchObject({ op: 'range', kvs: [{ key: 'cfg/a', value: '2' }] });
    const again = await kv.txn({ if: [{ key: 'lock', target: 'version', cmp: '=', value: 0 }], then: [{ op: 'put', key: 'lock', value: 'other' }], else: [{ op: 'get', key: 'lock' }] });
    expect(again).toMatchObject({ succeeded: false, revision: 3, responses: [{ op: 'get', kv: { value: 'me' } }] });

    expect(await kv.get('cfg/a', { revision: 2 })).toMatchObject({ value: '1', modRevision: 1 });
    expect((await kv.range('cfg/', { revision: 2 })).map((x) => [x.key, x.value])).toEqual([['cfg/a', '1'], ['cfg/b', '1']]);
    expect((await kv.range('cfg/', { revision: 2, consistency: 'serializable' })).length).toBe(2);
    expect(await kv.status()).toEqual({ revision: 3, compactRevision: 0 });

    expect(await kv.compact(3)).toEqual({ op: 'compact', revision: 3, compactRevision: 3 });
    const compacted = await kv.get('cfg/a', { revision: 2 }).catch((e: unknown) => e);
    expect(compacted).toBeInstanceOf(RevisionCompactedError);
    expect(compacted).toMatchObject({ revision: 2, compactRevision: 3, message: expect.stringContaining('has been compacted') });
    await expect(kv.compact(3)).rejects.toBeInstanceOf(RevisionCompactedError);
    const future = await kv.range('', { revision: 99, consistency: 'serializable' }).catch((e: unknown) => e);
    expect(future).toBeInstanceOf(FutureRevisionError);
    expect(future).toMatchObject({ revision: 99, currentRevision: 3 });
    await expect(kv.compact(50)).rejects.toBeInstanceOf(FutureRevisionError);
    // Refused by the client before it is sent, with the reason.
    await expect(kv.txn({ then: [{ op: 'put', key: 'x', value: '1' }, { op: 'put', key: 'x', value: '2' }] })).rejects.toMatchObject({ reason: 'duplicate-key' });
    await expect(kv.txn({ if: [{ key: 'x', target: 'size' as never, cmp: '=', value: 1 }] })).rejects.toBeInstanceOf(InvalidTxnError);
    expect(await kv.get('cfg/a')).toMatchObject({ value: '2', version: 2, lease: 0 });
  });

  it('leases over TCP: grant, put with lease, timeToLive; a missing lease is LeaseNotFoundError after the wire, on write and read', async () => {
    const kv = await soloNode('kv-tcp-lease');
    const { id } = await kv.leases.grant(60_000);
    await kv.put('svc/a', 'x', { lease: id });
    expect(await kv.leases.timeToLive(id, { keys: true })).toMatchObject({ id, ttl: 60_000, keys: ['svc/a'] });
    expect(await kv.leases.keepAliveOnce([id, 999])).toMatchObject({ kept: [[id, 60_000]], missing: [999] });
    const put = await kv.put('svc/b', 'x', { lease: 999 }).catch((e: unknown) => e);
    expect(put).toBeInstanceOf(LeaseNotFoundError);
    expect(put).toMatchObject({ leaseId: 999 });
    await expect(kv.leases.timeToLive(999)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(kv.leases.revoke(999)).rejects.toBeInstanceOf(LeaseNotFoundError);
    expect(await kv.leases.revoke(id)).toMatchObject({ deleted: 1 });
  });

  it('kv.watch over TCP: history from a start revision, then live events; close() ends the watch', async () => {
    const kv = await soloNode('kv-tcp-watch');
    await kv.put('w/a', '1');
    await kv.put('other', 'x');
    const watch = kv.watch('w/', { prefix: true, startRevision: 1 });
    await watch.created;
    await kv.put('w/b', '2');
    await kv.delete('w/a');
    const seen: string[] = [];
    for await (const batch of watch) {
      for (const e of batch.events) seen.push(e.type === 'put' ? `put ${e.kv.key}@${e.revision}` : `delete ${e.key}@${e.revision}`);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['put w/a@1', 'put w/b@3', 'delete w/a@4']);
    const live = kv.watch('w/', { prefix: true });
    await live.created;
    const done = (async () => {
      let batches = 0;
      for await (const _ of live) batches++;
      return batches;
    })();
    await kv.close();
    // The iterator finishes once the client closes, rather than hanging on a dead connection.
    expect(await done).toBe(0);
  });

  it('a revision larger than the message size (36 MB of new and previous values) reaches a prevKv watcher once, whole, without a reconnect', async () => {
    const kv = await soloNode('kv-tcp-watch-big');
    const size = 3_600_000;
    for (let i = 0; i < 5; i++) await kv.put(`big/${i}`, 'x'.repeat(size));
    const reconnects: string[] = [];
    const watch = kv.watch('big/', { prefix: true, prevKv: true, onReconnect: (r) => reconnects.push(r.error.message) });
    await watch.created;
    // One transaction, one revision: 5 new values and 5 previous ones, past maxMessageSize (32 MiB) together.
    const t = await kv.txn({ then: [0, 1, 2, 3, 4].map((i) => ({ op: 'put' as const, key: `big/${i}`, value: 'y'.repeat(size) })) });
    const it = watch[Symbol.asyncIterator]();
    const first = (await it.next()).value as WatchBatch;
    expect(reconnects).toEqual([]);
    expect(first.revision).toBe(t.revision);
    const events = first.events;
    expect(events.map((e) => (e.type === 'put' ? [e.kv.key, (e.kv.value as string).length, (e.prev?.value as string).length] : []))).toEqual(
      [0, 1, 2, 3, 4].map((i) => [`big/${i}`, size, size]),
    );
    watch.cancel();
  }, 15_000);

  it('talks to a node through transport-tcp, moving past a dead endpoint', async () => {
    // 127.0.0.1:1 refuses connections: the client must move on to the live node at once.
    const kv = await soloNode('kv-tcp-test', {}, ['127.0.0.1:1']);
    expect(await kv.put('k', 'v')).toMatchObject({ revision: 1 });
    expect(await kv.get('k')).toMatchObject({ value: 'v', version: 1 });
    expect(await kv.cas('k', { version: 1 }, 'w')).toMatchObject({ succeeded: true });
    expect((await kv.range('')).map((x) => x.value)).toEqual(['w']);
  });
});
