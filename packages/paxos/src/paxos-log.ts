import { CompactedError, InvariantError, type LogEntry, type Storage } from '@consensus-kit/core';

const EMPTY = new Uint8Array(0);

/**
 * Slots per chunk of the in-memory log, by default (`logChunkBits`). One flat array of every slot cost a fifth of
 * the pure core's time at a million slots (bench/throughput.bench.ts): each growth of a large array copies it
 * whole into a fresh allocation, and the garbage collector scans it. Fixed-size chunks are allocated once and
 * never copied.
 */
export const DEFAULT_CHUNK_BITS = 12;

/**
 * The acceptor's slots: slot `offset + 1` on are held; `offset` is the snapshot's index (slots at or below it are
 * compacted). An entry with term 0 is an empty slot (nothing accepted: a placeholder that keeps the stored log
 * contiguous when a later slot is accepted first). A re-accepted slot is overwritten in place (DESIGN r2);
 * `dirtyFrom` is the lowest slot changed since the last Ready, and `Ready.entries` carries every slot from it to
 * the end, so the batch stays contiguous.
 *
 * Slots above `memOffset` are in memory, in chunks of 2^chunkBits slots: the i-th of them is at position `head + i` of
 * the chunk list (`head` < 2^chunkBits: the positions of the first chunk already released). Slots in (offset,
 * memOffset] were decided, handed to the state machine and made durable: `release` drops them from memory, whole
 * chunks at a time, and they are read back from the storage when asked for (a Learn stream or an Accept for a
 * lagging peer, a Promise to a lagging proposer), as Raft reads its stable log. Decided slots are never written
 * again (`put` refuses them), so the storage's copy is the value. Without this every replica held each slot
 * twice until the next compaction, once here and once in the storage, and the garbage collector scanned both
 * (bench/throughput.bench.ts).
 */
export class PaxosLog {
  offset: number;
  offsetTerm: number;
  /** Slots at or below this (and above `offset`) are read from the storage. */
  memOffset: number;
  dirtyFrom = Number.POSITIVE_INFINITY;
  /**
   * The highest slot a configuration entry was ever written to (0: none). Never lowered (an overwrite or
   * compaction leaves it as it is), so no slot above it holds one: the learner's `decide` skips its per-slot
   * search for configurations when every newly decided slot is above it.
   */
  lastConfigSlot = 0;
  private readonly storage: Storage;
  private readonly bits: number;
  private readonly mask: number;
  private chunks: LogEntry[][] = [];
  private head = 0;
  private count = 0;

  constructor(storage: Storage, chunkBits = DEFAULT_CHUNK_BITS) {
    this.storage = storage;
    this.bits = chunkBits;
    this.mask = (1 << chunkBits) - 1;
    this.offset = storage.firstIndex() - 1;
    this.memOffset = this.offset;
    this.offsetTerm = this.offset === 0 ? 0 : storage.term(this.offset);
    const last = storage.lastIndex();
    if (last > this.offset) for (const e of storage.entries(this.offset + 1, last + 1)) this.append(e);
  }

  get lastIndex(): number {
    return this.memOffset + this.count;
  }

  get firstIndex(): number {
    return this.offset + 1;
  }

  /** The number of slots held in memory. */
  get length(): number {
    return this.count;
  }

  at(slot: number): LogEntry | undefined {
    const i = slot - this.memOffset - 1;
    if (i < 0 || i >= this.count) return slot > this.offset && slot <= this.memOffset ? this.stored(slot, slot)?.[0] : undefined;
    const p = this.head + i;
    return (this.chunks[p >>> this.bits] as LogEntry[])[p & this.mask];
  }

  termAt(slot: number): number {
    if (slot === this.offset) return this.offsetTerm;
    return this.at(slot)?.term ?? 0;
  }

  /** Writes `entry` at its slot (> memOffset: no decided slot is written again), filling any gap below it with empty slots. */
  put(entry: LogEntry): void {
    const slot = entry.index;
    if (slot === this.memOffset + this.count + 1) {
      // The common case (a leader's new slot, an acceptor's next one): append.
      this.append(entry);
      if (slot < this.dirtyFrom) this.dirtyFrom = slot;
      return;
    }
    if (slot <= this.memOffset) throw new InvariantError(`paxos: write to ${slot <= this.offset ? 'compacted' : 'released'} slot ${slot} (offset ${this.offset}, released through ${this.memOffset})`);
    if (this.lastIndex + 1 < this.dirtyFrom && this.lastIndex + 1 < slot) this.dirtyFrom = this.lastIndex + 1;
    while (this.lastIndex < slot - 1) this.append({ index: this.lastIndex + 1, term: 0, type: 'noop', data: EMPTY });
    if (slot === this.lastIndex + 1) this.append(entry);
    else {
      const p = this.head + slot - this.memOffset - 1;
      (this.chunks[p >>> this.bits] as LogEntry[])[p & this.mask] = entry;
      if (entry.type === 'config' && slot > this.lastConfigSlot) this.lastConfigSlot = slot;
    }
    if (slot < this.dirtyFrom) this.dirtyFrom = slot;
  }

  private append(entry: LogEntry): void {
    const p = this.head + this.count;
    if ((p & this.mask) === 0) this.chunks.push([]);
    (this.chunks[p >>> this.bits] as LogEntry[]).push(entry);
    this.count++;
    if (entry.type === 'config' && entry.index > this.lastConfigSlot) this.lastConfigSlot = entry.index;
  }

  /**
   * Slots [lo, hi] (clamped to what is held), in a new array. Empty when released slots are asked for and the
   * storage no longer has them (the host compacts the storage first and tells the protocol after, see
   * `compacted`): the caller treats them as compacted.
   */
  slice(lo: number, hi: number): LogEntry[] {
    const from = Math.max(lo, this.offset + 1);
    const to = Math.min(hi, this.lastIndex);
    if (from > to) return [];
    if (from > this.memOffset) return this.memSlice(from, to);
    const stored = this.stored(from, Math.min(to, this.memOffset));
    if (stored === undefined) return [];
    return to <= this.memOffset ? stored : stored.concat(this.memSlice(this.memOffset + 1, to));
  }

  /**
   * Released slots [lo, hi] from the storage; `undefined` if it compacted them. Any other failure of the storage
   * (a damaged record, a closed storage) is thrown: it is not a compaction, and the host fails the node with it.
   */
  private stored(lo: number, hi: number): LogEntry[] | undefined {
    try {
      const out = this.storage.entries(lo, hi + 1);
      if (out.length !== hi - lo + 1) throw new InvariantError(`paxos: the storage returned ${out.length} entries for slots ${lo}..${hi}`);
      return out;
    } catch (e) {
      if (CompactedError.is(e)) return undefined;
      throw e;
    }
  }

  /**
   * The last compacted slot: the log's own compaction point, or the storage's when it compacted first (the host
   * compacts the storage before it calls `compacted`, and a host may not call it at all: it is optional).
   */
  compactedThrough(): number {
    return Math.max(this.offset, this.storage.firstIndex() - 1);
  }

  /** In-memory slots [lo, hi], memOffset < lo <= hi <= lastIndex. */
  private memSlice(lo: number, hi: number): LogEntry[] {
    const a = this.head + lo - this.memOffset - 1;
    const b = this.head + hi - this.memOffset;
    const ca = a >>> this.bits;
    if (ca === (b - 1) >>> this.bits) return (this.chunks[ca] as LogEntry[]).slice(a & this.mask, ((b - 1) & this.mask) + 1);
    const out: LogEntry[] = [];
    for (let p = a; p < b; p++) out.push((this.chunks[p >>> this.bits] as LogEntry[])[p & this.mask] as LogEntry);
    return out;
  }

  /** What the next Ready persists: every slot from the lowest changed one to the end. */
  unstable(): LogEntry[] {
    return this.dirtyFrom > this.lastIndex ? [] : this.slice(this.dirtyFrom, this.lastIndex);
  }

  markStable(): void {
    this.dirtyFrom = Number.POSITIVE_INFINITY;
  }

  /**
   * Slots through `upTo` are decided, applied and durable (see `advance` in ready.ts): drop the whole chunks
   * they fill from memory; they are read from the storage from now on.
   */
  release(upTo: number): void {
    const n = Math.min(upTo, this.lastIndex) - this.memOffset;
    if (n <= 0) return;
    const whole = ((this.head + n) >>> this.bits) << this.bits;
    if (whole <= this.head) return;
    const k = whole - this.head;
    this.drop(k);
    this.memOffset += k;
  }

  /** The host compacted through `index` (its storage already did): drop those slots from memory too. */
  compact(index: number, term: number): void {
    if (index <= this.offset) return;
    if (index > this.memOffset) {
      const n = Math.min(index, this.lastIndex) - this.memOffset;
      this.drop(n);
      this.memOffset = index;
    }
    this.offset = index;
    this.offsetTerm = term;
  }

  /** A snapshot at `index` replaces everything at or below it; slots above are kept and rewritten after it. */
  resetTo(index: number, term: number): void {
    const above = this.slice(index + 1, this.lastIndex);
    this.chunks = [];
    this.head = 0;
    this.count = 0;
    this.offset = this.memOffset = index;
    for (const e of above) this.append(e);
    this.offsetTerm = term;
    this.dirtyFrom = above.length > 0 ? index + 1 : Number.POSITIVE_INFINITY;
  }

  /** Forgets the first `n` slots held in memory (whole chunks are released; a partial one stays, its prefix unused). */
  private drop(n: number): void {
    if (n >= this.count) {
      this.chunks = [];
      this.head = 0;
      this.count = 0;
      return;
    }
    const p = this.head + n;
    const whole = p >>> this.bits;
    if (whole > 0) this.chunks = this.chunks.slice(whole);
    this.head = p & this.mask;
    this.count -= n;
  }
}
