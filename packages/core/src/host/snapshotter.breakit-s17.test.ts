/**
 * Break-it pass (session 17) on snapshot pacing. The byte trigger after a large snapshot is documented to wait
 * for "as many bytes as that snapshot held" (the last one taken, whose work set the pacing). But `lastBytes` is
 * set when a job's data is ready, before `saveSnapshot`, while `lastWorkMs`/`lastDoneAt` are set only once the
 * save succeeds: a snapshot whose save FAILED ("will retry later") still sets the threshold of the retry, paired
 * with the work of the older stored one.
 */
import { describe, expect, it } from 'vitest';
import type { ApplyStep } from '../apply-step';
import type { DurableStorage, SnapshotJob, StateMachine } from '../types';
import { silentLogger } from './logger';
import { Snapshotter } from './snapshotter';

describe('Snapshotter pacing: a failed save', () => {
  it('does not set the byte threshold of its retry (the last stored snapshot, 3000 bytes, does)', async () => {
    const clock = { now: 0 };
    let begun = 0;
    // The first snapshot: 200 ms of work, 3000 bytes, stored. The second: 1,000,000 bytes, its save fails.
    const plan = [
      { ms: 200, size: 3000, fail: false },
      { ms: 200, size: 1_000_000, fail: true },
      { ms: 200, size: 3000, fail: false },
    ];
    let current = plan[0] as (typeof plan)[number];
    const stateMachine = {
      apply: () => undefined,
      query: () => undefined,
      snapshot: () => new Uint8Array(),
      restore: () => undefined,
      beginSnapshot: (): SnapshotJob => {
        const mine = plan[begun++] as (typeof plan)[number];
        current = mine;
        return {
          step: () => {
            clock.now += mine.ms;
            return new Uint8Array(mine.size);
          },
          cancel: () => undefined,
        };
      },
    } as unknown as StateMachine;
    const snapshotter = new Snapshotter({
      storage: {
        saveSnapshot: async () => {
          if (current.fail) throw new Error('disk full');
        },
      } as unknown as DurableStorage,
      stateMachine,
      logger: silentLogger,
      every: 0,
      bytes: 1000,
      keep: 0,
      now: () => clock.now,
      onSnapshot: () => undefined,
      running: () => true,
      kick: () => undefined,
    });
    let index = 0;
    const batch = async (bytes: number) => {
      snapshotter.noteApplied([{ index: ++index, term: 1, type: 'command', data: new Uint8Array(bytes) }]);
      snapshotter.maybeSnapshot({ index, term: 1, config: { voters: ['n1'], learners: [] } } as unknown as ApplyStep);
      await snapshotter.settled;
    };
    await batch(1000); // the first, stored
    await batch(3000); // 3000 bytes since: the second begins, and its save fails
    expect(begun).toBe(2);
    // 3000 bytes since the failed one: as many as the last stored (large) snapshot held.
    await batch(3000);
    expect(begun).toBe(3);
  });
});

describe('Snapshotter pacing: a pause inside a slice', () => {
  it('counts at most 100 ms of a slice as the snapshot\'s work: an hour-long pause (a frozen machine) does not hold the next snapshot back for four hours', async () => {
    const clock = { now: 0 };
    let begun = 0;
    const stateMachine = {
      apply: () => undefined,
      query: () => undefined,
      snapshot: () => new Uint8Array(),
      restore: () => undefined,
      beginSnapshot: (): SnapshotJob => {
        begun++;
        return {
          step: () => {
            // The first snapshot's one step: the process stopped for an hour in it.
            clock.now += begun === 1 ? 3_600_000 : 1;
            return new Uint8Array(1);
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
      bytes: 0,
      keep: 0,
      now: () => clock.now,
      onSnapshot: () => undefined,
      running: () => true,
      kick: () => undefined,
    });
    let index = 0;
    const batch = async (n: number) => {
      index += n;
      snapshotter.maybeSnapshot({ index, term: 1, config: { voters: ['n1'], learners: [] } } as unknown as ApplyStep);
      await snapshotter.settled;
    };
    await batch(10);
    expect(begun).toBe(1);
    // Paced for 4 x 100 ms at most: 400 ms later, 10 more entries start the next one.
    clock.now += 400;
    await batch(10);
    expect(begun).toBe(2);
  });
});
