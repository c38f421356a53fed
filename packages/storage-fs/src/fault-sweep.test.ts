import { describe, expect, it } from 'vitest';
import { FILE_KINDS, FAULTS, OUTCOMES, STOP_MODES, describeSweep, runFaultSweep, type Outcome } from '../scripts/fault-sweep';

/**
 * A short run of the storage fault sweep (`pnpm sweep:faults` runs the long one): one fault per trial (bit flip,
 * truncation, zeroed 4 KiB page, deletion) in every kind of file, after a clean close, a process crash and a
 * power cut. No acknowledged entry may be lost, no damage to bytes in use accepted without a word, no open may
 * fail untyped.
 */
describe('storage fault sweep (bounded)', () => {
  it('over every file kind and fault: 0 acknowledged entries lost, 0 silent acceptances, 0 untyped failures', async () => {
    const r = await runFaultSweep({ trials: Number(process.env.STORAGE_FS_SWEEP_TRIALS ?? 120), seed: 3 });
    const total: Record<Outcome, number> = { intact: 0, refused: 0, LOSS: 0, SILENT: 0, untyped: 0 };
    for (const stop of STOP_MODES) {
      for (const kind of FILE_KINDS) {
        let n = 0;
        for (const fault of FAULTS) for (const o of OUTCOMES) {
          total[o] += r.counts[stop][kind][fault][o];
          n += r.counts[stop][kind][fault][o];
        }
        expect(n, `${stop} / ${kind} got no trials`).toBeGreaterThan(0);
      }
    }
    expect(r.failures, `${describeSweep(r)}\n${r.failures.join('\n')}`).toEqual([]);
    expect(total.LOSS + total.SILENT + total.untyped).toBe(0);
    expect(total.refused).toBeGreaterThan(r.trials / 2);
  });
});
