import { StorageError } from '@consensus-kit/core';

/** Brand that survives two copies of this package in one node_modules, where `instanceof` does not. */
const LOCKED = Symbol.for('@consensus-kit/storage-fs/DirectoryLockedError');

/** Another process (or another open storage in this one) holds the data directory's lock file. */
export class DirectoryLockedError extends StorageError {
  readonly dir: string;
  /** The process id written in the lock file by its holder. */
  readonly holderPid: number;
  readonly [LOCKED] = true;
  constructor(dir: string, holderPid: number) {
    super(`data directory ${dir} is locked by process ${holderPid}; two processes must never share one data directory`);
    this.dir = dir;
    this.holderPid = holderPid;
  }
  static override is(e: unknown): e is DirectoryLockedError {
    return StorageError.is(e) && (e as unknown as Record<symbol, unknown>)[LOCKED] === true;
  }
}
