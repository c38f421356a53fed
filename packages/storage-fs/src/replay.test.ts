import { describe, expect, it } from 'vitest';
import { RecordKind, type ParsedRecord } from './record';
import { Replayer } from './replay';

/** Records as replay sees them; offsets only need to differ. */
let offset = 0;
function rec(kind: number, index: number, term = 1, extra: Partial<ParsedRecord> = {}): ParsedRecord {
  offset += 64;
  return { offset, bytes: 64, kind: kind as ParsedRecord['kind'], entryType: 0, batchStart: offset, payloadBytes: 16 + 8, index, term, ...extra };
}
const E = (i: number, t = 1) => rec(RecordKind.ENTRY, i, t);
const O = (i: number, t = 2) => rec(RecordKind.OVERWRITE, i, t);
const T = (k: number) => rec(RecordKind.TRUNCATE, k, 0);
const C = (c: number, t: number, last?: number) => rec(RecordKind.COMPACT, c, t, last === undefined ? {} : { lastIndex: last });

function replay(firstSeq: number, records: ParsedRecord[]): { log: string; resolved: boolean } {
  const r = new Replayer(firstSeq);
  for (const x of records) r.apply(firstSeq, x);
  const ix = r.index;
  const terms: string[] = [];
  for (let i = ix.first; i <= ix.last; i++) terms.push(`${i}:${ix.termOf(i)}`);
  return { log: `(${ix.base}] ${terms.join(' ')}`, resolved: r.resolved };
}

describe('WAL replay: last writer wins per index', () => {
  it.each([
    ['appends', 1, [E(1), E(2), E(3)], '(0] 1:1 2:1 3:1', true],
    ['an overwrite keeps the entries after it', 1, [E(1), E(2), E(3), O(2)], '(0] 1:1 2:2 3:1', true],
    ['an old-style ENTRY at an existing index drops the suffix', 1, [E(1), E(2), E(3), E(2, 3)], '(0] 1:1 2:3', true],
    ['truncate then overwrite', 1, [E(1), E(2), E(3), T(2), O(2, 4)], '(0] 1:1 2:4', true],
    ['compaction, then an overwrite at or below it is skipped', 1, [E(1), E(2), E(3), C(2, 1), O(2, 9), O(3, 5)], '(2] 3:5', true],
    // Head segments deleted: replay starts mid-history.
    ['a legacy COMPACT before any entry: the log ended there', 3, [C(5, 2), E(6, 2)], '(5] 6:2', true],
    ['entries, then the COMPACT that resolves the base', 3, [E(7), E(8), C(6, 1, 8)], '(6] 7:1 8:1', true],
    ['overwrites below the first entry fill the gap once COMPACT says where the log starts', 3, [O(5), O(6), E(8), O(7, 3), C(4, 1, 8)], '(4] 5:2 6:2 7:3 8:1', true],
    ['overwrites only, resolved by the COMPACT that carries the last index', 3, [O(2), O(3), O(4), C(1, 1, 4)], '(1] 2:2 3:2 4:2', true],
    ['a gap the COMPACT cannot fill stays unresolved', 3, [O(6), E(8), C(4, 1, 8)], '(7] 8:1', false],
    ['no record says where the log ends', 3, [O(2), O(3)], '(0] ', false],
    ['a truncation below the not yet known base drops the run and the overwrites above it', 3, [O(5), O(6), O(7), E(8), E(9), T(6), C(4, 1, 6)], '(4] 5:2 6:2', true],
    ['a COMPACT without a last index after overwrites (no writer does that) does not guess where the log ends', 3, [O(2), C(1, 1)], '(0] ', false],
  ] as const)('%s', (_name, firstSeq, records, log, resolved) => {
    expect(replay(firstSeq, [...records])).toEqual({ log, resolved });
  });
});
