import { StorageError } from '@consensus-kit/core';

/** Another process (or another open storage in this one) holds the data directory's lock file. */
export class DirectoryLockedError extends StorageError {
  readonly dir: string;
  /** The process id written in the lock file by its holder. */
  readonly holderPid: number;
  constructor(dir: string, holderPid: number) {
    super(`data directory ${dir} is locked by process ${holderPid}; two processes must never share one data directory`);
    this.dir = dir;
    this.holderPid = holderPid;
  }
  static isLocked(e: unknown): e is DirectoryLockedError {
    return e instanceof DirectoryLockedError;
  }
}
