import { describe, expect, it } from 'vitest';
import { MemoryStorage, type DurableStorage, type LogEntry, type MemoryStorageState, type Snapshot } from '@consensus-kit/core';
import { FileStorage, openFileStorage } from './file-storage';
import { MemoryFileSystem, type CrashMode } from './memory-file-system';

/**
 * Crash consistency, ALICE style (Pillai et al., OSDI'14): run a workload of appends, group commits,
 * truncations, rewrites (after a truncation, and in place), hard-state updates, local snapshots, compactions and a snapshot install on a
 * recording file system; power is lost after every prefix of its mutating file operations; each crash image
 * (only what was synced; everything written; synced plus torn unsynced tails; torn tails with lost sectors)
 * is reopened and must hold everything that was acknowledged, and nothing that is not a state the workload
 * passed through (the in-flight operation may or may not have happened, a save may be partly there).
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };

function entry(index: number, term: number): LogEntry {
  const text = `entry ${index} term ${term} `;
  const data = new TextEncoder().encode(text.repeat(Math.ceil(250 / text.length)).slice(0, 200 + ((index * 37) % 100)));
  return { index, term, type: index % 7 === 0 ? 'config' : 'command', data };
}

function entries(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function snap(index: number, term: number): Snapshot {
  return { index, term, config: CONFIG, data: new TextEncoder().encode(`state machine at ${index}/${term} `.repeat(40)) };
}

const hs = (n: number): Uint8Array => Uint8Array.of(n, n + 1, n + 2);

interface Op {
  name: string;
  run(s: DurableStorage): Promise<unknown>;
  /** Hard states this op may leave behind if interrupted (besides the previous one). */
  hardStates?: Uint8Array[];
}

const save = (name: string, batch: Parameters<DurableStorage['save']>[0]): Op => ({
  name,
  run: (s) => s.save(batch),
  ...(batch.hardState === undefined ? {} : { hardStates: [batch.hardState] }),
});

const WORKLOAD: Op[] = [
  save('append 1..5 with hard state', { hardState: hs(1), entries: entries(1, 5, 1) }),
  {
    name: 'group commit of three concurrent saves',
    run: (s) =>
      Promise.all([
        s.save({ entries: entries(6, 6, 1) }),
        s.save({ entries: entries(7, 9, 1) }),
        s.save({ hardState: hs(2), entries: entries(10, 12, 2) }),
      ]),
    hardStates: [hs(2)],
  },
  save('truncate after 7 and append 8..9 at term 3', { hardState: hs(3), truncateAfter: 7, entries: entries(8, 9, 3) }),
  save('overwrite 9 in place and append 10..16 at term 4', { entries: entries(9, 16, 4) }),
  { name: 'local snapshot at 10', run: (s) => s.saveSnapshot(snap(10, 4)) },
  { name: 'compact through 8', run: (s) => s.compact(8) },
  save('append 17..30', { entries: entries(17, 30, 4) }),
  save('truncate after 25', { truncateAfter: 25, entries: [] }),
  {
    // The snapshot file is written beside the WAL: the appends may become durable before it or after it.
    name: 'local snapshot at 24 while appending 26..28',
    run: (s) => Promise.all([s.saveSnapshot(snap(24, 4)), s.save({ entries: entries(26, 28, 4) })]),
  },
  save('append 29..38', { entries: entries(29, 38, 4) }),
  // An overwrite in place between a local snapshot and the compaction after it (25's record moves on).
  save('overwrite 25 in place at term 5', { hardState: hs(6), entries: [entry(25, 5)] }),
  { name: 'compact through 24', run: (s) => s.compact(24) },
  { name: 'install snapshot at 40', run: (s) => s.installSnapshot(snap(40, 5)) },
  save('append 41..48 with hard state', { hardState: hs(4), entries: entries(41, 48, 5) }),
  save('hard state only', { hardState: hs(5), entries: [] }),
  {
    name: 'install snapshot at 60 from a stream of chunks',
    run: (s) => {
      const sn = snap(60, 6);
      if (!(s instanceof FileStorage)) return s.installSnapshot(sn);
      const pieces = [sn.data.subarray(0, 300), sn.data.subarray(300, 700), sn.data.subarray(700)];
      return s.installSnapshotStream(sn, sn.data.length, pieces);
    },
  },
  save('append 61..64', { entries: entries(61, 64, 6) }),
];

function cloneState(s: MemoryStorageState): MemoryStorageState {
  return { ...s, log: [...s.log] };
}

/** The states a workload passes through: states[j] is after the first j ops. */
async function referenceStates(workload: readonly Op[]): Promise<MemoryStorageState[]> {
  const m = new MemoryStorage();
  const states = [cloneState(m.raw)];
  for (const op of workload) {
    await op.run(m);
    states.push(cloneState(m.raw));
  }
  return states;
}

function same(a: LogEntry, b: LogEntry | undefined): boolean {
  if (b === undefined) return false;
  return a.index === b.index && a.term === b.term && a.type === b.type && Buffer.from(a.data).equals(Buffer.from(b.data));
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

/** Whether recovered storage `r` is `cand`'s log, or (for the in-flight op) a state between `prev` and it. */
function logMatches(r: FileStorage, cand: MemoryStorageState, prev: MemoryStorageState, isPrev: boolean): string | undefined {
  const candLast = cand.compactedIndex + cand.log.length;
  if (r.firstIndex() !== cand.compactedIndex + 1) return `first index ${r.firstIndex()} != ${cand.compactedIndex + 1}`;
  if (r.term(r.firstIndex() - 1) !== cand.compactedTerm) return `base term ${r.term(r.firstIndex() - 1)} != ${cand.compactedTerm}`;
  if (r.lastIndex() > candLast) return `last index ${r.lastIndex()} > ${candLast}`;
  let mustReach = candLast;
  if (!isPrev) {
    // The part of the log the in-flight op does not change was acknowledged: it must all be there.
    const prevLast = prev.compactedIndex + prev.log.length;
    mustReach = cand.compactedIndex;
    while (mustReach < Math.min(candLast, prevLast) && mustReach + 1 > prev.compactedIndex) {
      const a = cand.log[mustReach - cand.compactedIndex] as LogEntry;
      const b = prev.log[mustReach - prev.compactedIndex] as LogEntry;
      if (!same(a, b)) break;
      mustReach++;
    }
  }
  if (r.lastIndex() < mustReach) return `last index ${r.lastIndex()} < ${mustReach}: acknowledged entries lost`;
  const got = r.entries(r.firstIndex(), r.lastIndex() + 1);
  // The in-flight op writes its entries in index order and a crash keeps a prefix of them (DESIGN r2): the
  // recovered log may hold its new entries up to some index, then entries it had not yet overwritten.
  let old = false;
  for (const e of got) {
    const isNew = same(e, cand.log[e.index - cand.compactedIndex - 1]);
    const wasThere = !isPrev && e.index > prev.compactedIndex && same(e, prev.log[e.index - prev.compactedIndex - 1]);
    if (isNew && !old) continue;
    if (wasThere) {
      old = true;
      continue;
    }
    return `entry ${e.index} differs`;
  }
  return undefined;
}

function checkRecovered(r: FileStorage, prev: MemoryStorageState, next: MemoryStorageState, hardStates: Uint8Array[]): void {
  const hsOk = [prev.hardState, next.hardState, ...hardStates].some((h) => sameBytes(h, r.initialState().hardState));
  expect(hsOk, `hard state ${String(r.initialState().hardState)}`).toBe(true);
  const rs = r.snapshot();
  const snapOk = [prev.snapshot, next.snapshot].some(
    (s) => s?.index === rs?.index && s?.term === rs?.term && sameBytes(s?.data, rs?.data),
  );
  expect(snapOk, `snapshot ${rs?.index}`).toBe(true);
  const asPrev = logMatches(r, prev, prev, true);
  const asNext = logMatches(r, next, prev, false);
  expect(asPrev === undefined || asNext === undefined, `log matches neither state: prev: ${asPrev}; next: ${asNext}`).toBe(true);
}

const MODES: { mode: CrashMode; seeds: number[] }[] = [
  { mode: 'synced', seeds: [1] },
  { mode: 'all', seeds: [1] },
  { mode: 'torn', seeds: [1, 2, 3] },
  { mode: 'torn-sectors', seeds: [4, 5] },
];

interface SweepResult {
  /** Mutating file operations of the workload after open. */
  total: number;
  /** The operations themselves, from the run without a crash. */
  log: string[];
  images: number;
  tornTails: number;
  /** Bytes of zeros the run without a crash preallocated. */
  preallocated: number;
}

/**
 * Runs `workload` once per crash point k = 0..total (power lost after k mutating file operations), reopens
 * every crash image and checks it against the reference states.
 */
async function crashSweep(workload: readonly Op[], preallocateBytes: number, crashRecovery = false): Promise<SweepResult> {
  const states = await referenceStates(workload);
  const options = { logger: quiet, segmentBytes: 4096, cacheBytes: 2048, preallocateBytes };

  // A run without a crash counts the mutating operations after open.
  const counting = new MemoryFileSystem();
  const full = await openFileStorage('/data', { ...options, fileSystem: counting });
  const before = counting.operations;
  for (const op of workload) await op.run(full);
  const total = counting.operations - before;
  const preallocated = full.stats().preallocatedBytes;
  await full.close();

  let images = 0;
  let tornTails = 0;
  for (let k = 0; k <= total; k++) {
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    fileSystem.crashAfter(k);
    let done = 0;
    for (const op of workload) {
      try {
        await op.run(s);
      } catch {
        break;
      }
      done++;
    }
    const prev = states[done] as MemoryStorageState;
    const next = states[Math.min(done + 1, workload.length)] as MemoryStorageState;
    const hardStates = workload[done]?.hardStates ?? [];
    for (const { mode, seeds } of MODES) {
      for (const seed of seeds) {
        const image = fileSystem.crashImage(mode, seed * 1000 + k);
        const where = `crash after op ${k} (${fileSystem.log[k - 1] ?? 'start'}), mode ${mode}/${seed}, during "${workload[done]?.name}"`;
        let warned = false;
        const logger = { ...quiet, warn: (msg: string) => void (warned ||= msg.includes('torn')) };
        let r: FileStorage;
        try {
          r = await openFileStorage('/data', { ...options, logger, fileSystem: image });
        } catch (e) {
          throw new Error(`${where}: open failed: ${String(e)}`);
        }
        if (warned) tornTails++;
        try {
          checkRecovered(r, prev, next, hardStates);
          // The recovered storage must take new writes and read them back after another reopen.
          const last = r.lastIndex();
          const term = r.term(last) + 1;
          await r.save({ entries: [entry(last + 1, term)] });
          await r.close();
          const again = await openFileStorage('/data', { ...options, fileSystem: image });
          expect(again.lastIndex()).toBe(last + 1);
          expect(same(again.entries(last + 1, last + 2)[0] as LogEntry, entry(last + 1, term))).toBe(true);
          await again.close();
          if (crashRecovery && mode === 'torn') {
            await crashDuringRecovery(fileSystem.crashImage(mode, seed * 1000 + k), prev, next, hardStates, preallocateBytes);
          }
        } catch (e) {
          throw new Error(`${where}: ${String(e)}`);
        }
        images++;
      }
    }
  }
  return { total, log: counting.log, images, tornTails, preallocated };
}

const recoveryStats = { recoveries: 0, completedInstalls: 0 };

/**
 * Loses power again at every mutating step of the recovery of `image` (truncating a torn tail, removing a
 * half-created segment, completing an interrupted snapshot install, taking the lock) and checks that the
 * recovery after that still finds a valid state.
 */
async function crashDuringRecovery(
  image: MemoryFileSystem,
  prev: MemoryStorageState,
  next: MemoryStorageState,
  hardStates: Uint8Array[],
  preallocateBytes: number,
): Promise<void> {
  const options = { logger: quiet, segmentBytes: 4096, cacheBytes: 2048, preallocateBytes };
  const probe = image.crashImage('all');
  const before = probe.operations;
  const logger = { ...quiet, warn: (msg: string) => void (msg.includes('snapshot install') && recoveryStats.completedInstalls++) };
  await openFileStorage('/data', { ...options, logger, fileSystem: probe });
  recoveryStats.recoveries++;
  const steps = probe.operations - before;
  for (let j = 0; j < steps; j++) {
    const attempt = image.crashImage('all');
    attempt.crashAfter(j);
    await openFileStorage('/data', { ...options, fileSystem: attempt }).catch(() => undefined);
    for (const mode of ['synced', 'all'] as const) {
      const r = await openFileStorage('/data', { ...options, fileSystem: attempt.crashImage(mode) });
      try {
        checkRecovered(r, prev, next, hardStates);
      } catch (e) {
        throw new Error(`power lost again after recovery step ${j} (${attempt.log.at(-1)}), then ${mode}: ${String(e)}`);
      }
      await r.close();
    }
  }
}

/** A seeded random workload, generated against a MemoryStorage model so every op is valid where it runs. */
function randomWorkload(seed: number, length: number): Op[] {
  let x = seed >>> 0 || 1;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return Math.floor((x / 0x100000000) * n);
  };
  const model = new MemoryStorage();
  let term = 1;
  let hsCounter = 10;
  const ops: Op[] = [];
  const appendBatch = (): Parameters<DurableStorage['save']>[0] => {
    const from = model.lastIndex() + 1;
    const batch = { entries: entries(from, from + rnd(12), term), ...(rnd(4) === 0 ? { hardState: hs(hsCounter++) } : {}) };
    model.saveNow(batch);
    return batch;
  };
  while (ops.length < length) {
    const first = model.firstIndex();
    const last = model.lastIndex();
    const snapIndex = model.snapshot()?.index ?? 0;
    const choice = rnd(10);
    if (choice <= 2 || last < first) {
      const batch = appendBatch();
      ops.push(save(`append ${batch.entries[0]?.index}..${batch.entries.at(-1)?.index}`, batch));
    } else if (choice === 3) {
      const batches = [appendBatch(), appendBatch(), appendBatch()];
      ops.push({
        name: `group of ${batches.length} appends`,
        run: (s) => Promise.all(batches.map((b) => s.save(b))),
        hardStates: batches.flatMap((b) => (b.hardState === undefined ? [] : [b.hardState])),
      });
    } else if (choice === 4) {
      // Rewrite from an index: either raft's way (truncate, then write) or in place (DESIGN r2: only the
      // indexes written change).
      term++;
      const from = first + rnd(last - first + 1);
      const inPlace = rnd(2) === 0;
      const batch = { entries: entries(from, from + rnd(6), term), hardState: hs(hsCounter++), ...(inPlace ? {} : { truncateAfter: from - 1 }) };
      model.saveNow(batch);
      ops.push(save(`${inPlace ? 'overwrite in place' : 'truncate and replace'} from ${from} at term ${term}`, batch));
    } else if (choice === 5) {
      const after = first - 1 + rnd(last - first + 2);
      model.saveNow({ truncateAfter: after, entries: [] });
      ops.push(save(`truncate after ${after}`, { truncateAfter: after, entries: [] }));
    } else if (choice === 6 || choice === 7) {
      const lo = Math.max(snapIndex, first - 1, 1);
      if (lo > last) continue;
      const at = lo + rnd(last - lo + 1);
      const sn = snap(at, model.term(at));
      model.saveSnapshotNow(sn);
      ops.push({ name: `local snapshot at ${at}`, run: (s) => s.saveSnapshot(sn) });
      const upTo = first - 1 + rnd(at - first + 2);
      model.compactNow(upTo);
      ops.push({ name: `compact through ${upTo}`, run: (s) => s.compact(upTo) });
    } else if (choice === 8) {
      term++;
      const at = Math.max(last, snapIndex) + 1 + rnd(20);
      const sn = snap(at, term);
      model.installSnapshotNow(sn);
      ops.push({ name: `install snapshot at ${at}`, run: (s) => s.installSnapshot(sn) });
    } else {
      const h = hs(hsCounter++);
      model.saveNow({ hardState: h, entries: [] });
      ops.push(save('hard state only', { hardState: h, entries: [] }));
    }
  }
  return ops;
}

/**
 * Each sweep runs three ways: appending (no preallocation); with zeros kept a whole segment ahead (every write
 * after a segment's first lands on zeros); and with a 1 KiB window, so background extensions are in flight
 * while writes go on and some writes must wait for one.
 */
const APPENDING = { name: 'appending', bytes: 0 };
const SMALL_WINDOW = { name: 'a 1 KiB preallocation window', bytes: 1024 };
const PREALLOCATION = [APPENDING, { name: 'preallocated segments', bytes: 4096 }, SMALL_WINDOW];

describe('crash consistency (every prefix of the file operations, four crash models)', () => {
  const recoveriesBefore = { n: 0 };
  for (const p of PREALLOCATION) {
    it(`keeps every acknowledged write and recovers to a state the workload passed through (${p.name})`, async () => {
      recoveriesBefore.n = recoveryStats.recoveries;
      const result = await crashSweep(WORKLOAD, p.bytes, true);
      // Recoveries were crashed too, among them recoveries that complete an interrupted snapshot install.
      expect(recoveryStats.recoveries - recoveriesBefore.n).toBe(3 * (result.total + 1)); // the three torn images of each crash point
      expect(recoveryStats.completedInstalls).toBeGreaterThan(0);
      expect(result.total).toBeGreaterThan(50);
      // The workload exercises segment rolls, segment deletion by compaction and atomic file replacement.
      expect(result.log.filter((l) => /^open create \/data\/wal-/.test(l)).length).toBeGreaterThan(3);
      expect(result.log.some((l) => /^unlink \/data\/wal-/.test(l))).toBe(true);
      expect(result.log.some((l) => /^rename \/data\/snap-.*\.tmp ->/.test(l))).toBe(true);
      expect(result.log.some((l) => /^rename \/data\/hardstate\.tmp ->/.test(l))).toBe(true);
      // With preallocation, segments really were extended with zeros (and written over them).
      if (p.bytes === 0) expect(result.preallocated).toBe(0);
      else expect(result.preallocated).toBeGreaterThan(2 * p.bytes);
      expect(result.images).toBe((result.total + 1) * 7);
      // The torn models really produced torn tails that recovery had to cut.
      expect(result.tornTails).toBeGreaterThan(0);
    });
  }

  const seeds = (process.env.STORAGE_FS_CRASH_SEEDS ?? '1,2,3').split(',').map(Number);
  for (const seed of seeds) {
    for (const p of [APPENDING, SMALL_WINDOW]) {
      it(`holds for a seeded random workload (seed ${seed}, ${p.name}; replay with STORAGE_FS_CRASH_SEEDS=${seed})`, async () => {
        const result = await crashSweep(randomWorkload(seed, 30), p.bytes);
        expect(result.images).toBe((result.total + 1) * 7);
      });
    }
  }
});

describe('crash during recovery', () => {
  it.each([
    ['appending', 0],
    ['into preallocated zeros', 64 << 10],
  ])('recovery is idempotent: power lost at any step of a recovery that truncates a torn tail (%s)', async (_name, preallocateBytes) => {
    const options = { logger: quiet, segmentBytes: 1 << 20, preallocateBytes };
    const fileSystem = new MemoryFileSystem();
    const s = await openFileStorage('/data', { ...options, fileSystem });
    await s.save({ hardState: hs(1), entries: entries(1, 20, 1) });
    // Let the background extension with zeros finish (memory file operations settle within a turn).
    await new Promise((r) => setImmediate(r));
    if (preallocateBytes === 0) expect(s.stats().preallocatedBytes).toBe(0);
    else expect(s.stats().preallocatedBytes).toBeGreaterThan(0);
    // The next save is torn: only part of its write reaches the disk before the power goes.
    fileSystem.crashAfter(1);
    await s.save({ entries: entries(21, 24, 1) }).catch(() => undefined);
    const torn = fileSystem.crashImage('torn', 7);
    const tornBytes = torn.readFileRaw(torn.listFiles().filter((p) => p.endsWith('.log')).at(-1) as string);
    const fullBytes = fileSystem.readFileRaw(fileSystem.listFiles().filter((p) => p.endsWith('.log')).at(-1) as string);
    if (preallocateBytes === 0) expect(tornBytes?.length).toBeLessThan(fullBytes?.length ?? 0);
    else expect(tornBytes?.length).toBe(fullBytes?.length);
    expect(tornBytes).not.toEqual(fullBytes);

    // Count the mutating steps of a clean recovery of that image.
    const probe = torn.crashImage('all');
    const before = probe.operations;
    let truncated = false;
    const logger = { ...quiet, warn: (msg: string) => void (truncated ||= msg.includes('torn')) };
    await (await openFileStorage('/data', { ...options, logger, fileSystem: probe })).close();
    expect(truncated).toBe(true);
    const steps = probe.operations - before;
    expect(steps).toBeGreaterThan(2);
    for (let k = 0; k < steps; k++) {
      for (const mode of ['synced', 'all'] as const) {
        const image = torn.crashImage('all');
        image.crashAfter(k);
        await openFileStorage('/data', { ...options, fileSystem: image })
          .then((r) => r.close())
          .catch(() => undefined);
        const after = await openFileStorage('/data', { ...options, fileSystem: image.crashImage(mode) });
        expect(after.lastIndex()).toBeGreaterThanOrEqual(20);
        expect(after.lastIndex()).toBeLessThanOrEqual(24);
        const got = after.entries(1, after.lastIndex() + 1);
        got.forEach((e, i) => expect(same(e, entry(i + 1, 1))).toBe(true));
        expect(sameBytes(after.initialState().hardState, hs(1))).toBe(true);
        await after.close();
      }
    }
  });
});

describe('hard state never runs ahead of the log', () => {
  it('a hard state that names an index (a commit index) never points past the recovered log after any crash', async () => {
    const options = { logger: quiet, segmentBytes: 4096 };
    const commitOf = (last: number): Uint8Array => Uint8Array.of(last >> 8, last & 0xff);
    const run = async (s: DurableStorage): Promise<void> => {
      for (let i = 1; i <= 60; i += 6) await s.save({ hardState: commitOf(i + 5), entries: entries(i, i + 5, 1) });
    };
    const counting = new MemoryFileSystem();
    const full = await openFileStorage('/data', { ...options, fileSystem: counting });
    const before = counting.operations;
    await run(full);
    const total = counting.operations - before;
    await full.close();
    for (let k = 0; k <= total; k++) {
      const fileSystem = new MemoryFileSystem();
      const s = await openFileStorage('/data', { ...options, fileSystem });
      fileSystem.crashAfter(k);
      await run(s).catch(() => undefined);
      for (const mode of ['synced', 'all', 'torn'] as const) {
        const r = await openFileStorage('/data', { ...options, fileSystem: fileSystem.crashImage(mode, k) });
        const h = r.initialState().hardState;
        const commit = h === undefined ? 0 : ((h[0] as number) << 8) | (h[1] as number);
        expect(commit, `crash after op ${k} (${fileSystem.log[k - 1]}), mode ${mode}`).toBeLessThanOrEqual(r.lastIndex());
        await r.close();
      }
    }
  });
});
