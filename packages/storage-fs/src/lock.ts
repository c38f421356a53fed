import type { Logger } from '@consensus-kit/core';
import { DirectoryLockedError } from './errors';
import { errorCode, readWholeFile, unlinkIfExists, type FileSystem } from './file-system';
import { processIdentity, processRunning } from './process-identity';

export const LOCK_FILE = 'LOCK';

/** Directories locked by this process, per file system (a crash-simulation image is a new file system). */
const held = new WeakMap<FileSystem, Set<string>>();

export interface DirectoryLock {
  release(): Promise<void>;
}

/** What a lock file says of its holder: the pid and, when recorded, the process identity (see process-identity). */
export interface LockHolder {
  pid: number;
  identity?: string;
}

export function parseLock(bytes: Uint8Array | undefined): LockHolder | undefined {
  if (bytes === undefined) return undefined;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { pid?: unknown; identity?: unknown };
    if (typeof parsed.pid !== 'number' || !Number.isSafeInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    return typeof parsed.identity === 'string' ? { pid: parsed.pid, identity: parsed.identity } : { pid: parsed.pid };
  } catch {
    return undefined;
  }
}

/**
 * Takes the data directory's lock: a `LOCK` file created with O_EXCL that holds the owner's pid and identity. A
 * lock left by a process that no longer runs (or by this process, in a storage it no longer has open) is taken
 * over with a warning, also when its pid now belongs to another process (after a crash or a reboot). A live
 * holder gets a `DirectoryLockedError` naming its pid.
 */
export async function acquireLock(
  fsys: FileSystem,
  dir: string,
  logger: Logger,
  isRunning: (holder: LockHolder) => boolean = (h) => processRunning(h.pid, h.identity),
): Promise<DirectoryLock> {
  const path = fsys.join(dir, LOCK_FILE);
  let mine = held.get(fsys);
  if (mine === undefined) {
    mine = new Set();
    held.set(fsys, mine);
  }
  const locks = mine;
  if (locks.has(path)) throw new DirectoryLockedError(dir, process.pid);
  // Reserved before the first await: a second open of the directory by this process meanwhile (two at once) is
  // refused above instead of finding this one's fresh lock file, naming this pid, and taking it over as stale.
  locks.add(path);
  try {
    return await takeLockFile(fsys, dir, path, locks, logger, isRunning);
  } catch (e) {
    locks.delete(path);
    throw e;
  }
}

async function takeLockFile(
  fsys: FileSystem,
  dir: string,
  path: string,
  locks: Set<string>,
  logger: Logger,
  isRunning: (holder: LockHolder) => boolean,
): Promise<DirectoryLock> {
  const me: LockHolder = { pid: process.pid };
  const identity = processIdentity(process.pid);
  if (identity !== undefined) me.identity = identity;
  const body = new TextEncoder().encode(JSON.stringify(me));
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await fsys.open(path, 'exclusive');
      try {
        await file.write(body, 0);
      } finally {
        await file.close();
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          // Held until the file is gone: an open meanwhile is refused rather than find this file, take it over
          // as stale, and then lose its own to this unlink.
          try {
            await unlinkIfExists(fsys, path);
          } finally {
            locks.delete(path);
          }
        },
      };
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw e;
    }
    const holder = parseLock(await readWholeFile(fsys, path));
    if (holder !== undefined && holder.pid !== process.pid && isRunning(holder)) throw new DirectoryLockedError(dir, holder.pid);
    logger.warn('taking over a stale lock file', { path, holderPid: holder?.pid ?? 'unreadable' });
    await unlinkIfExists(fsys, path);
  }
  throw new DirectoryLockedError(dir, parseLock(await readWholeFile(fsys, path))?.pid ?? -1);
}
