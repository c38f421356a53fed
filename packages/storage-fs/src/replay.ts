import { LogIndex, type IndexSlot } from './log-index';
import { RecordKind, type ParsedRecord } from './record';

/**
 * Rebuilds the live log from WAL records, oldest segment first. Replay is last-writer-wins per index; the rules
 * mirror what the writers (this one and older ones) did:
 *
 * - ENTRY i: index i gets this record and every entry after i is dropped (the meaning WALs written before
 *   overwrite-in-place rely on; the current writer only appends with it, at last + 1, where both meanings
 *   agree). i <= base is covered by the snapshot and skipped.
 * - OVERWRITE i (DESIGN r2): index i gets this record; the entries after it stay.
 * - TRUNCATE k: drop entries after k.
 * - COMPACT c/t[/l]: entries up to c are gone; c (term t) is the new base; l, when present, was the last index.
 * - RESET i/t: a snapshot was installed; the log is empty with base i (term t).
 *
 * When head segments were deleted by compaction, replay starts in the middle of history knowing neither the
 * base nor, at first, where the log ends. It keeps a contiguous run of known indexes (`index`), whether its
 * base and its end are known for sure (`baseKnown`, `lastKnown`; `baseKnown` implies `lastKnown`), and the
 * OVERWRITE records seen for indexes outside that run while it is unknown (`loose`). The writer deletes
 * segments only once a COMPACT record carrying the last index is durable, and keeps every segment that holds
 * the live record of an index after the compaction point (an overwritten slot's record may sit in a later
 * segment than its neighbours'), so replaying that record fills the run from the loose records and resolves
 * it. A log still unresolved at the end has lost records (or needs the snapshot to say where it starts).
 */
export class Replayer {
  readonly index = new LogIndex();
  /** Whether `index.base` is the log's real base (everything at or below it is gone). */
  baseKnown: boolean;
  /** Whether the log really ends at `index.last` (nothing after it survives from before the first segment). */
  lastKnown: boolean;
  /** OVERWRITE records of indexes outside the known run, while the base is unknown. */
  private readonly loose = new Map<number, IndexSlot>();

  constructor(firstSeq: number) {
    // Segment 1 starts at the empty log: base 0, nothing after it.
    this.baseKnown = firstSeq <= 1;
    this.lastKnown = this.baseKnown;
  }

  /** Whether the replayed log is fully known: its base, its end and every index between. */
  get resolved(): boolean {
    return this.baseKnown && this.lastKnown;
  }

  apply(seq: number, r: ParsedRecord): void {
    switch (r.kind) {
      case RecordKind.ENTRY:
        this.entry(r.index, { seg: seq, offset: r.offset, term: r.term, dataBytes: r.payloadBytes - 16, type: r.entryType });
        return;
      case RecordKind.OVERWRITE:
        this.overwrite(r.index, { seg: seq, offset: r.offset, term: r.term, dataBytes: r.payloadBytes - 16, type: r.entryType });
        return;
      case RecordKind.TRUNCATE:
        this.truncate(r.index);
        return;
      case RecordKind.COMPACT:
        if (r.lastIndex !== undefined) this.truncate(r.lastIndex);
        this.compact(r.index, r.term);
        return;
      case RecordKind.RESET:
        this.resetTo(r.index, r.term);
        return;
      default:
        return;
    }
  }

  /** The log is empty with base `index`/`term` (a RESET record, or a snapshot install recovery completes). */
  resetTo(index: number, term: number): void {
    this.index.reset(index, term);
    this.baseKnown = true;
    this.lastKnown = true;
    this.loose.clear();
  }

  /**
   * At the end of an unresolved replay: whether the snapshot at `index`/`term` says where the log starts (the
   * records that did were in deleted segments). Resolves the log if so.
   */
  resolveWithSnapshot(index: number, term: number): boolean {
    const ix = this.index;
    if (!this.lastKnown) return false;
    if (index >= ix.base) {
      if (index === ix.base) ix.baseTerm = term;
      else if (index <= ix.last && ix.termOf(index) === term) ix.compactTo(index, term);
      else return false;
    } else if (!this.fillFromLoose(index, term)) {
      return false;
    }
    this.baseKnown = true;
    this.loose.clear();
    return true;
  }

  private push(slot: IndexSlot): void {
    this.index.push(slot.seg, slot.offset, slot.term, slot.dataBytes, slot.type);
  }

  private dropLoose(keep: (i: number) => boolean): void {
    for (const i of this.loose.keys()) if (!keep(i)) this.loose.delete(i);
  }

  private entry(i: number, slot: IndexSlot): void {
    const ix = this.index;
    if (this.baseKnown && i <= ix.base) return; // covered by the snapshot
    if (!this.lastKnown || i <= ix.base) {
      // The first record that fixes the end of the log, or one below the (unknown) base: the run restarts at i.
      ix.reset(i - 1, 0);
      this.lastKnown = true;
      this.dropLoose((k) => k < i);
    } else if (i <= ix.last) {
      ix.truncateTo(i - 1);
    } else if (i > ix.last + 1) {
      // A gap: only a later COMPACT at or past i - 1 can make this a log again.
      ix.reset(i - 1, 0);
      this.baseKnown = false;
      this.loose.clear();
    }
    this.push(slot);
  }

  private overwrite(i: number, slot: IndexSlot): void {
    const ix = this.index;
    if (this.baseKnown && i <= ix.base) return; // covered by the snapshot
    if (!this.lastKnown || i <= ix.base) {
      this.loose.set(i, slot); // below the known run: kept until a COMPACT says whether it is live
      return;
    }
    if (i <= ix.last) {
      ix.set(i, slot.seg, slot.offset, slot.term, slot.dataBytes, slot.type);
      return;
    }
    if (i > ix.last + 1) {
      ix.reset(i - 1, 0);
      this.baseKnown = false;
      this.loose.clear();
    }
    this.push(slot); // the writer never overwrites past the end; read as an append
  }

  private truncate(k: number): void {
    const ix = this.index;
    if (!this.lastKnown) {
      ix.reset(k, 0);
      this.lastKnown = true;
      this.dropLoose((i) => i <= k);
      return;
    }
    if (k >= ix.last) return;
    if (k >= ix.base) ix.truncateTo(k);
    else if (!this.baseKnown) {
      ix.reset(k, 0);
      this.dropLoose((i) => i <= k);
    }
  }

  private compact(c: number, t: number): void {
    const ix = this.index;
    if (!this.lastKnown) {
      // A COMPACT without a last index, before anything fixed the end of the log: an older writer, which never
      // wrote OVERWRITE. Every live entry's record was before this one and none was seen, so the log ended at c.
      if (this.loose.size === 0) this.resetTo(c, t);
      else this.dropLoose((i) => i > c);
      return;
    }
    if (c < ix.base) {
      if (this.baseKnown) return; // older than what is known
      this.dropLoose((i) => i > c);
      if (this.fillFromLoose(c, t)) {
        this.baseKnown = true;
        this.loose.clear();
      }
      return;
    }
    if (c === ix.base) ix.baseTerm = t;
    else if (c >= ix.last) ix.reset(c, t);
    else ix.compactTo(c, t);
    this.baseKnown = true;
    this.loose.clear();
  }

  /**
   * When the loose records hold every index in (c, base], extends the run down to base c (term t) with them and
   * returns true.
   */
  private fillFromLoose(c: number, t: number): boolean {
    const ix = this.index;
    for (let i = c + 1; i <= ix.base; i++) if (!this.loose.has(i)) return false;
    const tail: IndexSlot[] = [];
    for (let i = ix.base + 1; i <= ix.last; i++) tail.push(ix.slotOf(i));
    const below: IndexSlot[] = [];
    for (let i = c + 1; i <= ix.base; i++) below.push(this.loose.get(i) as IndexSlot);
    ix.reset(c, t);
    for (const s of below) this.push(s);
    for (const s of tail) this.push(s);
    return true;
  }
}
