/**
 * Backups of nodes that run `{ kv, lock }`: the metadata says so (`stateMachine: "kv+lock"`), the file holds the
 * combined envelope, and a restore seeds a new cluster with every key, an empty lock table and fencing tokens
 * above the old ones. A backup of nodes that ran kv alone (`stateMachine: "kv"`) restores too (lock-node.test.ts
 * restores one end to end; here its data is checked against its metadata).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvStateMachine } from '@consensus-kit/kv';
import { LockStateMachine } from '@consensus-kit/lock';
import { createLockClient } from '@consensus-kit/lock/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupFileError, checkBackupData, decodeBackup, encodeBackup, readBackup, snapshotForNewCluster } from '../src/backup';
import { ClusterDir } from '../src/cluster-file';
import { nodeStateMachine } from '../src/node-runner';
import { cleanup, cli, freeBase, tempDir, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

const fixture = (name: string) => readFileSync(new URL(`../../../packages/kv/testdata/${name}`, import.meta.url));
const meta = (stateMachine: 'kv' | 'kv+lock', revision: number) => ({
  stateMachine,
  createdAt: '2026-01-01T00:00:00.000Z',
  clusterId: 'old-1',
  nodeId: 'n1',
  protocol: 'raft',
  appliedIndex: 50,
  term: 2,
  revision,
  compactRevision: 0,
  keys: 1,
});
const clientOf = (dir: string) => {
  const c = new ClusterDir(dir).read();
  return createLockClient({ endpoints: c.nodes.map((n) => `${n.host}:${n.port}`), clusterId: c.clusterId, ttlMs: 3_000 });
};

describe('backup data and its stateMachine metadata', () => {
  it('a kv backup holds a bare kv snapshot and a kv+lock backup the envelope; data of the other kind is refused', () => {
    const kvOnly = fixture('snapshot-v2.bin');
    const envelope = nodeStateMachine();
    envelope.restore(kvOnly);
    const combined = envelope.snapshot();
    for (const [sm, data] of [
      ['kv', kvOnly],
      ['kv+lock', combined],
    ] as const) {
      const b = decodeBackup(encodeBackup(meta(sm, 9), data), 'f');
      expect(() => checkBackupData(b, 'f')).not.toThrow();
      // Seeding a new cluster: every key, an empty lock table, the envelope either way.
      const kv = new KvStateMachine();
      const lock = new LockStateMachine();
      nodeStateMachine({ kv, lock }).restore(snapshotForNewCluster(b));
      expect(kv.query({ op: 'get', key: 'config/port' })).toMatchObject({ value: '7200', modRevision: 3 });
      expect(lock.sessionCount).toBe(0);
    }
    expect(() => checkBackupData(decodeBackup(encodeBackup(meta('kv', 9), combined), 'f'), 'f')).toThrow(BackupFileError);
    expect(() => decodeBackup(encodeBackup(meta('lock' as never, 9), combined), 'f')).toThrow(/state machine "lock" is not one of kv, kv\+lock/);
  });
});

describe('snapshot save of a { kv, lock } cluster, and its restore', () => {
  const dir = useStartedCluster();
  let work = '';
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(join(work, 'restored'));
    await cleanup(work);
  });

  it('saves stateMachine kv+lock with a held lock in it; the restored cluster has every key, no old holder, and higher tokens', async () => {
    expect((await cli('put', 'app/a', '1', '--dir', dir())).code).toBe(0);
    const locks = clientOf(dir());
    let oldToken: number;
    try {
      const held = await locks.acquire('jobs/x');
      oldToken = held.token;
      const file = join(work, 'b.snap');
      const saved = await cli('snapshot', 'save', file, '--dir', dir(), '--json');
      expect(saved.code).toBe(0);
      expect(JSON.parse(saved.out)).toMatchObject({ stateMachine: 'kv+lock', revision: 1, keys: 1 });
      // The file holds the lock table as the node had it.
      const inFile = new LockStateMachine();
      nodeStateMachine({ kv: new KvStateMachine(), lock: inFile }).restore(readBackup(file).data);
      expect(inFile.query({ op: 'lock', name: 'jobs/x' })).toMatchObject({ holders: [{ token: held.token }] });
      const status = await cli('snapshot', 'status', file);
      expect(status.out).toMatch(/state machine +kv\+lock/);
      await held.release();
    } finally {
      await locks.close();
    }
    const restored = join(work, 'restored');
    expect((await cli('snapshot', 'restore', join(work, 'b.snap'), '--dir', restored, '--port', String(await freeBase()))).code).toBe(0);
    expect((await cli('start', '--dir', restored, '--detach', '--json')).code).toBe(0);
    expect(JSON.parse((await cli('get', 'app/a', '--dir', restored, '--json')).out)).toMatchObject({ value: '1' });
    expect(JSON.parse((await cli('lock', 'list', '--dir', restored, '--json')).out)).toEqual({ locks: [], sessions: [] });
    const again = clientOf(restored);
    try {
      const h = await again.acquire('jobs/x');
      expect(h.token).toBeGreaterThan(oldToken);
      await h.release();
    } finally {
      await again.close();
    }
  });
});
