import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { openFileStorage } from './file-storage';
import { describeInspectReport, inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';
import { scanSegment } from './record';


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

async function sampleDirectory(): Promise<MemoryFileSystem> {
  const fileSystem = new MemoryFileSystem();
  const s = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
  await s.save({ hardState: Uint8Array.of(1, 2, 3), entries: range(1, 40, 1) });
  await s.save({ entries: range(41, 60, 2) });
  await s.save({ truncateAfter: 55, entries: [] });
  await s.saveSnapshot({ index: 30, term: 1, config: CONFIG, data: new Uint8Array(5000) });
  await s.compact(25);
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
    expect(report.hardState).toEqual({ bytes: 19, ok: true });
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
    const fileSystem = await sampleDirectory();
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
    expect(report.segments[0]?.problem).toMatchObject({ kind: 'corrupt', offset: 40 });
    expect(report.segments.at(-1)?.problem?.kind).toBe('torn-tail');
    const text = describeInspectReport(report);
    expect(text).toContain('PROBLEMS FOUND');
    expect(text).toMatch(/CORRUPT record at offset 40/);
    expect(text).toMatch(/torn tail at offset \d+/);
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
