import { performance } from 'node:perf_hooks';
import type { ApplyStep } from '../apply-step';
import { StoppedError } from '../errors';
import { canObserveCompaction, type DurableStorage, type LogEntry, type Logger, type Protocol, type SnapshotJob, type StateMachine } from '../types';

/** Log bytes (applied entries' data) that trigger a snapshot by default: 64 MiB. */
export const DEFAULT_SNAPSHOT_BYTES = 64 * 2 ** 20;
/**
 * The longest a slice of an incremental snapshot runs before the event loop gets a turn, by default. Each put
 * in flight waits for about one slice: with 16 puts in flight through a one-node raft node over 1,000,000 keys
 * (kv's bench:large, a slice every turn, before `DEFAULT_SNAPSHOT_SHARE`), 2 ms slices put the p99 at 7.6x the
 * p99 without a snapshot, 1 ms at 4.8x, 0.5 ms at 1.95x on a loaded machine (2.9 to 3.2x on a quiet one later),
 * and the snapshot took about as long (2.1 to 2.9 s) in all three.
 */
export const DEFAULT_SNAPSHOT_SLICE_MS = 0.5;
/**
 * The most of a busy event loop an incremental snapshot takes, by default. While client requests, batches and
 * heartbeats keep the loop busy, a slice runs only once the loop has spent `sliceMs * (1 - share) / share` on
 * that work since the last slice (with 0.5: as long as a slice); an idle loop runs the slices back to back. A
 * put waits for each slice that runs in a turn it needs: with every turn running a slice, the puts of kv's
 * bench:large (16 in flight through a one-node raft node over 1,000,000 keys) went from 55,700 to 18,600 a
 * second during the snapshot and their p50 from 0.23 to 0.81 ms; with 0.5, about 31,000 a second and 0.26 ms
 * (the p99 1.1 to 2.1x the p99 without a snapshot, against 2.9 to 3.2x), the snapshot taking 4.0 s instead of
 * 2.3 s. A share of 0.4 made the snapshot 5.5 s long and its p99 3x (more history held, more collections), 0.65
 * put the p50 back at 0.8 ms.
 */
export const DEFAULT_SNAPSHOT_SHARE = 0.5;
/**
 * Pacing after a large snapshot (one whose own work, the state machine's calls, not the turns of the loop between
 * its slices nor the write, took W of SNAPSHOT_PACE_MIN_MS or more). The next one by entry count (`every`) waits
 * until SNAPSHOT_PACE * W has passed since it was stored, and the next one by bytes (`bytes`) until as many bytes
 * of entries as the snapshot's own size were applied, if that is more than `bytes`: a snapshot takes at most half
 * of a busy loop (about 2W), so a large store's snapshots take at most about a third of a loaded node's time, and
 * the log it lets go is never smaller than what it costs. Without it, a loaded node whose snapshot outlasts the
 * entries (or bytes) between two snapshots snapshots all the time: kv's bench:large (1,000,000 keys, a 157 MB
 * snapshot, 16 puts in flight) made 38,000 puts a second during a snapshot of 6 to 9 s against 72,000 without
 * one, and with the defaults (10,000 entries, 64 MiB) snapshotted 99% of a 20 s run at 41,600 puts a second;
 * paced, 42% of a 45 s run (the first snapshot, unpaced, included) at 53,400.
 */
export const SNAPSHOT_PACE = 4;
/** A snapshot whose work took less than this is not paced (small stores snapshot on entry count alone, as before). */
const SNAPSHOT_PACE_MIN_MS = 50;
/**
 * The most one slice counts toward a snapshot's work: a slice runs for about `sliceMs` (0.5 ms), and one step that
 * overruns it (a collector's marking work in it) took up to 25 ms in bench:large.
 */
const SLICE_WORK_CAP_MS = 100;
/** A gap between two slices shorter than this ran nothing else (only the turn of the event loop): the loop is idle. */
const IDLE_GAP_MS = 0.05;
/** Units of work (a state machine's own, e.g. keys) asked of one `SnapshotJob.step`. */
const STEP_UNITS = 64;

export interface SnapshotterOptions {
  storage: DurableStorage;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  stateMachine: StateMachine<any, any, any, any>;
  logger: Logger;
  /** Take a snapshot after this many applied entries (0: never), paced after a large snapshot (`SNAPSHOT_PACE`). */
  every: number;
  /**
   * Take a snapshot after this many bytes of applied entries' data (0: never), whichever of the two comes first;
   * after a large snapshot, after at least its own size (`SNAPSHOT_PACE`).
   */
  bytes?: number;
  /** An incremental snapshot (`beginSnapshot`) runs in slices of at most about this many ms. */
  sliceMs?: number;
  /** The most of a busy event loop an incremental snapshot takes, in (0, 1] (see `DEFAULT_SNAPSHOT_SHARE`; 1: a slice every turn). */
  share?: number;
  /** The clock slices are timed by, in ms (tests inject one). */
  now?: () => number;
  /** Entries kept in the log behind a snapshot, for slow followers. */
  keep: number;
  /** A snapshot is durable (or was restored from a leader's). */
  onSnapshot(index: number): void;
  /** Whether the node still runs (a snapshot that lands after stop schedules no compaction). */
  running(): boolean;
  /** Wakes the Ready loop, which runs the compaction between batches. */
  kick(): void;
}

/**
 * The host's snapshotting and log compaction. After `every` applied entries, or `bytes` of their data, the state
 * machine is captured at the applied index: with its incremental `beginSnapshot` when it has one (the job runs
 * in slices of about `sliceMs`, one per turn of the event loop, while batches keep flowing and entries keep
 * being applied: a large store never stalls the node), else with `snapshot()` at once. Writing it is not
 * awaited either, so batches keep flowing while a large snapshot is written and synced (one at a time). Once it
 * is durable, the Ready loop compacts the log behind it, keeping `keep` entries for slow followers, between
 * batches (never concurrently with a `save`).
 */
export class Snapshotter {
  private lastIndex = 0;
  /** Bytes of entry data applied since the last snapshot began. */
  private bytesSince = 0;
  /** The snapshot being taken or written, if any. */
  private writing: Promise<void> | undefined;
  /** The incremental snapshot being taken, if any (cancelled by a restore or a stop). */
  private job: SnapshotJob | undefined;
  /** A compaction made safe by a durable snapshot, run by the Ready loop between batches. */
  private compactTo: number | undefined;
  /** The work and size of the snapshot being taken, of the last one stored here, and when that was (see `SNAPSHOT_PACE`). */
  private workMs = 0;
  private workBytes = 0;
  private lastWorkMs = 0;
  private lastBytes = 0;
  private lastDoneAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: SnapshotterOptions) {}

  /** Settles once the snapshot being taken or written (if any) is durable or failed. */
  get settled(): Promise<void> {
    return this.writing ?? Promise.resolve();
  }

  get compactionDue(): boolean {
    return this.compactTo !== undefined;
  }

  /** The state machine now reflects a snapshot at `index` (restored at start or installed from a leader). */
  restored(index: number): void {
    // A snapshot being taken describes the state the restore replaced: abandon it.
    this.cancelJob();
    this.lastIndex = index;
    this.bytesSince = 0;
  }

  /**
   * A snapshot from the leader is about to be restored in slices: a snapshot being taken describes the state it
   * replaces, and must not finish (and be saved over the installed one) meanwhile.
   */
  abandon(): void {
    this.cancelJob();
  }

  /** Counts the data of applied entries, for the `bytes` trigger. */
  noteApplied(entries: readonly LogEntry[]): void {
    for (const e of entries) this.bytesSince += e.data.length;
  }

  /**
   * Called after each batch: snapshots when `every` entries (once the last snapshot's pacing allows: see
   * `SNAPSHOT_PACE`) or `bytes` bytes were applied since the last one.
   */
  maybeSnapshot(applied: ApplyStep): void {
    if (this.writing !== undefined) return;
    const bytes = this.o.bytes ?? 0;
    const large = this.lastWorkMs >= SNAPSHOT_PACE_MIN_MS;
    const byBytes = bytes > 0 && this.bytesSince >= (large ? Math.max(bytes, this.lastBytes) : bytes) && applied.index > this.lastIndex;
    if (!byBytes && !(this.o.every > 0 && applied.index - this.lastIndex >= this.o.every && !this.paced())) return;
    const { storage, stateMachine } = this.o;
    const meta = { index: applied.index, term: applied.term, config: applied.config };
    this.lastIndex = meta.index; // also on failure: do not retry on every batch
    this.bytesSince = 0;
    let saved: Promise<void>;
    const began = this.now();
    try {
      if (typeof stateMachine.beginSnapshot === 'function') {
        const job = stateMachine.beginSnapshot();
        this.workMs = this.now() - began;
        this.job = job;
        saved = this.runJob(job).then((data) => {
          this.workBytes = data.length;
          return storage.saveSnapshot({ ...meta, data });
        });
      } else {
        const data = stateMachine.snapshot();
        this.workMs = this.now() - began;
        this.workBytes = data.length;
        saved = storage.saveSnapshot({ ...meta, data });
      }
    } catch (e) {
      saved = Promise.reject(e);
    }
    const index = meta.index;
    this.writing = saved.then(
      () => {
        this.writing = undefined;
        // Only a stored snapshot paces the next: a failed one leaves the last stored one's figures.
        this.lastDoneAt = this.now();
        this.lastWorkMs = this.workMs;
        this.lastBytes = this.workBytes;
        this.o.onSnapshot(index);
        if (!this.o.running()) return;
        this.compactTo = Math.max(this.compactTo ?? 0, index - this.o.keep);
        this.o.kick();
      },
      (e: unknown) => {
        this.writing = undefined;
        if (StoppedError.is(e)) {
          // The node stopped, or a snapshot from the leader replaced the state being captured.
          if (this.o.running()) this.o.logger.debug('snapshot abandoned', { index, reason: e.message });
          return;
        }
        this.o.logger.warn('snapshot failed; will retry later', { index, error: String(e) });
      },
    );
  }

  /** Whether the entry-count trigger waits: the last snapshot was large, and stored less than SNAPSHOT_PACE times its work ago. */
  private paced(): boolean {
    return this.lastWorkMs >= SNAPSHOT_PACE_MIN_MS && this.now() - this.lastDoneAt < this.lastWorkMs * SNAPSHOT_PACE;
  }

  private now(): number {
    return this.o.now?.() ?? performance.now();
  }

  /**
   * Runs an incremental snapshot: steps for up to `sliceMs`, then yields the event loop (`setImmediate`, after
   * pending I/O), so heartbeats, client requests and batches go on between slices. While that other work keeps
   * the loop busy, the next slice waits until it has had its share (`share`): a snapshot is background work, and
   * the log keeps growing safely while it runs. Rejects with `StoppedError` if the node stops or a restore
   * cancels the job.
   */
  private runJob(job: SnapshotJob): Promise<Uint8Array> {
    const sliceMs = this.o.sliceMs ?? DEFAULT_SNAPSHOT_SLICE_MS;
    const share = this.o.share ?? DEFAULT_SNAPSHOT_SHARE;
    const now = () => this.now();
    // The time other work gets between two slices while the loop is busy.
    const othersMs = (sliceMs * (1 - share)) / share;
    /** When the last slice (or the last look at the loop) ended, and the other work's time since the last slice. */
    let lastEnd = Number.NEGATIVE_INFINITY;
    let others = 0;
    return new Promise<Uint8Array>((resolve, reject) => {
      const slice = () => {
        if (this.job !== job || !this.o.running()) {
          if (this.job === job) this.cancelJob();
          reject(new StoppedError('the snapshot in progress was abandoned (the node stopped or restored a snapshot)'));
          return;
        }
        const start = now();
        const gap = start - lastEnd;
        if (gap > IDLE_GAP_MS && othersMs > 0) {
          // Other callbacks ran since this one was queued: the loop is busy. They get `othersMs` before a slice.
          others += gap;
          if (others < othersMs) {
            lastEnd = start;
            setImmediate(slice);
            return;
          }
        }
        others = 0;
        const until = start + sliceMs;
        try {
          let data: Uint8Array | undefined;
          do data = job.step(STEP_UNITS);
          while (data === undefined && now() < until);
          lastEnd = now();
          // At most SLICE_WORK_CAP_MS a slice: a longer one was the process not running (a stopped process, a
          // frozen machine), not the snapshot's work, and would pace the next snapshot for four times as long.
          this.workMs += Math.min(lastEnd - start, SLICE_WORK_CAP_MS);
          if (data === undefined) {
            setImmediate(slice);
            return;
          }
          this.job = undefined;
          resolve(data);
        } catch (e) {
          this.cancelJob();
          reject(e);
        }
      };
      setImmediate(slice);
    });
  }

  private cancelJob(): void {
    const job = this.job;
    this.job = undefined;
    job?.cancel();
  }

  /** Runs the due compaction, if any; tells the protocol when it can observe compaction. Never throws. */
  async compact(protocol: Protocol): Promise<void> {
    const compactTo = this.compactTo;
    if (compactTo === undefined) return;
    this.compactTo = undefined;
    const { storage } = this.o;
    if (compactTo < storage.firstIndex()) return;
    try {
      await storage.compact(compactTo);
      if (canObserveCompaction(protocol)) protocol.compacted(compactTo);
    } catch (e) {
      this.o.logger.warn('compaction failed; will retry after the next snapshot', { index: compactTo, error: String(e) });
    }
  }
}
