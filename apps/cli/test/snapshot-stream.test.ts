/**
 * `snapshot save` of a snapshot larger than one answer (#22 item 7): the node holds it under a transfer id and
 * serves it in pieces; the client writes `<file>.part` as they come, checks size and SHA-256, renames. The pieces
 * are shrunk to 64 KiB here (the default is 8 MiB) so a store of about 1.3 MB takes 20 of them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, SessionExpiredError, TransportError, type SnapshotJob } from '@consensus-kit/core';
import { createKvClient, KvStateMachine, type KeyValue } from '@consensus-kit/kv';
import { LockStateMachine } from '@consensus-kit/lock';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeBackup, readBackup } from '../src/backup';
import { nodeStateMachine, type LaunchedNode } from '../src/node-runner';
import { fetchSnapshotToFile, partFileOf, SnapshotSaveError, type SnapshotSource } from '../src/snapshot-fetch';
import { SnapshotTransfers, type SnapshotPiece, type StreamedSnapshot } from '../src/snapshot-transfer';
import { cleanup, cli, freeBase, tempDir } from './helpers';
import { PIECE, TTL, putBigValues, startSnapshotNode } from './snapshot-node';

const rows = (kvs: KeyValue[]) => kvs.map((kv) => ({ key: kv.key, value: Buffer.from(kv.value as Uint8Array).toString('hex'), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version }));

/** The RPC channel to one node, and a source that reads through it. */
function sourceOf(rpc: RpcClient): SnapshotSource {
  return {
    begin: () => rpc.request({ t: 'admin.snapshot', pieces: true }),
    read: (id, offset) => rpc.request({ t: 'admin.snapshot.read', id, offset }),
    cancel: (id) => rpc.request({ t: 'admin.snapshot.cancel', id }),
  };
}

describe('snapshot save in pieces, from a real node whose snapshot is larger than one piece', () => {
  let work: string;
  let port: number;
  let n: LaunchedNode;
  let clock = 0;
  let rpc: RpcClient;
  const clusterId = 'stream-1';
  beforeAll(async () => {
    work = tempDir();
    port = (await freeBase()) + 1;
    n = await startSnapshotNode(join(work, 'n1'), clusterId, port, { now: () => clock });
    // 40 values of 32 KiB and a few small keys: about 1.3 MB, 20 pieces.
    await putBigValues(port, clusterId, 'big/', 40);
    const kv = createKvClient({ endpoints: [`127.0.0.1:${port}`], clusterId });
    try {
      for (const k of ['a', 'b', 'a']) await kv.put(`small/${k}`, `v-${k}`);
      await kv.delete('small/b');
    } finally {
      await kv.close();
    }
    rpc = createRpcClient({ endpoints: [`127.0.0.1:${port}`], clusterId, timeoutMs: 10_000 });
  }, 60_000);
  afterAll(async () => {
    await rpc?.close();
    await n?.stop();
    await cleanup(work);
  });

  it('saves through the CLI in pieces and restores byte for byte: every key, value and revision', async () => {
    const file = join(work, 'big.snap');
    // The node takes it with kv's incremental snapshot (run in slices), not the one-turn snapshot().
    const kvMachine = n.machines as NonNullable<LaunchedNode['machines']>;
    const incremental = vi.spyOn(kvMachine.kv, 'beginSnapshot');
    const whole = vi.spyOn(kvMachine.kv, 'snapshot');
    const r = await cli('snapshot', 'save', file, '--endpoints', `127.0.0.1:${port}`, '--cluster-id', clusterId, '--json');
    expect(r.code, r.err).toBe(0);
    expect([incremental.mock.calls.length, whole.mock.calls.length]).toEqual([1, 0]);
    incremental.mockRestore();
    whole.mockRestore();
    const meta = JSON.parse(r.out) as { dataBytes: number; revision: number; keys: number; sha256: string; nodeId: string };
    expect(meta.dataBytes).toBeGreaterThan(16 * PIECE);
    expect(meta).toMatchObject({ revision: 44, keys: 41, nodeId: 'n1' });
    expect(readdirSync(work).filter((f) => f.endsWith('.part'))).toEqual([]);
    const b = readBackup(file);
    expect(b.sha256).toBe(meta.sha256);
    expect(b.meta.dataBytes).toBe(meta.dataBytes);

    // The file's state-machine bytes hold the node's store exactly.
    const live = rows(n.machines?.kv.range('') ?? []);
    expect(live).toHaveLength(41);
    const kv = new KvStateMachine();
    nodeStateMachine({ kv, lock: new LockStateMachine() }).restore(b.data);
    expect(rows(kv.range(''))).toEqual(live);

    // Restored as a new one-node cluster (restore --config), started, it serves the same.
    const restoredPort = (await freeBase()) + 1;
    const configFile = join(work, 'restored.json');
    const dataDir = join(work, 'restored-data');
    writeFileSync(
      configFile,
      JSON.stringify({ clusterId: 'restored-1', id: 'n1', protocol: 'raft', dataDir, listen: { host: '127.0.0.1', port: restoredPort }, http: { host: '127.0.0.1', port: restoredPort + 100 }, peers: { n1: `127.0.0.1:${restoredPort}` } }),
    );
    const restore = await cli('snapshot', 'restore', file, '--config', configFile, '--json');
    expect(restore.code, restore.err).toBe(0);
    const m = await startSnapshotNode(dataDir, 'restored-1', restoredPort);
    try {
      expect(rows(m.machines?.kv.range('') ?? [])).toEqual(live);
      expect(m.machines?.kv.currentRevision).toBe(44);
    } finally {
      await m.stop();
    }
  });

  it('a read of an unknown id, an expired one, a finished one or at an offset outside the snapshot is a typed error', async () => {
    await expect(rpc.request({ t: 'admin.snapshot.read', id: 'snap-0000000000000000', offset: PIECE })).rejects.toSatisfy(
      (e) => SessionExpiredError.is(e) && e.session === 'snap-0000000000000000' && /is unknown to node n1/.test(e.message),
    );
    const first = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    const { id, size } = first.transfer;
    expect(first.piece).toHaveLength(PIECE);
    for (const offset of [-1, size, 1.5, 'x']) {
      await expect(rpc.request({ t: 'admin.snapshot.read', id, offset })).rejects.toSatisfy((e) => InvalidArgumentError.is(e) && /is not within the snapshot/.test(e.message));
    }
    const second = await rpc.request<SnapshotPiece>({ t: 'admin.snapshot.read', id, offset: PIECE });
    expect(second).toMatchObject({ id, offset: PIECE, done: false });
    // Idle for the TTL: dropped.
    clock += TTL;
    await expect(rpc.request({ t: 'admin.snapshot.read', id, offset: 2 * PIECE })).rejects.toSatisfy(
      (e) => SessionExpiredError.is(e) && e.session === id && /expired: nobody read it for 60 s/.test(e.message),
    );
    // Read to the end: dropped with its last piece.
    const again = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    let offset = again.piece.length;
    let last: SnapshotPiece | undefined;
    while (offset < again.transfer.size) {
      last = await rpc.request<SnapshotPiece>({ t: 'admin.snapshot.read', id: again.transfer.id, offset });
      offset += last.piece.length;
    }
    expect(last?.done).toBe(true);
    await expect(rpc.request({ t: 'admin.snapshot.read', id: again.transfer.id, offset: 0 })).rejects.toSatisfy((e) => SessionExpiredError.is(e) && /is finished/.test(e.message));
  });

  it('the client gives up on an expired transfer with SnapshotSaveError "expired": no .part and the old file untouched', async () => {
    const file = join(work, 'expired.snap');
    writeFileSync(file, 'the previous backup');
    const source = sourceOf(rpc);
    let reads = 0;
    const expiring: SnapshotSource = {
      ...source,
      read: (id, offset) => {
        // The client stalls past the TTL after three pieces.
        if (++reads === 3) clock += TTL;
        return source.read(id, offset);
      },
    };
    await expect(fetchSnapshotToFile(expiring, file)).rejects.toSatisfy((e) => e instanceof SnapshotSaveError && e.problem === 'expired' && /expired/.test(e.message));
    expect(existsSync(partFileOf(file))).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('the previous backup');
  });

  it('holds at most maxTransfers at once; a cancelled or finished one frees its place', async () => {
    const a = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    const b = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    await expect(rpc.request({ t: 'admin.snapshot', pieces: true })).rejects.toSatisfy((e) => TransportError.is(e) && /at most 2 at once/.test(e.message));
    // A save through the CLI meanwhile fails, and says why.
    const file = join(work, 'busy.snap');
    const busy = await cli('snapshot', 'save', file, '--endpoints', `127.0.0.1:${port}`, '--cluster-id', clusterId);
    expect(busy.code).toBe(1);
    expect(busy.err).toContain('at most 2 at once');
    expect(existsSync(file) || existsSync(partFileOf(file))).toBe(false);
    expect(await rpc.request({ t: 'admin.snapshot.cancel', id: a.transfer.id })).toEqual({ cancelled: true });
    const c = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    for (const t of [b, c]) await rpc.request({ t: 'admin.snapshot.cancel', id: t.transfer.id });
    // An expired one frees its place too.
    await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    clock += TTL;
    const d = await rpc.request<StreamedSnapshot>({ t: 'admin.snapshot', pieces: true });
    await rpc.request({ t: 'admin.snapshot.cancel', id: d.transfer.id });
  });

  it('an older client asking admin.snapshot without pieces still gets the whole snapshot in one answer, and the fetcher writes an older node\'s answer', async () => {
    const whole = await rpc.request<{ data: Uint8Array; revision: number }>({ t: 'admin.snapshot' });
    expect(whole.data.length).toBeGreaterThan(16 * PIECE);
    const file = join(work, 'legacy.snap');
    const legacy: SnapshotSource = { begin: () => Promise.resolve(whole), read: () => Promise.reject(new Error('not asked')), cancel: () => Promise.resolve() };
    const saved = await fetchSnapshotToFile(legacy, file);
    expect(saved.pieces).toBe(1);
    expect(Buffer.from(readBackup(file).data).equals(Buffer.from(whole.data))).toBe(true);
  });

  it('a transfer killed on the node (it stops) leaves neither <file>.part nor <file>', async () => {
    const file = join(work, 'killed.snap');
    const source = sourceOf(rpc);
    let reads = 0;
    const dying: SnapshotSource = {
      ...source,
      read: async (id, offset) => {
        if (++reads === 4) await n.stop();
        return source.read(id, offset);
      },
    };
    let progressed = 0;
    // The node is gone before the fifth piece: its connection closed, the next read cannot connect.
    await expect(fetchSnapshotToFile(dying, file, { onProgress: (got) => (progressed = got) })).rejects.toSatisfy(
      (e) =>
        e instanceof SnapshotSaveError &&
        e.problem === 'interrupted' &&
        TransportError.is(e.cause) &&
        e.message.includes(`the transfer broke off after ${4 * PIECE} of `) &&
        e.message.endsWith('nothing was written'),
    );
    expect(progressed).toBe(4 * PIECE);
    expect(existsSync(partFileOf(file))).toBe(false);
    expect(existsSync(file)).toBe(false);
  });
});

describe('SnapshotTransfers: what a node holds', () => {
  const meta = { stateMachine: 'kv+lock' as const, clusterId: 'c', nodeId: 'n1', protocol: 'raft', appliedIndex: 1, term: 1, revision: 1, compactRevision: 0, keys: 1 };
  const bytes = (n: number) => new Uint8Array(n).map((_, i) => i % 251);

  it('holds the bytes of unfinished transfers only, up to maxTransfers, and drops them on expiry, cancel, finish and close', async () => {
    let now = 0;
    const t = new SnapshotTransfers('n1', { pieceBytes: 100, ttlMs: 1000, maxTransfers: 2, now: () => now });
    const small = await t.begin(() => ({ meta, data: bytes(100) }));
    expect(small.transfer.size).toBe(100);
    expect(t.count).toBe(0); // answered whole: nothing held
    const a = await t.begin(() => ({ meta, data: bytes(250) }));
    const b = await t.begin(() => ({ meta, data: bytes(300) }));
    expect([t.count, t.heldBytes]).toEqual([2, 550]);
    await expect(t.begin(() => ({ meta, data: bytes(10) }))).rejects.toThrow(TransportError);
    expect(t.read(a.transfer.id, 100)).toMatchObject({ offset: 100, done: false });
    expect(t.read(a.transfer.id, 200)).toMatchObject({ offset: 200, done: true });
    expect([t.count, t.heldBytes]).toEqual([1, 300]);
    now += 999;
    expect(t.count).toBe(1);
    now += 1;
    expect([t.count, t.heldBytes]).toEqual([0, 0]);
    expect(() => t.read(b.transfer.id, 100)).toThrow(/expired/);
    const c = await t.begin(() => ({ meta, data: bytes(300) }));
    expect(t.cancel(c.transfer.id)).toEqual({ cancelled: true });
    expect(t.count).toBe(0);
    await t.begin(() => ({ meta, data: bytes(300) }));
    t.close();
    expect([t.count, t.heldBytes]).toEqual([0, 0]);
  });

  it('runs an incremental snapshot job in slices and counts it while it runs; close cancels it', async () => {
    const t = new SnapshotTransfers('n1', { pieceBytes: 100, maxTransfers: 1 });
    let cancelled = false;
    const never: SnapshotJob = { step: () => undefined, cancel: () => (cancelled = true) };
    const taking = t.begin(() => ({ meta, data: never }));
    await new Promise((r) => setImmediate(r));
    expect(t.count).toBe(1);
    await expect(t.begin(() => ({ meta, data: bytes(10) }))).rejects.toThrow(/at most 1 at once/);
    t.close();
    await expect(taking).rejects.toThrow(/stopping/);
    expect(cancelled).toBe(true);
    let steps = 0;
    const done = new SnapshotTransfers('n1', { pieceBytes: 100 });
    const job: SnapshotJob = { step: () => (++steps < 5 ? undefined : bytes(150)), cancel: () => undefined };
    const first = await done.begin(() => ({ meta, data: job }));
    expect(first.transfer.size).toBe(150);
    done.close();
  });
});

describe('readBackup reads a large file a chunk at a time', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(work);
  });
  it('verifies a file of three 8 MiB chunks, and finds a byte flipped in the last one', () => {
    const data = new Uint8Array(randomBytes(17 * 1024 * 1024 + 123));
    const meta = { stateMachine: 'kv+lock' as const, createdAt: '2026-01-01T00:00:00.000Z', clusterId: 'c', nodeId: 'n1', protocol: 'raft', appliedIndex: 1, term: 1, revision: 1, compactRevision: 0, keys: 1 };
    const bytes = encodeBackup(meta, data);
    const file = join(work, 'large.snap');
    writeFileSync(file, bytes);
    const b = readBackup(file);
    expect(b.sha256).toBe(createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest('hex'));
    expect(Buffer.from(b.data).equals(Buffer.from(data))).toBe(true);
    const flipped = Buffer.from(bytes);
    flipped[17 * 1024 * 1024] = (flipped[17 * 1024 * 1024] as number) ^ 1;
    writeFileSync(file, flipped);
    expect(() => readBackup(file)).toThrow(/checksum mismatch/);
  });
});

describe('snapshot save writes nothing when the node cannot be reached', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir();
    mkdirSync(join(work, 'x'));
  });
  afterAll(async () => {
    await cleanup(work);
  });
  it('exits 1 with no file or .part', async () => {
    const file = join(work, 'x', 'none.snap');
    const r = await cli('snapshot', 'save', file, '--endpoints', `127.0.0.1:${(await freeBase()) + 1}`, '--cluster-id', 'nobody', '--timeout', '1s');
    expect(r.code).toBe(1);
    expect(readdirSync(join(work, 'x'))).toEqual([]);
  });
});
