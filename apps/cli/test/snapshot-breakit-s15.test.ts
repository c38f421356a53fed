/**
 * Break-it pass (session 15) on `snapshot save` in pieces and the backup file (#22 item 7): what a hostile or
 * unlucky client, disk or file does to the client side. Each case failed before its fix.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupFileError, encodeBackup, readBackup } from '../src/backup';
import { fetchSnapshotToFile, partFileOf, SnapshotSaveError, type SnapshotSource } from '../src/snapshot-fetch';
import { KvStateMachine } from '@consensus-kit/kv';
import { LockStateMachine } from '@consensus-kit/lock';
import { nodeStateMachine } from '../src/node-runner';
import { cleanup, cli, freeBase, tempDir } from './helpers';

const meta = { stateMachine: 'kv' as const, clusterId: 'c', nodeId: 'n1', protocol: 'raft', appliedIndex: 1, term: 1, revision: 1, compactRevision: 0, keys: 1 };

/** A node's transfer of `data` in pieces of `piece` bytes, each answer a timer turn later; counts what it was asked. */
function nodeOf(data: Uint8Array, piece: number, id: string): SnapshotSource & { asked: number } {
  const sha256 = createHash('sha256').update(data).digest('hex');
  const later = () => new Promise((r) => setTimeout(r, 1));
  const s = {
    asked: 0,
    begin: async () => {
      s.asked++;
      await later();
      return { ...meta, transfer: { id, size: data.length, sha256, pieceBytes: piece }, piece: data.subarray(0, piece) };
    },
    read: async (_id: string, offset: number) => {
      s.asked++;
      await later();
      const p = data.subarray(offset, offset + piece);
      return { id, offset, piece: p, done: offset + p.length === data.length };
    },
    cancel: async () => ({ cancelled: true }),
  };
  return s;
}

describe('snapshot save: the target file', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(work);
  });

  it('two saves of one file at once: one writes it, the other is refused before asking the node; the file is the one reported saved', async () => {
    const file = join(work, 'same.snap');
    // The second's pieces come faster: before the fix it truncated the first's .part, wrote into the file the first
    // renamed, and the first reported a SHA-256 the file did not have.
    const a = nodeOf(new Uint8Array(300_000).fill(1), 10_000, 'snap-a');
    const b = nodeOf(new Uint8Array(300_000).fill(2), 50_000, 'snap-b');
    const [ra, rb] = await Promise.allSettled([fetchSnapshotToFile(a, file), fetchSnapshotToFile(b, file)]);
    expect(ra.status).toBe('fulfilled');
    expect(rb.status).toBe('rejected');
    const e = (rb as PromiseRejectedResult).reason as SnapshotSaveError;
    expect(e).toBeInstanceOf(SnapshotSaveError);
    expect(e.problem).toBe('busy');
    expect(e.message).toContain(`${partFileOf(file)} exists: another snapshot save of ${file} is running, or one was killed and left it`);
    expect(b.asked).toBe(0);
    const saved = (ra as PromiseFulfilledResult<Awaited<ReturnType<typeof fetchSnapshotToFile>>>).value;
    const onDisk = readBackup(file);
    expect(onDisk.sha256).toBe(saved.sha256);
    expect(onDisk.data.every((x) => x === 1)).toBe(true);
    expect(existsSync(partFileOf(file))).toBe(false);
  });

  it('a .part left by a killed save is reported and left alone, and the file is untouched; once removed, save works', async () => {
    const file = join(work, 'left.snap');
    writeFileSync(file, 'the old backup');
    writeFileSync(partFileOf(file), 'half of a save killed with -9');
    const node = nodeOf(new Uint8Array(40_000).fill(3), 10_000, 'snap-c');
    await expect(fetchSnapshotToFile(node, file)).rejects.toSatisfy((e) => e instanceof SnapshotSaveError && e.problem === 'busy' && e.message.includes(`remove ${partFileOf(file)} if none is running`));
    expect(readFileSync(partFileOf(file), 'utf8')).toBe('half of a save killed with -9');
    expect(readFileSync(file, 'utf8')).toBe('the old backup');
    expect(node.asked).toBe(0);
    rmSync(partFileOf(file));
    await fetchSnapshotToFile(node, file);
    expect(readBackup(file).data.every((x) => x === 3)).toBe(true);
  });

  it('a target that is a directory, or in a directory that does not exist, fails before the node is asked (not after the whole transfer)', async () => {
    const dir = join(work, 'a-dir');
    mkdirSync(dir);
    const node = nodeOf(new Uint8Array(40_000).fill(4), 10_000, 'snap-d');
    await expect(fetchSnapshotToFile(node, dir)).rejects.toSatisfy((e) => e instanceof SnapshotSaveError && e.problem === 'write' && e.message.includes(`${dir} is a directory`));
    await expect(fetchSnapshotToFile(node, join(work, 'missing', 'x.snap'))).rejects.toSatisfy((e) => e instanceof SnapshotSaveError && e.problem === 'write' && e.message.includes('(ENOENT)'));
    expect(node.asked).toBe(0);
    expect(existsSync(partFileOf(dir))).toBe(false);
  });
});

describe('snapshot status / restore: a large file is judged by its header first', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(work);
  });

  /** A sparse file of `size` bytes starting with `start`. */
  const sparse = (name: string, start: Uint8Array, size: number): string => {
    const path = join(work, name);
    const fd = openSync(path, 'w');
    writeSync(fd, start);
    closeSync(fd);
    truncateSync(path, size);
    return path;
  };
  const good = encodeBackup({ ...meta, createdAt: '2026-12-05T00:00:00.000Z' }, new Uint8Array(1000).fill(7));

  it('a 3 GB file that is not a backup is refused by its first bytes, and one past what a buffer holds says so (not ERR_OUT_OF_RANGE)', () => {
    const foreign = sparse('zeros.bin', new Uint8Array(0), 3e9);
    const rss = process.memoryUsage().rss;
    expect(() => readBackup(foreign)).toThrow(/not a consensus-kit backup file/);
    // Before the fix the whole file was read into memory first (16 s, 3 GB).
    expect(process.memoryUsage().rss - rss).toBeLessThan(512 * 2 ** 20);
    const huge = sparse('huge.bin', good.subarray(0, 16), 5e9);
    expect(() => readBackup(huge)).toThrow(BackupFileError);
    try {
      readBackup(huge);
    } catch (e) {
      expect((e as Error).message).not.toContain('ERR_OUT_OF_RANGE');
    }
  });

  it('every bit of the header, the middle and the end flipped, and every cut, is a BackupFileError (never another error, never accepted)', () => {
    const path = join(work, 'flipped.snap');
    const positions = [...Array.from({ length: 200 }, (_, i) => i), Math.floor(good.length / 2), good.length - 33, good.length - 1];
    for (const at of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(good);
        b.writeUInt8(b.readUInt8(at) ^ (1 << bit), at);
        writeFileSync(path, b);
        expect(() => readBackup(path), `byte ${at} bit ${bit}`).toThrow(BackupFileError);
      }
    }
    for (let n = 0; n < good.length; n += 7) {
      writeFileSync(path, good.subarray(0, n));
      expect(() => readBackup(path), `cut to ${n}`).toThrow(BackupFileError);
    }
  });

  it('a backup with 3 GB appended is refused from its header (its size), a header cut short as truncated', () => {
    const appended = sparse('appended.snap', good, 3e9);
    const rss = process.memoryUsage().rss;
    expect(() => readBackup(appended)).toThrow(expect.objectContaining({ problem: 'size', message: expect.stringContaining(`3000000000 bytes, its header says ${good.length}`) }));
    expect(process.memoryUsage().rss - rss).toBeLessThan(512 * 2 ** 20);
    const cut = join(work, 'cut.snap');
    writeFileSync(cut, good.subarray(0, good.length - 40));
    expect(() => readBackup(cut)).toThrow(expect.objectContaining({ problem: 'truncated' }));
    const empty = join(work, 'empty.snap');
    writeFileSync(empty, '');
    expect(() => readBackup(empty)).toThrow(expect.objectContaining({ problem: 'truncated' }));
    // A good one still reads, and a flipped byte in the data is still a checksum mismatch.
    const ok = join(work, 'ok.snap');
    writeFileSync(ok, good);
    expect(readBackup(ok).data.length).toBe(1000);
    const flipped = Buffer.from(good);
    flipped.writeUInt8((flipped.readUInt8(flipped.length - 100) ^ 1) & 0xff, flipped.length - 100);
    writeFileSync(ok, flipped);
    expect(() => readBackup(ok)).toThrow(expect.objectContaining({ problem: 'checksum' }));
  });
});

describe('snapshot restore into a path that is a file, or under one', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir();
  });
  afterAll(async () => {
    await cleanup(work);
  });

  it('is one line naming the path and exit 1 (it was a raw ENOTDIR from scandir, or from the cleanup unlink hiding the cause), and leaves the file as it was', async () => {
    const backup = join(work, 'good.snap');
    const data = nodeStateMachine({ kv: new KvStateMachine(), lock: new LockStateMachine() }).snapshot();
    writeFileSync(backup, encodeBackup({ ...meta, stateMachine: 'kv+lock', revision: 0, keys: 0, createdAt: '2026-12-05T00:00:00.000Z' }, data));
    const file = join(work, 'a-file');
    writeFileSync(file, 'mine\n');
    const port = String(await freeBase());
    const onFile = await cli('snapshot', 'restore', backup, '--dir', file, '--port', port);
    expect(onFile.code).toBe(1);
    expect(onFile.err).toContain(`${file} (--dir) is a file, not a directory`);
    const under = await cli('snapshot', 'restore', backup, '--dir', join(file, 'sub'), '--port', port);
    expect(under.code).toBe(1);
    expect(under.err).toContain(`cannot write the restored data under ${join(file, 'sub')} (ENOTDIR`);
    expect(under.err).not.toContain('unlink');
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
  });
});
