/**
 * Break-it pass (session 15) on the node's side of `snapshot save` in pieces (snapshot-transfer.ts, node-runner's
 * admin.snapshot): hostile or slow readers and old clients. Each case failed before its fix.
 */
import { join } from 'node:path';
import { InvalidArgumentError, SessionExpiredError, StoppedError, TimeoutError, TransportError, type SnapshotJob } from '@consensus-kit/core';
import { createKvClient } from '@consensus-kit/kv';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LaunchedNode } from '../src/node-runner';
import { SnapshotTransfers, type StreamedSnapshot } from '../src/snapshot-transfer';
import { cleanup, freeBase, tempDir } from './helpers';
import { PIECE, putBigValues, startSnapshotNode } from './snapshot-node';

const meta = { stateMachine: 'kv+lock' as const, clusterId: 'c', nodeId: 'n1', protocol: 'raft', appliedIndex: 1, term: 1, revision: 1, compactRevision: 0, keys: 1 };
const bytes = (n: number) => new Uint8Array(n).map((_, i) => i % 251);

describe('SnapshotTransfers: a reader that does not carry the transfer on', () => {
  it('re-reading the first piece just inside the idle time does not hold a transfer forever: it expires one idle time after the last piece that went further', async () => {
    let now = 0;
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, ttlMs: 1000, maxTransfers: 1, now: () => now });
    const first = await t.begin(() => ({ meta, data: bytes(100) }));
    const id = first.transfer.id;
    now += 999;
    expect(t.read(id, 0).piece.length).toBe(10);
    now += 999;
    // Before the fix every read refreshed it: two such readers kept every backup of the node refused for ever.
    expect(() => t.read(id, 0)).toThrow(SessionExpiredError);
    expect(t.count).toBe(0);
  });

  it('a read of the last piece out of turn is answered without ending the transfer under the client fetching it in order', async () => {
    let now = 0;
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, ttlMs: 1000, maxTransfers: 2, now: () => now });
    const data = bytes(95);
    const first = await t.begin(() => ({ meta, data }));
    const id = first.transfer.id;
    const ahead = t.read(id, 90);
    expect([ahead.piece.length, ahead.done]).toEqual([5, false]);
    expect(t.read(id, 94).done).toBe(false);
    expect(t.count).toBe(1);
    // The client reading in order gets every piece, and the last one ends the transfer.
    const got = [first.piece];
    for (let at = first.piece.length; at < data.length; ) {
      now += 10;
      const p = t.read(id, at);
      got.push(p.piece);
      at += p.piece.length;
      expect(p.done).toBe(at === data.length);
    }
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
    expect(t.count).toBe(0);
    expect(() => t.read(id, 0)).toThrow(/is finished/);
  });

  it('a reader advancing piece by piece keeps it alive as long as it advances, and no longer', async () => {
    let now = 0;
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, ttlMs: 1000, maxTransfers: 1, now: () => now });
    const first = await t.begin(() => ({ meta, data: bytes(50) }));
    const id = first.transfer.id;
    for (const at of [10, 20, 30]) {
      now += 999;
      t.read(id, at);
      t.read(id, at - 10); // a re-read of the piece before changes nothing
    }
    now += 1000;
    expect(() => t.read(id, 40)).toThrow(/expired/);
  });
});

describe('SnapshotTransfers: a client that gives up while the snapshot is taken', () => {
  /** A job that needs `steps` steps (the slices of a large store), counting them, cancelled or not. */
  const slowJob = (steps: number) => {
    const seen = { steps: 0, cancelled: false };
    const job: SnapshotJob = {
      step: () => (++seen.steps >= steps ? bytes(100) : undefined),
      cancel: () => {
        seen.cancelled = true;
      },
    };
    return { job, seen };
  };

  it('stops taking at once, holds nothing and frees its place when the request is aborted (client cancelled, timed out, or killed)', async () => {
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, maxTransfers: 1 });
    const { job, seen } = slowJob(Number.MAX_SAFE_INTEGER);
    const gaveUp = new AbortController();
    const begun = t.begin(() => ({ meta, data: job }), gaveUp.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.count).toBe(1);
    gaveUp.abort(new Error('connection closed'));
    await expect(begun).rejects.toSatisfy((e) => StoppedError.is(e) && /the client gave up on the snapshot node n1 was taking/.test(e.message));
    expect(seen.cancelled).toBe(true);
    expect(t.count).toBe(0);
    // An aborted request never starts one.
    const { job: other, seen: otherSeen } = slowJob(3);
    await expect(t.begin(() => ({ meta, data: other }), AbortSignal.abort())).rejects.toSatisfy((e) => StoppedError.is(e));
    expect(otherSeen.steps).toBe(0);
    expect(t.count).toBe(0);
  });

  it('the same for the whole snapshot an older client asks for', async () => {
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, maxTransfers: 1 });
    const { job, seen } = slowJob(Number.MAX_SAFE_INTEGER);
    const gaveUp = new AbortController();
    const taken = t.whole(() => ({ meta, data: job }), gaveUp.signal);
    await new Promise((r) => setTimeout(r, 20));
    gaveUp.abort();
    await expect(taken).rejects.toSatisfy((e) => StoppedError.is(e));
    expect([seen.cancelled, t.count]).toEqual([true, 0]);
  });
});

describe('SnapshotTransfers: a client whose connections closed (killed with -9)', () => {
  it('drops the transfer orphanMs after the last connection that began or read it closed, not after the idle time', async () => {
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, ttlMs: 60_000, orphanMs: 50, maxTransfers: 1 });
    const began = new AbortController();
    const reading = new AbortController();
    const first = await t.begin(() => ({ meta, data: bytes(100) }), undefined, began.signal);
    const id = first.transfer.id;
    t.read(id, 10, reading.signal);
    began.abort();
    await new Promise((r) => setTimeout(r, 120));
    expect(t.count).toBe(1); // one connection still open
    reading.abort();
    await vi.waitFor(() => expect(t.count).toBe(0), { timeout: 2000 });
    expect(() => t.read(id, 20)).toThrow(/was dropped: every connection of the client reading it closed/);
    // Its place is free at once for the next save.
    await t.begin(() => ({ meta, data: bytes(100) }));
  });

  it('keeps it when the client reads on over a new connection within orphanMs', async () => {
    const t = new SnapshotTransfers('n1', { pieceBytes: 10, ttlMs: 60_000, orphanMs: 100 });
    const old = new AbortController();
    const first = await t.begin(() => ({ meta, data: bytes(30) }), undefined, old.signal);
    old.abort();
    const again = new AbortController();
    t.read(first.transfer.id, 10, again.signal);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.count).toBe(1);
    expect(t.read(first.transfer.id, 20, again.signal).done).toBe(true);
  });
});

describe('admin.snapshot without pieces (a client of an older release), against a real node', () => {
  const clusterId = 'breakit-s15';
  let work: string;
  let port: number;
  let n: LaunchedNode;
  let rpc: RpcClient;
  beforeAll(async () => {
    work = tempDir();
    port = (await freeBase()) + 1;
    n = await startSnapshotNode(join(work, 'n1'), clusterId, port, { orphanMs: 200 });
    await putBigValues(port, clusterId, 'big/', 8);
    rpc = createRpcClient({ endpoints: [`127.0.0.1:${port}`], clusterId, timeoutMs: 10_000 });
  }, 60_000);
  afterAll(async () => {
    await rpc?.close();
    await n?.stop();
    await cleanup(work);
  });

  it('is taken incrementally (beginSnapshot in slices, never the one-turn snapshot()) and counts among the transfers a node takes at once', async () => {
    const machines = n.machines as NonNullable<LaunchedNode['machines']>;
    const incremental = vi.spyOn(machines.kv, 'beginSnapshot');
    const oneTurn = vi.spyOn(machines.kv, 'snapshot');
    try {
      const whole = (await rpc.request({ t: 'admin.snapshot' })) as { data: Uint8Array };
      expect(whole.data.length).toBeGreaterThan(4 * PIECE);
      expect([incremental.mock.calls.length, oneTurn.mock.calls.length]).toEqual([1, 0]);
    } finally {
      incremental.mockRestore();
      oneTurn.mockRestore();
    }
    // Two transfers held: an old client's request is refused as a third save is, instead of taken regardless.
    const held = (await Promise.all([rpc.request({ t: 'admin.snapshot', pieces: true }), rpc.request({ t: 'admin.snapshot', pieces: true })])) as StreamedSnapshot[];
    await expect(rpc.request({ t: 'admin.snapshot' })).rejects.toSatisfy((e) => TransportError.is(e) && /at most 2 at once/.test(e.message));
    for (const h of held) await rpc.request({ t: 'admin.snapshot.cancel', id: h.transfer.id });
    expect(((await rpc.request({ t: 'admin.snapshot' })) as { data: Uint8Array }).data.length).toBeGreaterThan(4 * PIECE);
  });

  it('a save that times out while the node takes the snapshot leaves the node holding nothing: its place is free at once', async () => {
    const machines = n.machines as NonNullable<LaunchedNode['machines']>;
    let cancelled = 0;
    // Two takes that would never end (the slices of a store far larger than this one).
    const endless = vi.spyOn(machines.kv, 'beginSnapshot').mockImplementation(() => ({
      step: () => undefined,
      cancel: () => {
        cancelled++;
      },
    }));
    try {
      for (let i = 0; i < 2; i++) {
        await expect(rpc.request({ t: 'admin.snapshot', pieces: true }, { timeoutMs: 300 })).rejects.toSatisfy((e) => TimeoutError.is(e));
      }
      await vi.waitFor(() => expect(cancelled).toBe(2), { timeout: 5000 });
    } finally {
      endless.mockRestore();
    }
    // Before the fix both went on being taken for ever, and every later save was refused.
    const a = (await rpc.request({ t: 'admin.snapshot', pieces: true })) as StreamedSnapshot;
    const b = (await rpc.request({ t: 'admin.snapshot', pieces: true })) as StreamedSnapshot;
    for (const h of [a, b]) await rpc.request({ t: 'admin.snapshot.cancel', id: h.transfer.id });
  });

  it('hostile reads and cancels are typed errors or no-ops, and 1000 saves at once leave at most 2 taken: the node keeps serving', async () => {
    const first = (await rpc.request({ t: 'admin.snapshot', pieces: true })) as StreamedSnapshot;
    const id = first.transfer.id;
    for (const offset of [-1, 0.5, Number.NaN, '10', null, 2 ** 53, first.transfer.size]) {
      await expect(rpc.request({ t: 'admin.snapshot.read', id, offset })).rejects.toSatisfy((e) => InvalidArgumentError.is(e) && /is not within the snapshot/.test(e.message));
    }
    for (const bad of [42, null, { id }, 'x'.repeat(1000), '']) {
      await expect(rpc.request({ t: 'admin.snapshot.read', id: bad, offset: 0 })).rejects.toSatisfy((e) => InvalidArgumentError.is(e) || SessionExpiredError.is(e));
      expect(await rpc.request({ t: 'admin.snapshot.cancel', id: bad })).toEqual({ cancelled: false });
    }
    // The transfer is intact: read in order, it is the whole.
    let at = first.piece.length;
    while (at < first.transfer.size) at += ((await rpc.request({ t: 'admin.snapshot.read', id, offset: at })) as { piece: Uint8Array }).piece.length;

    const many = createRpcClient({ endpoints: [`127.0.0.1:${port}`], clusterId, timeoutMs: 60_000 });
    try {
      const answers = await Promise.allSettled(Array.from({ length: 1000 }, () => many.request({ t: 'admin.snapshot', pieces: true })));
      const taken = answers.filter((a): a is PromiseFulfilledResult<StreamedSnapshot> => a.status === 'fulfilled').map((a) => a.value);
      const refused = answers.filter((a) => a.status === 'rejected' && TransportError.is(a.reason) && /at most 2 at once/.test((a.reason as Error).message));
      expect(taken.length).toBeGreaterThanOrEqual(1);
      expect(taken.length).toBeLessThanOrEqual(2);
      expect(taken.length + refused.length).toBe(1000);
      for (const h of taken) await many.request({ t: 'admin.snapshot.cancel', id: h.transfer.id });
    } finally {
      await many.close();
    }
    const kv = createKvClient({ endpoints: [`127.0.0.1:${port}`], clusterId });
    try {
      expect((await kv.put('after/1000', 'still here')).revision).toBeGreaterThan(0);
    } finally {
      await kv.close();
    }
  });

  it('two saves whose client went away mid-transfer (connections closed) free their places within orphanMs, not the 60 s idle time', async () => {
    for (let i = 0; i < 2; i++) {
      const gone = createRpcClient({ endpoints: [`127.0.0.1:${port}`], clusterId, timeoutMs: 10_000 });
      const first = (await gone.request({ t: 'admin.snapshot', pieces: true })) as StreamedSnapshot;
      await gone.request({ t: 'admin.snapshot.read', id: first.transfer.id, offset: first.piece.length });
      await gone.close();
    }
    // Both places are free again well inside the idle time (60 s here): two saves are taken at once. (Each orphan is
    // dropped orphanMs after its own connection closed, so one place may come free a little before the other.)
    await vi.waitFor(
      async () => {
        const got = await Promise.allSettled([rpc.request({ t: 'admin.snapshot', pieces: true }), rpc.request({ t: 'admin.snapshot', pieces: true })]);
        for (const g of got) if (g.status === 'fulfilled') await rpc.request({ t: 'admin.snapshot.cancel', id: (g.value as StreamedSnapshot).transfer.id });
        const refused = got.find((g) => g.status === 'rejected');
        if (refused !== undefined) throw refused.reason;
      },
      { timeout: 5000, interval: 100 },
    );
  });
});
