import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingLogger, tempDirs } from '../test/helpers';
import { ConfigError, CorruptLogError, StorageError, type LogEntry } from '@consensus-kit/core';
import { openFileStorage } from './file-storage';
import { inspect } from './inspect';
import type { FileSystem, FsFile } from './file-system';
import { MemoryFileSystem } from './memory-file-system';
import { scanSegment } from './record';
import { SEGMENT_RECORD_BYTES } from './segment';


/** Damages one byte in place (a test's bit rot). */
function flip(bytes: Uint8Array, at: number, mask: number): void {
  bytes[at] = (bytes[at] as number) ^ mask;
}
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };

function entry(index: number, term = 1, bytes = 100): LogEntry {
  return { index, term, type: 'command', data: new Uint8Array(bytes).fill(index & 0xff) };
}

function range(from: number, to: number, term = 1, bytes = 100): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, bytes));
  return out;
}

const quiet = recordingLogger();
const temp = tempDirs('storage-fs-');
const tempDir = temp.make;
afterEach(temp.cleanup);

describe('the hard state (term and vote)', () => {
  it('a new directory is marked before its first entry, and a log whose hard state went missing is refused', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet });
    expect(s.initialState()).toEqual({}); // the marker is not a hard state
    expect(await readdir(dir)).toContain('hardstate');
    await s.close();
    // Reopened with nothing written: still no hard state, and nothing to refuse.
    const r = await openFileStorage(dir, { logger: quiet });
    expect(r.initialState()).toEqual({});
    await r.save({ hardState: Uint8Array.of(2, 1), entries: range(1, 5) });
    await r.close();
    const again = await openFileStorage(dir, { logger: quiet });
    expect(again.initialState()).toEqual({ hardState: Uint8Array.of(2, 1) });
    await again.close();
    // Deleted (by hand, a bad restore): starting at term 0 with no vote could vote twice in one term.
    await rm(join(dir, 'hardstate'));
    const report = await inspect(dir);
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/hardstate is missing/);
    await expect(openFileStorage(dir, { logger: quiet })).rejects.toThrow(/term and vote are lost/);
    await expect(openFileStorage(dir, { logger: quiet })).rejects.toSatisfy(StorageError.is);
  });
});

describe('group commit', () => {
  it('writes and syncs saves that arrive during an fdatasync together: one sync per batch, not per entry', async () => {
    const s = await openFileStorage(await tempDir(), { logger: quiet });
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) saves.push(s.save({ entries: [entry(i)] }));
    await Promise.all(saves);
    const stats = s.stats();
    expect(stats.saves).toBe(200);
    expect(stats.entriesWritten).toBe(200);
    // The first save starts a flush at once; the other 199 arrive while it is in flight and share the next one.
    expect(stats.walSyncs).toBe(2);
    expect(s.entries(1, 201).map((e) => e.index)).toEqual(range(1, 200).map((e) => e.index));
    await s.close();
  });
});

/** A `MemoryFileSystem` whose opened files pass through `change` (to inject failures or delays). */
function memoryWithFiles(change: (file: FsFile, path: string) => FsFile): FileSystem {
  const m = new MemoryFileSystem();
  return {
    open: async (path, mode) => change(await m.open(path, mode), path),
    readdir: (d) => m.readdir(d),
    mkdir: (d) => m.mkdir(d),
    rename: (a, b) => m.rename(a, b),
    unlink: (p) => m.unlink(p),
    syncDir: (d) => m.syncDir(d),
    join: (...p) => m.join(...p),
  };
}

function wrapFile(f: FsFile): FsFile {
  return {
    readSync: (b, o, l, p) => f.readSync(b, o, l, p),
    write: (d, p) => f.write(d, p),
    writeDurable: (d, p) => f.writeDurable(d, p),
    datasync: () => f.datasync(),
    sync: () => f.sync(),
    truncate: (l) => f.truncate(l),
    size: () => f.size(),
    close: () => f.close(),
  };
}

describe('preallocation', () => {
  async function segmentFiles(dir: string): Promise<{ name: string; size: number; used: number }[]> {
    const out: { name: string; size: number; used: number }[] = [];
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.log')).sort()) {
      const bytes = new Uint8Array(await readFile(join(dir, name)));
      out.push({ name, size: bytes.length, used: scanSegment(bytes, out.length + 1).goodEnd });
    }
    return out;
  }

  it('keeps zeros ahead of the write position, and a reopened log writes on over them, not after them', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, preallocateBytes: 64 << 10 });
    for (let i = 1; i <= 50; i++) await s.save({ entries: [entry(i)] });
    await s.close();
    const [seg] = await segmentFiles(dir);
    expect(seg?.used).toBeGreaterThan(50 * 100);
    expect(seg?.size).toBeGreaterThanOrEqual((seg?.used ?? 0) + 32 * 1024);
    expect(s.stats().preallocatedBytes).toBe(seg?.size === undefined ? -1 : seg.size - SEGMENT_RECORD_BYTES - 144);

    const r = await openFileStorage(dir, { logger: quiet, preallocateBytes: 64 << 10 });
    expect(r.lastIndex()).toBe(50);
    await r.save({ entries: range(51, 60) });
    await r.close();
    const [after] = await segmentFiles(dir);
    expect(after?.size).toBe(seg?.size); // written over the zeros: the file did not grow
    expect(after?.used).toBe((seg?.used ?? 0) + 10 * 144);
    const again = await openFileStorage(dir, { logger: quiet });
    expect(again.entries(1, 61).map((e) => e.data[0])).toEqual(range(1, 60).map((e) => e.data[0]));
    await again.close();
  });

  it('with a window smaller than the writes, writes wait for the extension in flight and nothing is lost', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, preallocateBytes: 4096, segmentBytes: 256 << 10 });
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 400; i += 4) {
      saves.push(s.save({ entries: range(i, i + 3, 1, 900) }));
      if (i % 40 === 1) await Promise.all(saves.splice(0));
    }
    await Promise.all(saves);
    expect(s.stats().preallocatedBytes).toBeGreaterThan(0);
    await s.close();
    const segs = await segmentFiles(dir);
    expect(segs.length).toBeGreaterThan(1);
    const r = await openFileStorage(dir, { logger: quiet });
    expect(r.lastIndex()).toBe(400);
    r.entries(1, 401).forEach((e, k) => expect(e.data).toEqual(entry(k + 1, 1, 900).data));
    await r.close();
  });

  it('a failed extension fails the storage like a failed log write: later saves are refused', async () => {
    // The log's own writes go through writeDurable; only the background extension calls datasync here.
    const failingSync = memoryWithFiles((f) => ({
      ...wrapFile(f),
      datasync: async () => Promise.reject(Object.assign(new Error('EIO: disk error'), { code: 'EIO' })),
    }));
    const s = await openFileStorage('/d', { fileSystem: failingSync, logger: quiet, preallocateBytes: 4096 });
    await s.save({ entries: [entry(1)] });
    await new Promise((r) => setImmediate(r));
    await expect(s.save({ entries: [entry(2)] })).rejects.toSatisfy(StorageError.is);
    await expect(s.save({ entries: [entry(3)] })).rejects.toSatisfy(StorageError.is);
    expect(s.stats().preallocatedBytes).toBe(0);
    await s.close();
  });

  it('preallocateBytes: 0 only appends', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, preallocateBytes: 0 });
    for (let i = 1; i <= 20; i++) await s.save({ entries: [entry(i)] });
    expect(s.stats().preallocatedBytes).toBe(0);
    await s.close();
    const [seg] = await segmentFiles(dir);
    expect(seg?.size).toBe(seg?.used);
  });
});

describe('reads', () => {
  it('serves old entries from disk when they fall out of the bounded cache', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, cacheBytes: 10 * 124, segmentBytes: 8192 });
    for (let i = 1; i <= 300; i += 10) await s.save({ entries: range(i, i + 9) });
    const before = s.stats().diskReads;
    const got = s.entries(1, 301);
    expect(got).toHaveLength(300);
    for (const e of got) expect(e.data).toEqual(entry(e.index).data);
    // At most ~10 entries fit in the cache, so most came from disk.
    expect(s.stats().diskReads - before).toBeGreaterThanOrEqual(290);
    expect(s.term(3)).toBe(1);
    await s.close();
  });

  it('reads a torn-free log back after reopen, across many segments', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, segmentBytes: 4096 });
    for (let i = 1; i <= 500; i += 25) await s.save({ entries: range(i, i + 24, 1 + Math.floor(i / 100)) });
    await s.close();
    expect((await readdir(dir)).filter((n) => n.endsWith('.log')).length).toBeGreaterThan(10);
    const r = await openFileStorage(dir, { logger: quiet, segmentBytes: 4096 });
    expect(r.lastIndex()).toBe(500);
    expect(r.term(450)).toBe(5);
    expect(r.entries(237, 240).map((e) => e.data[0])).toEqual([237, 238, 239]);
    await r.close();
  });
});

describe('compaction', () => {
  it('deletes whole segments below the compaction point and keeps the rest readable after reopen', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet, segmentBytes: 4096 });
    for (let i = 1; i <= 400; i += 20) await s.save({ entries: range(i, i + 19) });
    const before = (await readdir(dir)).filter((n) => n.endsWith('.log')).length;
    await s.saveSnapshot({ index: 300, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await s.compact(300);
    expect(s.firstIndex()).toBe(301);
    // compact() resolves once its record is durable; the dead segments go in the background, done by close().
    await s.close();
    const after = (await readdir(dir)).filter((n) => n.endsWith('.log')).length;
    expect(after).toBeLessThan(before / 2);
    const r = await openFileStorage(dir, { logger: quiet, segmentBytes: 4096 });
    expect(r.firstIndex()).toBe(301);
    expect(r.lastIndex()).toBe(400);
    expect(r.entries(301, 401)).toHaveLength(100);
    await r.close();
  });
});

describe('recovery', () => {
  /**
   * A log of 20 entries in one segment. `crashed`: the process stopped without closing, after a hard state
   * recorded the durable point at entry 10 (the second write, 11..20, is past it and may tear); otherwise
   * closed cleanly (the durable point covers every record). Returns the segment's path and the image.
   */
  async function logWith(fs: MemoryFileSystem, preallocateBytes?: number, crashed = false): Promise<{ seg: string; image: MemoryFileSystem }> {
    const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet, ...(preallocateBytes === undefined ? {} : { preallocateBytes }) });
    await s.save({ entries: range(1, 10), hardState: Uint8Array.of(1) });
    await s.save({ entries: range(11, 20) });
    const image = crashed ? fs.crashImage('synced') : fs;
    if (!crashed) await s.close();
    return { seg: fs.listFiles().find((p) => p.endsWith('.log')) as string, image };
  }

  it.each([
    ['appending', 0],
    ['into preallocated zeros', undefined],
  ])('truncates a torn tail with a warning and goes on appending (%s)', async (_name, preallocateBytes) => {
    const { seg, image: fs } = await logWith(new MemoryFileSystem(), preallocateBytes, true);
    const bytes = fs.readFileRaw(seg) as Uint8Array;
    if (preallocateBytes === 0) {
      fs.writeFileRaw(seg, bytes.subarray(0, bytes.length - 50)); // the last record is cut short
    } else {
      // The file ends in zeros; the last 50 bytes of the last record never replaced them.
      const end = scanSegment(bytes, 1).goodEnd;
      expect(bytes.length).toBeGreaterThan(end);
      bytes.fill(0, end - 50, end);
      fs.writeFileRaw(seg, bytes);
    }
    const logger = recordingLogger();
    const s = await openFileStorage('/d', { fileSystem: fs, logger });
    expect(s.lastIndex()).toBe(19);
    const warning = logger.lines.find((l) => l.level === 'warn' && l.msg.includes('torn'));
    expect(warning?.msg).toContain('torn');
    expect(warning?.fields).toMatchObject({ file: seg, lastIndex: 19 });
    await s.save({ entries: [entry(20, 2)] });
    await s.close();
    const r = await openFileStorage('/d', { fileSystem: fs, logger: quiet });
    expect(r.lastIndex()).toBe(20);
    expect(r.term(20)).toBe(2);
    await r.close();
  });

  it('refuses to start on a bad record before the tail, naming file, offset and last good index', async () => {
    const fs = new MemoryFileSystem();
    const { seg } = await logWith(fs);
    const bytes = fs.readFileRaw(seg) as Uint8Array;
    const fifth = SEGMENT_RECORD_BYTES + 4 * 144; // segment header + four entry records of 24 + 16 + 100 + 4 padding
    flip(bytes, fifth + 60, 0x10);
    fs.writeFileRaw(seg, bytes);
    const err = await openFileStorage('/d', { fileSystem: fs, logger: quiet }).catch((e: unknown) => e);
    expect(CorruptLogError.is(err)).toBe(true);
    expect(err).toMatchObject({ file: seg, offset: fifth, lastGoodIndex: 4 });
    // The failed open released its lock: trying again gives the same answer, not a lock error.
    await expect(openFileStorage('/d', { fileSystem: fs, logger: quiet })).rejects.toSatisfy(CorruptLogError.is);
  });

  it('with allowTruncateCorruptTail starts with the log cut at the last good index and says what it discards', async () => {
    const fs = new MemoryFileSystem();
    const { seg } = await logWith(fs);
    const bytes = fs.readFileRaw(seg) as Uint8Array;
    flip(bytes, SEGMENT_RECORD_BYTES + 4 * 144 + 60, 0x10);
    fs.writeFileRaw(seg, bytes);
    const logger = recordingLogger();
    const s = await openFileStorage('/d', { fileSystem: fs, logger, allowTruncateCorruptTail: true });
    expect(s.lastIndex()).toBe(4);
    const error = logger.lines.find((l) => l.level === 'error');
    expect(error?.msg).toContain('DISCARDED');
    expect(error?.fields).toMatchObject({ file: seg, lastGoodIndex: 4, offset: SEGMENT_RECORD_BYTES + 4 * 144 });
    await s.save({ entries: [entry(5, 3)] });
    await s.close();
    const r = await openFileStorage('/d', { fileSystem: fs, logger: quiet });
    expect(r.lastIndex()).toBe(5);
    await r.close();
  });

  it('with allowTruncateCorruptTail, a damaged segment header cuts the log at the end of the segment before', async () => {
    const fs = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet, segmentBytes: 4096 });
    for (let i = 1; i <= 200; i += 20) await s.save({ entries: range(i, i + 19) });
    await s.close();
    const segs = fs.listFiles().filter((p) => p.endsWith('.log'));
    expect(segs.length).toBeGreaterThan(4);
    const third = fs.readFileRaw(segs[2] as string) as Uint8Array;
    flip(third, 5, 0x01); // inside the segment header record
    fs.writeFileRaw(segs[2] as string, third);
    await expect(openFileStorage('/d', { fileSystem: fs, logger: quiet })).rejects.toMatchObject({ code: 'CORRUPT_LOG', file: segs[2], offset: 0 });
    const logger = recordingLogger();
    const cut = await openFileStorage('/d', { fileSystem: fs, logger, allowTruncateCorruptTail: true, segmentBytes: 4096 });
    const lastGood = cut.lastIndex();
    expect(lastGood).toBeGreaterThan(20);
    expect(lastGood).toBeLessThan(200);
    expect(logger.lines.find((l) => l.level === 'error')?.fields).toMatchObject({ lastGoodIndex: lastGood, discardedSegments: expect.any(Array) });
    expect(fs.listFiles().filter((p) => p.endsWith('.log'))).toEqual(segs.slice(0, 2));
    await cut.save({ entries: range(lastGood + 1, lastGood + 30, 2) });
    await cut.close();
    const r = await openFileStorage('/d', { fileSystem: fs, logger: quiet, segmentBytes: 4096 });
    expect(r.lastIndex()).toBe(lastGood + 30);
    expect(r.entries(1, r.lastIndex() + 1)).toHaveLength(lastGood + 30);
    await r.close();
  });

  it('refuses a corrupt hard state and a corrupt snapshot', async () => {
    const fs = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet });
    await s.save({ hardState: Uint8Array.of(7, 7, 7), entries: range(1, 3) });
    await s.saveSnapshot({ index: 2, term: 1, config: CONFIG, data: new Uint8Array(3 << 20).fill(4) });
    await s.close();
    const snapPath = fs.listFiles().find((p) => p.endsWith('.snap')) as string;
    const snapBytes = fs.readFileRaw(snapPath) as Uint8Array;
    flip(snapBytes, 2 << 20, 1);
    fs.writeFileRaw(snapPath, snapBytes);
    await expect(openFileStorage('/d', { fileSystem: fs, logger: quiet })).rejects.toMatchObject({ code: 'CORRUPT_LOG', file: snapPath });
    flip(snapBytes, 2 << 20, 1);
    fs.writeFileRaw(snapPath, snapBytes);
    const hs = fs.readFileRaw('/d/hardstate') as Uint8Array;
    flip(hs, hs.length - 1, 4);
    fs.writeFileRaw('/d/hardstate', hs);
    await expect(openFileStorage('/d', { fileSystem: fs, logger: quiet })).rejects.toMatchObject({ code: 'CORRUPT_LOG', file: '/d/hardstate' });
  });

  it('refuses a log whose middle segment is missing', async () => {
    const fs = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet, segmentBytes: 4096 });
    for (let i = 1; i <= 200; i += 20) await s.save({ entries: range(i, i + 19) });
    await s.close();
    const segs = fs.listFiles().filter((p) => p.endsWith('.log'));
    await fs.unlink(segs[2] as string);
    await expect(openFileStorage('/d', { fileSystem: fs, logger: quiet })).rejects.toSatisfy(CorruptLogError.is);
  });
});

describe('snapshots', () => {
  /** A memory file system whose snapshot files cannot be synced until `open()` is called. */
  function gatedSnapshots(): { fileSystem: FileSystem; open: () => void } {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fileSystem = memoryWithFiles((f, path) =>
      /snap-.*\.tmp$/.test(path) ? { ...wrapFile(f), datasync: async () => (await gate, f.datasync()), sync: async () => (await gate, f.sync()) } : f,
    );
    return { fileSystem, open: release };
  }
  const settled = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false;
    void p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    return done;
  };

  it('writes a local snapshot beside the WAL: saves go on meanwhile, and compaction waits until it is durable', async () => {
    const { fileSystem, open } = gatedSnapshots();
    const s = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
    await s.save({ entries: range(1, 50) });
    const snapshotSaved = s.saveSnapshot({ index: 40, term: 1, config: CONFIG, data: new Uint8Array(3000).fill(4) });
    const compacted = s.compact(30);
    // The snapshot file cannot be synced yet, but appends are not held up behind it.
    await s.save({ entries: range(51, 60) });
    expect(await settled(snapshotSaved)).toBe(false);
    // Dropping entries 1..30 needs the snapshot on disk first.
    expect(await settled(compacted)).toBe(false);
    expect(s.firstIndex()).toBe(1);
    open();
    await snapshotSaved;
    await compacted;
    expect(s.firstIndex()).toBe(31);
    expect(s.snapshot()?.index).toBe(40);
    await s.close();
    const r = await openFileStorage('/d', { fileSystem, logger: quiet, segmentBytes: 4096 });
    expect([r.firstIndex(), r.lastIndex(), r.snapshot()?.index]).toEqual([31, 60, 40]);
    await r.close();
  });

  it('refuses to compact past the newest snapshot that reached the disk', async () => {
    const s = await openFileStorage('/d', { fileSystem: new MemoryFileSystem(), logger: quiet });
    await s.save({ entries: range(1, 20) });
    await expect(s.compact(10)).rejects.toSatisfy(StorageError.is);
    await s.saveSnapshot({ index: 10, term: 1, config: CONFIG, data: Uint8Array.of(1) });
    await expect(s.compact(15)).rejects.toSatisfy(StorageError.is);
    await s.compact(10);
    expect(s.firstIndex()).toBe(11);
    await s.close();
  });

  it('streams a snapshot back in verified chunks after reopen', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet });
    await s.save({ entries: range(1, 5) });
    const data = new Uint8Array((2 << 20) + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    await s.saveSnapshot({ index: 5, term: 1, config: CONFIG, data });
    await s.close();
    const r = await openFileStorage(dir, { logger: quiet });
    const chunks = [...r.snapshotChunks()];
    expect(chunks.length).toBe(3);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
    expect(Buffer.from(r.snapshot()?.data ?? []).equals(Buffer.from(data))).toBe(true);
    expect(r.snapshot()?.config).toEqual(CONFIG);
    await r.close();
    expect((await readdir(dir)).filter((n) => n.endsWith('.snap'))).toHaveLength(1);
  });
});

describe('streamed snapshot install', () => {
  async function* stream(total: number, chunk: number): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < total; at += chunk) {
      const piece = new Uint8Array(Math.min(chunk, total - at));
      for (let i = 0; i < piece.length; i++) piece[i] = ((at + i) * 7) & 0xff;
      yield piece;
    }
  }
  const expected = (total: number): Uint8Array => Uint8Array.from({ length: total }, (_, i) => (i * 7) & 0xff);

  it('writes chunks as they arrive, replaces the log, and serves the snapshot lazily before and after reopen', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet });
    await s.save({ entries: range(1, 10) });
    const total = (3 << 20) + 17;
    await s.installSnapshotStream({ index: 100, term: 7, config: CONFIG }, total, stream(total, 64 * 1024));
    expect([s.firstIndex(), s.lastIndex(), s.term(100)]).toEqual([101, 100, 7]);
    expect(Buffer.from(Buffer.concat([...s.snapshotChunks()])).equals(Buffer.from(expected(total)))).toBe(true);
    await s.save({ entries: range(101, 103, 7) });
    await s.close();
    const names = await readdir(dir);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const r = await openFileStorage(dir, { logger: quiet });
    expect([r.firstIndex(), r.lastIndex()]).toEqual([101, 103]);
    const snap = r.snapshot();
    expect([snap?.index, snap?.term, snap?.data.length]).toEqual([100, 7, total]);
    expect(Buffer.from(snap?.data ?? []).equals(Buffer.from(expected(total)))).toBe(true);
    await r.close();
  });

  it('leaves everything as it was when the stream fails or is short', async () => {
    const dir = await tempDir();
    const s = await openFileStorage(dir, { logger: quiet });
    await s.save({ entries: range(1, 10) });
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1000);
      throw new Error('connection reset');
    }
    await expect(s.installSnapshotStream({ index: 50, term: 2, config: CONFIG }, 5000, failing())).rejects.toSatisfy(StorageError.is);
    await expect(s.installSnapshotStream({ index: 50, term: 2, config: CONFIG }, 5000, stream(4000, 1000))).rejects.toThrow(/4000 bytes/);
    expect([s.firstIndex(), s.lastIndex(), s.snapshot()]).toEqual([1, 10, undefined]);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp') || n.endsWith('.snap'))).toEqual([]);
    await s.save({ entries: range(11, 11) });
    await s.close();
  });
});

describe('failures and misuse', () => {
  it('fails every later write once a write to disk failed (no retry after a failed fsync)', async () => {
    const fs = new MemoryFileSystem();
    const s = await openFileStorage('/d', { fileSystem: fs, logger: quiet });
    await s.save({ entries: range(1, 3) });
    fs.crashAfter(1); // the next write succeeds, its fdatasync fails
    await expect(s.save({ entries: range(4, 5) })).rejects.toSatisfy(StorageError.is);
    await expect(s.save({ entries: range(6, 6) })).rejects.toThrow(/refuses further writes/);
  });

  it('rejects bad options and bad input with typed errors', async () => {
    await expect(openFileStorage('/x', { fileSystem: new MemoryFileSystem(), segmentBytes: 10 })).rejects.toSatisfy(ConfigError.is);
    await expect(openFileStorage('/x', { fileSystem: new MemoryFileSystem(), preallocateBytes: -1 })).rejects.toSatisfy(ConfigError.is);
    await expect(openFileStorage('/x', { fileSystem: new MemoryFileSystem(), preallocateBytes: 1.5 })).rejects.toSatisfy(ConfigError.is);
    const s = await openFileStorage('/d', { fileSystem: new MemoryFileSystem(), logger: quiet });
    await expect(s.save({ entries: [{ index: 1, term: 1, type: 'bogus' as 'command', data: new Uint8Array() }] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(s.save({ entries: [{ index: 1, term: -1, type: 'noop', data: new Uint8Array() }] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(s.save({ entries: [entry(1), entry(3)] })).rejects.toMatchObject({ code: 'STORAGE' });
    expect(s.lastIndex()).toBe(0);
    await s.close();
    expect(() => s.entries(1, 1)).toThrow(/closed/);
  });
});
