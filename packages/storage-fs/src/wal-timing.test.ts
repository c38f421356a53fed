import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { recordingLogger, tempDirs } from '../test/helpers';
import { openFileStorage, type WalWriteTiming } from './file-storage';

const temp = tempDirs('storage-fs-timing-');
afterEach(temp.cleanup);

const entry = (index: number): LogEntry => ({ index, term: 1, type: 'command', data: new Uint8Array(64).fill(index & 0xff) });

describe('onWalWrite (metrics hook)', () => {
  it('reports each group commit: its durable-write time apart from its whole time, and its bytes', async () => {
    const dir = await temp.make();
    const seen: WalWriteTiming[] = [];
    const s = await openFileStorage(dir, { logger: recordingLogger(), onWalWrite: (t) => seen.push(t) });
    await s.save({ hardState: Uint8Array.of(1), entries: [entry(1), entry(2)] });
    await s.save({ entries: [entry(3)] });
    await s.close();
    expect(seen.length).toBe(2);
    for (const t of seen) {
      expect(t.bytes).toBeGreaterThan(64);
      expect(t.syncMs).toBeGreaterThan(0);
      expect(t.totalMs).toBeGreaterThanOrEqual(t.syncMs);
    }
    expect(seen[0]!.bytes).toBeGreaterThan(seen[1]!.bytes);
    expect(s.stats().bytesWritten).toBe(seen[0]!.bytes + seen[1]!.bytes);
  });
});
