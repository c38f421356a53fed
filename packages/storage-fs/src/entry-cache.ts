import { entrySize, type LogEntry } from '@consensus-kit/core';

/**
 * Recent entries kept in memory for `entries()`, within a byte budget: a contiguous suffix of the log
 * (`suffix[head + k]` is at index `first + k`), plus the overwritten entries outside that suffix whose records
 * are not written yet. An entry leaves memory only once its record is on disk (`evict` asks), so every read
 * of an index is served either here or from its written record.
 */
export class EntryCache {
  private suffix: LogEntry[] = [];
  private head = 0;
  /** Index of `suffix[head]` (the next index to append when the suffix is empty). */
  private firstIndex = 1;
  private used = 0;
  /** Overwrites (DESIGN r2) of indexes below the suffix, until their records are written. */
  private readonly pending = new Map<number, LogEntry>();

  constructor(
    private readonly budget: number,
    nextIndex: number,
  ) {
    this.firstIndex = nextIndex;
  }

  /** The first index of the cached suffix: every index from here to the log's end is cached. */
  get first(): number {
    return this.firstIndex;
  }

  private get lastIndex(): number {
    return this.firstIndex + (this.suffix.length - this.head) - 1;
  }

  /** The entry at `index` if it is held here. */
  get(index: number): LogEntry | undefined {
    if (index >= this.firstIndex && index <= this.lastIndex) return this.suffix[this.head + index - this.firstIndex];
    return this.pending.get(index);
  }

  /** An overwritten entry below the suffix, still waiting for its write, if any. */
  pendingAt(index: number): LogEntry | undefined {
    return this.pending.size === 0 ? undefined : this.pending.get(index);
  }

  /** Appends the entry at the log's new last index. */
  push(e: LogEntry): void {
    if (this.suffix.length === this.head) this.firstIndex = e.index;
    this.suffix.push(e);
    this.used += entrySize(e);
  }

  /** Replaces the entry at an existing index (overwrite in place). */
  overwrite(e: LogEntry): void {
    if (e.index >= this.firstIndex && e.index <= this.lastIndex) {
      const k = this.head + e.index - this.firstIndex;
      this.used += entrySize(e) - entrySize(this.suffix[k] as LogEntry);
      this.suffix[k] = e;
    } else {
      this.pending.set(e.index, e);
    }
  }

  /** Drops entries after `last`. */
  truncateAfter(last: number): void {
    for (const i of this.pending.keys()) if (i > last) this.pending.delete(i);
    if (last >= this.lastIndex) return;
    if (last < this.firstIndex) {
      this.clearSuffix(last + 1);
      return;
    }
    const keep = this.head + (last - this.firstIndex + 1);
    for (let k = keep; k < this.suffix.length; k++) this.used -= entrySize(this.suffix[k] as LogEntry);
    this.suffix.length = keep;
  }

  /** Forgets everything; the next append is at `nextIndex`. */
  clear(nextIndex: number): void {
    this.pending.clear();
    this.clearSuffix(nextIndex);
  }

  /** Drops entries up to `index` (compacted). */
  compact(index: number): void {
    for (const i of this.pending.keys()) if (i <= index) this.pending.delete(i);
    while (this.head < this.suffix.length && this.firstIndex <= index) this.shift();
    if (this.head === this.suffix.length) this.clearSuffix(Math.max(this.firstIndex, index + 1));
  }

  /** Drops what is written (per `isWritten(index)`): pending overwrites, and the oldest suffix entries beyond the budget. */
  evict(isWritten: (index: number) => boolean): void {
    for (const i of this.pending.keys()) if (isWritten(i)) this.pending.delete(i);
    while (this.used > this.budget && this.head < this.suffix.length && isWritten(this.firstIndex)) this.shift();
  }

  private clearSuffix(nextIndex: number): void {
    this.suffix = [];
    this.head = 0;
    this.used = 0;
    this.firstIndex = nextIndex;
  }

  private shift(): void {
    this.used -= entrySize(this.suffix[this.head] as LogEntry);
    this.suffix[this.head] = undefined as unknown as LogEntry;
    this.head++;
    this.firstIndex++;
    if (this.head > 1024 && this.head * 2 > this.suffix.length) {
      this.suffix = this.suffix.slice(this.head);
      this.head = 0;
    }
  }
}
