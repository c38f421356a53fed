import {
  CompactedError,
  ConfigError,
  assertSnapshot,
  CorruptLogError,
  InvalidArgumentError,
  StorageError,
  entrySize,
  isConsensusError,
  type DurableStorage,
  type InitialState,
  type LogEntry,
  type Logger,
  type SaveBatch,
  type Snapshot,
  type SnapshotMeta,
} from '@consensus-kit/core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HARD_STATE_FILE, TMP_SUFFIX, decodeHardState, encodeHardState, writeFileAtomic } from './atomic-file';
import { nodeFileSystem, readAllSync, readWholeFile, unlinkIfExists, type FileSystem, type FsFile } from './file-system';
import { acquireLock, type DirectoryLock } from './lock';
import type { LogIndex } from './log-index';
import {
  HEADER_BYTES,
  MAX_PAYLOAD,
  RecordKind,
  SEGMENT_MAGIC,
  checkRecord,
  encodeRecords,
  entryTypeCode,
  entryTypeOf,
  recordBytes,
  scanSegment,
  specPayloadBytes,
  type RecordSpec,
} from './record';
import { Replayer } from './replay';
import {
  parseSnapshotFileName,
  readSnapshotChunks,
  readSnapshotData,
  readSnapshotMeta,
  snapshotFileName,
  writeSnapshotStream,
  type SnapshotFileMeta,
} from './snapshot-file';

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
  /** The file layer; tests inject a `MemoryFileSystem`. Default: node:fs. */
  fileSystem?: FileSystem;
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

const DEFAULT_SEGMENT_BYTES = 64 << 20;
const DEFAULT_CACHE_BYTES = 16 << 20;
const DEFAULT_PREALLOCATE_BYTES = 1 << 20;
/** Zeros are written in pieces of at most this size. */
const ZERO_CHUNK = 256 << 10;
const MAX_SEGMENT_OFFSET = 0xffffffff;
/** Contiguous entries of one segment are read with one read while the span stays under this. */
const MAX_READ_SPAN = 4 << 20;
const SEGMENT_RECORD_BYTES = recordBytes(16);

const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn(msg, fields) {
    console.warn(`[storage-fs] ${msg}`, fields ?? '');
  },
  error(msg, fields) {
    console.error(`[storage-fs] ${msg}`, fields ?? '');
  },
};

export function segmentFileName(seq: number): string {
  return `wal-${seq.toString(16).padStart(16, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const m = /^wal-([0-9a-f]{16})\.log$/.exec(name);
  return m === null ? undefined : Number.parseInt(m[1] as string, 16);
}

function segmentHeaderSpec(seq: number): RecordSpec {
  const body = new Uint8Array(16);
  body.set(SEGMENT_MAGIC, 0);
  const view = new DataView(body.buffer);
  view.setUint32(8, Math.floor(seq / 0x100000000));
  view.setUint32(12, seq >>> 0);
  return { kind: RecordKind.SEGMENT, body };
}

interface Segment {
  seq: number;
  name: string;
  path: string;
  /** Open read/write handle; undefined until the segment's first write creates the file. */
  file: FsFile | undefined;
  /**
   * The file's size as far as this process knows: records, then preallocated zeros. A write that ends past
   * it grows the file (and must not race an extension of it).
   */
  allocEnd: number;
  /** A background extension with zeros in flight, if any. */
  extending?: Promise<void>;
}

interface WalWrite {
  seq: number;
  offset: number;
  specs: RecordSpec[];
  bytes: number;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

type Task =
  | { type: 'wal'; writes: WalWrite[]; hardState: Uint8Array | undefined; waiters: Waiter[]; started: boolean }
  | { type: 'run'; fn: () => Promise<void>; waiters: Waiter[]; started: boolean };

/** What `open` recovered, handed to the constructor. */
interface Recovered {
  index: LogIndex;
  segments: Segment[];
  writeEnd: number;
  hardState: Uint8Array | undefined;
  snapshotMeta: SnapshotFileMeta | undefined;
  snapshotFile: FsFile | undefined;
  snapshotPath: string | undefined;
}

function withoutSync(fsys: FileSystem): FileSystem {
  return {
    async open(path, mode) {
      const f = await fsys.open(path, mode);
      return {
        readSync: (b, o, l, p) => f.readSync(b, o, l, p),
        write: (d, p) => f.write(d, p),
        writeDurable: (d, p) => f.write(d, p),
        datasync: async () => {},
        sync: async () => {},
        truncate: (l) => f.truncate(l),
        size: () => f.size(),
        close: () => f.close(),
      };
    },
    readdir: (d) => fsys.readdir(d),
    mkdir: (d) => fsys.mkdir(d),
    rename: (a, b) => fsys.rename(a, b),
    unlink: (p) => fsys.unlink(p),
    syncDir: async () => {},
    join: (...p) => fsys.join(...p),
  };
}


function checkEntries(entries: readonly LogEntry[]): void {
  if (!Array.isArray(entries)) throw new InvalidArgumentError('save: entries must be an array');
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as LogEntry;
    if (typeof e !== 'object' || e === null) throw new InvalidArgumentError(`save: entry ${i} is not an object`);
    if (!Number.isSafeInteger(e.index) || e.index < 1) throw new InvalidArgumentError(`save: bad entry index ${e.index}`);
    if (!Number.isSafeInteger(e.term) || e.term < 0) throw new InvalidArgumentError(`save: bad term ${e.term} at index ${e.index}`);
    if (entryTypeCode(e.type) === 0 && e.type !== 'command') throw new InvalidArgumentError(`save: bad entry type ${String(e.type)}`);
    if (!(e.data instanceof Uint8Array)) throw new InvalidArgumentError(`save: entry ${e.index} data must be a Uint8Array`);
    if (i > 0 && e.index !== (entries[i - 1] as LogEntry).index + 1) {
      throw new StorageError(`save: entries are not contiguous at index ${e.index}`);
    }
  }
}

/**
 * `DurableStorage` on the file system: a segmented write-ahead log with group commit, an atomically replaced
 * hard-state file and streamed, checksummed snapshot files. Open it with `openFileStorage`.
 *
 * Reads (`entries`, `term`, ...) are synchronous and reflect every accepted write at once, like `MemoryStorage`;
 * the promise of a write resolves when it is durable. If a write to disk fails the storage refuses all further
 * work (an fsync failure cannot be retried safely): close it and reopen, which recovers what is on disk.
 */
export class FileStorage implements DurableStorage {
  private readonly index: LogIndex;
  private readonly segments = new Map<number, Segment>();
  /** Sequence numbers of live segments, oldest first. */
  private readonly segmentOrder: number[] = [];
  private writeSeq: number;
  /** End of the placed (accepted) bytes in segment `writeSeq`. */
  private writeEnd: number;
  /** Position up to which writes have completed (readable from disk). */
  private writtenSeq: number;
  private writtenEnd: number;

  private hardState: Uint8Array | undefined;
  private snapshotMeta: SnapshotFileMeta | undefined;
  private snapshotData: Snapshot | undefined;
  private snapshotFile: FsFile | undefined;
  private snapshotPath: string | undefined;

  /** Recent entries: cache[cacheHead + k] is at index cacheFirst + k. */
  private cache: LogEntry[] = [];
  private cacheHead = 0;
  private cacheFirst = 1;
  private cacheUsed = 0;

  private queue: Task[] = [];
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private failure: unknown;
  private closed = false;
  private readonly counters: FileStorageStats = {
    walSyncs: 0,
    walWrites: 0,
    saves: 0,
    entriesWritten: 0,
    bytesWritten: 0,
    diskReads: 0,
    preallocatedBytes: 0,
  };
  /** The first failure of a background extension; the next flush reports it. */
  private extendFailure: unknown;
  /**
   * Background file work, one task at a time, beside the WAL queue so that WAL groups never wait for it:
   * writing local snapshot files, deleting old snapshots and compacted segments. Every change to snapshot
   * files goes through it (an install's too, from inside its WAL task), so those never race each other.
   */
  private side: Promise<void> = Promise.resolve();
  /** The local snapshot file being written, if any (`compact` waits for it). */
  private snapshotWrite: Promise<void> | undefined;
  /** Index of the newest snapshot whose file is durable: the limit of what `compact` may drop. */
  private durableSnapshotIndex: number;

  /** @internal Use `openFileStorage`. */
  constructor(
    private readonly fsys: FileSystem,
    readonly dir: string,
    private readonly lock: DirectoryLock,
    private readonly logger: Logger,
    private readonly segmentBytes: number,
    private readonly cacheBytes: number,
    recovered: Recovered,
    private readonly blockingWrites = false,
    private readonly preallocateBytes = 0,
  ) {
    this.index = recovered.index;
    for (const s of recovered.segments) {
      this.segments.set(s.seq, s);
      this.segmentOrder.push(s.seq);
    }
    this.writeSeq = recovered.segments.at(-1)?.seq ?? 0;
    this.writeEnd = recovered.writeEnd;
    this.writtenSeq = this.writeSeq;
    this.writtenEnd = this.writeEnd;
    this.hardState = recovered.hardState;
    this.snapshotMeta = recovered.snapshotMeta;
    this.snapshotFile = recovered.snapshotFile;
    this.snapshotPath = recovered.snapshotPath;
    this.durableSnapshotIndex = recovered.snapshotMeta?.index ?? 0;
    this.cacheFirst = this.index.last + 1;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Storage: the synchronous read side

  initialState(): InitialState {
    this.checkReadable();
    return this.hardState === undefined ? {} : { hardState: this.hardState };
  }

  firstIndex(): number {
    return this.index.first;
  }

  lastIndex(): number {
    return this.index.last;
  }

  term(index: number): number {
    this.checkReadable();
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`term: bad index ${index}`);
    const ix = this.index;
    if (index === ix.base) return ix.baseTerm;
    if (index < ix.base) throw new CompactedError(index, ix.first);
    if (index > ix.last) throw new StorageError(`term: index ${index} is past the last index ${ix.last}`);
    return ix.termOf(index);
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): LogEntry[] {
    this.checkReadable();
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new InvalidArgumentError(`entries: bad range [${lo}, ${hi})`);
    }
    const ix = this.index;
    if (lo < ix.first) throw new CompactedError(lo, ix.first);
    if (hi > ix.last + 1) throw new StorageError(`entries: ${hi - 1} is past the last index ${ix.last}`);
    // Decide how many entries fit first (sizes are in the index), then fetch them.
    let end = lo;
    let bytes = 0;
    while (end < hi) {
      bytes += ix.dataBytesOf(end) + 24; // the same estimate as core's entrySize()
      if (end > lo && bytes > maxBytes) break;
      end++;
    }
    const out: LogEntry[] = [];
    const cachedFrom = Math.max(lo, this.cacheFirst);
    if (lo < cachedFrom) this.readFromDisk(lo, Math.min(end, cachedFrom), out);
    for (let i = cachedFrom; i < end; i++) out.push(this.cache[this.cacheHead + i - this.cacheFirst] as LogEntry);
    return out;
  }

  snapshot(): Snapshot | undefined {
    this.checkReadable();
    if (this.snapshotData !== undefined || this.snapshotMeta === undefined) return this.snapshotData;
    // Reopened: load the data once, straight into one buffer, verifying every chunk.
    const file = this.snapshotFile as FsFile;
    const { meta, data } = readSnapshotData(file, this.snapshotPath as string);
    this.snapshotData = { index: meta.index, term: meta.term, config: meta.config, data };
    return this.snapshotData;
  }

  /**
   * The latest snapshot's data as a stream of verified chunks read from disk, one chunk in memory at a time
   * (for sending a large snapshot to a follower). Yields nothing when there is no snapshot.
   */
  *snapshotChunks(): Generator<Uint8Array, void, void> {
    this.checkReadable();
    if (this.snapshotMeta === undefined) return;
    if (this.snapshotFile === undefined) {
      const snap = this.snapshotData as Snapshot;
      for (let at = 0; at < snap.data.length; at += 1 << 20) yield snap.data.subarray(at, at + (1 << 20));
      return;
    }
    yield* readSnapshotChunks(this.snapshotFile, this.snapshotPath as string);
  }

  /** Counters since open. */
  stats(): FileStorageStats {
    return { ...this.counters };
  }

  // ---------------------------------------------------------------------------------------------------------
  // DurableStorage: the asynchronous write side

  async save(batch: SaveBatch): Promise<void> {
    this.checkWritable();
    if (typeof batch !== 'object' || batch === null) throw new InvalidArgumentError('save: batch must be an object');
    const { hardState, truncateAfter } = batch;
    const entries = batch.entries ?? [];
    checkEntries(entries);
    if (hardState !== undefined && !(hardState instanceof Uint8Array)) throw new InvalidArgumentError('save: hardState must be a Uint8Array');
    const ix = this.index;
    let last = ix.last;
    if (truncateAfter !== undefined) {
      if (!Number.isSafeInteger(truncateAfter) || truncateAfter < 0) throw new InvalidArgumentError(`truncateAfter: bad index ${truncateAfter}`);
      if (truncateAfter < ix.base) {
        throw new StorageError(`truncateAfter(${truncateAfter}) would cut into the compacted prefix (compacted through ${ix.base})`);
      }
      last = Math.min(last, truncateAfter);
    }
    const first = entries[0]?.index;
    if (first !== undefined && first > last + 1) {
      throw new StorageError(`save: entry ${first} would leave a gap after the last index ${last}`);
    }
    let batchBytes = 0;
    for (const e of entries) batchBytes += recordBytes(16 + e.data.length);
    if (batchBytes > MAX_PAYLOAD) throw new StorageError(`save: a batch of ${batchBytes} bytes exceeds the 1 GiB limit of one save`);

    // Validated: apply to the in-memory view and place the records. Order: hard state, truncation, entries.
    const specs: RecordSpec[] = [];
    if (hardState !== undefined) this.hardState = hardState;
    if (truncateAfter !== undefined && truncateAfter < ix.last) {
      this.dropAfter(truncateAfter);
      specs.push({ kind: RecordKind.TRUNCATE, numbers: [truncateAfter] });
    }
    let appended: LogEntry[] = [];
    if (first !== undefined) {
      // Entries at or below the compaction point are covered by the snapshot: skip them.
      const skip = Math.max(0, ix.base + 1 - first);
      appended = skip === 0 ? entries : entries.slice(skip);
      if (appended.length > 0) {
        const start = first + skip;
        if (start <= ix.last) this.dropAfter(start - 1); // replace-at-index drops the old suffix
        for (const e of appended) {
          specs.push({ kind: RecordKind.ENTRY, entryType: entryTypeCode(e.type), numbers: [e.index, e.term], body: e.data });
        }
      }
    }
    if (specs.length === 0) {
      if (hardState === undefined && this.queue.length === 0) return;
      return this.enqueueWal([], hardState, 1);
    }
    const writes = this.place(specs, false);
    const w = writes.at(-1) as WalWrite;
    let offset = w.offset + (specs[0]?.kind === RecordKind.TRUNCATE ? recordBytes(8) : 0);
    for (const e of appended) {
      ix.push(w.seq, offset, e.term, e.data.length, entryTypeCode(e.type));
      offset += recordBytes(16 + e.data.length);
      this.cachePush(e);
    }
    this.counters.entriesWritten += appended.length;
    this.evict();
    return this.enqueueWal(writes, hardState, 1);
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkWritable();
    assertSnapshot(snapshot);
    const current = this.snapshotMeta;
    if (current !== undefined && snapshot.index <= current.index) {
      throw new StorageError(`installSnapshot: snapshot ${snapshot.index} is not newer than the stored snapshot ${current.index}`);
    }
    this.setSnapshot(snapshot, true);
    this.index.reset(snapshot.index, snapshot.term);
    this.cacheClear(snapshot.index + 1);
    // 1. the snapshot file (atomic); 2. RESET as the first record of a new segment; 3. drop older segments.
    // The file says "installed": recovery completes an install whose RESET record is missing (a crash between 1 and 2).
    const wrote = this.enqueueRun(() => this.background(() => this.writeSnapshotFile(snapshot, true)));
    const writes = this.place([{ kind: RecordKind.RESET, numbers: [snapshot.index, snapshot.term] }], true);
    const keep = this.writeSeq;
    const reset = this.enqueueWal(writes, undefined, 0);
    const cleaned = this.enqueueRun(() =>
      this.background(async () => {
        await this.deleteSegmentsBefore(keep);
        await this.deleteOtherSnapshots(snapshotFileName(snapshot.index, snapshot.term));
      }),
    );
    await Promise.all([wrote, reset, cleaned]);
  }

  /**
   * Installs a snapshot received as a stream of chunks (from a leader, say), writing each chunk to disk as it
   * arrives so the snapshot is never whole in memory; `snapshot()` reads it back lazily, `snapshotChunks()`
   * streams it. Otherwise the same as `installSnapshot`. If the stream fails or yields a different length
   * than `dataBytes`, nothing changes and the storage stays usable.
   */
  async installSnapshotStream(
    meta: SnapshotMeta,
    dataBytes: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<void> {
    this.checkWritable();
    assertSnapshot({ ...meta, data: new Uint8Array(0) });
    if (!Number.isSafeInteger(dataBytes) || dataBytes < 0) throw new InvalidArgumentError(`installSnapshotStream: bad length ${dataBytes}`);
    const isStale = (): boolean => this.snapshotMeta !== undefined && meta.index <= this.snapshotMeta.index;
    if (isStale()) {
      throw new StorageError(`installSnapshot: snapshot ${meta.index} is not newer than the stored snapshot ${this.snapshotMeta?.index}`);
    }
    const name = snapshotFileName(meta.index, meta.term);
    const path = this.fsys.join(this.dir, name);
    const tmp = this.fsys.join(this.dir, `${name}.incoming${TMP_SUFFIX}`);
    const fileMeta: SnapshotFileMeta = { index: meta.index, term: meta.term, config: meta.config, dataBytes, installed: true };
    const file = await this.fsys.open(tmp, 'create');
    try {
      await writeSnapshotStream(file, fileMeta, chunks);
      await file.sync();
      this.checkWritable();
      if (isStale()) throw new StorageError(`installSnapshot: a snapshot at ${this.snapshotMeta?.index} was stored meanwhile`);
    } catch (e) {
      await file.close().catch(() => undefined);
      await unlinkIfExists(this.fsys, tmp).catch(() => undefined);
      throw isConsensusError(e) ? e : new StorageError(`installSnapshotStream: ${String(e)}`, { cause: e });
    }
    // The data is durable under its temporary name; from here on it is the same as installSnapshot. The open
    // handle keeps serving reads across the rename.
    const old = this.snapshotFile;
    this.snapshotMeta = fileMeta;
    this.snapshotData = undefined;
    this.snapshotFile = file;
    this.snapshotPath = path;
    this.index.reset(meta.index, meta.term);
    this.cacheClear(meta.index + 1);
    const renamed = this.enqueueRun(() =>
      this.background(async () => {
        await this.fsys.rename(tmp, path);
        await this.fsys.syncDir(this.dir);
        this.durableSnapshotIndex = Math.max(this.durableSnapshotIndex, meta.index);
        await old?.close();
      }),
    );
    const writes = this.place([{ kind: RecordKind.RESET, numbers: [meta.index, meta.term] }], true);
    const keep = this.writeSeq;
    const reset = this.enqueueWal(writes, undefined, 0);
    const cleaned = this.enqueueRun(() =>
      this.background(async () => {
        await this.deleteSegmentsBefore(keep);
        await this.deleteOtherSnapshots(name);
      }),
    );
    await Promise.all([renamed, reset, cleaned]);
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkWritable();
    assertSnapshot(snapshot);
    const current = this.snapshotMeta;
    if (current !== undefined && snapshot.index < current.index) {
      throw new StorageError(`saveSnapshot: snapshot ${snapshot.index} is older than the stored snapshot ${current.index}`);
    }
    if (snapshot.index > this.index.last) {
      throw new StorageError(`saveSnapshot: snapshot ${snapshot.index} is past the last index ${this.index.last}`);
    }
    if (snapshot.index >= this.index.base && this.term(snapshot.index) !== snapshot.term) {
      throw new StorageError(
        `saveSnapshot: snapshot term ${snapshot.term} does not match the log's term ${this.term(snapshot.index)} at ${snapshot.index}`,
      );
    }
    this.setSnapshot(snapshot, false);
    // Written beside the WAL, not in its queue: appends go on while a large snapshot is written and synced.
    const write = this.background(async () => {
      if (!this.isCurrentSnapshot(snapshot)) return; // a newer snapshot was stored meanwhile
      await this.writeSnapshotFile(snapshot, false);
      // Older ones go; if a newer one was stored while this one was written, its own task cleans up after it.
      if (this.isCurrentSnapshot(snapshot)) await this.deleteOtherSnapshots(snapshotFileName(snapshot.index, snapshot.term));
    });
    this.snapshotWrite = write;
    try {
      await write;
    } finally {
      if (this.snapshotWrite === write) this.snapshotWrite = undefined;
    }
  }

  private isCurrentSnapshot(snapshot: SnapshotMeta): boolean {
    return this.snapshotMeta?.index === snapshot.index && this.snapshotMeta.term === snapshot.term;
  }

  async compact(index: number): Promise<void> {
    this.checkWritable();
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`compact: bad index ${index}`);
    // The snapshot that covers the entries must be durable before the record that drops them.
    if (this.snapshotWrite !== undefined) await this.snapshotWrite.catch(() => undefined);
    this.checkWritable();
    const ix = this.index;
    if (index <= ix.base) return;
    const snapIndex = this.durableSnapshotIndex;
    if (index > snapIndex) throw new StorageError(`compact(${index}) is past the latest durable snapshot (${snapIndex}): entries would be lost`);
    if (index > ix.last) throw new StorageError(`compact(${index}) is past the last index ${ix.last}`);
    const term = ix.termOf(index);
    // Live entries sit in non-decreasing segments, so every segment before the one holding index + 1 holds
    // nothing live once the COMPACT record is durable. Decided now, against exactly the state that will be on
    // disk when the deletion runs (it is queued behind everything accepted so far).
    const firstLiveSeq = index < ix.last ? ix.segmentOf(index + 1) : Number.POSITIVE_INFINITY;
    ix.compactTo(index, term);
    this.cacheCompact(index);
    const writes = this.place([{ kind: RecordKind.COMPACT, numbers: [index, term] }], false);
    const keep = Math.min(firstLiveSeq, this.writeSeq);
    await this.enqueueWal(writes, undefined, 0);
    // The record is durable; deleting the segments it made dead can happen in the background.
    void this.background(() => this.deleteSegmentsBefore(keep)).catch((e: unknown) => this.failBackground('deleting compacted segments', e));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.whenIdle();
    await this.side;
    for (const s of this.segments.values()) await s.extending;
    for (const s of this.segments.values()) await s.file?.close().catch(() => undefined);
    await this.snapshotFile?.close().catch(() => undefined);
    await this.lock.release();
  }

  // ---------------------------------------------------------------------------------------------------------
  // In-memory view

  private checkReadable(): void {
    if (this.closed) throw new StorageError('storage is closed');
  }

  private checkWritable(): void {
    if (this.closed) throw new StorageError('storage is closed');
    if (this.failure !== undefined) {
      throw new StorageError('storage failed on an earlier write and refuses further writes; close and reopen it', {
        cause: this.failure,
      });
    }
  }

  private dropAfter(last: number): void {
    this.index.truncateTo(last);
    const cacheLast = this.cacheFirst + (this.cache.length - this.cacheHead) - 1;
    if (last >= cacheLast) return;
    if (last < this.cacheFirst) {
      this.cacheClear(last + 1);
      return;
    }
    const keep = this.cacheHead + (last - this.cacheFirst + 1);
    for (let k = keep; k < this.cache.length; k++) this.cacheUsed -= entrySize(this.cache[k] as LogEntry);
    this.cache.length = keep;
  }

  private cachePush(e: LogEntry): void {
    if (this.cache.length === this.cacheHead) this.cacheFirst = e.index;
    this.cache.push(e);
    this.cacheUsed += entrySize(e);
  }

  private cacheClear(nextIndex: number): void {
    this.cache = [];
    this.cacheHead = 0;
    this.cacheUsed = 0;
    this.cacheFirst = nextIndex;
  }

  private cacheCompact(index: number): void {
    while (this.cacheHead < this.cache.length && this.cacheFirst <= index) this.cacheShift();
    if (this.cacheHead === this.cache.length) this.cacheClear(Math.max(this.cacheFirst, index + 1));
  }

  private cacheShift(): void {
    this.cacheUsed -= entrySize(this.cache[this.cacheHead] as LogEntry);
    this.cache[this.cacheHead] = undefined as unknown as LogEntry;
    this.cacheHead++;
    this.cacheFirst++;
    if (this.cacheHead > 1024 && this.cacheHead * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
  }

  /** Drops the oldest cached entries beyond the budget, but only those already written to disk. */
  private evict(): void {
    while (this.cacheUsed > this.cacheBytes && this.cacheHead < this.cache.length && this.isWritten(this.cacheFirst)) {
      this.cacheShift();
    }
  }

  private isWritten(index: number): boolean {
    const seq = this.index.segmentOf(index);
    return seq < this.writtenSeq || (seq === this.writtenSeq && this.index.offsetOf(index) < this.writtenEnd);
  }

  /** Reads entries [lo, hi) from their segments, one read per run of neighbours, verifying each record. */
  private readFromDisk(lo: number, hi: number, out: LogEntry[]): void {
    const ix = this.index;
    let i = lo;
    while (i < hi) {
      const seq = ix.segmentOf(i);
      const start = ix.offsetOf(i);
      let j = i + 1;
      let end = start + recordBytes(16 + ix.dataBytesOf(i));
      while (j < hi && ix.segmentOf(j) === seq && ix.offsetOf(j) >= end) {
        const e = ix.offsetOf(j) + recordBytes(16 + ix.dataBytesOf(j));
        if (e - start > MAX_READ_SPAN) break;
        end = e;
        j++;
      }
      const segment = this.segments.get(seq);
      if (segment?.file === undefined) throw new StorageError(`entries: segment ${seq} holding index ${i} is not on disk`);
      const buf = new Uint8Array(end - start);
      let got = 0;
      while (got < buf.length) {
        const n = segment.file.readSync(buf, got, buf.length - got, start + got);
        if (n <= 0) break;
        got += n;
      }
      for (let k = i; k < j; k++) {
        const at = ix.offsetOf(k) - start;
        const check = checkRecord(got === buf.length ? buf : buf.subarray(0, got), at, seq);
        if (!check.ok || check.record.kind !== RecordKind.ENTRY || check.record.index !== k) {
          throw new CorruptLogError(
            { file: segment.path, offset: start + at, lastGoodIndex: k - 1 },
            check.ok ? `expected entry ${k}, found record kind ${check.record.kind} index ${check.record.index}` : check.reason,
          );
        }
        const p = at + HEADER_BYTES;
        out.push({
          index: k,
          term: check.record.term,
          type: entryTypeOf(check.record.entryType) ?? 'command',
          data: buf.slice(p + 16, p + check.record.payloadBytes),
        });
        this.counters.diskReads++;
      }
      i = j;
    }
  }

  private setSnapshot(snapshot: Snapshot, installed: boolean): void {
    this.snapshotMeta = {
      index: snapshot.index,
      term: snapshot.term,
      config: snapshot.config,
      dataBytes: snapshot.data.length,
      installed,
    };
    this.snapshotData = snapshot;
  }

  /**
   * Places records at the end of the WAL, starting a new segment first when the current one is full (or when
   * `roll`). A save's records always stay in one segment. Returns the writes to queue.
   */
  private place(specs: RecordSpec[], roll: boolean): WalWrite[] {
    let total = 0;
    for (const s of specs) total += recordBytes(specPayloadBytes(s));
    const writes: WalWrite[] = [];
    if (roll || this.writeSeq === 0 || (this.writeEnd > SEGMENT_RECORD_BYTES && this.writeEnd + total > this.segmentBytes)) {
      const seq = this.writeSeq + 1;
      const name = segmentFileName(seq);
      this.segments.set(seq, { seq, name, path: this.fsys.join(this.dir, name), file: undefined, allocEnd: 0 });
      this.segmentOrder.push(seq);
      this.writeSeq = seq;
      writes.push({ seq, offset: 0, specs: [segmentHeaderSpec(seq)], bytes: SEGMENT_RECORD_BYTES });
      this.writeEnd = SEGMENT_RECORD_BYTES;
    }
    if (this.writeEnd + total > MAX_SEGMENT_OFFSET) throw new StorageError(`save: ${total} bytes do not fit in one segment`);
    writes.push({ seq: this.writeSeq, offset: this.writeEnd, specs, bytes: total });
    this.writeEnd += total;
    return writes;
  }

  // ---------------------------------------------------------------------------------------------------------
  // The write queue: one task at a time, in order; saves that arrive while one is being written and synced
  // coalesce into the next group, which is written and fdatasynced once (group commit).

  private enqueueWal(writes: WalWrite[], hardState: Uint8Array | undefined, saves: number): Promise<void> {
    const last = this.queue.at(-1);
    let task: Task & { type: 'wal' };
    if (last !== undefined && last.type === 'wal' && !last.started) {
      task = last;
      task.writes.push(...writes);
      if (hardState !== undefined) task.hardState = hardState;
    } else {
      task = { type: 'wal', writes, hardState, waiters: [], started: false };
      this.queue.push(task);
    }
    return new Promise<void>((resolve, reject) => {
      task.waiters.push({
        resolve: () => {
          this.counters.saves += saves;
          resolve();
        },
        reject,
      });
      this.kick();
    });
  }

  private enqueueRun(fn: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ type: 'run', fn, waiters: [{ resolve, reject }], started: false });
      this.kick();
    });
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const task = this.queue[0] as Task;
      task.started = true;
      try {
        if (task.type === 'wal') await this.flush(task.writes, task.hardState);
        else await task.fn();
      } catch (e) {
        this.failure = e;
        this.logger.error('a storage write failed; the storage refuses further writes until reopened', { error: String(e) });
        const err = new StorageError(`storage write failed: ${String(e)}`, { cause: e });
        const failed = this.queue;
        this.queue = [];
        for (const t of failed) for (const w of t.waiters) w.reject(err);
        break;
      }
      this.queue.shift();
      for (const w of task.waiters) w.resolve();
    }
    this.draining = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private whenIdle(): Promise<void> {
    if (!this.draining && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Writes one group: each segment's records with one write and one fdatasync, then the hard state
   * (atomically). Both are durable before any save of the group resolves, so the order only decides which
   * half-done state a crash can leave: entries without the new hard state (harmless: nothing of the group was
   * acknowledged or sent), never a hard state ahead of the log (a commit index past the durable entries, which
   * etcd's raft treats as fatal; etcd's WAL likewise writes entries before state).
   */
  private async flush(writes: WalWrite[], hardState: Uint8Array | undefined): Promise<void> {
    // A failed extension is a failed write to the log file: no write after it is trusted.
    if (this.extendFailure !== undefined) throw this.extendFailure;
    let i = 0;
    while (i < writes.length) {
      const seq = (writes[i] as WalWrite).seq;
      let j = i;
      while (j < writes.length && (writes[j] as WalWrite).seq === seq) j++;
      const start = (writes[i] as WalWrite).offset;
      const lastWrite = writes[j - 1] as WalWrite;
      const buf = new Uint8Array(lastWrite.offset + lastWrite.bytes - start);
      let at = 0;
      for (let k = i; k < j; k++) at = encodeRecords(buf, at, (writes[k] as WalWrite).specs, seq, start);
      const segment = this.segments.get(seq);
      if (segment === undefined) throw new StorageError(`segment ${seq} vanished before its write`);
      const end = start + buf.length;
      if (segment.file === undefined) {
        // A new segment: the previous one was synced by its own group, so a torn write is only ever in the last.
        segment.file = await this.fsys.open(segment.path, 'create');
        await segment.file.writeDurable(buf, start, { blocking: this.blockingWrites });
        await this.fsys.syncDir(this.dir);
      } else {
        // Zeros being added past allocEnd must not land on top of this write: let the extension finish first.
        if (end > segment.allocEnd && segment.extending !== undefined) {
          await segment.extending;
          if (this.extendFailure !== undefined) throw this.extendFailure;
        }
        await segment.file.writeDurable(buf, start, { blocking: this.blockingWrites });
      }
      if (end > segment.allocEnd) segment.allocEnd = end;
      this.preallocate(segment, end);
      this.counters.walSyncs++;
      this.counters.walWrites++;
      this.counters.bytesWritten += buf.length;
      if (seq > this.writtenSeq || (seq === this.writtenSeq && start + buf.length > this.writtenEnd)) {
        this.writtenSeq = seq;
        this.writtenEnd = start + buf.length;
      }
      i = j;
    }
    this.evict();
    if (hardState !== undefined) {
      const bytes = encodeHardState(hardState);
      await writeFileAtomic(this.fsys, this.dir, HARD_STATE_FILE, (f) => f.write(bytes, 0));
    }
  }

  /**
   * Keeps `preallocateBytes` of zeros ahead of `end` in the segment being written: once less than half of that
   * is left, zeros are appended and synced in the background (writes below `allocEnd` go on meanwhile; a write
   * past it waits, see `flush`). Only called from the write queue, between writes, so no write is in flight
   * past `allocEnd` when an extension starts there.
   */
  private preallocate(segment: Segment, end: number): void {
    const file = segment.file;
    if (this.preallocateBytes === 0 || file === undefined || segment.extending !== undefined || this.extendFailure !== undefined) return;
    if (segment.seq !== this.writeSeq || segment.allocEnd - end >= this.preallocateBytes / 2) return;
    const from = segment.allocEnd;
    const to = Math.min(this.segmentBytes, end + this.preallocateBytes);
    if (to <= from) return;
    segment.extending = (async () => {
      const zeros = new Uint8Array(Math.min(ZERO_CHUNK, to - from));
      for (let at = from; at < to; at += zeros.length) await file.write(zeros.subarray(0, Math.min(zeros.length, to - at)), at);
      await file.datasync();
      segment.allocEnd = to;
      this.counters.preallocatedBytes += to - from;
    })()
      .catch((e: unknown) => {
        this.extendFailure ??= e;
      })
      .finally(() => {
        segment.extending = undefined;
      });
  }

  /** Runs `fn` on the background chain, after every background task queued before it. */
  private background(fn: () => Promise<void>): Promise<void> {
    const run = this.side.then(fn);
    this.side = run.catch(() => undefined);
    return run;
  }

  /** A background deletion failed (say, fsync of the directory): like a failed WAL write, refuse further writes. */
  private failBackground(what: string, e: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    this.logger.error(`${what} failed; the storage refuses further writes until reopened`, { error: String(e) });
  }

  /** Deletes segments older than `keep`, oldest first, each deletion made durable before the next. */
  private async deleteSegmentsBefore(keep: number): Promise<void> {
    while (this.segmentOrder.length > 0 && (this.segmentOrder[0] as number) < keep) {
      const seq = this.segmentOrder[0] as number;
      const segment = this.segments.get(seq) as Segment;
      await segment.extending;
      await segment.file?.close();
      segment.file = undefined;
      await unlinkIfExists(this.fsys, segment.path);
      await this.fsys.syncDir(this.dir);
      this.segmentOrder.shift();
      this.segments.delete(seq);
    }
  }

  private async writeSnapshotFile(snapshot: Snapshot, installed: boolean): Promise<void> {
    const name = snapshotFileName(snapshot.index, snapshot.term);
    const meta: SnapshotFileMeta = {
      index: snapshot.index,
      term: snapshot.term,
      config: snapshot.config,
      dataBytes: snapshot.data.length,
      installed,
    };
    await writeFileAtomic(this.fsys, this.dir, name, (f) => writeSnapshotStream(f, meta, [snapshot.data]));
    this.durableSnapshotIndex = Math.max(this.durableSnapshotIndex, snapshot.index);
    // Serve reads from the file only while it is still the current snapshot (an install may have replaced it).
    if (!this.isCurrentSnapshot(snapshot)) return;
    const old = this.snapshotFile;
    const path = this.fsys.join(this.dir, name);
    this.snapshotFile = await this.fsys.open(path, 'read');
    this.snapshotPath = path;
    await old?.close();
  }

  private async deleteOtherSnapshots(keepName: string): Promise<void> {
    let removed = false;
    for (const name of await this.fsys.readdir(this.dir)) {
      if (name !== keepName && parseSnapshotFileName(name) !== undefined) {
        removed = (await unlinkIfExists(this.fsys, this.fsys.join(this.dir, name))) || removed;
      }
    }
    if (removed) await this.fsys.syncDir(this.dir);
  }

  /** @internal Open: records the snapshot as the log's base in a new segment (after a crashed install). */
  async writeResetRecord(index: number, term: number): Promise<void> {
    const writes = this.place([{ kind: RecordKind.RESET, numbers: [index, term] }], true);
    const keep = this.writeSeq;
    await this.enqueueWal(writes, undefined, 0);
    await this.background(() => this.deleteSegmentsBefore(keep));
  }
}

/**
 * Opens (creating if needed) a data directory and recovers it: takes the lock, checks the hard state and the
 * latest snapshot, replays the WAL, truncates a torn tail with a warning and refuses (`CorruptLogError`) a bad
 * record anywhere before it.
 */
export async function openFileStorage(dir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
  if (typeof dir !== 'string' || dir === '') throw new ConfigError('openFileStorage: dir must be a non-empty path');
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 4096 || segmentBytes > 1 << 30) {
    throw new ConfigError(`segmentBytes must be an integer in [4096, 1 GiB], got ${segmentBytes}`);
  }
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) throw new ConfigError(`cacheBytes must be a non-negative integer, got ${cacheBytes}`);
  const preallocateBytes = options.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES;
  if (!Number.isSafeInteger(preallocateBytes) || preallocateBytes < 0) {
    throw new ConfigError(`preallocateBytes must be a non-negative integer, got ${preallocateBytes}`);
  }
  const logger = options.logger ?? consoleLogger;
  const base = options.fileSystem ?? nodeFileSystem();
  const fsys = options.fsync === false ? withoutSync(base) : base;

  await fsys.mkdir(dir);
  const lock = await acquireLock(base, dir, logger);
  const opened: FsFile[] = [];
  try {
    const recovered = await recover(fsys, dir, logger, options.allowTruncateCorruptTail === true, opened);
    if ((await readWholeFile(fsys, fsys.join(dir, HARD_STATE_FILE))) === undefined) {
      // A new directory: mark it before the first entry, so a hard state that goes missing later is noticed.
      await writeFileAtomic(fsys, dir, HARD_STATE_FILE, (f) => f.write(encodeHardState(new Uint8Array(0)), 0));
    }
    const storage = new FileStorage(
      fsys,
      dir,
      lock,
      logger,
      segmentBytes,
      cacheBytes,
      recovered.state,
      options.blockingWrites === true,
      Math.min(preallocateBytes, segmentBytes),
    );
    if (recovered.resetTo !== undefined) await storage.writeResetRecord(recovered.resetTo.index, recovered.resetTo.term);
    return storage;
  } catch (e) {
    for (const f of opened) await f.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
}

async function recover(
  fsys: FileSystem,
  dir: string,
  logger: Logger,
  allowCut: boolean,
  opened: FsFile[],
): Promise<{ state: Recovered; resetTo?: { index: number; term: number } }> {
  const names = await fsys.readdir(dir);

  // Leftovers of atomic writes that never reached their rename.
  let removedTmp = false;
  for (const name of names) {
    if (name.endsWith(TMP_SUFFIX)) removedTmp = (await unlinkIfExists(fsys, fsys.join(dir, name))) || removedTmp;
  }
  if (removedTmp) await fsys.syncDir(dir);

  const hardStatePath = fsys.join(dir, HARD_STATE_FILE);
  const hardStateBytes = await readWholeFile(fsys, hardStatePath);
  const decoded = hardStateBytes === undefined ? undefined : decodeHardState(hardStateBytes, hardStatePath);
  // An empty payload is the marker written when the directory was created: no term or vote stored yet.
  const hardState = decoded !== undefined && decoded.length > 0 ? decoded : undefined;

  // The newest snapshot, verified end to end (chunk by chunk, so memory stays bounded).
  const snaps = names
    .map((name) => ({ name, parsed: parseSnapshotFileName(name) }))
    .filter((s): s is { name: string; parsed: { index: number; term: number } } => s.parsed !== undefined)
    .sort((a, b) => b.parsed.index - a.parsed.index || b.parsed.term - a.parsed.term);
  let snapshotMeta: SnapshotFileMeta | undefined;
  let snapshotFile: FsFile | undefined;
  let snapshotPath: string | undefined;
  const newest = snaps[0];
  if (newest !== undefined) {
    snapshotPath = fsys.join(dir, newest.name);
    snapshotFile = await fsys.open(snapshotPath, 'read');
    opened.push(snapshotFile);
    snapshotMeta = readSnapshotMeta(snapshotFile, snapshotPath).meta;
    for (const _ of readSnapshotChunks(snapshotFile, snapshotPath)) {
      // verified chunk by chunk
    }
    if (snapshotMeta.index !== newest.parsed.index || snapshotMeta.term !== newest.parsed.term) {
      throw new CorruptLogError({ file: snapshotPath, offset: 0, lastGoodIndex: 0 }, 'snapshot meta does not match its file name');
    }
  }

  // Segments must form one unbroken run of sequence numbers.
  const seqs = names
    .map(parseSegmentFileName)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  for (let k = 1; k < seqs.length; k++) {
    if (seqs[k] !== (seqs[k - 1] as number) + 1) {
      throw new CorruptLogError(
        { file: fsys.join(dir, segmentFileName((seqs[k - 1] as number) + 1)), offset: 0, lastGoodIndex: 0 },
        `segment ${(seqs[k - 1] as number) + 1} is missing between ${seqs[k - 1]} and ${seqs[k]}`,
      );
    }
  }

  const replayer = new Replayer(seqs[0] ?? 1);
  const segments: Segment[] = [];
  const goodEnds = new Map<number, number>();
  const writable = new Set<FsFile>();
  /** Removes a segment file entirely (it holds nothing intact), keeping the directory change durable. */
  const removeSegment = async (path: string, file: FsFile): Promise<void> => {
    await file.close();
    opened.splice(opened.indexOf(file), 1);
    await unlinkIfExists(fsys, path);
    await fsys.syncDir(dir);
  };
  for (let k = 0; k < seqs.length; k++) {
    const seq = seqs[k] as number;
    const name = segmentFileName(seq);
    const path = fsys.join(dir, name);
    const isLast = k === seqs.length - 1;
    const file = await fsys.open(path, isLast ? 'append' : 'read');
    opened.push(file);
    if (isLast) writable.add(file);
    const buf = readAllSync(file);
    const scan = scanSegment(buf, seq);
    const head = scan.records[0];
    if (head !== undefined && (head.kind !== RecordKind.SEGMENT || head.index !== seq)) {
      throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: replayer.index.last }, 'segment does not start with its header');
    }
    if (head === undefined && isLast && !scan.laterWriteFollows) {
      // The segment was being created when the process stopped: nothing in it was ever acknowledged.
      logger.warn('removing a segment whose creation was interrupted (a torn write)', { file: path, bytes: buf.length });
      await removeSegment(path, file);
      break;
    }
    for (const r of scan.records) replayer.apply(seq, r);
    // Writes go on after the last intact record; zeros after it are preallocated space (see scanSegment).
    segments.push({ seq, name, path, file, allocEnd: buf.length });
    goodEnds.set(seq, scan.goodEnd);
    if (scan.failure === undefined) {
      if (head === undefined) {
        throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: replayer.index.last }, 'segment is empty but is not the last one');
      }
      continue;
    }
    const { offset, reason } = scan.failure;
    if (isLast && !scan.laterWriteFollows) {
      logger.warn('truncating a torn write at the tail of the log', {
        file: path,
        offset,
        bytesDropped: buf.length - offset,
        reason,
        lastIndex: replayer.index.last,
      });
      await file.truncate(offset);
      await file.datasync();
      (segments.at(-1) as Segment).allocEnd = offset;
      break;
    }
    const error = new CorruptLogError(
      { file: path, offset, lastGoodIndex: replayer.index.last },
      `${reason}${isLast ? ' (intact records of later writes follow, so this is not a torn tail)' : ' (not the last segment)'}`,
    );
    if (!allowCut) throw error;
    logger.error('CORRUPT LOG: cutting the log at the last good index as the operator asked; everything after it is DISCARDED', {
      error: error.message,
      file: path,
      offset,
      lastGoodIndex: replayer.index.last,
      discardedBytesInFile: buf.length - offset,
      discardedSegments: seqs.slice(k + 1).map((s) => segmentFileName(s)),
      note: 'entries after lastGoodIndex are gone from this node; the hard state may refer to them',
    });
    // Newest first, so a crash part-way leaves an unbroken run of segments.
    for (const s of seqs.slice(k + 1).reverse()) {
      await unlinkIfExists(fsys, fsys.join(dir, segmentFileName(s)));
      await fsys.syncDir(dir);
    }
    if (head === undefined) {
      segments.pop();
      await removeSegment(path, file);
    } else {
      const rw = isLast ? file : await fsys.open(path, 'append');
      if (!isLast) {
        await file.close();
        opened.splice(opened.indexOf(file), 1, rw);
        writable.add(rw);
        (segments.at(-1) as Segment).file = rw;
      }
      await rw.truncate(offset);
      await rw.datasync();
      (segments.at(-1) as Segment).allocEnd = offset;
    }
    break;
  }
  // The tail segment takes the next writes: make sure its handle can write.
  const tail = segments.at(-1);
  if (tail !== undefined && !writable.has(tail.file as FsFile)) {
    const ro = tail.file as FsFile;
    const rw = await fsys.open(tail.path, 'append');
    await ro.close();
    opened.splice(opened.indexOf(ro), 1, rw);
    tail.file = rw;
  }
  const writeEnd = tail === undefined ? 0 : (goodEnds.get(tail.seq) as number);

  const ix = replayer.index;
  let resetTo: { index: number; term: number } | undefined;
  if (snapshotMeta !== undefined) {
    const s = snapshotMeta;
    if (s.installed && (!replayer.resolved || ix.base < s.index)) {
      // An installed snapshot whose RESET record never reached the WAL: the install stopped in between.
      // Complete it (the log is replaced by the snapshot), as installSnapshot would have.
      logger.warn('completing a snapshot install that was interrupted before the log was reset', {
        snapshotIndex: s.index,
        logFirstIndex: ix.first,
        logLastIndex: ix.last,
      });
      ix.reset(s.index, s.term);
      replayer.resolved = true;
      resetTo = { index: s.index, term: s.term };
    } else if (!replayer.resolved && s.index >= ix.base && (s.index === ix.base || (s.index <= ix.last && ix.termOf(s.index) === s.term))) {
      // The snapshot covers the part of history the remaining segments do not start with.
      if (s.index === ix.base) ix.baseTerm = s.term;
      else ix.compactTo(s.index, s.term);
      replayer.resolved = true;
    } else if (replayer.resolved && s.index < ix.base) {
      throw new CorruptLogError(
        { file: snapshotPath as string, offset: 0, lastGoodIndex: ix.base },
        `the log is compacted through ${ix.base}, past the latest snapshot ${s.index}: entries are lost`,
      );
    }
  } else if (replayer.resolved && ix.base > 0) {
    throw new CorruptLogError(
      { file: segments[0]?.path ?? dir, offset: 0, lastGoodIndex: ix.base },
      `the log is compacted through ${ix.base}, but no snapshot is present: the snapshot file is missing`,
    );
  }
  if (!replayer.resolved) {
    const first = segments[0];
    throw new CorruptLogError(
      { file: first?.path ?? dir, offset: 0, lastGoodIndex: 0 },
      `the log starts at index ${ix.first} but no record says what came before it: a segment or snapshot is missing`,
    );
  }
  if (hardStateBytes === undefined && (snapshotMeta !== undefined || ix.last > 0)) {
    // The term and vote are written before any entry can be (an empty marker when the directory is made), so
    // a log without them lost them: starting at term 0 with no vote could vote twice in one term, which
    // Raft's safety rests on never happening (thesis 3.6, 3.8). Refuse rather than guess.
    throw new StorageError(
      `${hardStatePath} is missing, but the log holds entries up to ${ix.last}: this node's term and vote are lost. ` +
        'Restore the file, or remove the node from the cluster and add it back with an empty data directory',
    );
  }
  opened.length = 0;
  return {
    state: { index: ix, segments, writeEnd, hardState, snapshotMeta, snapshotFile, snapshotPath },
    ...(resetTo === undefined ? {} : { resetTo }),
  };
}



/**
 * Whether `dir` holds a node's stored state: its hard state file, which `openFileStorage` writes (empty at
 * first) before the first entry. A directory without it never held a node, or lost what it held.
 */
export function hasStoredState(dir: string): boolean {
  return existsSync(join(dir, HARD_STATE_FILE));
}
