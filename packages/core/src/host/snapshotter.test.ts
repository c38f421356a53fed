import { describe, expect, it } from 'vitest';
import type { ApplyStep } from '../apply-step';
import type { DurableStorage, SnapshotJob, StateMachine } from '../types';
import { silentLogger } from './logger';
import { Snapshotter } from './snapshotter';

/**
 * The incremental snapshot's share of a busy event loop, on a fake clock: each step of the job takes STEP_MS of
 * it, and a competing callback (the other work: client requests, batches) takes `loadMs` per turn of the loop.
 */
const STEP_MS = 0.1;
const STEPS = 200;

async function runSnapshot(share: number | undefined, loadMs: number): Promise<{ jobMs: number; otherMs: number; loadTurns: number }> {
  let clock = 0;
  let steps = 0;
  let finished = false;
  const job: SnapshotJob = {
    step: () => {
      clock += STEP_MS;
      steps++;
      return steps >= STEPS ? new Uint8Array([1]) : undefined;
    },
    cancel: () => undefined,
  };
  const stateMachine = { apply: () => undefined, query: () => undefined, snapshot: () => new Uint8Array(), restore: () => undefined, beginSnapshot: () => job } as unknown as StateMachine;
  const snapshotter = new Snapshotter({
    // Stores the snapshot at once (what storage does with it is not under test).
    storage: { saveSnapshot: async () => undefined } as unknown as DurableStorage,
    stateMachine,
    logger: silentLogger,
    every: 1,
    keep: 0,
    sliceMs: 0.5,
    ...(share === undefined ? {} : { share }),
    now: () => clock,
    onSnapshot: () => {
      finished = true;
    },
    running: () => true,
    kick: () => undefined,
  });
  let otherMs = 0;
  let loadTurns = 0;
  // The other work: one callback per turn of the event loop while the snapshot runs.
  const load = () => {
    if (finished) return;
    clock += loadMs;
    otherMs += loadMs;
    loadTurns++;
    setImmediate(load);
  };
  setImmediate(load);
  snapshotter.maybeSnapshot({ index: 1, term: 1, config: { voters: ['n1'], learners: [] } } as unknown as ApplyStep);
  await snapshotter.settled;
  expect(finished).toBe(true);
  expect(steps).toBe(STEPS);
  return { jobMs: steps * STEP_MS, otherMs, loadTurns };
}

describe('Snapshotter: an incremental snapshot on a busy event loop', () => {
  it('takes at most its share (0.5 by default) of a loop kept busy by other work, and still finishes', async () => {
    const { jobMs, otherMs } = await runSnapshot(undefined, 0.3);
    // Slices of 0.5 ms, each after the other work has had 0.5 ms or more (two turns of 0.3 ms).
    expect(jobMs / (jobMs + otherMs)).toBeLessThanOrEqual(0.5);
    expect(jobMs / (jobMs + otherMs)).toBeGreaterThan(0.4);
  });

  it('takes a slice every turn with share 1 (the loop shared turn by turn)', async () => {
    const { jobMs, otherMs } = await runSnapshot(1, 0.3);
    // 0.5 ms of slice for each 0.3 ms turn of the other work.
    expect(jobMs / (jobMs + otherMs)).toBeGreaterThan(0.6);
  });

  it('gives a loop kept busy a larger share with a smaller `share`', async () => {
    const { jobMs, otherMs } = await runSnapshot(0.25, 0.3);
    expect(jobMs / (jobMs + otherMs)).toBeLessThanOrEqual(0.25);
  });

  it('runs its slices back to back on an idle loop (other turns that take no time do not hold it back)', async () => {
    const { loadTurns } = await runSnapshot(undefined, 0);
    // 200 steps of 0.1 ms in slices of 0.5 ms: 40 slices, one per turn (a turn of the loop between two slices).
    expect(loadTurns).toBeLessThanOrEqual(41);
  });
});

/** One snapshot of a pacing test: its work in ms, its size in bytes (1), and whether its save fails. */
interface Planned {
  ms: number;
  bytes?: number;
  fail?: boolean;
}

/**
 * A snapshotter on a fake clock whose n-th snapshot (from 1) is `plan(n)`: its work taken in steps of at most
 * `stepMs` (50 by default; each longer than a slice, so a slice each), then stored unless its save fails.
 */
function pacedSnapshotter(plan: (n: number) => Planned, o: { every: number; bytes: number; stepMs?: number }) {
  const clock = { now: 0 };
  let begun = 0;
  let stored = 0;
  let current: Planned = { ms: 0 };
  const stateMachine = {
    apply: () => undefined,
    query: () => undefined,
    snapshot: () => new Uint8Array(),
    restore: () => undefined,
    beginSnapshot: (): SnapshotJob => {
      const mine = plan(++begun);
      current = mine;
      let left = mine.ms;
      return {
        step: () => {
          const ms = Math.min(o.stepMs ?? 50, left);
          clock.now += ms;
          left -= ms;
          return left > 0 ? undefined : new Uint8Array(mine.bytes ?? 1);
        },
        cancel: () => undefined,
      };
    },
  } as unknown as StateMachine;
  const snapshotter = new Snapshotter({
    storage: {
      saveSnapshot: async () => {
        if (current.fail === true) throw new Error('disk full');
      },
    } as unknown as DurableStorage,
    stateMachine,
    logger: silentLogger,
    every: o.every,
    bytes: o.bytes,
    keep: 0,
    now: () => clock.now,
    onSnapshot: () => stored++,
    running: () => true,
    kick: () => undefined,
  });
  let index = 0;
  /** Applies `n` entries of `bytes` bytes each, as a batch, and lets a snapshot it starts finish. */
  const batch = async (n: number, bytes = 1) => {
    const entries = Array.from({ length: n }, () => ({ index: ++index, term: 1, type: 'command' as const, data: new Uint8Array(bytes) }));
    snapshotter.noteApplied(entries);
    snapshotter.maybeSnapshot({ index, term: 1, config: { voters: ['n1'], learners: [] } } as unknown as ApplyStep);
    await snapshotter.settled;
  };
  return { clock, batch, counts: () => ({ begun, stored }) };
}

describe('Snapshotter: pacing after a large snapshot', () => {
  it('after a snapshot whose work took 200 ms, the next one by entry count waits until 800 ms have passed since it was stored', async () => {
    const s = pacedSnapshotter(() => ({ ms: 200 }), { every: 10, bytes: 1000 });
    await s.batch(10);
    expect(s.counts()).toEqual({ begun: 1, stored: 1 });
    // 10 more entries at once, then 799 ms later: still paced.
    await s.batch(10);
    s.clock.now += 799;
    await s.batch(1);
    expect(s.counts().begun).toBe(1);
    s.clock.now += 1;
    await s.batch(1);
    expect(s.counts()).toEqual({ begun: 2, stored: 2 });
  });

  it('after a large snapshot, the byte trigger waits for as many bytes of entries as the snapshot held (when more than `bytes`), not for time', async () => {
    // Snapshots of 3000 bytes whose work took 200 ms, `bytes` 1000.
    const s = pacedSnapshotter(() => ({ ms: 200, bytes: 3000 }), { every: 10, bytes: 1000 });
    await s.batch(1, 1000);
    expect(s.counts().begun).toBe(1);
    await s.batch(1, 1000);
    await s.batch(1, 1000);
    await s.batch(1, 999);
    expect(s.counts().begun).toBe(1);
    // 3000 bytes since the last one began (no time has passed: the entry count is still paced).
    await s.batch(1, 1);
    expect(s.counts().begun).toBe(2);
  });

  it('does not pace after a snapshot whose work took under 50 ms: by entries and by `bytes`, as before', async () => {
    const s = pacedSnapshotter(() => ({ ms: 49, bytes: 3000 }), { every: 10, bytes: 1000 });
    await s.batch(10);
    await s.batch(10);
    expect(s.counts().begun).toBe(2);
    await s.batch(1, 1000);
    expect(s.counts().begun).toBe(3);
  });

  // Break-it pass (session 17): a snapshot whose save failed set the byte threshold of its retry (its size was
  // taken when its data was ready, its work only once stored).
  it('is set by stored snapshots only: a failed save leaves the byte threshold of the last stored one (3000 bytes)', async () => {
    const plan = [{ ms: 200, bytes: 3000 }, { ms: 200, bytes: 1_000_000, fail: true }, { ms: 200, bytes: 3000 }];
    const s = pacedSnapshotter((n) => plan[n - 1] as Planned, { every: 0, bytes: 1000 });
    await s.batch(1, 1000); // the first, stored
    await s.batch(1, 3000); // 3000 bytes since: the second begins, and its save fails
    expect(s.counts()).toEqual({ begun: 2, stored: 1 });
    // 3000 bytes since the failed one: as many as the last stored (large) snapshot held.
    await s.batch(1, 3000);
    expect(s.counts().begun).toBe(3);
  });

  // Break-it pass (session 17): a pause of the process inside a slice counted as the snapshot's work.
  it("counts at most 100 ms of a slice as the snapshot's work: an hour-long pause (a frozen machine) does not hold the next snapshot back for four hours", async () => {
    // The first snapshot's one step: the process stopped for an hour in it.
    const s = pacedSnapshotter((n) => ({ ms: n === 1 ? 3_600_000 : 1 }), { every: 10, bytes: 0, stepMs: Number.POSITIVE_INFINITY });
    await s.batch(10);
    expect(s.counts().begun).toBe(1);
    // Paced for 4 x 100 ms at most: 400 ms later, 10 more entries start the next one.
    s.clock.now += 400;
    await s.batch(10);
    expect(s.counts().begun).toBe(2);
  });
});
