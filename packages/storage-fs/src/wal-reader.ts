import { CorruptLogError, StorageError, type LogEntry } from '@consensus-kit/core';
import type { EntryCache } from './entry-cache';
import type { LogIndex } from './log-index';
import { HEADER_BYTES, RecordKind, checkRecord, entryTypeOf, recordBytes } from './record';
import type { Segment } from './segment';

/** Contiguous entries of one segment are read with one read while the span stays under this. */
const MAX_READ_SPAN = 4 << 20;

/**
 * Reads entries [lo, hi) from their records on disk, one read per run of neighbours that sit back to back in
 * one segment, verifying each record (an ENTRY or OVERWRITE of exactly that index). An overwritten index
 * whose record is not written yet is taken from the cache's pending overwrites. Returns the disk reads made.
 */
export function readEntries(
  ix: LogIndex,
  segments: ReadonlyMap<number, Segment>,
  cache: EntryCache,
  lo: number,
  hi: number,
  out: LogEntry[],
): number {
  let reads = 0;
  let i = lo;
  while (i < hi) {
    const pending = cache.pendingAt(i);
    if (pending !== undefined) {
      out.push(pending);
      i++;
      continue;
    }
    const seq = ix.segmentOf(i);
    const start = ix.offsetOf(i);
    let j = i + 1;
    let end = start + recordBytes(16 + ix.dataBytesOf(i));
    // Overwritten slots break runs: their records sit elsewhere, so a neighbour must start right where we are.
    while (j < hi && ix.segmentOf(j) === seq && ix.offsetOf(j) >= end && cache.pendingAt(j) === undefined) {
      const e = ix.offsetOf(j) + recordBytes(16 + ix.dataBytesOf(j));
      if (e - start > MAX_READ_SPAN) break;
      end = e;
      j++;
    }
    const segment = segments.get(seq);
    if (segment?.file === undefined) throw new StorageError(`entries: segment ${seq} holding index ${i} is not on disk`);
    const buf = new Uint8Array(end - start);
    let got = 0;
    while (got < buf.length) {
      const n = segment.file.readSync(buf, got, buf.length - got, start + got);
      if (n <= 0) break;
      got += n;
    }
    for (let k = i; k < j; k++) {
      const at = ix.offsetOf(k) - start;
      const check = checkRecord(got === buf.length ? buf : buf.subarray(0, got), at, seq);
      const kind = check.ok ? check.record.kind : 0;
      if (!check.ok || (kind !== RecordKind.ENTRY && kind !== RecordKind.OVERWRITE) || check.record.index !== k) {
        throw new CorruptLogError(
          { file: segment.path, offset: start + at, lastGoodIndex: k - 1 },
          check.ok ? `expected entry ${k}, found record kind ${check.record.kind} index ${check.record.index}` : check.reason,
        );
      }
      const p = at + HEADER_BYTES;
      out.push({
        index: k,
        term: check.record.term,
        type: entryTypeOf(check.record.entryType) ?? 'command',
        data: buf.slice(p + 16, p + check.record.payloadBytes),
      });
      reads++;
    }
    i = j;
  }
  return reads;
}
