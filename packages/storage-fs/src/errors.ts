import { CorruptLogError, StorageError } from '@consensus-kit/core';

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

const LOST_WAL = Symbol.for('@consensus-kit/storage-fs/LostWalError');

/**
 * The WAL ends below its durable point: records the node had made durable (fsynced, and so possibly
 * acknowledged to a leader or a client) are missing, because a segment was deleted, truncated or zeroed. Not a
 * torn tail: a torn write is always past the durable point. A `CorruptLogError` (code `CORRUPT_LOG`) whose
 * `file` names the segment that is missing or short, `offset` where its intact records end, `lastGoodIndex`
 * the last index recovered and `durableIndex` the last index that was durable.
 */
export class LostWalError extends CorruptLogError {
  /** The log's last index at the durable point. */
  readonly durableIndex: number;
  readonly [LOST_WAL] = true;
  constructor(details: { file: string; offset: number; lastGoodIndex: number; durableIndex: number }, reason: string) {
    super(
      details,
      `${reason}. Entries up to ${details.durableIndex} were made durable (and may have been acknowledged), but the log ` +
        `recovers only up to ${details.lastGoodIndex}: this node lost state it promised to keep. Restore the file, or remove ` +
        'the node from its cluster and add it back with an empty data directory',
    );
    this.durableIndex = details.durableIndex;
  }
  static override is(e: unknown): e is LostWalError {
    return CorruptLogError.is(e) && (e as unknown as Record<symbol, unknown>)[LOST_WAL] === true;
  }
}

const IDENTITY = Symbol.for('@consensus-kit/storage-fs/IdentityMismatchError');

/** The data directory belongs to another node or another cluster than the one opening it. */
export class IdentityMismatchError extends StorageError {
  readonly dir: string;
  readonly expected: { clusterId: string; nodeId: string };
  readonly found: { clusterId: string; nodeId: string };
  readonly [IDENTITY] = true;
  constructor(dir: string, expected: { clusterId: string; nodeId: string }, found: { clusterId: string; nodeId: string }) {
    super(
      `data directory ${dir} belongs to node ${found.nodeId} of cluster ${found.clusterId}, not to node ${expected.nodeId} ` +
        `of cluster ${expected.clusterId}: refusing to open it (a wrong dataDir, or a config copied from another node)`,
    );
    this.dir = dir;
    this.expected = expected;
    this.found = found;
  }
  static override is(e: unknown): e is IdentityMismatchError {
    return StorageError.is(e) && (e as unknown as Record<symbol, unknown>)[IDENTITY] === true;
  }
}
