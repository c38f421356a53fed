import { performance } from 'node:perf_hooks';
import { createLockClient, type CreateLockClientOptions } from '@consensus-kit/lock/tcp';

/** A lock held by one contender: its fencing token (undefined for a lock service that has none) and how to give it back. */
export interface BenchHold {
  token: number | undefined;
  release(): Promise<void>;
}

/**
 * One contender of a lock benchmark: its own client (its own session and connection) to some lock service.
 * `acquire` blocks until the lock is held; `signal` fires when the run ends, and a contender still waiting may
 * then reject (it is not counted).
 */
export interface BenchContender {
  acquire(signal: AbortSignal): Promise<BenchHold>;
  close(): Promise<void>;
}

export interface LockLoopOptions {
  durationMs: number;
  /** Cycles run before measuring, not counted. Default 0. */
  warmupMs?: number;
}

export interface LockLoopResult {
  contenders: number;
  durationMs: number;
  warmupMs: number;
  /** Grants inside the measured window (each one a handoff: from the last holder, or from no holder). */
  handoffs: number;
  handoffsPerSec: number;
  /**
   * Handoff latency in ms: from the moment a holder calls `release()` to the moment the next holder's `acquire()`
   * resolves, both seen in this process on one monotonic clock. With one contender that is its own release
   * and its next acquire, one after the other; with more, the next waiter is already queued (or retrying).
   */
  handoffMs: { p50: number; p99: number; max: number; mean: number };
  /** Grants each contender got in the measured window. */
  perClient: number[];
  /** max / min of `perClient` (Infinity when one contender got none). */
  spread: number;
  /** Fenced writes refused because the token was not strictly higher than the last accepted one. */
  staleWrites: number;
  /** Grants that arrived while another contender still held the lock (its release not yet called). */
  overlaps: number;
  /** Writes the shared counter accepted over the whole run, warm-up included. */
  writes: number;
  /**
   * Fenced services whose token is a log index (ours): log entries per handoff in the measured window, the
   * token distance from its first grant to its last divided by the grants between (undefined otherwise).
   */
  entriesPerHandoff: number | undefined;
  /** Whether the service hands out fencing tokens (etcd's lock and redlock here do not). */
  fenced: boolean;
  /** acquire/release calls that failed during the run (retried). */
  errors: number;
}

/**
 * The lock benchmark loop, the same for every lock service: each contender loops acquire (blocking) -> one
 * fenced write to a shared counter (the token must be strictly higher than the last one accepted, as a
 * `FencedResource` with strict order) -> release, for `warmupMs + durationMs`. Mutual exclusion is checked in
 * this process too: the holder keeps the lock across one event-loop turn (I/O runs), and a grant to another
 * contender before the holder called `release()` is an overlap.
 */
export async function runLockLoop(contenders: BenchContender[], o: LockLoopOptions): Promise<LockLoopResult> {
  if (contenders.length === 0) throw new RangeError('a lock benchmark needs at least one contender');
  const warmupMs = o.warmupMs ?? 0;
  const t0 = performance.now();
  const startAt = t0 + warmupMs;
  const endAt = startAt + o.durationMs;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), warmupMs + o.durationMs);
  const latencies: number[] = [];
  const perClient = contenders.map(() => 0);
  let holder: number | undefined;
  let releasedAt: number | undefined;
  let highest = -Infinity;
  let fenced = true;
  let writes = 0;
  let stale = 0;
  let overlaps = 0;
  let errors = 0;
  let firstToken: number | undefined;
  let lastToken: number | undefined;
  const loop = async (c: BenchContender, i: number) => {
    while (!stop.signal.aborted) {
      let hold: BenchHold;
      try {
        hold = await c.acquire(stop.signal);
      } catch {
        if (stop.signal.aborted) return;
        errors++;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const now = performance.now();
      if (holder !== undefined) overlaps++;
      holder = i;
      if (now >= startAt && now < endAt) {
        perClient[i] = (perClient[i] as number) + 1;
        if (releasedAt !== undefined) latencies.push(now - releasedAt);
        if (hold.token !== undefined) {
          firstToken ??= hold.token;
          lastToken = hold.token;
        }
      }
      // The fenced write: a resource that accepts only a strictly higher token than the last it accepted.
      if (hold.token === undefined) {
        fenced = false;
        writes++;
      } else if (hold.token > highest) {
        highest = hold.token;
        writes++;
      } else stale++;
      // Hold across one event-loop turn: a grant that reaches any other contender meanwhile is an overlap.
      await new Promise((r) => setImmediate(r));
      holder = undefined;
      releasedAt = performance.now();
      try {
        await hold.release();
      } catch {
        errors++;
      }
    }
  };
  try {
    await Promise.all(contenders.map(loop));
  } finally {
    clearTimeout(timer);
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  const handoffs = perClient.reduce((a, b) => a + b, 0);
  const min = Math.min(...perClient);
  return {
    contenders: contenders.length,
    durationMs: o.durationMs,
    warmupMs,
    handoffs,
    handoffsPerSec: Math.round((handoffs / o.durationMs) * 1000),
    handoffMs: { p50: q(0.5), p99: q(0.99), max: round(latencies.at(-1) ?? 0), mean: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)) },
    perClient,
    spread: min === 0 ? Infinity : round(Math.max(...perClient) / min),
    staleWrites: stale,
    overlaps,
    writes,
    entriesPerHandoff: fenced && firstToken !== undefined && lastToken !== undefined && handoffs > 1 ? round((lastToken - firstToken) / (handoffs - 1)) : undefined,
    fenced,
    errors,
  };
}

/** Contenders on a consensus-kit cluster: one `createLockClient` each (its own session and TCP connection). */
export function consensusContenders(n: number, name: string, options: Omit<CreateLockClientOptions, 'owner'>): BenchContender[] {
  return Array.from({ length: n }, (_, i) => {
    const client = createLockClient({ ttlMs: 10_000, ...options, owner: `bench-${i + 1}` });
    return {
      async acquire(signal) {
        const h = await client.acquire(name, { signal });
        return { token: h.token, release: () => h.release() };
      },
      close: () => client.close(),
    };
  });
}

/** One line per figure, as `bench --op lock` and the comparison script print them. */
export function describeLockLoop(r: LockLoopResult): string[] {
  const spread = Number.isFinite(r.spread) ? `${r.spread}x` : 'inf (a contender got no grant)';
  return [
    `  ${r.handoffsPerSec.toLocaleString('en-US')} handoffs/s (${r.handoffs.toLocaleString('en-US')} grants in ${(r.durationMs / 1000).toFixed(1)} s, ${r.errors} errors)`,
    `  handoff ms (release() called -> next acquire() resolved): p50 ${r.handoffMs.p50}  p99 ${r.handoffMs.p99}  max ${r.handoffMs.max}`,
    `  grants per contender: ${r.perClient.join(' ')}  spread (max/min) ${spread}`,
    `  writes: ${r.writes.toLocaleString('en-US')} accepted, ${r.fenced ? `${r.staleWrites} stale tokens refused` : 'no fencing tokens (not checked)'}, ${r.overlaps} overlapping grants`,
    ...(r.entriesPerHandoff !== undefined ? [`  log entries per handoff (token distance / grants): ${r.entriesPerHandoff}`] : []),
  ];
}

const round = (x: number) => Math.round(x * 1000) / 1000;
