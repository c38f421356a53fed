import { StorageError, type Logger } from '@consensus-kit/core';
import { HARD_STATE_FILE, encodeHardState, pointBefore, writeFileAtomic, type DurablePoint } from './atomic-file';
import type { FileStorageStats, WalWriteTiming } from './file-storage-options';
import { unlinkIfExists, type FileSystem } from './file-system';
import type { DurableFile } from './durable-file';
import { encodeRecords, recordBytes, specPayloadBytes, type RecordSpec } from './record';
import { MAX_SEGMENT_OFFSET, SEGMENT_RECORD_BYTES, segmentFileName, segmentHeaderSpec, type Segment } from './segment';

/** Zeros are written in pieces of at most this size. */
const ZERO_CHUNK = 256 << 10;

/** Records placed at one position of one segment, waiting for their write. */
export interface WalWrite {
  seq: number;
  offset: number;
  specs: RecordSpec[];
  bytes: number;
  /** The log's last index and its term once these records are durable (becomes the durable point). */
  after?: { lastIndex: number; lastTerm: number };
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

type Task =
  | { type: 'wal'; writes: WalWrite[]; hardState: Uint8Array | undefined; waiters: Waiter[]; started: boolean }
  | { type: 'run'; fn: () => Promise<void>; waiters: Waiter[]; started: boolean };

export interface WalWriterOptions {
  fsys: FileSystem;
  dir: string;
  logger: Logger;
  segmentBytes: number;
  blockingWrites: boolean;
  preallocateBytes: number;
  counters: FileStorageStats;
  /** Called after each group's records are written (the cache may drop what is now on disk). */
  afterWrite(): void;
  /** Where the recovered WAL ends (records and log), and the point the hard-state file on disk records. */
  durable: DurablePoint;
  recordedDurable: DurablePoint;
  /** The protocol's hard state as on disk (empty when none was stored yet). */
  hardState: Uint8Array;
  /** The directory's identity, encoded as the hard-state file stores it (empty: none). */
  identity: Uint8Array;
  /** Where the durable point is written after every group. */
  durableFile: DurableFile;
  /** Metrics hook (FileStorageOptions.onWalWrite): unset, nothing is timed. */
  onWalWrite?: ((timing: WalWriteTiming) => void) | undefined;
}

/**
 * The write side of the WAL: places records at the end of the log (rolling segments), and writes them through
 * one queue, one task at a time, in call order. Saves that arrive while a group is being written and synced
 * coalesce into the next group, which is written and fdatasynced once (group commit); a group's hard state is
 * written after its records are durable. Beside the queue runs a background chain for file work WAL groups
 * must not wait for (snapshot files, deleting dead segments).
 *
 * After a failed write the writer refuses everything (an fsync failure cannot be retried safely): `failure`.
 */
export class WalWriter {
  readonly segments = new Map<number, Segment>();
  /** Sequence numbers of live segments, oldest first. */
  private readonly segmentOrder: number[] = [];
  /** The segment taking new records, and the end of the bytes placed (accepted) in it. */
  writeSeq: number;
  private writeEnd: number;
  /** Position up to which writes have completed (readable from disk). */
  private writtenSeq: number;
  private writtenEnd: number;

  private queue: Task[] = [];
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  /** The first failed write; set, it makes the storage refuse further writes. */
  failure: unknown;
  /** The first failure of a background extension; the next flush reports it. */
  private extendFailure: unknown;
  /**
   * Background file work, one task at a time, beside the WAL queue so that WAL groups never wait for it:
   * writing local snapshot files, deleting old snapshots and compacted segments. Every change to snapshot
   * files goes through it (an install's too, from inside its WAL task), so those never race each other.
   */
  private side: Promise<void> = Promise.resolve();
  /**
   * The durable point: the end of the records written and fdatasynced so far, and the log's last index and
   * term there. Recorded in the hard-state file with every hard state written, and on close.
   */
  durable: DurablePoint;
  /** The durable point the hard-state file on disk holds. */
  private recorded: DurablePoint;
  /** The hard state and identity last written (or recovered): rewritten as they are when only the point moves. */
  private hardState: Uint8Array;
  identity: Uint8Array;

  constructor(
    private readonly options: WalWriterOptions,
    recovered: readonly Segment[],
    writeEnd: number,
  ) {
    for (const s of recovered) {
      this.segments.set(s.seq, s);
      this.segmentOrder.push(s.seq);
    }
    this.writeSeq = recovered.at(-1)?.seq ?? 0;
    this.writeEnd = writeEnd;
    this.writtenSeq = this.writeSeq;
    this.writtenEnd = this.writeEnd;
    this.durable = options.durable;
    this.recorded = options.recordedDurable;
    this.hardState = options.hardState;
    this.identity = options.identity;
  }

  /** Whether the hard-state file records a durable point other than the current one. */
  get durableStale(): boolean {
    const a = this.durable;
    const b = this.recorded;
    return a.seq !== b.seq || a.end !== b.end || a.lastIndex !== b.lastIndex || a.lastTerm !== b.lastTerm;
  }

  /**
   * Writes the hard-state file (atomically) with `hardState` (or the current one), the current durable point
   * and the identity. Only from the write queue, or when it is idle.
   */
  async writeHardState(hardState?: Uint8Array): Promise<void> {
    const { fsys, dir } = this.options;
    const data = hardState ?? this.hardState;
    const point = this.durable;
    const bytes = encodeHardState(data, point, this.identity);
    await writeFileAtomic(fsys, dir, HARD_STATE_FILE, (f) => f.write(bytes, 0));
    this.hardState = data;
    if (pointBefore(point, this.recorded)) await this.options.durableFile.record(point); // lowered by an operator's cut
    this.recorded = point;
  }

  durableSettled(): Promise<void> {
    return this.options.durableFile.settled();
  }

  /** Whether the WAL's records end below the point the hard-state file records (only after an operator's cut). */
  get belowRecorded(): boolean {
    return pointBefore(this.durable, this.recorded);
  }

  /** Whether a record placed at `offset` of segment `seq` has been written (so it can be read back). */
  isWritten(seq: number, offset: number): boolean {
    return seq < this.writtenSeq || (seq === this.writtenSeq && offset < this.writtenEnd);
  }

  /** Whether a write or a run task is waiting or in flight. */
  get busy(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Places records at the end of the WAL, starting a new segment first when the current one is full (or when
   * `roll`). One call's records always stay in one segment, in order, so a torn write keeps a prefix of them.
   * Returns the writes to queue.
   */
  place(specs: RecordSpec[], roll: boolean): WalWrite[] {
    let total = 0;
    for (const s of specs) total += recordBytes(specPayloadBytes(s));
    const writes: WalWrite[] = [];
    const { fsys, dir, segmentBytes } = this.options;
    if (roll || this.writeSeq === 0 || (this.writeEnd > SEGMENT_RECORD_BYTES && this.writeEnd + total > segmentBytes)) {
      const seq = this.writeSeq + 1;
      const name = segmentFileName(seq);
      this.segments.set(seq, { seq, name, path: fsys.join(dir, name), file: undefined, allocEnd: 0 });
      this.segmentOrder.push(seq);
      this.writeSeq = seq;
      // The previous segment is sealed here: its header says where its records end.
      const prevEnd = this.writeSeq === 0 ? 0 : this.writeEnd;
      writes.push({ seq, offset: 0, specs: [segmentHeaderSpec(seq, prevEnd)], bytes: SEGMENT_RECORD_BYTES });
      this.writeEnd = SEGMENT_RECORD_BYTES;
    }
    if (this.writeEnd + total > MAX_SEGMENT_OFFSET) throw new StorageError(`save: ${total} bytes do not fit in one segment`);
    writes.push({ seq: this.writeSeq, offset: this.writeEnd, specs, bytes: total });
    this.writeEnd += total;
    return writes;
  }

  /** Queues writes (and a hard state written after them); `saves` is what the promise counts as made durable. */
  enqueueWal(writes: WalWrite[], hardState: Uint8Array | undefined, saves: number): Promise<void> {
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
          this.options.counters.saves += saves;
          resolve();
        },
        reject,
      });
      this.kick();
    });
  }

  /** Queues `fn` in order with the WAL groups (nothing queued after it starts before it is done). */
  enqueueRun(fn: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ type: 'run', fn, waiters: [{ resolve, reject }], started: false });
      this.kick();
    });
  }

  whenIdle(): Promise<void> {
    if (!this.draining && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs `fn` on the background chain, after every background task queued before it. */
  background(fn: () => Promise<void>): Promise<void> {
    const run = this.side.then(fn);
    this.side = run.catch(() => undefined);
    return run;
  }

  /** A background deletion failed (say, fsync of the directory): like a failed WAL write, refuse further writes. */
  failBackground(what: string, e: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    this.options.logger.error(`${what} failed; the storage refuses further writes until reopened`, { error: String(e) });
  }

  /** Deletes segments older than `keep`, oldest first, each deletion made durable before the next. */
  async deleteSegmentsBefore(keep: number): Promise<void> {
    const { fsys, dir } = this.options;
    while (this.segmentOrder.length > 0 && (this.segmentOrder[0] as number) < keep) {
      const seq = this.segmentOrder[0] as number;
      const segment = this.segments.get(seq) as Segment;
      await segment.extending;
      await segment.file?.close();
      segment.file = undefined;
      await unlinkIfExists(fsys, segment.path);
      await fsys.syncDir(dir);
      this.segmentOrder.shift();
      this.segments.delete(seq);
    }
  }

  /**
   * Waits for everything queued and in the background, records the durable point if saves without a hard
   * state moved it (so a clean stop leaves every acknowledged record covered), then closes the segment files.
   */
  async close(): Promise<void> {
    await this.whenIdle();
    await this.side;
    if (this.failure === undefined && this.durableStale) {
      try {
        await this.writeHardState();
      } catch (e) {
        this.options.logger.error('could not record the durable point on close', { error: String(e) });
      }
    }
    for (const s of this.segments.values()) await s.extending;
    for (const s of this.segments.values()) await s.file?.close().catch(() => undefined);
    await this.options.durableFile.close().catch(() => undefined);
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
        this.options.logger.error('a storage write failed; the storage refuses further writes until reopened', { error: String(e) });
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

  /**
   * Writes one group: each segment's records with one write and one fdatasync, then the hard state
   * (atomically). This is where DESIGN r2's crash order inside a save is kept: a save's records (truncation,
   * then its entries in index order, all in one segment) are durable before its hard state is written, and a
   * snapshot install queued before the save (file, then RESET record) is durable before both, since the queue
   * runs in call order. A crash leaves a prefix: some of the records (a torn write keeps whole records from
   * its start), or all of them without the new hard state; never a hard state ahead of the log (a commit index
   * past the durable entries, which etcd's raft treats as fatal; etcd's WAL likewise writes entries before
   * state). Within a group of coalesced saves, the group's newest hard state follows all of their records.
   */
  private async flush(writes: WalWrite[], hardState: Uint8Array | undefined): Promise<void> {
    // A failed extension is a failed write to the log file: no write after it is trusted.
    if (this.extendFailure !== undefined) throw this.extendFailure;
    const { fsys, dir, blockingWrites, counters, onWalWrite } = this.options;
    // Timed only when a hook asks for it: without one, the write path is as before.
    const began = onWalWrite === undefined ? 0 : performance.now();
    let syncMs = 0;
    let bytes = 0;
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
        segment.file = await fsys.open(segment.path, 'create');
        const t = onWalWrite === undefined ? 0 : performance.now();
        await segment.file.writeDurable(buf, start, { blocking: blockingWrites });
        await fsys.syncDir(dir);
        if (onWalWrite !== undefined) syncMs += performance.now() - t;
      } else {
        // Zeros being added past allocEnd must not land on top of this write: let the extension finish first.
        if (end > segment.allocEnd && segment.extending !== undefined) {
          await segment.extending;
          if (this.extendFailure !== undefined) throw this.extendFailure;
        }
        if (onWalWrite === undefined) await segment.file.writeDurable(buf, start, { blocking: blockingWrites });
        else {
          const t = performance.now();
          await segment.file.writeDurable(buf, start, { blocking: blockingWrites });
          syncMs += performance.now() - t;
        }
      }
      bytes += buf.length;
      if (end > segment.allocEnd) segment.allocEnd = end;
      this.preallocate(segment, end);
      counters.walSyncs++;
      counters.walWrites++;
      counters.bytesWritten += buf.length;
      if (seq > this.writtenSeq || (seq === this.writtenSeq && start + buf.length > this.writtenEnd)) {
        this.writtenSeq = seq;
        this.writtenEnd = start + buf.length;
      }
      i = j;
    }
    if (writes.length > 0) {
      // Every record of the group is durable: the durable point moves to their end.
      let after = this.durable;
      for (const w of writes) if (w.after !== undefined) after = { ...after, lastIndex: w.after.lastIndex, lastTerm: w.after.lastTerm };
      this.durable = { seq: this.writtenSeq, end: this.writtenEnd, lastIndex: after.lastIndex, lastTerm: after.lastTerm };
      // Before the group's saves resolve (and anything is acknowledged): a write to the page cache, no flush.
      await this.options.durableFile.record(this.durable);
    }
    this.options.afterWrite();
    // The hard state carries the durable point: no extra write or sync, and a group that changes the hard
    // state (Raft: a vote, a term, every commit advance) also records how far the log was durable.
    if (hardState !== undefined) await this.writeHardState(hardState);
    if (onWalWrite !== undefined) onWalWrite({ syncMs, totalMs: performance.now() - began, bytes });
  }

  /**
   * Keeps `preallocateBytes` of zeros ahead of `end` in the segment being written: once less than half of that
   * is left, zeros are appended and synced in the background (writes below `allocEnd` go on meanwhile; a write
   * past it waits, see `flush`). Only called from the write queue, between writes, so no write is in flight
   * past `allocEnd` when an extension starts there.
   */
  private preallocate(segment: Segment, end: number): void {
    const { preallocateBytes, segmentBytes, counters } = this.options;
    const file = segment.file;
    if (preallocateBytes === 0 || file === undefined || segment.extending !== undefined || this.extendFailure !== undefined) return;
    if (segment.seq !== this.writeSeq || segment.allocEnd - end >= preallocateBytes / 2) return;
    const from = segment.allocEnd;
    const to = Math.min(segmentBytes, end + preallocateBytes);
    if (to <= from) return;
    segment.extending = (async () => {
      const zeros = new Uint8Array(Math.min(ZERO_CHUNK, to - from));
      for (let at = from; at < to; at += zeros.length) await file.write(zeros.subarray(0, Math.min(zeros.length, to - at)), at);
      await file.datasync();
      segment.allocEnd = to;
      counters.preallocatedBytes += to - from;
    })()
      .catch((e: unknown) => {
        this.extendFailure ??= e;
      })
      .finally(() => {
        segment.extending = undefined;
      });
  }
}
