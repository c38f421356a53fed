import { InvalidArgumentError, MalformedMessageError } from './errors';

/** What `ReplicatedTime.observe` made of one time entry. */
export interface TimeStep {
  /** How far replicated time moved, in ms (0 for a new term, a stale term or a clock that went back). */
  advancedBy: number;
  /**
   * The entry is the first of a newer leader: time did not move, and every live lease should be extended by
   * its TTL (the old leader's keepalives may not have reached the log).
   */
  newTerm: boolean;
}

/** `ReplicatedTime`'s state, as a state machine stores it in its snapshot. */
export type ReplicatedTimeState = [term: number, leaderMs: number, now: number];

/** The largest step one time entry may move replicated time by default: 5 s. */
export const DEFAULT_MAX_TIME_STEP_MS = 5_000;

/**
 * Time for a state machine, advanced only by time entries in the log (DESIGN r2, "Time for state machines").
 *
 * The leader's host proposes entries carrying `(term, its clock in ms)`. Every replica feeds them here in log
 * order and so agrees on `now`, whatever its own clock says. Within one term, `now` moves by the difference
 * between two readings of the same leader's clock, clamped to `[0, maxStepMs]`: a clock that goes back moves
 * nothing, a leader that was paused (or a log that was stalled) moves time by at most `maxStepMs` per entry.
 * The first entry of a newer term moves nothing: the new leader's clock is unrelated to the old one's, and
 * the gap between the two leaders is not counted against anyone (a lessor extends every live lease by its
 * TTL then, as etcd's does on promotion). An entry of an older term is ignored (an old leader's proposal that
 * committed late).
 *
 * Deterministic: it reads no clock, only the entries.
 */
export class ReplicatedTime {
  private term = 0;
  private leaderMs = 0;
  private time = 0;
  private readonly maxStep: number;

  constructor(options: { maxStepMs?: number } = {}) {
    const m = options.maxStepMs ?? DEFAULT_MAX_TIME_STEP_MS;
    if (!Number.isSafeInteger(m) || m <= 0) throw new InvalidArgumentError(`maxStepMs must be a positive integer, got ${String(m)}`);
    this.maxStep = m;
  }

  /** Replicated time in ms: the sum of every same-term step so far (0 before the first). */
  get now(): number {
    return this.time;
  }

  /** The term of the last time entry that counted. */
  get lastTerm(): number {
    return this.term;
  }

  /** Applies one time entry. `term` and `leaderMs` come from the entry's data, never from the entry's own term. */
  observe(term: number, leaderMs: number): TimeStep {
    if (!Number.isSafeInteger(term) || term < 0 || !Number.isFinite(leaderMs)) {
      throw new InvalidArgumentError(`a time entry needs a non-negative integer term and a finite clock reading, got ${String(term)}, ${String(leaderMs)}`);
    }
    if (term < this.term) return { advancedBy: 0, newTerm: false };
    if (term > this.term) {
      this.term = term;
      this.leaderMs = leaderMs;
      return { advancedBy: 0, newTerm: true };
    }
    const delta = Math.min(this.maxStep, Math.max(0, Math.floor(leaderMs - this.leaderMs)));
    // A clock set back moves nothing once, then time goes on from the new reading (not frozen until the clock
    // catches up with the old one).
    this.leaderMs = leaderMs;
    this.time += delta;
    return { advancedBy: delta, newTerm: false };
  }

  state(): ReplicatedTimeState {
    return [this.term, this.leaderMs, this.time];
  }

  restore(state: unknown): void {
    if (!Array.isArray(state) || state.length !== 3 || !state.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) {
      throw new MalformedMessageError('replicated time state must be [term, leaderMs, now], non-negative numbers');
    }
    [this.term, this.leaderMs, this.time] = state as ReplicatedTimeState;
  }
}
