import { entrySize, InvariantError, type LogEntry, type Snapshot, type Storage } from '@consensus-kit/core';
import { LogUnstable } from './log-unstable';

/**
 * The log as Raft sees it: what storage holds (persisted) followed by what is not yet written (`unstable`).
 * Index arithmetic: storage covers [storage.firstIndex(), unstable.offset), unstable covers
 * [unstable.offset, lastIndex()]; index firstIndex() - 1 is the snapshot's, whose term is still known.
 *
 * Invariant: applied <= applying <= committed <= lastIndex().
 */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: LogUnstable;
  /** Highest index known committed (thesis Figure 3.1 commitIndex). */
  committed: number;
  /** Highest index the host confirmed applied (advance). */
  applied: number;
  /** Highest index handed to the host for applying (ready), possibly not yet advanced. */
  applying: number;
  /** Highest index handed to storage; a later write at or below it must truncate first. */
  persistedHigh: number;
  /**
   * Called with exactly the entries written by each append (everything at and after `ents[0].index` was
   * replaced), so the owner can track configuration entries (thesis 4.1: a configuration is in force from
   * the moment it is in the log, and is undone when its entry is truncated away).
   */
  onAppend: ((ents: readonly LogEntry[]) => void) | undefined;

  constructor(storage: Storage) {
    this.storage = storage;
    const last = storage.lastIndex();
    this.unstable = new LogUnstable(last + 1);
    this.persistedHigh = last;
    const first = storage.firstIndex();
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the entry at `index`, or -1 when it is compacted away or past the end. */
  term(index: number): number {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return -1;
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    try {
      return this.storage.term(index);
    } catch {
      return -1;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Thesis 3.6.1 election restriction: the candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Index of the first entry of `ents` that is missing or whose term differs from ours; 0 when none. */
  findConflict(ents: readonly LogEntry[]): number {
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i] as LogEntry;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (thesis 5.3 "the follower can include the term of the conflicting entry"; etcd's
   * refinement): the largest index <= `index` whose term is <= `term`, with that term. Entries above it cannot
   * match a log whose entry at `index` has term `term`, because terms never decrease along a log.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (;;) {
      const t = this.term(index);
      if (t < 0) return [index, 0];
      if (t <= term) return [index, t];
      index--;
    }
  }

  /**
   * AppendEntries receiver rules (Figure 3.1): reject unless we hold prevIndex at prevTerm; replace any
   * conflicting suffix; append what is new; commit up to min(leaderCommit, index of last new entry).
   * Returns the last index now known to agree with the leader, `undefined` on a mismatch, or -1 when the
   * message would rewrite a committed entry (a faulty peer: ignored).
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly LogEntry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) return -1;
      this.append(ci === prevIndex + 1 ? ents : ents.slice(ci - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  append(ents: readonly LogEntry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as LogEntry).index - 1;
    if (after < this.committed) throw new InvariantError(`append after ${after} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    this.onAppend?.(ents);
    return this.lastIndex();
  }

  /** Leader fast path: one command entry right after the last one (no array allocation, no hook). */
  appendOne(e: LogEntry): void {
    const u = this.unstable;
    if (e.type !== 'config' && u.snapshot === undefined && e.index === u.offset + u.entries.length && e.index === this.lastIndex() + 1) u.entries.push(e);
    else this.append([e]);
  }

  /**
   * Entries in [lo, hi) limited to about `maxBytes` (at least one entry). `undefined` when `lo` is compacted:
   * the caller must fall back to a snapshot.
   */
  slice(lo: number, hi: number, maxBytes: number): LogEntry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    const last = this.lastIndex();
    if (hi > last + 1) hi = last + 1;
    if (lo >= hi) return [];
    const off = this.unstable.offset;
    let out: LogEntry[];
    let bytes = 0;
    if (lo < off) {
      const sHi = Math.min(hi, off);
      try {
        out = this.storage.entries(lo, sHi, maxBytes);
      } catch {
        return undefined;
      }
      if (out.length < sHi - lo || hi <= off) return out;
      for (let i = 0; i < out.length; i++) bytes += entrySize(out[i] as LogEntry);
      if (bytes >= maxBytes) return out;
    } else {
      out = [];
    }
    const ents = this.unstable.entries;
    const start = Math.max(lo, off) - off;
    const end = hi - off;
    for (let i = start; i < end; i++) {
      const e = ents[i] as LogEntry;
      bytes += e.data.length + 24;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw new InvariantError(`commit ${index} is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Thesis 3.6.2: only an entry of the leader's current term is committed by counting replicas. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** Replace the log with a snapshot received from the leader (thesis 5.3). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.index;
    if (this.applying < snapshot.index) this.applying = snapshot.index;
    this.unstable.restore(snapshot);
  }

  hasNextCommittedEntries(): boolean {
    return this.applying < this.committed && this.unstable.snapshot === undefined;
  }

  /** Committed entries not yet handed out for applying, in index order. */
  nextCommittedEntries(maxBytes: number): LogEntry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applying + 1, this.committed + 1, maxBytes) ?? [];
  }

  /** Every entry in [lo, hi), fetched in bounded batches. */
  *scan(lo: number, hi: number, batchBytes = 1 << 20): Generator<LogEntry> {
    while (lo < hi) {
      const batch = this.slice(lo, hi, batchBytes);
      if (batch === undefined || batch.length === 0) return;
      for (const e of batch) yield e;
      lo += batch.length;
    }
  }
}
