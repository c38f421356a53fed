/**
 * Break-it pass (session 14): two opens of one data directory at the same moment in one process (an embedder
 * calling `startNode` twice with the same `dir`, a double-clicked restart) must give exactly one storage and a
 * `DirectoryLockedError` for the other. Before the fix both could pass the lock: the second open took the first's
 * fresh lock file (this pid, not yet in the held set) for a stale one and deleted it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingLogger, tempDirs } from '../test/helpers';
import { DirectoryLockedError } from './errors';
import { openFileStorage } from './file-storage';
import { acquireLock } from './lock';
import { nodeFileSystem } from './file-system';

const temp = tempDirs('storage-fs-lock-breakit-');
afterEach(temp.cleanup);

describe('data directory lock break-it: two opens at once in one process', () => {
  it('acquireLock: one of two concurrent takers gets the lock, the other DirectoryLockedError, never a takeover', async () => {
    for (let round = 0; round < 20; round++) {
      const dir = await temp.make();
      const logger = recordingLogger();
      const fsys = nodeFileSystem();
      const results = await Promise.allSettled([acquireLock(fsys, dir, logger), acquireLock(fsys, dir, logger)]);
      const held = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      expect(held, `round ${round}`).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(DirectoryLockedError);
      expect(logger.lines.filter((r) => r.msg.includes('stale'))).toEqual([]);
      await (held[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
      // Released, the directory can be locked again.
      await (await acquireLock(fsys, dir, logger)).release();
    }
  });

  it('a release racing a new acquire never deletes the new holder\'s lock file', async () => {
    const dir = await temp.make();
    const logger = recordingLogger();
    const base = nodeFileSystem();
    // The release's unlink is slow (a busy disk): it reaches the disk after the new acquire has run.
    let slowUnlinks = 1;
    const fsys = { ...base, unlink: async (path: string) => (slowUnlinks-- > 0 ? new Promise<void>((done) => setTimeout(done, 100)).then(() => base.unlink(path)) : base.unlink(path)) };
    const first = await acquireLock(fsys, dir, logger);
    const [, next] = await Promise.allSettled([first.release(), acquireLock(fsys, dir, logger)]);
    if (next.status === 'fulfilled') {
      // The new holder's LOCK file is on disk: the old release did not delete it.
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toContain(String(process.pid));
      await next.value.release();
    } else expect(next.reason).toBeInstanceOf(DirectoryLockedError);
    expect(logger.lines.filter((r) => r.msg.includes('stale'))).toEqual([]);
  });

  it('openFileStorage twice at once: one storage, one DirectoryLockedError', async () => {
    for (let round = 0; round < 10; round++) {
      const dir = await temp.make();
      const logger = recordingLogger();
      const results = await Promise.allSettled([openFileStorage(dir, { logger }), openFileStorage(dir, { logger })]);
      const opened = results.filter((r) => r.status === 'fulfilled');
      expect(opened, `round ${round}: ${results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'opened')).join(' | ')}`).toHaveLength(1);
      expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(DirectoryLockedError);
      for (const r of opened) await (r as PromiseFulfilledResult<{ close(): Promise<void> }>).value.close();
    }
  });
});
