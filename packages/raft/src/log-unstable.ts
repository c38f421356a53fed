import { InvariantError, type LogEntry, type Snapshot } from '@consensus-kit/core';

/**
 * The part of the log not yet written to storage (etcd's `unstable`): an incoming snapshot and/or entries.
 * `entries[i]` is at log index `offset + i`. Entries below `offset` live in storage (or under the snapshot).
 * `inProgress` is the last index already handed to the host in a Ready but not yet acknowledged by advance();
 * those entries are not handed out again.
 */
export class LogUnstable {
  snapshot: Snapshot | undefined;
  /** Whether `snapshot` was handed out in a Ready already. */
  snapshotInProgress = false;
  entries: LogEntry[] = [];
  offset: number;
  inProgress: number;

  constructor(offset: number) {
    this.offset = offset;
    this.inProgress = offset - 1;
  }

  /** Index of the first entry when only a snapshot is unstable. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.index;
  }

  /** Term of `index` when it is held here; `undefined` means "ask storage". */
  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.index === index) return this.snapshot.term;
      return undefined;
    }
    const e = this.entries[index - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** Entries not yet handed out. */
  nextEntries(): LogEntry[] {
    const from = this.inProgress + 1 - this.offset;
    if (from >= this.entries.length) return [];
    return from <= 0 ? this.entries.slice() : this.entries.slice(from);
  }

  hasNextEntries(): boolean {
    return this.inProgress + 1 - this.offset < this.entries.length;
  }

  acceptInProgress(): void {
    if (this.entries.length > 0) this.inProgress = this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /** Storage now holds entries through `index` at `term`: drop them from here. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    // A term mismatch means the entry was replaced after it was handed out: keep the newer one unstable.
    if (t === undefined || t !== term || index < this.offset) return;
    const n = index + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = index + 1;
    if (this.inProgress < this.offset - 1) this.inProgress = this.offset - 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  /** A snapshot replaces the whole log (thesis 5.3: discard the entire log when the snapshot is newer). */
  restore(snapshot: Snapshot): void {
    this.offset = snapshot.index + 1;
    this.inProgress = snapshot.index;
    this.entries = [];
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /**
   * Appends `ents` (contiguous), replacing whatever sits at and after `ents[0].index` (the conflicting suffix,
   * thesis Figure 3.1 AppendEntries rule 3).
   */
  truncateAndAppend(ents: readonly LogEntry[]): void {
    const first = (ents[0] as LogEntry).index;
    const end = this.offset + this.entries.length;
    if (first === end) {
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i] as LogEntry);
    } else if (first <= this.offset) {
      // Replaces everything unstable and shadows storage from `first` on.
      this.offset = first;
      this.entries = ents.slice();
    } else if (first < end) {
      this.entries.length = first - this.offset;
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i] as LogEntry);
    } else {
      throw new InvariantError(`unstable append at ${first} leaves a gap after ${end - 1}`);
    }
    if (this.inProgress >= first) this.inProgress = first - 1;
  }

  /** Entries in [lo, hi), all of which must be held here. */
  slice(lo: number, hi: number): LogEntry[] {
    if (lo < this.offset || hi > this.offset + this.entries.length) {
      throw new InvariantError(`unstable slice [${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
