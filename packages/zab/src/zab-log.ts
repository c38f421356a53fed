import { CompactedError, decodeClusterConfig, InvariantError, type ClusterConfig, type LogEntry, type Snapshot, type Storage } from '@consensus-kit/core';
import type { Segment } from './messages';

/**
 * A peer's history (DSN 2011 IV-A, "h_f"): what storage holds plus what no Ready has made durable yet, the term
 * runs of the whole log (so zxids and the common prefix with another peer are found without reading storage), and
 * the configuration entries in it.
 *
 * Index arithmetic: `mem[k]` is at index `memFrom + k`; entries below `memFrom` are durable and read back from the
 * storage. `runs[k]` says indexes [runs[k].first, runs[k+1].first - 1] (or up to `lastIndex`) hold `runs[k].term`;
 * `runs[0].first` is the base (the snapshot's index, or 0). In ZAB terms never decrease along a log.
 */
export class ZabLog {
  lastIndex: number;
  /** The highest index known durable. */
  stableIndex: number;
  private mem: LogEntry[] = [];
  private memFrom: number;
  /** The first index no Ready has carried yet. */
  private unsavedFrom: number;
  private pendingTruncate: number | undefined;
  private pendingSnapshot: Snapshot | undefined;
  private runs: { term: number; first: number }[];
  /** Configuration entries (and the base configuration at index `configs[0].index`), oldest first. */
  configs: { index: number; config: ClusterConfig }[];

  constructor(
    private readonly storage: Storage,
    boot: ClusterConfig,
  ) {
    const snap = storage.snapshot();
    const first = storage.firstIndex();
    const base = first - 1;
    this.lastIndex = this.stableIndex = storage.lastIndex();
    this.memFrom = this.unsavedFrom = this.lastIndex + 1;
    this.runs = [{ term: storage.term(base), first: base }];
    this.configs = [{ index: base, config: snap !== undefined && snap.index === base ? snap.config : boot }];
    // One pass over the stored log, a chunk at a time: term runs and configuration entries.
    for (let lo = first; lo <= this.lastIndex; ) {
      const hi = Math.min(this.lastIndex + 1, lo + 1024);
      for (const e of storage.entries(lo, hi)) this.track(e);
      lo = hi;
    }
  }

  get base(): number {
    return (this.runs[0] as { first: number }).first;
  }

  get lastTerm(): number {
    return (this.runs[this.runs.length - 1] as { term: number }).term;
  }

  /** The configuration in force: the latest in the log, committed or not (one change at a time; Raft thesis 4.1). */
  get config(): ClusterConfig {
    return (this.configs[this.configs.length - 1] as { config: ClusterConfig }).config;
  }

  /** The latest snapshot in storage (what SNAP sends). */
  snapshot(): Snapshot | undefined {
    return this.storage.snapshot();
  }

  /** The term at `index`, or undefined below the base or above the last index. */
  term(index: number): number | undefined {
    if (index < this.base || index > this.lastIndex) return undefined;
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.runs[mid] as { first: number }).first <= index) lo = mid;
      else hi = mid - 1;
    }
    return (this.runs[lo] as { term: number }).term;
  }

  /** The first index of the term run that holds `index` (the base for the run the snapshot starts). */
  runStart(index: number): number {
    let start = this.base;
    for (const r of this.runs) if (r.first <= index) start = r.first;
    return start;
  }

  /** The largest index <= `index` whose term is <= `term` (terms never decrease), or undefined below the base. */
  lastAtOrBelow(term: number, index: number): number | undefined {
    let i = Math.min(index, this.lastIndex);
    if (i < this.base) return undefined;
    for (let k = this.runs.length - 1; k >= 0; k--) {
      const r = this.runs[k] as { term: number; first: number };
      if (r.first > i) continue;
      if (r.term <= term) return i;
      i = r.first - 1;
      if (i < this.base) return undefined;
    }
    return undefined;
  }

  /** The term runs of the log, newest last: at most `max`, the oldest one first when there are more. */
  segments(max = 64): Segment[] {
    const out: Segment[] = [];
    for (let k = 0; k < this.runs.length; k++) {
      const r = this.runs[k] as { term: number; first: number };
      const next = this.runs[k + 1];
      out.push([r.term, r.first, next === undefined ? this.lastIndex : next.first - 1]);
    }
    return out.length <= max ? out : [out[0] as Segment, ...out.slice(out.length - max + 1)];
  }

  /** Entries [lo, hi] (inclusive). Throws `CompactedError` below what storage still holds. */
  entries(lo: number, hi: number): LogEntry[] {
    if (lo > hi) return [];
    if (hi > this.lastIndex) throw new InvariantError(`zab log: entries up to ${hi} asked, last index ${this.lastIndex}`);
    const out: LogEntry[] = [];
    if (lo < this.memFrom) {
      if (lo < this.storage.firstIndex()) throw new CompactedError(lo, this.storage.firstIndex());
      out.push(...this.storage.entries(lo, Math.min(hi, this.memFrom - 1) + 1));
    }
    for (let i = Math.max(lo, this.memFrom); i <= hi; i++) out.push(this.mem[i - this.memFrom] as LogEntry);
    return out;
  }

  /**
   * Entries from `lo` on, at most up to `hi` and at most `maxBytes` of data (always the first one, however large):
   * read a few at a time, so a batch of large values is neither read whole from storage nor sent as one message
   * the size of `maxBatch` of them (etcd's raft bounds its messages alike, `MaxSizePerMsg`). Throws as `entries`.
   */
  entriesWithin(lo: number, hi: number, maxBytes: number): LogEntry[] {
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let from = lo; from <= hi; from += 16) {
      for (const e of this.entries(from, Math.min(hi, from + 15))) {
        if (out.length > 0 && bytes + e.data.length > maxBytes) return out;
        out.push(e);
        bytes += e.data.length;
      }
    }
    return out;
  }

  entry(index: number): LogEntry | undefined {
    if (index <= this.base || index > this.lastIndex) return undefined;
    try {
      return this.entries(index, index)[0];
    } catch (e) {
      if (CompactedError.is(e)) return undefined;
      throw e;
    }
  }

  append(es: readonly LogEntry[]): void {
    for (let i = 0; i < es.length; i++) this.appendOne(es[i] as LogEntry);
  }

  /** One entry at the end of the log (the leader's proposal path: no array per entry). */
  appendOne(e: LogEntry): void {
    if (e.index !== this.lastIndex + 1) throw new InvariantError(`zab log: append at ${e.index}, last index ${this.lastIndex}`);
    if (this.mem.length === 0) this.memFrom = e.index;
    this.mem.push(e);
    this.lastIndex = e.index;
    this.track(e);
  }

  private track(e: LogEntry): void {
    const last = this.runs[this.runs.length - 1] as { term: number; first: number };
    if (e.term < last.term) throw new InvariantError(`zab log: term ${e.term} at ${e.index} after term ${last.term}`);
    if (e.term > last.term) this.runs.push({ term: e.term, first: e.index });
    if (e.type === 'config') {
      try {
        this.configs.push({ index: e.index, config: decodeClusterConfig(e.data) });
      } catch {
        // not a configuration we can read: the leader never writes one (proposeConfigChange encodes it)
      }
    }
  }

  /** TRUNC: drop every entry after `index` (DSN 2011 IV-B, phase 2; ZooKeeper's Learner on TRUNC). */
  truncate(index: number): void {
    if (index >= this.lastIndex) return;
    if (index < this.base) throw new InvariantError(`zab log: truncate to ${index}, below the base ${this.base}`);
    this.lastIndex = index;
    this.stableIndex = Math.min(this.stableIndex, index);
    if (index < this.memFrom) {
      this.mem = [];
      this.memFrom = index + 1;
    } else this.mem.length = index + 1 - this.memFrom;
    while ((this.runs[this.runs.length - 1] as { first: number }).first > index) this.runs.pop();
    while (this.configs.length > 1 && (this.configs[this.configs.length - 1] as { index: number }).index > index) this.configs.pop();
    this.pendingTruncate = Math.min(this.pendingTruncate ?? index, index);
    this.unsavedFrom = Math.min(this.unsavedFrom, index + 1);
  }

  /** SNAP: the whole log is replaced by the snapshot. */
  installSnapshot(s: Snapshot): void {
    this.mem = [];
    this.memFrom = this.unsavedFrom = s.index + 1;
    this.lastIndex = s.index;
    this.stableIndex = Math.min(this.stableIndex, s.index);
    this.runs = [{ term: s.term, first: s.index }];
    this.configs = [{ index: s.index, config: s.config }];
    this.pendingSnapshot = s;
    this.pendingTruncate = undefined;
  }

  /** Entries to write and nothing else (no snapshot install, no truncation). */
  hasOnlyNewEntries(): boolean {
    return this.pendingSnapshot === undefined && this.pendingTruncate === undefined && this.unsavedFrom <= this.lastIndex;
  }

  hasUnsaved(): boolean {
    return this.pendingSnapshot !== undefined || this.pendingTruncate !== undefined || this.unsavedFrom <= this.lastIndex;
  }

  /** What the next Ready persists; from now on it counts as handed over. Returns the last index it covers. */
  takeUnsaved(): { snapshot?: Snapshot; truncateAfter?: number; entries: LogEntry[]; upTo: number } {
    const out: { snapshot?: Snapshot; truncateAfter?: number; entries: LogEntry[]; upTo: number } = { entries: [], upTo: this.lastIndex };
    if (this.pendingSnapshot !== undefined) out.snapshot = this.pendingSnapshot;
    if (this.pendingTruncate !== undefined) out.truncateAfter = this.pendingTruncate;
    if (this.unsavedFrom <= this.lastIndex) out.entries = this.mem.slice(this.unsavedFrom - this.memFrom);
    this.pendingSnapshot = undefined;
    this.pendingTruncate = undefined;
    this.unsavedFrom = this.lastIndex + 1;
    return out;
  }

  /** A Ready that covered the log up to `upTo` is durable. */
  markStable(upTo: number): void {
    const through = Math.min(upTo, this.unsavedFrom - 1, this.lastIndex);
    if (through > this.stableIndex) this.stableIndex = through;
  }

  /**
   * Entries up to `index` that are durable leave memory (read back from storage when a lagging peer needs them).
   * The caller passes what the state machine was handed, so committing never reads storage.
   */
  release(index: number): void {
    const through = Math.min(index, this.stableIndex);
    if (through >= this.memFrom) {
      this.mem = this.mem.slice(through + 1 - this.memFrom);
      this.memFrom = through + 1;
    }
  }
}
