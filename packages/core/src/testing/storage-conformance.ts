import { isConsensusError } from '../errors';
import { MemoryStorage, type MemoryStorageState } from '../memory-storage';
import type { ClusterConfig, DurableStorage, LogEntry, Snapshot } from '../types';
import { persistReady, saveSteps } from './ready-driver';
import type { TestApi } from './test-api';

/**
 * A place a storage lives (a directory, a shared memory state). `open()` opens it, or reopens it after the
 * previous instance was closed: everything that was saved must be read back.
 */
export interface StorageHarness {
  open(): Promise<DurableStorage>;
  /** Removes what the harness created (temp directories). */
  cleanup?(): Promise<void>;
  /**
   * Optional: a power loss in the middle of one save (run by the suite when `crashes: true` is passed). On a
   * fresh place: open, run `setup` (durably), then write `save` in DESIGN r2's pinned order (snapshot install,
   * truncation, entries, hard state), losing power after `point` of the harness's own write steps (file
   * operations, say; the suite tries 0, 1, 2, ... until a save completes). Returns the storage reopened after
   * the crash, and whether the save had completed before the power went.
   */
  crashDuringSave?(setup: (s: DurableStorage) => Promise<void>, save: CrashingSave, point: number): Promise<{ storage: DurableStorage; completed: boolean }>;
}

/** What one crashing save writes: a Ready's durable part. */
export interface CrashingSave {
  snapshot?: Snapshot;
  truncateAfter?: number;
  entries: LogEntry[];
  hardState?: Uint8Array;
}

export interface StorageConformanceOptions {
  /** The harness implements `crashDuringSave`: run the crash-order cases. */
  crashes?: boolean;
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

/** The `code` of what `fn` throws (undefined when it throws nothing with a code). */
function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

/** A stable one-line rendering of everything a storage holds, for comparing states. */
function describeStorage(s: DurableStorage): string {
  const snap = s.snapshot();
  const hs = s.initialState().hardState;
  return [
    `log ${s.firstIndex()}..${s.lastIndex()} base term ${s.term(s.firstIndex() - 1)}`,
    `entries ${summary(s.entries(s.firstIndex(), s.lastIndex() + 1)).join(' ')}`,
    `hard state ${hs === undefined ? '-' : [...hs].join(',')}`,
    `snapshot ${snap === undefined ? '-' : `${snap.index}/${snap.term}/${new TextDecoder().decode(snap.data)}`}`,
  ].join('; ');
}

/** The states a crash in the middle of `save` may leave: after each prefix of its pinned steps, fewest first. */
async function prefixStates(setup: (s: DurableStorage) => Promise<void>, save: CrashingSave): Promise<string[]> {
  const reference = new MemoryStorage();
  await setup(reference);
  const base = reference.raw;
  const out: string[] = [];
  for (let steps = 0; steps <= saveSteps(save); steps++) {
    const state: MemoryStorageState = { ...base, log: [...base.log] };
    const s = new MemoryStorage(state);
    persistReady(s, save, steps);
    out.push(describeStorage(s));
  }
  return out;
}

/**
 * The storage contract of DESIGN.md, as one suite every `DurableStorage` runs unchanged (MemoryStorage in
 * core, storage-fs on disk): append, overwrite in place (r2), truncateAfter, hard state, snapshots,
 * compaction, reopen, and (with `crashes`) the pinned crash order inside one save. The test runner's
 * functions come in through `api`, so this module imports no test runner:
 *
 * ```ts
 * import { describe, expect, it } from 'vitest';
 * describeStorageConformance({ describe, it, expect }, 'MyStorage', () => ({ open: async () => new MyStorage() }));
 * ```
 */
export function describeStorageConformance(
  api: TestApi,
  name: string,
  makeHarness: () => Promise<StorageHarness> | StorageHarness,
  options: StorageConformanceOptions = {},
): void {
  const { describe, it, expect } = api;
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

    it('overwrites an entry at an existing index in place, keeping every entry after it (r2)', async () => {
      await withStorage(async (s) => {
        await s.save({ entries: testEntries(1, 6, 1) });
        await s.save({ entries: [testEntry(3, 4, 'config')] });
        expect(s.lastIndex()).toBe(6);
        expect(s.term(3)).toBe(4);
        expect(s.term(4)).toBe(1);
        const expected = [...testEntries(1, 2, 1), testEntry(3, 4, 'config'), ...testEntries(4, 6, 1)];
        expect(summary(s.entries(1, 7))).toEqual(summary(expected));
        // A batch that overwrites the tail and appends past it.
        await s.save({ entries: testEntries(5, 8, 5) });
        expect(s.lastIndex()).toBe(8);
        expect(summary(s.entries(1, 9))).toEqual(summary([...expected.slice(0, 4), ...testEntries(5, 8, 5)]));
      });
    });

    it('reads overwritten entries back after reopen, and compacts and snapshots correctly around them', async () => {
      const h = await makeHarness();
      try {
        const s1 = await h.open();
        await s1.save({ hardState: Uint8Array.of(1), entries: testEntries(1, 40, 1) });
        // Overwrite scattered slots, some more than once: the live record of a slot is newer than its neighbours'.
        await s1.save({ entries: [testEntry(12, 2)] });
        await s1.save({ entries: testEntries(20, 21, 2) });
        await s1.save({ entries: testEntries(41, 45, 2) });
        await s1.save({ entries: [testEntry(12, 3)] });
        await s1.save({ entries: [testEntry(33, 3, 'noop')] });
        const expected = (): LogEntry[] => {
          const log = [...testEntries(1, 40, 1), ...testEntries(41, 45, 2)];
          log[11] = testEntry(12, 3);
          log[19] = testEntry(20, 2);
          log[20] = testEntry(21, 2);
          log[32] = testEntry(33, 3, 'noop');
          return log;
        };
        expect(summary(s1.entries(1, 46))).toEqual(summary(expected()));
        await s1.close();
        const s2 = await h.open();
        expect(s2.lastIndex()).toBe(45);
        expect(summary(s2.entries(1, 46))).toEqual(summary(expected()));
        // A snapshot at an overwritten slot takes its new term; compaction keeps every later slot readable.
        await s2.saveSnapshot(testSnapshot(12, 3));
        await s2.compact(11);
        expect(s2.term(11)).toBe(1);
        expect(summary(s2.entries(12, 46))).toEqual(summary(expected().slice(11)));
        await s2.compact(12);
        await s2.save({ entries: [testEntry(13, 4)] });
        await s2.close();
        const s3 = await h.open();
        const after = expected().slice(12);
        after[0] = testEntry(13, 4);
        expect(s3.firstIndex()).toBe(13);
        expect(s3.term(12)).toBe(3);
        expect(summary(s3.entries(13, 46))).toEqual(summary(after));
        await s3.saveSnapshot(testSnapshot(30, 1));
        await s3.compact(30);
        await s3.close();
        const s4 = await h.open();
        expect(s4.firstIndex()).toBe(31);
        expect(summary(s4.entries(31, 46))).toEqual(summary(after.slice(18)));
        await s4.close();
      } finally {
        await h.cleanup?.();
      }
    });

    it('overwrites in place, then truncates: only truncateAfter drops the suffix', async () => {
      const h = await makeHarness();
      try {
        const s1 = await h.open();
        await s1.save({ entries: testEntries(1, 8, 1) });
        await s1.save({ entries: testEntries(3, 4, 2) });
        await s1.save({ truncateAfter: 5, entries: [] });
        expect(s1.lastIndex()).toBe(5);
        await s1.save({ truncateAfter: 3, entries: testEntries(4, 6, 3) });
        const expected = [...testEntries(1, 2, 1), testEntry(3, 2), ...testEntries(4, 6, 3)];
        expect(summary(s1.entries(1, 7))).toEqual(summary(expected));
        // An overwrite after the truncation lands on the new log, not on what was dropped.
        await s1.save({ entries: [testEntry(5, 4)] });
        expected[4] = testEntry(5, 4);
        expect(summary(s1.entries(1, 7))).toEqual(summary(expected));
        await s1.close();
        const s2 = await h.open();
        expect(s2.lastIndex()).toBe(6);
        expect(summary(s2.entries(1, 7))).toEqual(summary(expected));
        await s2.close();
      } finally {
        await h.cleanup?.();
      }
    });

    it('refuses a batch whose first entry would leave a gap after the truncation, and writes none of it', async () => {
      await withStorage(async (s) => {
        await s.save({ hardState: Uint8Array.of(1), entries: testEntries(1, 6, 1) });
        await expect(s.save({ hardState: Uint8Array.of(2), truncateAfter: 2, entries: testEntries(4, 5, 2) })).rejects.toSatisfy((e: unknown) =>
          isConsensusError(e),
        );
        expect(s.lastIndex()).toBe(6);
        expect([...(s.initialState().hardState ?? [])]).toEqual([1]);
        expect(summary(s.entries(1, 7))).toEqual(summary(testEntries(1, 6, 1)));
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
        expect(errorCode(() => s.entries(3, 7))).toBe('COMPACTED');
        expect(errorCode(() => s.term(4))).toBe('COMPACTED');
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
        await s1.save({ truncateAfter: 5, entries: testEntries(6, 12, 3) });
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

    if (options.crashes === true) {
      const setupLog = (last: number) => async (s: DurableStorage): Promise<void> => {
        await s.save({ hardState: Uint8Array.of(1), entries: testEntries(1, last, 1) });
      };
      const cases: { name: string; setup: (s: DurableStorage) => Promise<void>; save: CrashingSave }[] = [
        {
          name: 'truncation, overwrites, appends and hard state',
          setup: setupLog(8),
          save: { truncateAfter: 6, entries: testEntries(5, 8, 2), hardState: Uint8Array.of(2) },
        },
        {
          name: 'overwrites in place, an append and hard state',
          setup: setupLog(6),
          save: { entries: testEntries(3, 7, 2), hardState: Uint8Array.of(3) },
        },
        {
          name: 'snapshot install, entries after it and hard state',
          setup: setupLog(5),
          save: { snapshot: testSnapshot(10, 2, 'installed'), entries: testEntries(11, 13, 2), hardState: Uint8Array.of(4) },
        },
      ];
      for (const c of cases) {
        it(`a crash in the middle of a save leaves a prefix of snapshot, truncation, entries, hard state (${c.name})`, async () => {
          const states = await prefixStates(c.setup, c.save);
          const seen = new Set<string>();
          let completed = false;
          for (let point = 0; !completed; point++) {
            if (point > 1000) throw new Error('crashDuringSave never reported a completed save after 1000 crash points');
            const h = await makeHarness();
            if (h.crashDuringSave === undefined) throw new Error('the harness was declared with crashes: true but has no crashDuringSave');
            try {
              const result = await h.crashDuringSave(c.setup, c.save, point);
              completed = result.completed;
              const got = describeStorage(result.storage);
              await result.storage.close();
              if (!states.includes(got)) {
                throw new Error(`crash point ${point}: the recovered state is no prefix of the pinned order:\n  ${got}\nexpected one of:\n  ${states.join('\n  ')}`);
              }
              if (completed) expect(got).toBe(states.at(-1));
              seen.add(got);
            } finally {
              await h.cleanup?.();
            }
          }
          // The crash points reached both ends: nothing of the save, and all of it.
          expect(seen.has(states[0] as string)).toBe(true);
          expect(seen.has(states.at(-1) as string)).toBe(true);
        });
      }
    }
  });
}
