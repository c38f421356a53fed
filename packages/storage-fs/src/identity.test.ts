import { describe, expect, it } from 'vitest';
import { openFileStorage, readDataDirIdentity } from './file-storage';
import { IdentityMismatchError } from './errors';
import { inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe('data directory identity', () => {
  it('records cluster id, node id and an incarnation on first open and keeps them across writes and reopens', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet, identity: { clusterId: 'c1', nodeId: 'n1' } });
    const first = s.identity;
    expect(first).toMatchObject({ clusterId: 'c1', nodeId: 'n1' });
    expect(first?.incarnation).toMatch(/^[0-9a-f-]{36}$/);
    await s.save({ hardState: Uint8Array.of(1), entries: [{ index: 1, term: 1, type: 'command', data: Uint8Array.of(1) }] });
    await s.close();
    const r = await openFileStorage('/d', { fileSystem, logger: quiet, identity: { clusterId: 'c1', nodeId: 'n1' } });
    expect(r.identity).toEqual(first);
    expect(r.initialState().hardState).toEqual(Uint8Array.of(1));
    await r.close();
    expect((await inspect('/d', { fileSystem })).identity).toEqual(first);
    expect(await readDataDirIdentity('/d', { fileSystem })).toEqual(first);
    expect(await readDataDirIdentity('/elsewhere', { fileSystem })).toBeUndefined();
  });

  it('refuses a directory of another node or another cluster', async () => {
    const fileSystem = new MemoryFileSystem();
    await (await openFileStorage('/d', { fileSystem, logger: quiet, identity: { clusterId: 'c1', nodeId: 'n1' } })).close();
    for (const other of [{ clusterId: 'c1', nodeId: 'n2' }, { clusterId: 'c2', nodeId: 'n1' }]) {
      const err = await openFileStorage('/d', { fileSystem, logger: quiet, identity: other }).catch((e: unknown) => e);
      expect(IdentityMismatchError.is(err), String(err)).toBe(true);
      expect((err as Error).message).toContain('belongs to node n1 of cluster c1');
    }
    // Without an expected identity the directory opens, and keeps the one it has.
    const s = await openFileStorage('/d', { fileSystem, logger: quiet });
    expect(s.identity?.nodeId).toBe('n1');
    await s.close();
  });

  it('adopts a directory written without an identity (an older release) and keeps its state', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet });
    await s.save({ hardState: Uint8Array.of(7), entries: [{ index: 1, term: 1, type: 'command', data: Uint8Array.of(1) }] });
    await s.close();
    const r = await openFileStorage('/d', { fileSystem, logger: quiet, identity: { clusterId: 'c', nodeId: 'n' } });
    expect(r.identity?.nodeId).toBe('n');
    expect(r.initialState().hardState).toEqual(Uint8Array.of(7));
    expect(r.lastIndex()).toBe(1);
    await r.close();
  });
});
