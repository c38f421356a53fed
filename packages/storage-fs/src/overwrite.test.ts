import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { HARD_STATE_FILE, encodeHardStateV1 } from './atomic-file';
import { openFileStorage } from './file-storage';
import { inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';
import { RecordKind, encodeRecords, entryTypeCode, recordBytes, specPayloadBytes, type RecordSpec } from './record';
import { segmentFileName, segmentHeaderSpec } from './segment';

/**
 * DESIGN r2 on disk: an entry saved at an existing index is an OVERWRITE record that changes that index only.
 * Its record lives in a later segment than its neighbours', which compaction, replay and reads must respect.
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };
const options = { logger: quiet, segmentBytes: 4096, cacheBytes: 0 };

function entry(index: number, term: number): LogEntry {
  return { index, term, type: 'command', data: new TextEncoder().encode(`entry ${index} term ${term} `.repeat(8)) };
}

function range(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function terms(s: { entries(lo: number, hi: number): LogEntry[]; firstIndex(): number; lastIndex(): number }): string {
  return s
    .entries(s.firstIndex(), s.lastIndex() + 1)
    .map((e) => `${e.index}:${e.term}`)
    .join(' ');
}

function segmentFiles(fs: MemoryFileSystem): string[] {
  return fs.listFiles().filter((p) => p.endsWith('.log'));
}

describe('overwrite in place on disk (DESIGN r2)', () => {
  it('compaction keeps every segment that holds the live record of a kept index, behind an overwritten slot', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    for (let i = 1; i <= 100; i += 10) await s.save({ hardState: Uint8Array.of(i), entries: range(i, i + 9, 1) });
    expect(segmentFiles(fileSystem).length).toBeGreaterThan(3);
    // 20's live record moves to the newest segment; 21..100 stay where they were.
    await s.save({ entries: [entry(20, 2)] });
    await s.saveSnapshot({ index: 19, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await s.compact(19);
    await s.close();
    // Segments wholly before 21's are gone; 21's is kept although the segment of index 20 is the newest.
    const expected = `20:2 ${range(21, 100, 1)
      .map((e) => `${e.index}:1`)
      .join(' ')}`;
    const r = await openFileStorage('/data', { ...options, fileSystem });
    expect(r.firstIndex()).toBe(20);
    expect(terms(r)).toBe(expected);
    const report = await inspect('/data', { fileSystem });
    expect(report.ok).toBe(true);
    expect(report.segments.reduce((n, seg) => n + seg.overwrites, 0)).toBe(1);
    expect(report.segments[0]?.seq).toBeGreaterThan(1);
    await r.close();
  });

  it('replays a log whose every live record is an overwrite after the segments before them were deleted', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    await s.save({ hardState: Uint8Array.of(1), entries: range(1, 30, 1) });
    for (let i = 5; i <= 30; i += 5) await s.save({ entries: range(i, i + 4 > 30 ? 30 : i + 4, 2) });
    await s.save({ entries: [entry(5, 3)] }); // overwritten twice: the newer record wins
    await s.saveSnapshot({ index: 4, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await s.compact(4);
    const before = terms(s);
    await s.close();
    // Replay starts at the oldest segment holding an overwrite: it meets OVERWRITE records of indexes it has no
    // ENTRY for, and learns from the COMPACT record where the log ends.
    const report = await inspect('/data', { fileSystem });
    expect(report.segments[0]?.firstEntryIndex).toBeGreaterThan(4);
    const r = await openFileStorage('/data', { ...options, fileSystem });
    expect(r.firstIndex()).toBe(5);
    expect(r.lastIndex()).toBe(30);
    expect(terms(r)).toBe(before);
    expect(r.term(5)).toBe(3);
    expect(r.term(6)).toBe(2);
    await r.close();
  });

  it('replays a truncation below the overwritten slots that let compaction delete the segments before them', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    await s.save({ hardState: Uint8Array.of(1), entries: range(1, 10, 1) });
    // Every slot after 4 re-accepted in a later segment, more appended, then a truncation below those appends.
    await s.save({ entries: range(5, 20, 2) });
    await s.save({ truncateAfter: 6, entries: [] });
    await s.saveSnapshot({ index: 4, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await s.compact(4);
    expect(terms(s)).toBe('5:2 6:2');
    await s.close();
    const report = await inspect('/data', { fileSystem });
    expect(report.segments[0]?.seq).toBeGreaterThan(1); // the segment of 1..10 is gone
    const r = await openFileStorage('/data', { ...options, fileSystem });
    expect(terms(r)).toBe('5:2 6:2');
    await r.close();
  });

  it('reads an overwritten slot from memory until its record is written, then from disk', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    await s.save({ entries: range(1, 40, 1) });
    const pending = s.save({ entries: [entry(3, 2)] });
    // Accepted but not yet written: the read must not go to the (old or unwritten) record on disk.
    expect(s.entries(3, 4)[0]?.term).toBe(2);
    await pending;
    const before = s.stats().diskReads;
    expect(terms(s).startsWith('1:1 2:1 3:2 4:1')).toBe(true);
    expect(s.stats().diskReads).toBeGreaterThan(before);
    await s.close();
  });

  it('a read spanning an overwrite in flight takes it from memory even where its new record sits right after its neighbours', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    await s.save({ entries: range(1, 5, 1) });
    // 3's new record goes in the same segment, after 6's, and waits behind the write of 6 in flight: a read
    // of 1..6 must not run on from 2's record into bytes not written yet.
    const inFlight = s.save({ entries: [entry(6, 1)] });
    const pending = s.save({ entries: [entry(3, 2)] });
    expect(terms(s)).toBe('1:1 2:1 3:2 4:1 5:1 6:1');
    await Promise.all([inFlight, pending]);
    expect(terms(s)).toBe('1:1 2:1 3:2 4:1 5:1 6:1');
    await s.close();
  });

  it('replays an old-style WAL (ENTRY at an existing index, written before OVERWRITE existed) as before: the suffix is dropped', async () => {
    const fileSystem = new MemoryFileSystem();
    await fileSystem.mkdir('/data');
    const entrySpec = (e: LogEntry): RecordSpec => ({ kind: RecordKind.ENTRY, entryType: entryTypeCode(e.type), numbers: [e.index, e.term], body: e.data });
    // What the old writer left for: append 1..6, then "replace" 4..5 at term 3 (which meant: drop 6 as well).
    const specs = [segmentHeaderSpec(1), ...range(1, 6, 1).map(entrySpec)];
    const second = range(4, 5, 3).map(entrySpec);
    const size = (xs: RecordSpec[]): number => xs.reduce((n, x) => n + recordBytes(specPayloadBytes(x)), 0);
    const buf = new Uint8Array(size(specs) + size(second));
    const end = encodeRecords(buf, 0, specs, 1, 0);
    encodeRecords(buf, end, second, 1, end);
    fileSystem.writeFileRaw(`/data/${segmentFileName(1)}`, buf);
    fileSystem.writeFileRaw(`/data/${HARD_STATE_FILE}`, encodeHardStateV1(Uint8Array.of(7)));

    const s = await openFileStorage('/data', { ...options, fileSystem });
    expect(s.lastIndex()).toBe(5);
    expect(terms(s)).toBe('1:1 2:1 3:1 4:3 5:3');
    // New writes go on after it with today's meaning, and both read back after a reopen.
    await s.save({ entries: [entry(2, 4), entry(6, 4)] }).catch(() => undefined); // not contiguous: refused
    await s.save({ entries: range(5, 6, 4) });
    await s.save({ entries: [entry(2, 4)] });
    await s.close();
    const r = await openFileStorage('/data', { ...options, fileSystem });
    expect(terms(r)).toBe('1:1 2:4 3:1 4:3 5:4 6:4');
    expect([...(r.initialState().hardState ?? [])]).toEqual([7]);
    await r.close();
  });
});
