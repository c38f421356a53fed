import type { Clock } from '../types';

/**
 * The real clock: a monotonic reading in whole ms (`performance.timeOrigin + performance.now()`, close to `Date.now`
 * when the process starts) and Node's timers. A running node keeps its process alive until `stop()`.
 *
 * Monotonic, not `Date.now`: the leader's time entries carry this reading (DESIGN r2), and a wall clock set
 * forward (NTP, an operator) would move replicated time by a whole max step at once and expire every lease
 * shorter than that, kept alive or not; set back, it would stretch the deadlines of calls and keepalives. Go's
 * monotonic clock gives etcd's lessor the same protection.
 */
export const systemClock: Clock = {
  // Whole ms, as Date.now gives: time entries stay integers, and deltas of floored readings lose no fraction.
  now: () => Math.floor(performance.timeOrigin + performance.now()),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * A clock that moves only when told to: `advance(ms)` runs every timer that falls due, in order. For tests of
 * hosts and clients that must not depend on wall time.
 */
export class ManualClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; every?: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, every: Math.max(1, ms), fn });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing due timers in time order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let nextId: number | undefined;
      let nextAt = Number.POSITIVE_INFINITY;
      for (const [id, t] of this.timers) {
        if (t.at <= end && t.at < nextAt) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const t = this.timers.get(nextId) as { at: number; every?: number; fn: () => void };
      this.time = t.at;
      if (t.every !== undefined) t.at += t.every;
      else this.timers.delete(nextId);
      t.fn();
    }
    this.time = end;
  }
}
