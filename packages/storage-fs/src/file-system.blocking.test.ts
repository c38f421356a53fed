import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as NodeFs from 'node:fs';
import { afterEach, expect, it, vi } from 'vitest';

const order: string[] = [];
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof NodeFs>();
  const writeSync = ((...args: Parameters<typeof real.writeSync>) => {
    order.push('writeSync');
    return (real.writeSync as (...a: unknown[]) => number)(...args);
  }) as typeof real.writeSync;
  return { ...real, default: { ...real, writeSync }, writeSync };
});

const { nodeFileSystem } = await import('./file-system');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('a blocking durable write lets work queued with process.nextTick (socket flushes) run before it blocks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-fs-'));
  dirs.push(dir);
  const fsys = nodeFileSystem();
  const f = await fsys.open(fsys.join(dir, 'f'), 'create');
  await f.writeDurable(new Uint8Array([1]), 0, { blocking: true });
  order.length = 0;
  // As in the host: a Ready's messages are queued (the transport flushes them on nextTick), then, in the same
  // microtask, the next Ready's entries are written.
  await Promise.resolve().then(async () => {
    process.nextTick(() => order.push('flush'));
    await f.writeDurable(new Uint8Array([2]), 1, { blocking: true });
  });
  expect(order).toEqual(['flush', 'writeSync']);
  await f.close();
});
