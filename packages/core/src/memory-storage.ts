import { CompactedError, InvalidArgumentError, StorageError } from './errors';
import type { DurableStorage, InitialState, LogEntry, SaveBatch, Snapshot } from './types';
import { assertSnapshot } from './validate';

/**
 * The state behind a `MemoryStorage`. Opening a new `MemoryStorage` on the same state models reopening the
 * same data directory after a clean shutdown: everything saved is there.
 */
export interface MemoryStorageState {
  hardState?: Uint8Array;
  /** Index and term of the last compacted entry (0/0 when nothing was compacted). */
  compactedIndex: number;
  compactedTerm: number;
  /** log[i] is the entry at index compactedIndex + 1 + i. */
  log: LogEntry[];
  snapshot?: Snapshot;
}

export function emptyMemoryStorageState(): MemoryStorageState {
  return { compactedIndex: 0, compactedTerm: 0, log: [] };
}

/** Approximate bytes an entry takes, used for `maxBytes` limits. */
export function entrySize(entry: LogEntry): number {
  return entry.data.length + 24;
}

/**
 * `Storage` + `DurableStorage` in memory. Writes complete synchronously (the `*Now` methods, used by the
 * simulator and test clusters); the async methods of `DurableStorage` wrap them.
 */
export class MemoryStorage implements DurableStorage {
  private readonly state: MemoryStorageState;
  private closed = false;

  constructor(state: MemoryStorageState = emptyMemoryStorageState()) {
    this.state = state;
  }

  /** The live state object; pass it to a new `MemoryStorage` to "reopen". */
  get raw(): MemoryStorageState {
    return this.state;
  }

  initialState(): InitialState {
    this.checkOpen();
    return this.state.hardState === undefined ? {} : { hardState: this.state.hardState };
  }

  firstIndex(): number {
    return this.state.compactedIndex + 1;
  }

  lastIndex(): number {
    return this.state.compactedIndex + this.state.log.length;
  }

  term(index: number): number {
    this.checkOpen();
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`term: bad index ${index}`);
    const { compactedIndex, compactedTerm, log } = this.state;
    if (index === compactedIndex) return compactedTerm;
    if (index < compactedIndex) throw new CompactedError(index, compactedIndex + 1);
    const entry = log[index - compactedIndex - 1];
    if (entry === undefined) throw new StorageError(`term: index ${index} is past the last index ${this.lastIndex()}`);
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): LogEntry[] {
    this.checkOpen();
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new InvalidArgumentError(`entries: bad range [${lo}, ${hi})`);
    }
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    if (hi > this.lastIndex() + 1) throw new StorageError(`entries: ${hi - 1} is past the last index ${this.lastIndex()}`);
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.state.log[i - first] as LogEntry;
      bytes += entrySize(e);
      // Always return at least one entry, like etcd's limitSize, so a huge entry cannot stall replication.
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot | undefined {
    this.checkOpen();
    return this.state.snapshot;
  }

  async save(batch: SaveBatch): Promise<void> {
    this.saveNow(batch);
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.installSnapshotNow(snapshot);
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.saveSnapshotNow(snapshot);
  }

  async compact(index: number): Promise<void> {
    this.compactNow(index);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /**
   * Writes one batch: truncation, then entries, then hard state (DESIGN r2's pinned order; a snapshot install,
   * which comes first, is `installSnapshotNow`). The whole batch is checked before anything is written, so a
   * refused batch changes nothing; `persistReady` in core/testing writes a prefix of the same order to model
   * a crash in the middle of a save.
   */
  saveNow(batch: SaveBatch): void {
    this.checkOpen();
    const entries = batch.entries ?? [];
    if (batch.truncateAfter !== undefined) this.checkTruncate(batch.truncateAfter);
    const last = batch.truncateAfter === undefined ? this.lastIndex() : Math.min(this.lastIndex(), batch.truncateAfter);
    if (entries.length > 0) this.checkEntries(entries, last);
    if (batch.truncateAfter !== undefined) this.truncateAfter(batch.truncateAfter);
    if (entries.length > 0) this.write(entries);
    if (batch.hardState !== undefined) this.state.hardState = batch.hardState;
  }

  private checkTruncate(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`truncateAfter: bad index ${index}`);
    if (index < this.state.compactedIndex) {
      throw new StorageError(`truncateAfter(${index}) would cut into the compacted prefix (compacted through ${this.state.compactedIndex})`);
    }
  }

  private truncateAfter(index: number): void {
    if (index < this.lastIndex()) this.state.log.length = index - this.state.compactedIndex;
  }

  /** Entries must be contiguous and start at or before `last + 1` (no gap). */
  private checkEntries(entries: readonly LogEntry[], last: number): void {
    for (let i = 1; i < entries.length; i++) {
      if ((entries[i] as LogEntry).index !== (entries[i - 1] as LogEntry).index + 1) {
        throw new StorageError(`save: entries are not contiguous at index ${(entries[i] as LogEntry).index}`);
      }
    }
    const first = (entries[0] as LogEntry).index;
    if (first > last + 1) throw new StorageError(`save: entry ${first} would leave a gap after the last index ${last}`);
  }

  /**
   * DESIGN r2: an entry at an existing index overwrites that index only (the entries after it stay: a Paxos
   * acceptor re-accepting one slot keeps the slots above it); an entry at lastIndex + 1 appends; entries at or
   * below the compaction point are covered by the snapshot and skipped. Only `truncateAfter` drops a suffix.
   */
  private write(entries: readonly LogEntry[]): void {
    const { compactedIndex, log } = this.state;
    for (const e of entries) {
      if (e.index <= compactedIndex) continue;
      log[e.index - compactedIndex - 1] = e; // overwrite in place, or append at the end (no gap: checked)
    }
  }

  /** Replaces the whole log with a snapshot received from a leader. */
  installSnapshotNow(snapshot: Snapshot): void {
    this.checkOpen();
    assertSnapshot(snapshot);
    const current = this.state.snapshot;
    if (current !== undefined && snapshot.index <= current.index) {
      throw new StorageError(`installSnapshot: snapshot ${snapshot.index} is not newer than the stored snapshot ${current.index}`);
    }
    this.state.snapshot = snapshot;
    this.state.compactedIndex = snapshot.index;
    this.state.compactedTerm = snapshot.term;
    this.state.log = [];
  }

  /** Records a local snapshot; the log is left as it is. */
  saveSnapshotNow(snapshot: Snapshot): void {
    this.checkOpen();
    assertSnapshot(snapshot);
    const current = this.state.snapshot;
    if (current !== undefined && snapshot.index < current.index) {
      throw new StorageError(`saveSnapshot: snapshot ${snapshot.index} is older than the stored snapshot ${current.index}`);
    }
    if (snapshot.index > this.lastIndex()) {
      throw new StorageError(`saveSnapshot: snapshot ${snapshot.index} is past the last index ${this.lastIndex()}`);
    }
    if (snapshot.index >= this.state.compactedIndex && this.term(snapshot.index) !== snapshot.term) {
      throw new StorageError(`saveSnapshot: snapshot term ${snapshot.term} does not match the log's term ${this.term(snapshot.index)} at ${snapshot.index}`);
    }
    this.state.snapshot = snapshot;
  }

  /** Drops entries up to and including `index`; idempotent; never past the latest snapshot. */
  compactNow(index: number): void {
    this.checkOpen();
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`compact: bad index ${index}`);
    const { compactedIndex } = this.state;
    if (index <= compactedIndex) return;
    const snapIndex = this.state.snapshot?.index ?? 0;
    if (index > snapIndex) throw new StorageError(`compact(${index}) is past the latest snapshot (${snapIndex}): entries would be lost`);
    if (index > this.lastIndex()) throw new StorageError(`compact(${index}) is past the last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.state.log = this.state.log.slice(index - compactedIndex);
    this.state.compactedIndex = index;
    this.state.compactedTerm = term;
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageError('storage is closed');
  }
}

