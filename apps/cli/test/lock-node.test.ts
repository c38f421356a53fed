/**
 * Nodes run `{ kv, lock }` on one log (kv primary): the kv service is unchanged on the wire, the lock service
 * answers `lock.*` requests on the same client port, and a cluster whose state was written by kv-only nodes
 * keeps every key.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLockClient } from '@consensus-kit/lock/tcp';
import { KvStateMachine } from '@consensus-kit/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBackup } from '../src/backup';
import { ClusterDir } from '../src/cluster-file';
import { connectKv } from '../src/connect';
import { nodeStateMachine } from '../src/node-runner';
import { cleanup, cli, freeBase, tempDir, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

const fixture = (name: string) => readFileSync(new URL(`../../../packages/kv/testdata/${name}`, import.meta.url));
const clientOf = (dir: string, ttlMs = 3_000) => {
  const c = new ClusterDir(dir).read();
  return createLockClient({ endpoints: c.nodes.map((n) => `${n.host}:${n.port}`), clusterId: c.clusterId, ttlMs });
};

describe("the node's state machine is { kv, lock } with kv primary", () => {
  let index = 0;
  const entry = () => ({ index: ++index, term: 1, type: 'command' as const, data: new Uint8Array() });

  it('restores the kv-only snapshots (formats 1 and 2) into kv and applies old unrouted kv entries beside routed lock ones', () => {
    for (const [name, key, value] of [
      ['snapshot-v1.bin', 'config/host', 'example.org'],
      ['snapshot-v2.bin', 'config/port', '7200'],
    ] as const) {
      const real = nodeStateMachine();
      real.restore(fixture(name));
      expect(real.query({ op: 'get', key })).toMatchObject({ value });
      index = 1_000;
      // An entry of the kv-only log: a bare kv command.
      const before = real.query({ op: 'revision' }) as number;
      real.apply(entry(), { cmd: { op: 'put', key: 'after', value: 'upgrade' } });
      expect(real.query({ op: 'get', key: 'after' })).toMatchObject({ value: 'upgrade', modRevision: before + 1 });
      const copy = nodeStateMachine();
      copy.restore(real.snapshot());
      expect(copy.query({ op: 'get', key })).toMatchObject({ value });
      expect(copy.query({ sm: 'lock', q: { op: 'locks' } })).toEqual([]);
    }
  });
});

describe('a started cluster serves kv and lock on one client port', () => {
  const dir = useStartedCluster();

  it('createLockClient (@consensus-kit/lock/tcp) acquires against `consensus-cli start`; a second client waits and gets a higher token; kv is unchanged', async () => {
    const a = clientOf(dir());
    const b = clientOf(dir());
    const { kv } = connectKv(dir());
    try {
      const held = await a.acquire('jobs/nightly');
      expect(held.token).toBeGreaterThan(0);
      expect(await b.tryAcquire('jobs/nightly')).toBeUndefined();
      const waiting = b.acquire('jobs/nightly', { timeoutMs: 20_000 });
      await kv.put('k', 'v');
      expect((await kv.get('k'))?.value).toBe('v');
      await held.release();
      const next = await waiting;
      expect(next.token).toBeGreaterThan(held.token);
      await next.release();
    } finally {
      await Promise.all([a.close(), b.close(), kv.close()]);
    }
  });
});

describe('a cluster restored from a kv-only backup', () => {
  let work = '';
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(join(work, 'restored'));
    await cleanup(work);
  });

  it('starts on { kv, lock } with every key of the kv-only snapshot, and serves locks', async () => {
    const data = fixture('snapshot-v2.bin');
    const kvOnly = new KvStateMachine();
    kvOnly.restore(data);
    // What a kv-only release's `snapshot save` wrote: kv's bare snapshot, stateMachine "kv".
    const file = join(work, 'kv-only.snap');
    writeFileSync(
      file,
      encodeBackup(
        { stateMachine: 'kv', createdAt: '2026-01-01T00:00:00.000Z', clusterId: 'old-1', nodeId: 'n1', protocol: 'raft', appliedIndex: 20, term: 2, revision: kvOnly.currentRevision, compactRevision: kvOnly.compactRevision, keys: kvOnly.size },
        data,
      ),
    );
    const restored = join(work, 'restored');
    expect((await cli('snapshot', 'restore', file, '--dir', restored, '--port', String(await freeBase()))).code).toBe(0);
    expect((await cli('start', '--dir', restored, '--detach', '--json')).code).toBe(0);
    const got = await cli('get', 'config/port', '--dir', restored, '--json');
    expect(got.code).toBe(0);
    expect(JSON.parse(got.out)).toMatchObject({ value: '7200', modRevision: 3 });
    const locks = clientOf(restored);
    try {
      const held = await locks.acquire('after-restore');
      expect(held.token).toBeGreaterThan(0);
      await held.release();
    } finally {
      await locks.close();
    }
  });
});
