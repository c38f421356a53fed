import { describe, expect, it } from 'vitest';
import { MemoryFileSystem } from './memory-file-system';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('MemoryFileSystem crash model', () => {
  it('keeps only fsynced data and directory entries made durable by a directory fsync in the synced image', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.open('/d/a', 'create');
    await f.write(bytes(1, 2, 3), 0);
    await f.datasync();
    await fs.syncDir('/d');
    await f.write(bytes(4, 5), 3); // not synced
    const g = await fs.open('/d/b', 'create');
    await g.write(bytes(9), 0);
    await g.sync(); // data synced, but the directory entry is not
    const synced = fs.crashImage('synced');
    expect(synced.listFiles()).toEqual(['/d/a']);
    expect([...(synced.readFileRaw('/d/a') as Uint8Array)]).toEqual([1, 2, 3]);
    const all = fs.crashImage('all');
    expect(all.listFiles()).toEqual(['/d/a', '/d/b']);
    expect([...(all.readFileRaw('/d/a') as Uint8Array)]).toEqual([1, 2, 3, 4, 5]);
  });

  it('reverts a rename that no directory fsync made durable', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.open('/d/x.tmp', 'create');
    await f.write(bytes(7), 0);
    await f.sync();
    await fs.syncDir('/d');
    await fs.rename('/d/x.tmp', '/d/x');
    expect(fs.crashImage('synced').listFiles()).toEqual(['/d/x.tmp']);
    await fs.syncDir('/d');
    expect(fs.crashImage('synced').listFiles()).toEqual(['/d/x']);
  });

  it('tears unsynced appends at a random point in the torn image, reproducibly per seed', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.open('/d/log', 'create');
    await f.write(new Uint8Array(100).fill(1), 0);
    await f.datasync();
    await fs.syncDir('/d');
    await f.write(new Uint8Array(4000).fill(2), 100);
    const lengths = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const a = fs.crashImage('torn', seed).readFileRaw('/d/log') as Uint8Array;
      const b = fs.crashImage('torn', seed).readFileRaw('/d/log') as Uint8Array;
      expect(a).toEqual(b);
      expect(a.length).toBeGreaterThanOrEqual(100);
      expect(a.subarray(0, 100).every((x) => x === 1)).toBe(true);
      lengths.add(a.length);
    }
    expect(lengths.size).toBeGreaterThan(5);
  });

  it('tears unsynced overwrites in place too: a prefix of the change lands, the old bytes stay after it', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.open('/d/log', 'create');
    await f.write(new Uint8Array(4096), 0); // preallocated zeros
    await f.datasync();
    await fs.syncDir('/d');
    await f.write(new Uint8Array(2000).fill(3), 1000);
    const cuts = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      for (const mode of ['torn', 'torn-sectors'] as const) {
        const a = fs.crashImage(mode, seed).readFileRaw('/d/log') as Uint8Array;
        expect(a.length).toBe(4096);
        expect(a.subarray(0, 1000).every((x) => x === 0)).toBe(true);
        expect(a.subarray(3000).every((x) => x === 0)).toBe(true);
        const firstZero = a.subarray(1000, 3000).findIndex((x) => x === 0);
        const cut = firstZero < 0 ? 2000 : firstZero;
        if (mode === 'torn') {
          // One cut: new bytes before it, old ones after.
          expect(a.subarray(1000 + cut, 3000).every((x) => x === 0)).toBe(true);
          cuts.add(cut);
        }
        expect(a.subarray(1000, 3000).every((x) => x === 0 || x === 3)).toBe(true);
      }
    }
    expect(cuts.size).toBeGreaterThan(5);
    expect(fs.crashImage('synced').readFileRaw('/d/log')?.every((x) => x === 0)).toBe(true);
    expect(fs.crashImage('all').readFileRaw('/d/log')?.subarray(1000, 3000).every((x) => x === 3)).toBe(true);
  });

  it('fails every operation after the crash point with ECRASH', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.open('/d/a', 'create');
    fs.crashAfter(1);
    await f.write(bytes(1), 0);
    await expect(f.datasync()).rejects.toMatchObject({ code: 'ECRASH' });
    await expect(fs.readdir('/d')).rejects.toMatchObject({ code: 'ECRASH' });
  });
});
