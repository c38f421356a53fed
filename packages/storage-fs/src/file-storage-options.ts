import type { Logger } from '@consensus-kit/core';
import type { FileSystem } from './file-system';

/** Options of `openFileStorage`. */
export interface FileStorageOptions {
  /** A segment is closed and a new one started once it holds this many bytes. Default 64 MiB, at least 4 KiB. */
  segmentBytes?: number;
  /**
   * Bytes of recent entries kept in memory for `entries()`; older entries are read from disk (their index,
   * segment, offset and term always stay in a compact typed-array index). Default 16 MiB.
   */
  cacheBytes?: number;
  /** Receives warnings (a torn tail was truncated, a stale lock was taken over) and errors. Default: console. */
  logger?: Logger;
  /**
   * Operators only: when a record before the tail is corrupt, start anyway with the log cut at the last good
   * index, discarding everything after the damage (logged at error level, with what is discarded). Without it
   * the open fails with `CorruptLogError`. Default false.
   */
  allowTruncateCorruptTail?: boolean;
  /** Tests only: `false` skips every fsync/fdatasync, so nothing is durable. Default true. */
  fsync?: boolean;
  /**
   * Write and flush each WAL group with a synchronous system call on the event loop's thread instead of
   * through libuv's thread pool. That saves two thread hand-offs per group, which pays off where cores are
   * scarce: on a 2-core machine running a 3-node cluster it raised puts/s by about a fifth. The price is that
   * the event loop does nothing else while a group is flushed (the host waits for the save before its next
   * batch either way, but incoming messages are not decoded meanwhile). Default false.
   */
  blockingWrites?: boolean;
  /**
   * Keep this many bytes of zeros written and synced ahead of the WAL's write position, extended in the
   * background. A flush that overwrites zeros the file already holds changes no file size, so it costs one
   * device flush and no journal commit of the inode; on ext4 that made each small O_DSYNC write about a
   * quarter faster, and three of them at once (a 3-node cluster on one disk) about a third faster. Recovery
   * reads zeros after the last record as unused space. Capped at `segmentBytes`; `0` turns it off (every write
   * then appends). Default 1 MiB.
   */
  preallocateBytes?: number;
  /**
   * Who the directory belongs to. Recorded (with a random incarnation) in the hard-state file of a new
   * directory, or of one that has none yet; a directory that records another cluster or node is refused with
   * `IdentityMismatchError`. `storage.identity` returns what the directory records.
   */
  identity?: { clusterId: string; nodeId: string };
  /**
   * The durable point (how far the WAL was made durable, so how far the node may have acknowledged) is written to
   * the `durable` file after every WAL group, a write to the page cache that no process crash can lose. It is
   * synced this many milliseconds later in the background, so a power cut loses at most that much of it (a
   * power cut followed by damage to the last milliseconds of the log could then pass for a torn tail). `0`
   * syncs it in every group before the group's saves resolve: no such window, one fdatasync more per group.
   * Default 100.
   */
  durablePointSyncMs?: number;
  /** The file layer; tests inject a `MemoryFileSystem`. Default: node:fs. */
  fileSystem?: FileSystem;
  /**
   * Told how long each group commit took, for metrics: unset (the default), nothing is timed. Called once per
   * group after its records are durable and before its saves resolve; it must not throw or block.
   */
  onWalWrite?: (timing: WalWriteTiming) => void;
}

/** One group commit's timing (`onWalWrite`), in milliseconds. */
export interface WalWriteTiming {
  /**
   * Time in the durable writes of the group's records (one per segment touched): each is a write through an
   * O_DSYNC descriptor, so this is the flush to stable storage (etcd's WAL fdatasync) with the copy it includes.
   */
  syncMs: number;
  /** The whole group: encoding, the durable writes, recording the durable point and writing the hard state. */
  totalMs: number;
  /** WAL bytes the group wrote. */
  bytes: number;
}

/** Counters since open, for benchmarks and monitoring. */
export interface FileStorageStats {
  /** fdatasync calls on WAL segments. */
  walSyncs: number;
  /** WAL writes (one per group commit per segment touched). */
  walWrites: number;
  /** `save()` calls made durable. */
  saves: number;
  /** Entries appended. */
  entriesWritten: number;
  /** WAL bytes written. */
  bytesWritten: number;
  /** Entries read from disk (not found in the cache). */
  diskReads: number;
  /** Bytes of zeros written ahead of the write position (`preallocateBytes`). */
  preallocatedBytes: number;
}

export const DEFAULT_SEGMENT_BYTES = 64 << 20;
export const DEFAULT_CACHE_BYTES = 16 << 20;
export const DEFAULT_PREALLOCATE_BYTES = 1 << 20;
export const DEFAULT_DURABLE_POINT_SYNC_MS = 100;

export const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn(msg, fields) {
    console.warn(`[storage-fs] ${msg}`, fields ?? '');
  },
  error(msg, fields) {
    console.error(`[storage-fs] ${msg}`, fields ?? '');
  },
};

export function emptyStats(): FileStorageStats {
  return { walSyncs: 0, walWrites: 0, saves: 0, entriesWritten: 0, bytesWritten: 0, diskReads: 0, preallocatedBytes: 0 };
}
