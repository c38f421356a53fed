import { performance } from 'node:perf_hooks';
import { StoppedError } from '../errors';
import type { RestoreJob } from '../types';

/**
 * The longest a slice of an incremental restore runs before the event loop gets a turn, by default: the same
 * budget as a snapshot's slice (`DEFAULT_SNAPSHOT_SLICE_MS`), so a follower installing a large snapshot still
 * answers its transport (heartbeats) between slices.
 */
export const DEFAULT_RESTORE_SLICE_MS = 0.5;
/** Units of work (a state machine's own, e.g. keys) asked of one `RestoreJob.step`. */
const STEP_UNITS = 64;

export interface RestoreRunOptions {
  sliceMs?: number;
  /** Whether the node still runs: once it does not, the job is cancelled and the run rejects with `StoppedError`. */
  running(): boolean;
}

/**
 * Runs an incremental restore (`StateMachine.beginRestore`) to its end: steps for up to `sliceMs`, then yields
 * the event loop (`setImmediate`, after pending I/O). Resolves once the restored state is in place; rejects
 * with `StoppedError` (the job cancelled, the state machine as it was) if the node stops first, or with what a
 * step threw (the job cancelled too).
 */
export function runRestoreJob(job: RestoreJob, o: RestoreRunOptions): Promise<void> {
  const sliceMs = o.sliceMs ?? DEFAULT_RESTORE_SLICE_MS;
  return new Promise<void>((resolve, reject) => {
    const slice = () => {
      if (!o.running()) {
        job.cancel();
        reject(new StoppedError('the restore in progress was abandoned: the node stopped'));
        return;
      }
      const until = performance.now() + sliceMs;
      try {
        let done: boolean;
        do done = job.step(STEP_UNITS);
        while (!done && performance.now() < until);
        if (done) resolve();
        else setImmediate(slice);
      } catch (e) {
        job.cancel();
        reject(e);
      }
    };
    slice();
  });
}
