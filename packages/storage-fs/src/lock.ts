import type { Logger } from '@consensus-kit/core';
import { DirectoryLockedError } from './errors';
import { errorCode, readWholeFile, unlinkIfExists, type FileSystem } from './file-system';

export const LOCK_FILE = 'LOCK';

/** Directories locked by this process, per file system (a crash-simulation image is a new file system). */
const held = new WeakMap<FileSystem, Set<string>>();

/** Whether a process with this id is running (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

export interface DirectoryLock {
  release(): Promise<void>;
}

function parsePid(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { pid?: unknown };
    return typeof parsed.pid === 'number' && Number.isSafeInteger(parsed.pid) && parsed.pid > 0 ? parsed.pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the data directory's lock: a `LOCK` file created with O_EXCL that holds the owner's pid. A lock left by a
 * process that no longer runs (or by this process, in a storage it no longer has open) is taken over with a
 * warning. A live holder gets a `DirectoryLockedError` naming its pid.
 */
export async function acquireLock(
  fsys: FileSystem,
  dir: string,
  logger: Logger,
  isAlive: (pid: number) => boolean = processAlive,
): Promise<DirectoryLock> {
  const path = fsys.join(dir, LOCK_FILE);
  let mine = held.get(fsys);
  if (mine === undefined) {
    mine = new Set();
    held.set(fsys, mine);
  }
  const locks = mine;
  if (locks.has(path)) throw new DirectoryLockedError(dir, process.pid);
  const body = new TextEncoder().encode(JSON.stringify({ pid: process.pid }));
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await fsys.open(path, 'exclusive');
      try {
        await file.write(body, 0);
      } finally {
        await file.close();
      }
      locks.add(path);
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          locks.delete(path);
          await unlinkIfExists(fsys, path);
        },
      };
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw e;
    }
    const pid = parsePid(await readWholeFile(fsys, path));
    if (pid !== undefined && pid !== process.pid && isAlive(pid)) throw new DirectoryLockedError(dir, pid);
    logger.warn('taking over a stale lock file', { path, holderPid: pid ?? 'unreadable' });
    await unlinkIfExists(fsys, path);
  }
  throw new DirectoryLockedError(dir, parsePid(await readWholeFile(fsys, path)) ?? -1);
}
