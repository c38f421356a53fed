/** Where one index's record is, and what it says. */
export interface IndexSlot {
  seg: number;
  offset: number;
  term: number;
  dataBytes: number;
  type: number;
}

/**
 * The compact in-memory index of the live log: for every index in (base, last] the segment, offset, term,
 * data length and entry type of its record, in parallel typed arrays (21 bytes an entry).
 *
 * Slot `start + (i - base - 1)` holds index i. Compaction moves `start` forward; the arrays are shifted back
 * only when more than half of them is dead, so compaction and truncation are O(1) amortised.
 */
export class LogIndex {
  base = 0;
  baseTerm = 0;
  count = 0;
  private start = 0;
  private seg: Uint32Array;
  private off: Uint32Array;
  private terms: Float64Array;
  private len: Uint32Array;
  private types: Uint8Array;

  constructor(capacity = 1024) {
    this.seg = new Uint32Array(capacity);
    this.off = new Uint32Array(capacity);
    this.terms = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    this.types = new Uint8Array(capacity);
  }

  get last(): number {
    return this.base + this.count;
  }

  get first(): number {
    return this.base + 1;
  }

  /** Bytes the arrays take. */
  get memoryBytes(): number {
    return this.seg.length * 21;
  }

  private slot(index: number): number {
    return this.start + (index - this.base - 1);
  }

  has(index: number): boolean {
    return index > this.base && index <= this.last;
  }

  segmentOf(index: number): number {
    return this.seg[this.slot(index)] as number;
  }

  offsetOf(index: number): number {
    return this.off[this.slot(index)] as number;
  }

  termOf(index: number): number {
    if (index === this.base) return this.baseTerm;
    return this.terms[this.slot(index)] as number;
  }

  dataBytesOf(index: number): number {
    return this.len[this.slot(index)] as number;
  }

  typeOf(index: number): number {
    return this.types[this.slot(index)] as number;
  }

  /** Appends index last + 1. */
  push(seg: number, offset: number, term: number, dataBytes: number, type: number): void {
    let s = this.start + this.count;
    if (s === this.seg.length) {
      this.makeRoom();
      s = this.start + this.count;
    }
    this.seg[s] = seg;
    this.off[s] = offset;
    this.terms[s] = term;
    this.len[s] = dataBytes;
    this.types[s] = type;
    this.count++;
  }

  private makeRoom(): void {
    const cap = this.seg.length;
    if (this.start > cap / 2) {
      const end = this.start + this.count;
      this.seg.copyWithin(0, this.start, end);
      this.off.copyWithin(0, this.start, end);
      this.terms.copyWithin(0, this.start, end);
      this.len.copyWithin(0, this.start, end);
      this.types.copyWithin(0, this.start, end);
      this.start = 0;
      return;
    }
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap * 2);
      b.set(a);
      return b;
    };
    this.seg = grow(this.seg, (n) => new Uint32Array(n));
    this.off = grow(this.off, (n) => new Uint32Array(n));
    this.terms = grow(this.terms, (n) => new Float64Array(n));
    this.len = grow(this.len, (n) => new Uint32Array(n));
    this.types = grow(this.types, (n) => new Uint8Array(n));
  }

  /** Points index i (base < i <= last) at a new record: an overwrite in place (DESIGN r2). */
  set(index: number, seg: number, offset: number, term: number, dataBytes: number, type: number): void {
    const s = this.slot(index);
    this.seg[s] = seg;
    this.off[s] = offset;
    this.terms[s] = term;
    this.len[s] = dataBytes;
    this.types[s] = type;
  }

  /** Everything known about index i (base < i <= last). */
  slotOf(index: number): IndexSlot {
    const s = this.slot(index);
    return {
      seg: this.seg[s] as number,
      offset: this.off[s] as number,
      term: this.terms[s] as number,
      dataBytes: this.len[s] as number,
      type: this.types[s] as number,
    };
  }

  /**
   * The oldest segment holding the record of any index in [lo, last], or undefined when that range is empty.
   * Without overwrites that is `segmentOf(lo)`; an overwritten slot's record lives in a later segment than its
   * neighbours', so the older segments of the indexes after it must be looked at too.
   */
  minSegmentFrom(lo: number): number | undefined {
    if (lo > this.last) return undefined;
    const from = this.slot(Math.max(lo, this.first));
    const to = this.start + this.count;
    let min = this.seg[from] as number;
    for (let s = from + 1; s < to; s++) {
      const v = this.seg[s] as number;
      if (v < min) min = v;
    }
    return min;
  }

  /** Keeps entries up to `last` (base <= last). */
  truncateTo(last: number): void {
    if (last < this.last) this.count = Math.max(0, last - this.base);
  }

  /** Drops entries up to `index` (base < index <= last), which becomes the base. */
  compactTo(index: number, term: number): void {
    const drop = index - this.base;
    this.start += drop;
    this.count -= drop;
    this.base = index;
    this.baseTerm = term;
    if (this.count === 0) this.start = 0;
  }

  /** Empties the log; its base becomes `index`/`term`. */
  reset(index: number, term: number): void {
    this.base = index;
    this.baseTerm = term;
    this.count = 0;
    this.start = 0;
  }
}
