import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFileSystem } from './file-system';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('nodeFileSystem', () => {
  it('writeDurable writes in place through its own descriptor and close releases both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-fs-'));
    dirs.push(dir);
    const fsys = nodeFileSystem();
    const path = fsys.join(dir, 'f');
    const f = await fsys.open(path, 'create');
    await f.write(new TextEncoder().encode('abcdef'), 0);
    await f.writeDurable(new TextEncoder().encode('XY'), 1);
    await f.writeDurable(new TextEncoder().encode('Z'), 8); // past the end: the gap reads as zeros
    expect(f.size()).toBe(9);
    const back = new Uint8Array(9);
    expect(f.readSync(back, 0, 9, 0)).toBe(9);
    expect(Array.from(back)).toEqual([...'aXYdef'].map((c) => c.charCodeAt(0)).concat([0, 0, 'Z'.charCodeAt(0)]));
    await f.close();
    expect(readFileSync(path).toString('latin1')).toBe('aXYdef\0\0Z');
    // Reopened for appending, the file is not truncated by the durable descriptor.
    const g = await fsys.open(path, 'append');
    await g.writeDurable(new TextEncoder().encode('!'), 9);
    await g.close();
    expect(readFileSync(path).toString('latin1')).toBe('aXYdef\0\0Z!');
    // Blocking writes land the same bytes.
    const h = await fsys.open(path, 'append');
    await h.writeDurable(new TextEncoder().encode('?'), 0, { blocking: true });
    await h.writeDurable(new TextEncoder().encode('@@'), 10, { blocking: true });
    await h.close();
    expect(readFileSync(path).toString('latin1')).toBe('?XYdef\0\0Z!@@');
  });
});
