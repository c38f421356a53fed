import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { openFileStorage } from './file-storage';
import { describeInspectReport, inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';
import { RecordKind, encodeRecords, entryTypeCode, recordBytes, scanSegment, specPayloadBytes, type RecordSpec } from './record';
import { SEGMENT_RECORD_BYTES, segmentFileName, segmentHeaderSpec } from './segment';
import { HARD_STATE_FILE, encodeHardStateV1 } from './atomic-file';


/** Damages one byte in place (a test's bit rot). */
function flip(bytes: Uint8Array, at: number, mask: number): void {
  bytes[at] = (bytes[at] as number) ^ mask;
}
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };

function range(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: 'command', data: new Uint8Array(200).fill(i & 0xff) });
  return out;
}

/** `crash`: the process stops without closing (the durable point is where the last hard state put it). */
async function sampleDirectory(crash = false): Promise<MemoryFileSystem> {
  const fileSystem = new MemoryFileSystem();
  const s = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
  await s.save({ hardState: Uint8Array.of(1, 2, 3), entries: range(1, 40, 1) });
  await s.save({ entries: range(41, 60, 2) });
  await s.save({ truncateAfter: 55, entries: [] });
  await s.saveSnapshot({ index: 30, term: 1, config: CONFIG, data: new Uint8Array(5000) });
  await s.compact(25);
  if (crash) return fileSystem.crashImage('synced');
  await s.close();
  return fileSystem;
}

describe('inspect', () => {
  it('lists segments, index ranges, hard state and snapshots, and verifies every checksum', async () => {
    const fileSystem = await sampleDirectory();
    const report = await inspect('/d', { fileSystem });
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.lock).toBeUndefined();
    expect(report.hardState).toEqual({ bytes: 55, ok: true }); // header, durable point, identity length, 3 bytes
    expect(report.snapshots).toEqual([
      { file: 'snap-000000000000001e-0000000000000001.snap', index: 30, term: 1, dataBytes: 5000, voters: ['a', 'b', 'c'], ok: true },
    ]);
    expect(report.log).toEqual({ firstIndex: 26, lastIndex: 55, baseTerm: 1, baseKnown: true });
    const segs = report.segments;
    expect(segs.length).toBeGreaterThan(1);
    expect(segs.every((s) => s.problem === undefined)).toBe(true);
    expect(segs.reduce((n, s) => n + s.truncations, 0)).toBe(1);
    expect(segs.reduce((n, s) => n + s.compactions, 0)).toBe(1);
    expect(Math.max(...segs.map((s) => s.lastEntryIndex ?? 0))).toBe(60);
    const text = describeInspectReport(report);
    expect(text).toContain('data directory /d: OK');
    expect(text).toContain('log: indexes 26..55 (base term 1)');
    expect(text).toContain('snapshot snap-000000000000001e-0000000000000001.snap: index 30 term 1, 5000 bytes, voters a,b,c, checksums ok');
    expect(text.split('\n').filter((l) => l.startsWith('segment ')).length).toBe(segs.length);
    // The segment being written ends in preallocated zeros, which are reported as such, not as damage.
    const tail = segs.at(-1);
    expect(tail?.preallocatedBytes).toBeGreaterThan(0);
    expect(text).toContain(`${tail?.preallocatedBytes} bytes preallocated; checksums ok`);
  });

  it('reports corruption and torn tails without throwing, and leaves the directory untouched', async () => {
    const fileSystem = await sampleDirectory(true);
    const segPaths = fileSystem.listFiles().filter((p) => p.endsWith('.log'));
    const first = fileSystem.readFileRaw(segPaths[0] as string) as Uint8Array;
    flip(first, 100, 0x01);
    fileSystem.writeFileRaw(segPaths[0] as string, first);
    // The end of the last write never reached the disk: its last bytes are still the preallocated zeros.
    const last = fileSystem.readFileRaw(segPaths.at(-1) as string) as Uint8Array;
    const end = scanSegment(last, segPaths.length).goodEnd;
    last.fill(0, end - 3, end);
    fileSystem.writeFileRaw(segPaths.at(-1) as string, last);
    const before = fileSystem.operations;
    const report = await inspect('/d', { fileSystem });
    expect(fileSystem.operations).toBe(before);
    expect(report.ok).toBe(false);
    expect(report.segments[0]?.problem).toMatchObject({ kind: 'corrupt', offset: SEGMENT_RECORD_BYTES });
    expect(report.segments.at(-1)?.problem?.kind).toBe('torn-tail');
    const text = describeInspectReport(report);
    expect(text).toContain('PROBLEMS FOUND');
    expect(text).toContain(`CORRUPT record at offset ${SEGMENT_RECORD_BYTES}`);
    expect(text).toMatch(/torn tail at offset \d+/);
  });

  /** Whether `openFileStorage` opens the directory; inspect must say ok exactly when it does (and nothing is cut). */
  async function opens(fileSystem: MemoryFileSystem): Promise<boolean> {
    const probe = fileSystem.crashImage('all');
    try {
      const s = await openFileStorage('/d', { fileSystem: probe, logger: quiet, segmentBytes: 4096 });
      await s.close();
      return true;
    } catch {
      return false;
    }
  }

  it('finds the problem open refuses on: a snapshot older than the compaction point', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
    await s.save({ hardState: Uint8Array.of(1), entries: range(1, 40, 1) });
    await s.saveSnapshot({ index: 10, term: 1, config: CONFIG, data: Uint8Array.of(10) });
    const oldName = fileSystem.listFiles().find((p) => p.endsWith('.snap')) as string;
    const oldBytes = fileSystem.readFileRaw(oldName) as Uint8Array;
    await s.saveSnapshot({ index: 20, term: 1, config: CONFIG, data: Uint8Array.of(20) });
    await s.compact(20);
    await s.close();
    // The newest snapshot is lost and an older one is back (a restore from a stale backup, say).
    for (const p of fileSystem.listFiles().filter((x) => x.endsWith('.snap'))) await fileSystem.unlink(p);
    fileSystem.writeFileRaw(oldName, oldBytes);
    expect(await opens(fileSystem)).toBe(false);
    const report = await inspect('/d', { fileSystem });
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/compacted through 20, past the latest snapshot 10/);
  });

  it('finds the problem open refuses on: no record says where a log of overwrites ends, whatever snapshot is there', async () => {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
    await s.save({ hardState: Uint8Array.of(1), entries: range(1, 3, 1) });
    await s.saveSnapshot({ index: 1, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await s.close();
    // Segment 1 is lost; segment 2 holds only overwrites of 2 and 3 (nothing says the log ends at 3).
    await fileSystem.unlink(`/d/${segmentFileName(1)}`);
    const specs: RecordSpec[] = [
      segmentHeaderSpec(2),
      ...range(2, 3, 2).map((e): RecordSpec => ({ kind: RecordKind.OVERWRITE, entryType: entryTypeCode(e.type), numbers: [e.index, e.term], body: e.data })),
    ];
    const buf = new Uint8Array(specs.reduce((n, x) => n + recordBytes(specPayloadBytes(x)), 0));
    encodeRecords(buf, 0, specs, 2, 0);
    fileSystem.writeFileRaw(`/d/${segmentFileName(2)}`, buf);
    expect(await opens(fileSystem)).toBe(false);
    const report = await inspect('/d', { fileSystem });
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/no record says what came before it or where it ends/);
  });

  it('reads a WAL written by the previous release (ENTRY at an existing index dropped the suffix) the way open does', async () => {
    const fileSystem = new MemoryFileSystem();
    await fileSystem.mkdir('/d');
    const spec = (e: LogEntry): RecordSpec => ({ kind: RecordKind.ENTRY, entryType: entryTypeCode(e.type), numbers: [e.index, e.term], body: e.data });
    const specs = [segmentHeaderSpec(1), ...range(1, 6, 1).map(spec), ...range(4, 5, 3).map(spec)];
    const buf = new Uint8Array(specs.reduce((n, x) => n + recordBytes(specPayloadBytes(x)), 0));
    encodeRecords(buf, 0, specs, 1, 0);
    fileSystem.writeFileRaw(`/d/${segmentFileName(1)}`, buf);
    fileSystem.writeFileRaw(`/d/${HARD_STATE_FILE}`, encodeHardStateV1(Uint8Array.of(7)));
    const report = await inspect('/d', { fileSystem });
    expect(report.ok).toBe(true);
    expect(report.log).toEqual({ firstIndex: 1, lastIndex: 5, baseTerm: 0, baseKnown: true });
    expect(report.segments[0]).toMatchObject({ entryRecords: 8, overwrites: 0, firstEntryIndex: 1, lastEntryIndex: 6 });
    const s = await openFileStorage('/d', { fileSystem, logger: quiet });
    expect(s.lastIndex()).toBe(5);
    expect(s.term(4)).toBe(3);
    await s.close();
  });

  it('names the holder of the lock of a directory in use', async () => {
    const fileSystem = await sampleDirectory();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet });
    const report = await inspect('/d', { fileSystem });
    expect(report.lock).toEqual({ pid: process.pid, alive: true });
    expect(describeInspectReport(report)).toContain(`lock: held by pid ${process.pid} (running)`);
    await s.close();
  });

  it('reports an unreadable directory as a problem', async () => {
    const report = await inspect('/missing', { fileSystem: new MemoryFileSystem() });
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toContain('cannot read directory');
  });
});
