import type { ApplyStep } from '../apply-step';
import { canObserveCompaction, type DurableStorage, type Logger, type Protocol, type StateMachine } from '../types';

export interface SnapshotterOptions {
  storage: DurableStorage;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  stateMachine: StateMachine<any, any, any, any>;
  logger: Logger;
  /** Take a snapshot after this many applied entries (0: never). */
  every: number;
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
 * The host's snapshotting and log compaction. Every `every` applied entries the state machine is captured,
 * synchronously, at the applied index; writing it is not awaited, so batches keep flowing while a large
 * snapshot is written and synced (one at a time). Once it is durable, the Ready loop compacts the log behind
 * it, keeping `keep` entries for slow followers, between batches (never concurrently with a `save`).
 */
export class Snapshotter {
  private lastIndex = 0;
  /** The snapshot being written, if any. */
  private writing: Promise<void> | undefined;
  /** A compaction made safe by a durable snapshot, run by the Ready loop between batches. */
  private compactTo: number | undefined;

  constructor(private readonly o: SnapshotterOptions) {}

  /** Settles once the snapshot being written (if any) is durable or failed. */
  get settled(): Promise<void> {
    return this.writing ?? Promise.resolve();
  }

  get compactionDue(): boolean {
    return this.compactTo !== undefined;
  }

  /** The state machine now reflects a snapshot at `index` (restored at start or installed from a leader). */
  restored(index: number): void {
    this.lastIndex = index;
  }

  /** Called after each batch: snapshots when `every` entries were applied since the last snapshot. */
  maybeSnapshot(applied: ApplyStep): void {
    if (this.writing !== undefined || this.o.every <= 0 || applied.index - this.lastIndex < this.o.every) return;
    const { storage, stateMachine } = this.o;
    const index = applied.index;
    this.lastIndex = index; // also on failure: do not retry on every batch
    let saved: Promise<void>;
    try {
      saved = storage.saveSnapshot({ index, term: applied.term, config: applied.config, data: stateMachine.snapshot() });
    } catch (e) {
      saved = Promise.reject(e);
    }
    this.writing = saved.then(
      () => {
        this.writing = undefined;
        this.o.onSnapshot(index);
        if (!this.o.running()) return;
        this.compactTo = Math.max(this.compactTo ?? 0, index - this.o.keep);
        this.o.kick();
      },
      (e: unknown) => {
        this.writing = undefined;
        this.o.logger.warn('snapshot failed; will retry later', { index, error: String(e) });
      },
    );
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
