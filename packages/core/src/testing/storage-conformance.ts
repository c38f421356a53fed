import { describe, expect, it } from 'vitest';
import { isConsensusError } from '../errors';
import type { ClusterConfig, DurableStorage, LogEntry, Snapshot } from '../types';

/**
 * A place a storage lives (a directory, a shared memory state). `open()` opens it, or reopens it after the
 * previous instance was closed: everything that was saved must be read back.
 */
export interface StorageHarness {
  open(): Promise<DurableStorage>;
  /** Removes what the harness created (temp directories). */
  cleanup?(): Promise<void>;
}

const CONFIG: ClusterConfig = { voters: ['a', 'b', 'c'], learners: [] };

/** Builds an entry whose data encodes its index and term, so that any mix-up is visible. */
export function testEntry(index: number, term: number, type: LogEntry['type'] = 'command'): LogEntry {
  const data = type === 'noop' ? new Uint8Array(0) : new TextEncoder().encode(`e${index}t${term}`);
  return { index, term, type, data };
}

export function testEntries(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(testEntry(i, term));
  return out;
}

function testSnapshot(index: number, term: number, text = `snap@${index}`): Snapshot {
  return { index, term, config: CONFIG, data: new TextEncoder().encode(text) };
}

function summary(entries: readonly LogEntry[]): string[] {
  return entries.map((e) => `${e.index}/${e.term}/${e.type}/${new TextDecoder().decode(e.data)}`);
}

/**
 * The storage contract of DESIGN.md, as one suite every `DurableStorage` runs unchanged (MemoryStorage here,
 * storage-fs on disk): append, replace-at-index, truncateAfter, hard state, snapshots, compaction, reopen.
 */
export function describeStorageConformance(name: string, makeHarness: () => Promise<StorageHarness> | StorageHarness): void {
  describe(`storage conformance: ${name}`, () => {
    async function withStorage(fn: (s: DurableStorage, h: StorageHarness) => Promise<void>): Promise<void> {
      const h = await makeHarness();
      const s = await h.open();
      try {
        await fn(s, h);
      } finally {
        await s.close().catch(() => undefined);
        await h.cleanup?.();
      }
    }

    it('starts empty: first index 1, last index 0, term(0) = 0, no hard state, no snapshot', async () => {
      await withStorage(async (s) => {
        expect(s.firstIndex()).toBe(1);
        expect(s.lastIndex()).toBe(0);
        expect(s.term(0)).toBe(0);
        expect(s.initialState().hardState).toBeUndefined();
        expect(s.snapshot()).toBeUndefined();
        expect(s.entries(1, 1)).toEqual([]);
      });
    });

    it('appends entries and reads them back by range and term', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 5, 1) });
        await s.save({ entries: testEntries(6, 8, 2) });
        expect(s.lastIndex()).toBe(8);
        expect(summary(s.entries(1, 9))).toEqual(summary([...testEntries(1, 5, 1), ...testEntries(6, 8, 2)]));
        expect(summary(s.entries(4, 7))).toEqual(summary([...testEntries(4, 5, 1), testEntry(6, 2)]));
        expect(s.term(5)).toBe(1);
        expect(s.term(6)).toBe(2);
      });
    });

    it('keeps entry types and empty payloads', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: [testEntry(1, 1, 'noop'), testEntry(2, 1, 'config'), testEntry(3, 1)] });
        expect(s.entries(1, 4).map((e) => [e.type, e.data.length])).toEqual([
          ['noop', 0],
          ['config', 4],
          ['command', 4],
        ]);
      });
    });

    it('replaces entries at an existing index and drops everything after them', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 6, 1) });
        await s.save({ entries: testEntries(4, 5, 3) });
        expect(s.lastIndex()).toBe(5);
        expect(summary(s.entries(1, 6))).toEqual(summary([...testEntries(1, 3, 1), ...testEntries(4, 5, 3)]));
      });
    });

    it('truncateAfter drops the suffix before new entries are written', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 6, 1) });
        await s.save({ truncateAfter: 2, entries: [] });
        expect(s.lastIndex()).toBe(2);
        await s.save({ truncateAfter: 1, entries: testEntries(2, 3, 2) });
        expect(summary(s.entries(1, 4))).toEqual(summary([testEntry(1, 1), ...testEntries(2, 3, 2)]));
        await s.save({ truncateAfter: 10, entries: [] }); // past the end: nothing to drop
        expect(s.lastIndex()).toBe(3);
      });
    });

    it('refuses a batch that would leave a gap in the log', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 2, 1) });
        await expect(s.save({ entries: testEntries(4, 5, 1) })).rejects.toSatisfy((e: unknown) => isConsensusError(e));
        expect(s.lastIndex()).toBe(2);
      });
    });

    it('honours maxBytes in entries() but always returns at least one entry', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 10, 1) });
        expect(s.entries(1, 11, 1)).toHaveLength(1);
        const some = s.entries(1, 11, 100);
        expect(some.length).toBeGreaterThanOrEqual(1);
        expect(some.length).toBeLessThan(10);
        expect(s.entries(1, 11, 1_000_000)).toHaveLength(10);
      });
    });

    it('rejects reads past the last index with a typed error', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 3, 1) });
        expect(() => s.entries(2, 6)).toThrow();
        expect(() => s.term(4)).toThrow();
        try {
          s.term(9);
        } catch (e) {
          expect(isConsensusError(e)).toBe(true);
        }
      });
    });

    it('stores hard state and returns the latest one', async () => {
      await withStorage(async (s) => {
        await s.save({ hardState: Uint8Array.of(1, 2, 3), entries: [] });
        await s.save({ hardState: Uint8Array.of(4, 5), entries: testEntries(1, 1, 1) });
        expect([...(s.initialState().hardState ?? [])]).toEqual([4, 5]);
      });
    });

    it('saves a local snapshot without touching the log, then compacts up to it', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 10, 2) });
        await s.saveSnapshot(testSnapshot(6, 2));
        expect(s.firstIndex()).toBe(1);
        expect(s.snapshot()?.index).toBe(6);
        await s.compact(4);
        expect(s.firstIndex()).toBe(5);
        expect(s.term(4)).toBe(2);
        expect(s.lastIndex()).toBe(10);
        expect(summary(s.entries(5, 11))).toEqual(summary(testEntries(5, 10, 2)));
        await s.compact(4); // idempotent
        await s.compact(2); // behind the compaction point: no-op
        expect(s.firstIndex()).toBe(5);
      });
    });

    it('refuses to compact past the latest snapshot', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 10, 1) });
        await s.saveSnapshot(testSnapshot(3, 1));
        await expect(s.compact(5)).rejects.toSatisfy((e: unknown) => isConsensusError(e));
        expect(s.firstIndex()).toBe(1);
      });
    });

    it('raises CompactedError for compacted positions', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 10, 1) });
        await s.saveSnapshot(testSnapshot(5, 1));
        await s.compact(5);
        expect(() => s.entries(3, 7)).toThrow(expect.objectContaining({ code: 'COMPACTED' }));
        expect(() => s.term(4)).toThrow(expect.objectContaining({ code: 'COMPACTED' }));
        expect(s.term(5)).toBe(1);
      });
    });

    it('installs a snapshot from a leader, replacing the whole log', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 5, 1) });
        await s.installSnapshot(testSnapshot(20, 4, 'leader state'));
        expect(s.firstIndex()).toBe(21);
        expect(s.lastIndex()).toBe(20);
        expect(s.term(20)).toBe(4);
        const snap = s.snapshot();
        expect(snap?.index).toBe(20);
        expect(snap?.config).toEqual(CONFIG);
        expect(new TextDecoder().decode(snap?.data)).toBe('leader state');
        await s.save({ entries: testEntries(21, 22, 4) });
        expect(summary(s.entries(21, 23))).toEqual(summary(testEntries(21, 22, 4)));
      });
    });

    it('skips entries covered by an installed snapshot', async () => {
      await withStorage(async (s) => {
        await s.installSnapshot(testSnapshot(5, 2));
        await s.save({ entries: testEntries(4, 7, 2) });
        expect(s.firstIndex()).toBe(6);
        expect(s.lastIndex()).toBe(7);
      });
    });

    it('reopens with everything that was saved: hard state, entries, snapshot, compaction', async () => {
      const h = await makeHarness();
      try {
        const s1 = await h.open();
        await s1.save({ hardState: Uint8Array.of(9, 9), entries: testEntries(1, 8, 1) });
        await s1.save({ entries: testEntries(6, 12, 3) });
        await s1.saveSnapshot(testSnapshot(7, 3));
        await s1.compact(7);
        await s1.save({ truncateAfter: 10, entries: [] });
        await s1.close();
        const s2 = await h.open();
        expect([...(s2.initialState().hardState ?? [])]).toEqual([9, 9]);
        expect(s2.firstIndex()).toBe(8);
        expect(s2.lastIndex()).toBe(10);
        expect(s2.term(7)).toBe(3);
        expect(summary(s2.entries(8, 11))).toEqual(summary(testEntries(8, 10, 3)));
        expect(s2.snapshot()?.index).toBe(7);
        expect(new TextDecoder().decode(s2.snapshot()?.data)).toBe('snap@7');
        await s2.close();
      } finally {
        await h.cleanup?.();
      }
    });

    it('reopens after a snapshot install with the snapshot and the entries after it', async () => {
      const h = await makeHarness();
      try {
        const s1 = await h.open();
        await s1.save({ entries: testEntries(1, 3, 1) });
        await s1.installSnapshot(testSnapshot(50, 5));
        await s1.save({ entries: testEntries(51, 53, 5) });
        await s1.close();
        const s2 = await h.open();
        expect(s2.firstIndex()).toBe(51);
        expect(s2.lastIndex()).toBe(53);
        expect(s2.term(50)).toBe(5);
        expect(summary(s2.entries(51, 54))).toEqual(summary(testEntries(51, 53, 5)));
        await s2.close();
      } finally {
        await h.cleanup?.();
      }
    });

    it('survives many small saves and large entries', async () => {
      await withStorage(async (s) => {
        for (let i = 1; i <= 200; i++) await s.save({ entries: [testEntry(i, 1 + Math.floor(i / 50))] });
        const big: LogEntry = { index: 201, term: 5, type: 'command', data: new Uint8Array(1 << 20).fill(7) };
        await s.save({ entries: [big] });
        expect(s.lastIndex()).toBe(201);
        expect(s.entries(201, 202)[0]?.data.length).toBe(1 << 20);
        expect(s.term(120)).toBe(3);
      });
    });
  });
}
