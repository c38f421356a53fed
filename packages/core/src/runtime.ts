import type { Clock, Logger } from './types';

/** The real clock: `Date.now` and Node's timers. A running node keeps its process alive until `stop()`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

const noop = () => undefined;

/** Discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** One line per record on stderr: `<ISO time> level [name] msg key=value ...`. */
export function consoleLogger(name: string, level: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const min = order[level];
  const line = (lvl: keyof typeof order) => (msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    const kv = fields === undefined ? '' : ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`;
    process.stderr.write(`${new Date().toISOString()} ${lvl} [${name}] ${msg}${kv}\n`);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

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
