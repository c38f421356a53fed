import { decodeClusterConfig } from './config';
import { InvariantError } from './errors';
import type { ClusterConfig, LogEntry, Ready, ReadState, Snapshot } from './types';

/** Shared by every batch that releases no read: no allocation on the host's hot path. */
const NONE_RELEASED: readonly ReadState[] = Object.freeze([]);

/** What the apply step drives: a state machine, or whatever stands in for one in a harness. */
export interface ApplyHandler {
  /** Replace the state machine's state with a snapshot's (one installed from a leader). */
  restore(snapshot: Snapshot): void;
  /**
   * Apply one committed entry, exactly once, in index order. Called for commands, noops and config entries
   * alike; for a config entry, `ApplyStep.config` already holds the configuration it carries.
   */
  apply(entry: LogEntry): void;
  /** A config entry whose data is not a configuration: the configuration in force is left as it was. */
  configError?(entry: LogEntry, error: unknown): void;
}

/** Where the state machine starts: the snapshot it was restored from, or nothing. */
export interface AppliedPosition {
  index: number;
  term: number;
  config: ClusterConfig;
}

/**
 * The apply half of the Ready loop (steps 3 and 4 of `Ready`), written once and shared by every loop that
 * drives a protocol: `ConsensusNode` in production, and the synchronous `ReadyDriver` that test clusters, the
 * simulator and scenario scripts use (DESIGN r2: one loop semantics, not one per harness).
 *
 * It restores a newer snapshot, applies committed entries strictly in index order (an entry the restored
 * snapshot already covers is skipped; any other repeat or gap is an `InvariantError`), follows the
 * configuration through config entries, and holds read states until the applied index reaches them.
 */
export class ApplyStep {
  /** The last index the state machine reflects. */
  index: number;
  /** The term of the entry (or snapshot) at `index`. */
  term: number;
  /** The configuration as of `index`: what a snapshot taken now records. */
  config: ClusterConfig;
  /** The index of the last restored snapshot: entries at or below it are already reflected. */
  private floor: number;
  private waiting: ReadState[] = [];

  constructor(
    private readonly handler: ApplyHandler,
    start: AppliedPosition,
  ) {
    this.index = start.index;
    this.term = start.term;
    this.config = start.config;
    this.floor = start.index;
  }

  /**
   * Applies a Ready's snapshot, committed entries and reads, in that order. Returns the reads released by it
   * (every waiting read whose index is now applied), oldest first.
   */
  applyReady(rd: Pick<Ready, 'snapshot' | 'committed' | 'reads'>): readonly ReadState[] {
    if (rd.snapshot !== undefined) this.restore(rd.snapshot);
    for (const entry of rd.committed) this.applyEntry(entry);
    if (rd.reads.length > 0) this.waiting.push(...rd.reads);
    return this.release();
  }

  /** Restores a snapshot newer than what is applied; an older one would roll the state machine back. */
  restore(snapshot: Snapshot): boolean {
    if (snapshot.index <= this.index) return false;
    this.handler.restore(snapshot);
    this.index = this.floor = snapshot.index;
    this.term = snapshot.term;
    this.config = snapshot.config;
    return true;
  }

  applyEntry(entry: LogEntry): void {
    if (entry.index <= this.floor) return; // covered by the restored snapshot
    if (entry.index !== this.index + 1) {
      throw new InvariantError(
        entry.index <= this.index
          ? `committed entry ${entry.index} was applied already (applied index ${this.index}): entries apply exactly once`
          : `committed entry ${entry.index} does not follow applied index ${this.index}: entries apply in index order`,
      );
    }
    this.index = entry.index;
    this.term = entry.term;
    if (entry.type === 'config') {
      try {
        this.config = decodeClusterConfig(entry.data);
      } catch (error) {
        this.handler.configError?.(entry, error);
      }
    }
    this.handler.apply(entry);
  }

  /** Read states still waiting for the state machine to reach their index. */
  get pendingReads(): readonly ReadState[] {
    return this.waiting;
  }

  /** Forgets waiting reads (their leader is gone, or the replica crashed). */
  dropReads(): void {
    this.waiting = [];
  }

  private release(): readonly ReadState[] {
    if (this.waiting.length === 0) return NONE_RELEASED;
    const released: ReadState[] = [];
    const keep: ReadState[] = [];
    for (const rs of this.waiting) (rs.index <= this.index ? released : keep).push(rs);
    this.waiting = keep;
    return released;
  }
}
