import { LogIndex } from './log-index';
import { RecordKind, type ParsedRecord } from './record';

/**
 * Rebuilds the live log from WAL records, oldest segment first. The rules mirror what the writer does:
 *
 * - ENTRY i: an entry at an existing index replaces it and everything after it; i = last + 1 appends;
 *   i <= base is covered by the snapshot and skipped.
 * - TRUNCATE k: drop entries after k.
 * - COMPACT c/t: entries up to c are gone; c (term t) is the new base.
 * - RESET i/t: a snapshot was installed; the log is empty with base i (term t).
 *
 * When head segments were deleted by compaction, replay starts in the middle of history and does not know the
 * base yet: it is "unresolved" until the COMPACT (or RESET) record that was made durable before those
 * segments were deleted. An entry that would leave a gap also makes the base unresolved again. A log whose
 * base is still unresolved at the end has lost records: recovery reports it as corruption.
 */
export class Replayer {
  readonly index = new LogIndex();
  /** Whether `index.base` is known for sure (segment 1 starts at 0; COMPACT and RESET records set it). */
  resolved: boolean;
  /** The last segment that holds a COMPACT or RESET record. */
  lastBaseRecordSeq = 0;

  constructor(firstSeq: number) {
    this.resolved = firstSeq <= 1;
  }

  apply(seq: number, r: ParsedRecord): void {
    const ix = this.index;
    switch (r.kind) {
      case RecordKind.ENTRY: {
        const i = r.index;
        if (i <= ix.base) {
          if (this.resolved) return; // covered by the snapshot
          ix.reset(i - 1, 0);
        } else if (i <= ix.last) {
          ix.truncateTo(i - 1);
        } else if (i > ix.last + 1) {
          ix.reset(i - 1, 0);
          this.resolved = false;
        }
        ix.push(seq, r.offset, r.term, r.payloadBytes - 16, r.entryType);
        return;
      }
      case RecordKind.TRUNCATE: {
        const k = r.index;
        if (k >= ix.last) return;
        if (k >= ix.base) ix.truncateTo(k);
        else if (!this.resolved) ix.reset(k, 0);
        return;
      }
      case RecordKind.COMPACT: {
        const c = r.index;
        this.lastBaseRecordSeq = seq;
        if (c < ix.base) return; // older than what is known (or, unresolved, it cannot fill the gap)
        if (c === ix.base) {
          ix.baseTerm = r.term;
          this.resolved = true;
          return;
        }
        if (c >= ix.last) ix.reset(c, r.term);
        else ix.compactTo(c, r.term);
        this.resolved = true;
        return;
      }
      case RecordKind.RESET:
        ix.reset(r.index, r.term);
        this.resolved = true;
        this.lastBaseRecordSeq = seq;
        return;
      default:
        return;
    }
  }
}
