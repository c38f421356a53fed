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

describe('Snapshotter: pacing of the entry-count trigger after a long snapshot', () => {
  /** A snapshotter whose snapshots take `snapshotMs` of work (a fake clock) and hold `snapshotBytes`, every 10 entries or 1000 bytes. */
  function paced(snapshotMs: number, snapshotBytes = 1) {
    const clock = { now: 0 };
    let begun = 0;
    let stored = 0;
    const stateMachine = {
      apply: () => undefined,
      query: () => undefined,
      snapshot: () => new Uint8Array(),
      restore: () => undefined,
      beginSnapshot: (): SnapshotJob => {
        begun++;
        // Steps of up to 50 ms each (a slice each: longer than a slice), `snapshotMs` in all.
        let left = snapshotMs;
        return {
          step: () => {
            const ms = Math.min(50, left);
            clock.now += ms;
            left -= ms;
            return left > 0 ? undefined : new Uint8Array(snapshotBytes);
          },
          cancel: () => undefined,
        };
      },
    } as unknown as StateMachine;
    const snapshotter = new Snapshotter({
      storage: { saveSnapshot: async () => undefined } as unknown as DurableStorage,
      stateMachine,
      logger: silentLogger,
      every: 10,
      bytes: 1000,
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

  it('after a snapshot whose work took 200 ms, the next one by entry count waits until 800 ms have passed since it was stored', async () => {
    const s = paced(200);
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
    const s = paced(200, 3000);
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
    const s = paced(49, 3000);
    await s.batch(10);
    await s.batch(10);
    expect(s.counts().begun).toBe(2);
    await s.batch(1, 1000);
    expect(s.counts().begun).toBe(3);
  });
});
