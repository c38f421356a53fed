import { describe, expect, it } from 'vitest';
import { CorruptLogError, seededRandom, type LogEntry } from '@consensus-kit/core';
import { openFileStorage } from './file-storage';
import { inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';
import { SEGMENT_RECORD_BYTES } from './segment';

/**
 * Disk faults (Ganesan et al., FAST'17, "Redundancy does not imply fault tolerance"): single bit flips and
 * whole 4 KiB sectors read back as zeros, at seeded random positions of every file of a data directory. Every
 * fault must be detected: the open fails with `CorruptLogError`, or (inside the last write of the last
 * segment, indistinguishable from a torn write) the tail is cut with a warning. Never a silent success,
 * never an untyped crash, and whatever is served afterwards is intact.
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };
const TRIALS = Number(process.env.STORAGE_FS_CORRUPTION_TRIALS ?? 400);

function entry(index: number, term: number): LogEntry {
  const data = new Uint8Array(64 + ((index * 53) % 300));
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i * 7) & 0xff;
  return { index, term, type: 'command', data };
}


async function buildDirectory(): Promise<{ fs: MemoryFileSystem; originals: Map<number, LogEntry> }> {
  const fs = new MemoryFileSystem();
  const s = await openFileStorage('/data', { fileSystem: fs, logger: quiet, segmentBytes: 16 * 1024 });
  const originals = new Map<number, LogEntry>();
  await s.save({ hardState: Uint8Array.of(1, 2, 3, 4), entries: [] });
  for (let i = 1; i <= 400; i += 8) {
    const batch: LogEntry[] = [];
    for (let k = i; k < i + 8; k++) batch.push(entry(k, 1 + Math.floor(k / 100)));
    await s.save({ entries: batch });
    for (const e of batch) originals.set(e.index, e);
  }
  await s.saveSnapshot({ index: 50, term: 1, config: CONFIG, data: new Uint8Array(20_000).fill(9) });
  await s.compact(40);
  await s.save({ hardState: Uint8Array.of(5, 6), entries: [] });
  await s.close();
  return { fs, originals };
}

type Outcome = 'corrupt' | 'torn-tail';

async function openDamaged(image: MemoryFileSystem, originals: Map<number, LogEntry>, lastFile: boolean, what = ''): Promise<Outcome> {
  let warned = false;
  const logger = { ...quiet, warn: (msg: string) => void (warned ||= msg.includes('torn')) };
  let s;
  try {
    s = await openFileStorage('/data', { fileSystem: image, logger });
  } catch (e) {
    if (CorruptLogError.is(e)) {
      expect(e.file.startsWith('/data/')).toBe(true);
      expect(e.offset).toBeGreaterThanOrEqual(0);
      return 'corrupt';
    }
    throw e;
  }
  try {
    // Opened: only a torn tail may explain it, and only in the last segment.
    expect(warned, `damage was accepted silently: ${what}`).toBe(true);
    expect(lastFile, 'a torn tail outside the last segment').toBe(true);
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1)) {
      expect(Buffer.from(e.data).equals(Buffer.from((originals.get(e.index) as LogEntry).data))).toBe(true);
    }
    return 'torn-tail';
  } finally {
    await s.close();
  }
}

describe('disk corruption is always detected', () => {
  it(`flips one bit or zeroes one 4 KiB sector at ${TRIALS} seeded random positions`, async () => {
    const { fs, originals } = await buildDirectory();
    const files = fs.listFiles().filter((p) => !p.endsWith('/LOCK'));
    const segments = files.filter((p) => p.endsWith('.log'));
    expect(segments.length).toBeGreaterThan(3);
    expect(files.some((p) => p.endsWith('.snap'))).toBe(true);
    expect(files.some((p) => p.endsWith('/hardstate'))).toBe(true);
    const lastSegment = segments.at(-1) as string;
    const rnd = seededRandom(20_260_401);
    const outcomes = { corrupt: 0, 'torn-tail': 0 };
    for (let t = 0; t < TRIALS; t++) {
      const image = fs.crashImage('all');
      const path = files[Math.floor(rnd() * files.length)] as string;
      const bytes = image.readFileRaw(path) as Uint8Array;
      const sector = rnd() < 0.3;
      let changed = false;
      if (sector) {
        const start = Math.floor(rnd() * Math.ceil(bytes.length / 4096)) * 4096;
        const end = Math.min(bytes.length, start + 4096);
        for (let i = start; i < end; i++) if (bytes[i] !== 0) changed = true;
        bytes.fill(0, start, end);
      } else {
        const at = Math.floor(rnd() * bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(rnd() * 8));
        changed = true;
      }
      if (!changed) continue; // a sector that was already all zeros: nothing was damaged
      image.writeFileRaw(path, bytes);
      // The durable-point file's damage is warned about and costs nothing: the hard state holds the point too.
      const outcome = await openDamaged(image, originals, path === lastSegment || path.endsWith('/durable'), `${path} ${sector ? 'sector' : 'bit'}`);
      outcomes[outcome]++;
    }
    console.log(`corruption trials: ${JSON.stringify(outcomes)}`);
    expect(outcomes.corrupt).toBeGreaterThan(TRIALS / 2);
  });

  it('a corrupt length field in the middle of a segment is corruption, not a torn tail, and never drives a huge read', async () => {
    const { fs } = await buildDirectory();
    const first = fs.listFiles().find((p) => p.endsWith('.log')) as string;
    const bytes = fs.readFileRaw(first) as Uint8Array;
    // The second record's length field (first record: the segment header).
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(SEGMENT_RECORD_BYTES, 0xfffffff0);
    fs.writeFileRaw(first, bytes);
    const err = await openFileStorage('/data', { fileSystem: fs, logger: quiet }).catch((e: unknown) => e);
    expect(CorruptLogError.is(err)).toBe(true);
    expect((err as CorruptLogError).file).toBe(first);
    expect((err as CorruptLogError).offset).toBe(SEGMENT_RECORD_BYTES);
    expect((err as CorruptLogError).message).toContain('header checksum');
  });

  it('a missing snapshot under a compacted log is refused, not read as an empty history', async () => {
    const { fs } = await buildDirectory();
    const snap = fs.listFiles().find((p) => p.endsWith('.snap')) as string;
    await fs.unlink(snap);
    const err = await openFileStorage('/data', { fileSystem: fs, logger: quiet }).catch((e: unknown) => e);
    expect(CorruptLogError.is(err)).toBe(true);
    expect((err as Error).message).toMatch(/compacted through 40, but no snapshot is present/);
    const report = await inspect('/data', { fileSystem: fs });
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/no snapshot is present/);
  });
});
