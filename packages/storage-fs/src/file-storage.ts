import {
  CompactedError,
  ConfigError,
  assertSnapshot,
  InvalidArgumentError,
  StorageError,
  type DurableStorage,
  type InitialState,
  type LogEntry,
  type Logger,
  type SaveBatch,
  type Snapshot,
  type SnapshotMeta,
} from '@consensus-kit/core';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HARD_STATE_FILE, decodeHardStateFile, encodeIdentity, writeFileAtomic, type DataDirIdentity, type DurablePoint } from './atomic-file';
import { IdentityMismatchError } from './errors';
import { EntryCache } from './entry-cache';
import {
  DEFAULT_CACHE_BYTES,
  DEFAULT_DURABLE_POINT_SYNC_MS,
  DEFAULT_PREALLOCATE_BYTES,
  DEFAULT_SEGMENT_BYTES,
  consoleLogger,
  emptyStats,
  type FileStorageOptions,
  type FileStorageStats,
  type WalWriteTiming,
} from './file-storage-options';
import { DURABLE_FILE, DurableFile, initialDurableFile } from './durable-file';
import { errorCode, nodeFileSystem, readWholeFile, withoutSync, type FileSystem, type FsFile } from './file-system';
import { acquireLock, type DirectoryLock } from './lock';
import type { LogIndex } from './log-index';
import { MAX_PAYLOAD, RecordKind, entryTypeCode, recordBytes, type RecordSpec } from './record';
import { recover, type Recovered } from './recovery';
import { snapshotFileName } from './snapshot-file';
import { SnapshotStore } from './snapshot-store';
import { WalWriter, type WalWrite } from './wal-writer';
import { readEntries } from './wal-reader';

export type { FileStorageOptions, FileStorageStats, WalWriteTiming } from './file-storage-options';
export { parseSegmentFileName, segmentFileName } from './segment';

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

/** @internal What `openFileStorage` hands the constructor. */
export interface FileStorageParts {
  fsys: FileSystem;
  dir: string;
  lock: DirectoryLock;
  logger: Logger;
  segmentBytes: number;
  cacheBytes: number;
  blockingWrites: boolean;
  preallocateBytes: number;
  recovered: Recovered;
  durableFile: DurableFile;
  onWalWrite?: ((timing: WalWriteTiming) => void) | undefined;
}

/**
 * `DurableStorage` on the file system: a segmented write-ahead log with group commit, an atomically replaced
 * hard-state file and streamed, checksummed snapshot files. Open it with `openFileStorage`.
 *
 * A small facade over its parts: the log index (where every live entry's record is), the entry cache, the WAL
 * writer (placement, group commit, segment deletion), the WAL reader and the snapshot store; recovery builds
 * them on open.
 *
 * Reads (`entries`, `term`, ...) are synchronous and reflect every accepted write at once, like `MemoryStorage`;
 * the promise of a write resolves when it is durable. If a write to disk fails the storage refuses all further
 * work (an fsync failure cannot be retried safely): close it and reopen, which recovers what is on disk.
 */
export class FileStorage implements DurableStorage {
  readonly dir: string;
  private readonly fsys: FileSystem;
  private readonly lock: DirectoryLock;
  private readonly index: LogIndex;
  private readonly cache: EntryCache;
  private readonly wal: WalWriter;
  private readonly snapshots: SnapshotStore;
  private hardState: Uint8Array | undefined;
  private identityValue: DataDirIdentity | undefined;
  private closed = false;
  private readonly counters: FileStorageStats = emptyStats();

  /** @internal Use `openFileStorage`. */
  constructor(parts: FileStorageParts) {
    const { recovered } = parts;
    this.fsys = parts.fsys;
    this.dir = parts.dir;
    this.lock = parts.lock;
    this.index = recovered.index;
    this.hardState = recovered.hardState;
    this.identityValue = recovered.identity;
    this.cache = new EntryCache(parts.cacheBytes, this.index.last + 1);
    this.snapshots = new SnapshotStore(parts.fsys, parts.dir, recovered.snapshot);
    this.wal = new WalWriter(
      {
        fsys: parts.fsys,
        dir: parts.dir,
        logger: parts.logger,
        segmentBytes: parts.segmentBytes,
        blockingWrites: parts.blockingWrites,
        preallocateBytes: parts.preallocateBytes,
        counters: this.counters,
        afterWrite: () => this.evict(),
        durable: recovered.durable,
        recordedDurable: recovered.recordedDurable,
        hardState: recovered.hardState ?? new Uint8Array(0),
        identity: recovered.identity === undefined ? new Uint8Array(0) : encodeIdentity(recovered.identity),
        durableFile: parts.durableFile,
        onWalWrite: parts.onWalWrite,
      },
      recovered.segments,
      recovered.writeEnd,
    );
  }

  /** Who this directory belongs to (cluster id, node id, incarnation), if it records it (see `identity` option). */
  get identity(): DataDirIdentity | undefined {
    return this.identityValue;
  }

  /**
   * The durable point: the end of the WAL records made durable so far and the log's last index there. Every
   * hard state written records it, and so does `close()`; on open, a WAL that ends below the recorded point is
   * refused with `LostWalError`.
   */
  durablePoint(): DurablePoint {
    return { ...this.wal.durable };
  }

  /** @internal Open: records `identity` (a new directory, or one written before identities were kept). */
  async recordIdentity(identity: DataDirIdentity): Promise<void> {
    this.identityValue = identity;
    this.wal.identity = encodeIdentity(identity);
    await this.wal.enqueueRun(() => this.wal.writeHardState());
  }

  /** @internal Open: the operator cut the log below the recorded durable point; record where it ends now. */
  async recordDurablePoint(): Promise<void> {
    await this.wal.enqueueRun(() => this.wal.writeHardState());
  }

  /** @internal A background sync of the durable-point file failed: like a failed write, refuse further writes. */
  failDurableSync(e: unknown): void {
    this.wal.failBackground('syncing the durable-point file', e);
  }

  /** @internal Tests: waits for a background sync of the durable-point file in flight. */
  durablePointSettled(): Promise<void> {
    return this.wal.durableSettled();
  }

  /** @internal */
  get durableBelowRecorded(): boolean {
    return this.wal.belowRecorded;
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
    const cachedFrom = Math.max(lo, this.cache.first);
    if (lo < cachedFrom) this.counters.diskReads += readEntries(ix, this.wal.segments, this.cache, lo, Math.min(end, cachedFrom), out);
    for (let i = cachedFrom; i < end; i++) out.push(this.cache.get(i) as LogEntry);
    return out;
  }

  snapshot(): Snapshot | undefined {
    this.checkReadable();
    return this.snapshots.read();
  }

  /**
   * The latest snapshot's data as a stream of verified chunks read from disk, one chunk in memory at a time
   * (for sending a large snapshot to a follower). Yields nothing when there is no snapshot.
   */
  *snapshotChunks(): Generator<Uint8Array, void, void> {
    this.checkReadable();
    yield* this.snapshots.chunks();
  }

  /** Counters since open. */
  stats(): FileStorageStats {
    return { ...this.counters };
  }

  // ---------------------------------------------------------------------------------------------------------
  // DurableStorage: the asynchronous write side

  /**
   * DESIGN r2: `truncateAfter` drops the suffix; an entry at lastIndex + 1 appends (an ENTRY record); an entry
   * at an existing index overwrites that index only (an OVERWRITE record; the entries after it stay); entries
   * at or below the compaction point are covered by the snapshot and skipped; a gap is refused. The batch is
   * checked before anything changes. Its records go in one write, truncation first, entries in index order,
   * and its hard state after them (see `WalWriter.flush` for the crash order).
   */
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

    // Validated: apply to the in-memory view and place the records, in the pinned order.
    const specs: RecordSpec[] = [];
    if (hardState !== undefined) this.hardState = hardState; // written after the records: see WalWriter.flush
    if (truncateAfter !== undefined && truncateAfter < ix.last) {
      this.dropAfter(truncateAfter);
      specs.push({ kind: RecordKind.TRUNCATE, numbers: [truncateAfter] });
    }
    // Entries at or below the compaction point are covered by the snapshot: skip them.
    const skip = first === undefined ? 0 : Math.max(0, ix.base + 1 - first);
    const kept = skip === 0 ? entries : entries.slice(skip);
    const overwrites = kept.length === 0 ? 0 : Math.max(0, Math.min(kept.length, ix.last - (kept[0] as LogEntry).index + 1));
    for (let k = 0; k < kept.length; k++) {
      const e = kept[k] as LogEntry;
      const kind = k < overwrites ? RecordKind.OVERWRITE : RecordKind.ENTRY;
      specs.push({ kind, entryType: entryTypeCode(e.type), numbers: [e.index, e.term], body: e.data });
    }
    if (specs.length === 0) {
      if (hardState === undefined && !this.wal.busy) return;
      return this.wal.enqueueWal([], hardState, 1);
    }
    const writes = this.wal.place(specs, false);
    const w = writes.at(-1) as WalWrite;
    let offset = w.offset + (specs[0]?.kind === RecordKind.TRUNCATE ? recordBytes(8) : 0);
    for (let k = 0; k < kept.length; k++) {
      const e = kept[k] as LogEntry;
      if (k < overwrites) {
        ix.set(e.index, w.seq, offset, e.term, e.data.length, entryTypeCode(e.type));
        this.cache.overwrite(e);
      } else {
        ix.push(w.seq, offset, e.term, e.data.length, entryTypeCode(e.type));
        this.cache.push(e);
      }
      offset += recordBytes(16 + e.data.length);
    }
    w.after = { lastIndex: ix.last, lastTerm: ix.termOf(ix.last) };
    this.counters.entriesWritten += kept.length;
    this.evict();
    return this.wal.enqueueWal(writes, hardState, 1);
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkWritable();
    assertSnapshot(snapshot);
    const current = this.snapshots.current;
    if (current !== undefined && snapshot.index <= current.index) {
      throw new StorageError(`installSnapshot: snapshot ${snapshot.index} is not newer than the stored snapshot ${current.index}`);
    }
    this.snapshots.set(snapshot, true);
    this.index.reset(snapshot.index, snapshot.term);
    this.cache.clear(snapshot.index + 1);
    // 1. the snapshot file (atomic); 2. RESET as the first record of a new segment; 3. drop older segments.
    // The file says "installed": recovery completes an install whose RESET record is missing (a crash between
    // 1 and 2). Saves called after this are queued behind all three: the install is durable before them (r2).
    const wal = this.wal;
    const wrote = wal.enqueueRun(() => wal.background(() => this.snapshots.writeFile(snapshot, true)));
    await this.resetLog(snapshot, snapshotFileName(snapshot.index, snapshot.term), wrote);
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
    const isStale = (): boolean => this.snapshots.current !== undefined && meta.index <= this.snapshots.current.index;
    if (isStale()) {
      throw new StorageError(`installSnapshot: snapshot ${meta.index} is not newer than the stored snapshot ${this.snapshots.current?.index}`);
    }
    const incoming = await this.snapshots.receive(meta, dataBytes, chunks, () => {
      this.checkWritable();
      if (isStale()) throw new StorageError(`installSnapshot: a snapshot at ${this.snapshots.current?.index} was stored meanwhile`);
    });
    // The data is durable under its temporary name; from here on it is the same as installSnapshot.
    const rename = this.snapshots.adopt(incoming);
    this.index.reset(meta.index, meta.term);
    this.cache.clear(meta.index + 1);
    const wal = this.wal;
    const renamed = wal.enqueueRun(() => wal.background(rename));
    await this.resetLog(meta, incoming.name, renamed);
  }

  /** The steps of an install after its snapshot file: the RESET record in a new segment, then the cleanup. */
  private async resetLog(meta: SnapshotMeta, keepName: string, fileWritten: Promise<void>): Promise<void> {
    const wal = this.wal;
    const writes = wal.place([{ kind: RecordKind.RESET, numbers: [meta.index, meta.term] }], true);
    (writes.at(-1) as WalWrite).after = { lastIndex: meta.index, lastTerm: meta.term };
    const keep = wal.writeSeq;
    const reset = wal.enqueueWal(writes, undefined, 0);
    const cleaned = wal.enqueueRun(() =>
      wal.background(async () => {
        await wal.deleteSegmentsBefore(keep);
        await this.snapshots.deleteOthers(keepName);
      }),
    );
    await Promise.all([fileWritten, reset, cleaned]);
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkWritable();
    assertSnapshot(snapshot);
    const current = this.snapshots.current;
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
    const store = this.snapshots;
    store.set(snapshot, false);
    // Written beside the WAL, not in its queue: appends go on while a large snapshot is written and synced.
    const write = this.wal.background(async () => {
      if (!store.isCurrent(snapshot)) return; // a newer snapshot was stored meanwhile
      await store.writeFile(snapshot, false);
      // Older ones go; if a newer one was stored while this one was written, its own task cleans up after it.
      if (store.isCurrent(snapshot)) await store.deleteOthers(snapshotFileName(snapshot.index, snapshot.term));
    });
    store.pendingWrite = write;
    try {
      await write;
    } finally {
      if (store.pendingWrite === write) store.pendingWrite = undefined;
    }
  }

  async compact(index: number): Promise<void> {
    this.checkWritable();
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`compact: bad index ${index}`);
    // The snapshot that covers the entries must be durable before the record that drops them.
    if (this.snapshots.pendingWrite !== undefined) await this.snapshots.pendingWrite.catch(() => undefined);
    this.checkWritable();
    const ix = this.index;
    if (index <= ix.base) return;
    const snapIndex = this.snapshots.durableIndex;
    if (index > snapIndex) throw new StorageError(`compact(${index}) is past the latest durable snapshot (${snapIndex}): entries would be lost`);
    if (index > ix.last) throw new StorageError(`compact(${index}) is past the last index ${ix.last}`);
    const term = ix.termOf(index);
    // A segment is dead once no index after the compaction point has its live record there. An overwritten
    // slot's record sits in a later segment than its neighbours', so this is the oldest segment of ANY index
    // after `index`, not the segment of index + 1. Decided now, against exactly the state that will be on disk
    // when the deletion runs (it is queued behind everything accepted so far; later writes only add records
    // in newer segments).
    const firstLiveSeq = ix.minSegmentFrom(index + 1) ?? Number.POSITIVE_INFINITY;
    const last = ix.last;
    ix.compactTo(index, term);
    this.cache.compact(index);
    // The record carries the last index too: replay after the deletion starts in the middle of history, and
    // with overwrites the records it finds do not say on their own where the log ends (see Replayer).
    const writes = this.wal.place([{ kind: RecordKind.COMPACT, numbers: [index, term, last] }], false);
    (writes.at(-1) as WalWrite).after = { lastIndex: ix.last, lastTerm: ix.termOf(ix.last) };
    const keep = Math.min(firstLiveSeq, this.wal.writeSeq);
    await this.wal.enqueueWal(writes, undefined, 0);
    // The record is durable; deleting the segments it made dead can happen in the background.
    const wal = this.wal;
    void wal.background(() => wal.deleteSegmentsBefore(keep)).catch((e: unknown) => wal.failBackground('deleting compacted segments', e));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.wal.close();
    await this.snapshots.close();
    await this.lock.release();
  }

  /** @internal Open: records the snapshot as the log's base in a new segment (after a crashed install). */
  async writeResetRecord(index: number, term: number): Promise<void> {
    const wal = this.wal;
    const writes = wal.place([{ kind: RecordKind.RESET, numbers: [index, term] }], true);
    (writes.at(-1) as WalWrite).after = { lastIndex: index, lastTerm: term };
    const keep = wal.writeSeq;
    await wal.enqueueWal(writes, undefined, 0);
    await wal.background(() => wal.deleteSegmentsBefore(keep));
  }

  // ---------------------------------------------------------------------------------------------------------
  // In-memory view

  private checkReadable(): void {
    if (this.closed) throw new StorageError('storage is closed');
  }

  private checkWritable(): void {
    if (this.closed) throw new StorageError('storage is closed');
    if (this.wal.failure !== undefined) {
      throw new StorageError('storage failed on an earlier write and refuses further writes; close and reopen it', {
        cause: this.wal.failure,
      });
    }
  }

  private dropAfter(last: number): void {
    this.index.truncateTo(last);
    this.cache.truncateAfter(last);
  }

  /** Lets the cache drop entries whose records are on disk (beyond its budget). */
  private evict(): void {
    const ix = this.index;
    this.cache.evict((i) => ix.has(i) && this.wal.isWritten(ix.segmentOf(i), ix.offsetOf(i)));
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
  const durablePointSyncMs = options.durablePointSyncMs ?? DEFAULT_DURABLE_POINT_SYNC_MS;
  if (!Number.isSafeInteger(durablePointSyncMs) || durablePointSyncMs < 0 || durablePointSyncMs > 60_000) {
    throw new ConfigError(`durablePointSyncMs must be an integer in [0, 60000], got ${durablePointSyncMs}`);
  }
  const base = options.fileSystem ?? nodeFileSystem();
  const fsys = options.fsync === false ? withoutSync(base) : base;

  const expected = options.identity;
  if (expected !== undefined && (typeof expected.clusterId !== 'string' || expected.clusterId === '' || typeof expected.nodeId !== 'string' || expected.nodeId === '')) {
    throw new ConfigError('openFileStorage: identity needs a non-empty clusterId and nodeId');
  }
  await fsys.mkdir(dir);
  const lock = await acquireLock(base, dir, logger);
  const opened: FsFile[] = [];
  try {
    const recovered = await recover(fsys, dir, logger, options.allowTruncateCorruptTail === true, opened);
    const found = recovered.state.identity;
    if (expected !== undefined && found !== undefined && (found.clusterId !== expected.clusterId || found.nodeId !== expected.nodeId)) {
      throw new IdentityMismatchError(dir, expected, found);
    }
    const isNew = (await readWholeFile(fsys, fsys.join(dir, HARD_STATE_FILE))) === undefined;
    let failSync: (e: unknown) => void = () => undefined;
    const durableFile = await openDurableFile(fsys, dir, recovered.state.durableCounter, recovered.state.durable, durablePointSyncMs, (e) =>
      failSync(e),
    );
    opened.push(durableFile.file);
    const storage = new FileStorage({
      fsys,
      dir,
      lock,
      logger,
      segmentBytes,
      cacheBytes,
      blockingWrites: options.blockingWrites === true,
      preallocateBytes: Math.min(preallocateBytes, segmentBytes),
      recovered: recovered.state,
      durableFile: durableFile.durable,
      onWalWrite: options.onWalWrite,
    });
    opened.length = 0;
    failSync = (e) => storage.failDurableSync(e);
    if (expected !== undefined && found === undefined) {
      // A new directory, or one written before identities were kept: it is this node's from now on.
      await storage.recordIdentity({ clusterId: expected.clusterId, nodeId: expected.nodeId, incarnation: randomUUID() });
    } else if (isNew) {
      // A new directory: mark it before the first entry, so a hard state that goes missing later is noticed.
      await storage.recordDurablePoint();
    }
    if (storage.durableBelowRecorded) await storage.recordDurablePoint(); // after an operator's cut
    if (recovered.resetTo !== undefined) await storage.writeResetRecord(recovered.resetTo.index, recovered.resetTo.term);
    return storage;
  } catch (e) {
    for (const f of opened) await f.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
}

/**
 * Opens the durable-point file. One that is missing (a new directory, an older release, or deleted) is created
 * atomically holding `point` (the recovered end of the WAL), so a file that exists always holds an intact slot
 * unless it was damaged.
 */
async function openDurableFile(
  fsys: FileSystem,
  dir: string,
  counter: number,
  point: DurablePoint,
  syncMs: number,
  onSyncError: (e: unknown) => void,
): Promise<{ file: FsFile; durable: DurableFile }> {
  const path = fsys.join(dir, DURABLE_FILE);
  let file: FsFile;
  try {
    file = await fsys.open(path, 'append');
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw e;
    await writeFileAtomic(fsys, dir, DURABLE_FILE, (f) => f.write(initialDurableFile(point), 0));
    file = await fsys.open(path, 'append');
    counter = 1;
  }
  return { file, durable: new DurableFile(file, counter, syncMs, onSyncError) };
}

/**
 * Whether `dir` holds a node's stored state: its hard state file, which `openFileStorage` writes (empty at
 * first) before the first entry. A directory without it never held a node, or lost what it held.
 */
export function hasStoredState(dir: string): boolean {
  return existsSync(join(dir, HARD_STATE_FILE));
}

/**
 * The identity (cluster id, node id, incarnation) that `dir` records, read from its hard-state file alone
 * without opening the directory; `undefined` when it records none (new, wiped, or written by an older release).
 * A damaged file is a `CorruptLogError`.
 */
export async function readDataDirIdentity(dir: string, options: { fileSystem?: FileSystem } = {}): Promise<DataDirIdentity | undefined> {
  const fsys = options.fileSystem ?? nodeFileSystem();
  const path = fsys.join(dir, HARD_STATE_FILE);
  const bytes = await readWholeFile(fsys, path);
  return bytes === undefined ? undefined : decodeHardStateFile(bytes, path).identity;
}
