import { InvariantError, type LogEntry, type Storage } from '@consensus-kit/core';

const EMPTY = new Uint8Array(0);

/**
 * The acceptor's slots in memory: slot `offset + 1 + i` is `entries[i]`; `offset` is the snapshot's index (slots
 * at or below it are compacted). An entry with term 0 is an empty slot (nothing accepted: a placeholder that
 * keeps the stored log contiguous when a later slot is accepted first). A re-accepted slot is overwritten in
 * place (DESIGN r2); `dirtyFrom` is the lowest slot changed since the last Ready, and `Ready.entries` carries
 * every slot from it to the end, so the batch stays contiguous.
 */
export class PaxosLog {
  offset: number;
  offsetTerm: number;
  entries: LogEntry[];
  dirtyFrom = Number.POSITIVE_INFINITY;

  constructor(storage: Storage) {
    this.offset = storage.firstIndex() - 1;
    this.offsetTerm = this.offset === 0 ? 0 : storage.term(this.offset);
    const last = storage.lastIndex();
    this.entries = last > this.offset ? storage.entries(this.offset + 1, last + 1) : [];
  }

  get lastIndex(): number {
    return this.offset + this.entries.length;
  }

  get firstIndex(): number {
    return this.offset + 1;
  }

  at(slot: number): LogEntry | undefined {
    return slot > this.offset ? this.entries[slot - this.offset - 1] : undefined;
  }

  termAt(slot: number): number {
    if (slot === this.offset) return this.offsetTerm;
    return this.at(slot)?.term ?? 0;
  }

  /** Writes `entry` at its slot (> offset), filling any gap below it with empty slots. */
  put(entry: LogEntry): void {
    const slot = entry.index;
    if (slot === this.offset + this.entries.length + 1) {
      // The common case (a leader's new slot, an acceptor's next one): append.
      this.entries.push(entry);
      if (slot < this.dirtyFrom) this.dirtyFrom = slot;
      return;
    }
    if (slot <= this.offset) throw new InvariantError(`paxos: write to compacted slot ${slot} (offset ${this.offset})`);
    if (this.lastIndex + 1 < this.dirtyFrom && this.lastIndex + 1 < slot) this.dirtyFrom = this.lastIndex + 1;
    while (this.lastIndex < slot - 1) this.entries.push({ index: this.lastIndex + 1, term: 0, type: 'noop', data: EMPTY });
    if (slot === this.lastIndex + 1) this.entries.push(entry);
    else this.entries[slot - this.offset - 1] = entry;
    if (slot < this.dirtyFrom) this.dirtyFrom = slot;
  }

  /** Slots [lo, hi] (clamped to what is held). */
  slice(lo: number, hi: number): LogEntry[] {
    const a = Math.max(lo, this.offset + 1) - this.offset - 1;
    const b = Math.min(hi, this.lastIndex) - this.offset;
    return a < b ? this.entries.slice(a, b) : [];
  }

  /** What the next Ready persists: every slot from the lowest changed one to the end. */
  unstable(): LogEntry[] {
    return this.dirtyFrom > this.lastIndex ? [] : this.slice(this.dirtyFrom, this.lastIndex);
  }

  markStable(): void {
    this.dirtyFrom = Number.POSITIVE_INFINITY;
  }

  /** The host compacted through `index`: drop the slots it no longer needs from memory. */
  compact(index: number, term: number): void {
    if (index <= this.offset) return;
    const n = Math.min(index, this.lastIndex) - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = index;
    this.offsetTerm = term;
  }

  /** A snapshot at `index` replaces everything at or below it; slots above are kept and rewritten after it. */
  resetTo(index: number, term: number): void {
    const above = this.slice(index + 1, this.lastIndex);
    this.offset = index;
    this.offsetTerm = term;
    this.entries = above;
    this.dirtyFrom = above.length > 0 ? index + 1 : Number.POSITIVE_INFINITY;
  }
}
