import { describe, expect, it } from 'vitest';
import { CorruptLogError, type LogEntry } from '@consensus-kit/core';
import { openFileStorage, type FileStorage } from './file-storage';
import { inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';
import { recordingLogger } from '../test/helpers';
import { LostWalError } from './errors';
import { SEGMENT_RECORD_BYTES } from './segment';

const H = SEGMENT_RECORD_BYTES;

/**
 * Issue #17 finding 1: a WAL that ends below what the node made durable (and so may have acknowledged) is
 * corruption, refused with an error naming the file, never a torn tail cut with a warning. The durable point
 * is recorded in the hard-state file each time it is written and on close; a sealed segment's end is recorded
 * in the header of the segment after it.
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function entry(index: number, term = 1): LogEntry {
  const data = new Uint8Array(100 + ((index * 37) % 200));
  for (let i = 0; i < data.length; i++) data[i] = (index * 13 + i) & 0xff;
  return { index, term, type: 'command', data };
}

/** A Raft-like history: each save brings entries and the commit index (hard state) of the ones before. */
async function build(fs: MemoryFileSystem, count = 200, options: { close?: boolean; segmentBytes?: number } = {}): Promise<FileStorage> {
  const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet, segmentBytes: options.segmentBytes ?? 16 * 1024 });
  for (let i = 1; i <= count; i += 5) {
    const batch: LogEntry[] = [];
    for (let k = i; k < i + 5 && k <= count; k++) batch.push(entry(k));
    await s.save({ entries: batch, hardState: Uint8Array.of(1, i & 0xff) });
  }
  if (options.close !== false) await s.close();
  return s;
}

function segments(fs: MemoryFileSystem): string[] {
  return fs
    .listFiles()
    .filter((p) => p.endsWith('.log'))
    .sort();
}

async function refused(fs: MemoryFileSystem): Promise<LostWalError> {
  const err = await openFileStorage('/d', { fileSystem: fs, logger: quiet }).then(
    async (s) => {
      const last = s.lastIndex();
      await s.close();
      return new Error(`opened with the log ending at ${last}`);
    },
    (e: unknown) => e,
  );
  expect(CorruptLogError.is(err), String(err)).toBe(true);
  expect(LostWalError.is(err)).toBe(true);
  return err as LostWalError;
}

describe('the durable point: acknowledged entries are never cut as a torn tail', () => {
  it('deleting the last segment is refused, naming the missing file, and inspect reports it', async () => {
    const fs = new MemoryFileSystem();
    await build(fs);
    const segs = segments(fs);
    expect(segs.length).toBeGreaterThan(2);
    const last = segs.at(-1) as string;
    await fs.unlink(last);
    const err = await refused(fs);
    expect(err.file).toBe(last);
    expect(err.durableIndex).toBe(200);
    expect(err.message).toMatch(/missing/);
    const report = await inspect('/d', { fileSystem: fs });
    expect(report.ok).toBe(false);
    expect(report.durable?.lastIndex).toBe(200);
    expect(report.problems.join('\n')).toContain(last.slice(3));
  });

  it('deleting every segment with the hard state kept is refused, not opened as an empty log', async () => {
    const fs = new MemoryFileSystem();
    await build(fs);
    for (const p of segments(fs)) await fs.unlink(p);
    const err = await refused(fs);
    expect(err.durableIndex).toBe(200);
    expect((await inspect('/d', { fileSystem: fs })).ok).toBe(false);
  });

  it('a truncation inside the last segment below the durable point is refused, not a torn tail', async () => {
    for (const cut of [0.25, 0.5, 0.9]) {
      const fs = new MemoryFileSystem();
      await build(fs);
      const last = segments(fs).at(-1) as string;
      const bytes = fs.readFileRaw(last) as Uint8Array;
      const report = await inspect('/d', { fileSystem: fs });
      const end = report.durable?.offset as number;
      fs.writeFileRaw(last, bytes.slice(0, H + Math.floor((end - H) * cut)));
      const err = await refused(fs);
      expect(err.file).toBe(last);
      expect(err.lastGoodIndex).toBeLessThan(200);
      const after = await inspect('/d', { fileSystem: fs });
      expect(after.ok).toBe(false);
    }
  });

  it('a zeroed 4 KiB page reaching the end of the records is refused, not read as preallocated space', async () => {
    const fs = new MemoryFileSystem();
    await build(fs);
    const last = segments(fs).at(-1) as string;
    const bytes = fs.readFileRaw(last) as Uint8Array;
    const end = (await inspect('/d', { fileSystem: fs })).durable?.offset as number;
    const page = Math.floor((end - 1) / 4096) * 4096;
    bytes.fill(0, Math.max(H, page), Math.max(H, page) + 4096);
    fs.writeFileRaw(last, bytes);
    const err = await refused(fs);
    expect(err.file).toBe(last);
  });

  it('a sealed segment whose last records were zeroed or cut at a record boundary is refused', async () => {
    const fs = new MemoryFileSystem();
    await build(fs);
    const segs = segments(fs);
    const sealed = segs[0] as string;
    const report = await inspect('/d', { fileSystem: fs });
    const seg = report.segments.find((s) => `/d/${s.file}` === sealed);
    // Cut the sealed segment right after its first entry record: every later record is gone, and what is left
    // reads as an intact segment followed by nothing.
    const bytes = fs.readFileRaw(sealed) as Uint8Array;
    expect(seg?.entryRecords).toBeGreaterThan(2);
    const firstEntryEnd = H + 24 + 16 + ((entry(1).data.length + 7) & ~7);
    fs.writeFileRaw(sealed, bytes.slice(0, firstEntryEnd + 24 + 16 + ((entry(2).data.length + 7) & ~7)));
    const err = await refused(fs);
    expect(err.file).toBe(sealed);
  });

  it('the durable point follows the log on a clean close, even when the last saves carried no hard state', async () => {
    const fs = new MemoryFileSystem();
    const s = await build(fs, 50, { close: false });
    for (let i = 51; i <= 60; i++) await s.save({ entries: [entry(i)] });
    await s.close();
    const last = segments(fs).at(-1) as string;
    const report = await inspect('/d', { fileSystem: fs });
    expect(report.durable?.lastIndex).toBe(60);
    const bytes = fs.readFileRaw(last) as Uint8Array;
    fs.writeFileRaw(last, bytes.slice(0, (report.durable?.offset as number) - 8));
    const err = await refused(fs);
    expect(err.lastGoodIndex).toBe(59);
  });

  it('after a process crash, saves made since the last hard state are still covered (Raft saves no commit-only hard state)', async () => {
    const fs = new MemoryFileSystem();
    const s = await build(fs, 50, { close: false });
    for (let i = 51; i <= 80; i++) await s.save({ entries: [entry(i)] });
    // The process dies without closing: what it wrote is in the page cache, so the image keeps it.
    const image = fs.crashImage('all');
    const report = await inspect('/d', { fileSystem: image });
    expect(report.durable?.lastIndex).toBe(80);
    const last = segments(image).at(-1) as string;
    const bytes = image.readFileRaw(last) as Uint8Array;
    image.writeFileRaw(last, bytes.slice(0, (report.durable?.offset as number) - 8));
    const err = await refused(image);
    expect(err.lastGoodIndex).toBe(79);
    expect(err.durableIndex).toBe(80);
    void s;
  });

  it('after a power cut, the point survives once synced: at once with durablePointSyncMs 0, else that long after', async () => {
    for (const syncMs of [0, 20]) {
      const fs = new MemoryFileSystem();
      const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet, segmentBytes: 16 * 1024, durablePointSyncMs: syncMs });
      await s.save({ hardState: Uint8Array.of(1), entries: [entry(1)] });
      for (let i = 2; i <= 40; i++) await s.save({ entries: [entry(i)] });
      if (syncMs > 0) {
        await new Promise((r) => setTimeout(r, 3 * syncMs));
        await s.durablePointSettled();
      }
      const image = fs.crashImage('synced'); // only what was synced survives
      const report = await inspect('/d', { fileSystem: image });
      expect(report.durable?.lastIndex, `durablePointSyncMs ${syncMs}`).toBe(40);
      const last = segments(image).at(-1) as string;
      const bytes = image.readFileRaw(last) as Uint8Array;
      image.writeFileRaw(last, bytes.slice(0, (report.durable?.offset as number) - 8));
      expect((await refused(image)).durableIndex).toBe(40);
      await s.close();
    }
  });

  it('a true torn tail (the last write, never acknowledged) is still cut with a warning', async () => {
    const fs = new MemoryFileSystem();
    const s = await build(fs, 100, { close: false });
    fs.crashAfter(1); // the next write's bytes reach the file, its sync never returns
    const last = s.save({ entries: [entry(101), entry(102), entry(103)], hardState: Uint8Array.of(9) }).catch(() => 'lost');
    await last;
    let torn = 0;
    for (const mode of ['all', 'torn', 'torn-sectors'] as const) {
      for (let seed = 1; seed <= 5; seed++) {
        const image = fs.crashImage(mode, seed);
        const logger = recordingLogger();
        const r = await openFileStorage('/d', { fileSystem: image, logger });
        expect(r.lastIndex()).toBeGreaterThanOrEqual(100);
        for (const e of r.entries(1, r.lastIndex() + 1)) expect(e.data).toEqual(entry(e.index).data);
        if (logger.lines.some((l) => l.msg.includes('torn'))) torn++;
        await r.close();
      }
    }
    expect(torn).toBeGreaterThan(0);
  });

  it('an operator may open anyway with allowTruncateCorruptTail; the lowered durable point is recorded', async () => {
    const fs = new MemoryFileSystem();
    await build(fs);
    const last = segments(fs).at(-1) as string;
    const bytes = fs.readFileRaw(last) as Uint8Array;
    const end = (await inspect('/d', { fileSystem: fs })).durable?.offset as number;
    fs.writeFileRaw(last, bytes.slice(0, Math.floor(end / 2)));
    await refused(fs);
    const logger = recordingLogger();
    const s = await openFileStorage('/d', { fileSystem: fs, logger, allowTruncateCorruptTail: true });
    const kept = s.lastIndex();
    expect(kept).toBeLessThan(200);
    expect(logger.lines.some((l) => l.level === 'error')).toBe(true);
    await s.close();
    const again = await openFileStorage('/d', { fileSystem: fs, logger: quiet });
    expect(again.lastIndex()).toBe(kept);
    await again.close();
    expect((await inspect('/d', { fileSystem: fs })).ok).toBe(true);
  });
});
