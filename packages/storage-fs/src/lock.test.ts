import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingLogger, tempDirs } from '../test/helpers';
import { StorageError } from '@consensus-kit/core';
import { DirectoryLockedError } from './errors';
import { openFileStorage } from './file-storage';
import { processIdentity } from './process-identity';

const quiet = recordingLogger();
const temp = tempDirs('storage-fs-lock-');
const tempDir = temp.make;
afterEach(temp.cleanup);

describe('data directory lock', () => {
  it('refuses a second open of one directory, naming the holder pid, until the first is closed', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet });
    const err = await openFileStorage(dir, { logger: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect(StorageError.is(err)).toBe(true);
    expect(DirectoryLockedError.is(err)).toBe(true);
    expect(DirectoryLockedError.is(new StorageError('other'))).toBe(false);
    expect((err as DirectoryLockedError).holderPid).toBe(process.pid);
    expect((err as Error).message).toContain(String(process.pid));
    await s.close();
    const again = await openFileStorage(dir, { logger: quiet });
    await again.close();
  });

  it('refuses a directory locked by another running process', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      const pid = child.pid as number;
      await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid }));
      const err = await openFileStorage(dir, { logger: quiet }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryLockedError);
      expect((err as DirectoryLockedError).holderPid).toBe(pid);
    } finally {
      child.kill();
    }
  });

  it('refuses a directory whose lock names a running process by pid and identity', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      const pid = child.pid as number;
      const identity = processIdentity(pid);
      expect(identity).toBeDefined();
      await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid, identity }));
      const err = await openFileStorage(dir, { logger: quiet }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryLockedError);
      expect((err as DirectoryLockedError).holderPid).toBe(pid);
    } finally {
      child.kill();
    }
  });

  it('takes over a lock left by a process that is gone, with a warning', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    const pid = child.pid as number;
    // Recorded while it runs, as the holder itself would have: should the pid be reused by the time the
    // storage opens, the identity still tells the new process apart.
    const identity = processIdentity(pid);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill();
    await exited;
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid, identity }));
    const logger = recordingLogger();
    const s = await openFileStorage(dir, { logger });
    expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('stale lock'))).toBe(true);
    await s.close();
  });

  it('takes over a lock whose pid now belongs to another process (a crash or a reboot ago)', async () => {
    const dir = await tempDir();
    const stranger = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      const pid = stranger.pid as number;
      const identity = processIdentity(pid) as string;
      // The holder had the same pid but started at another time (here: one clock tick earlier).
      const earlier = identity.replace(/(\d+)$/, (t) => String(Number(t) - 1));
      expect(earlier).not.toBe(identity);
      await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid, identity: earlier }));
      const logger = recordingLogger();
      const s = await openFileStorage(dir, { logger });
      expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('stale lock') && l.fields?.holderPid === pid)).toBe(true);
      const lock = JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')) as { pid: number; identity?: string };
      expect(lock).toEqual({ pid: process.pid, identity: processIdentity(process.pid) });
      await s.close();
    } finally {
      stranger.kill();
    }
  });
});
