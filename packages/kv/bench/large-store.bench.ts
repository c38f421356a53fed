/**
 * A large store (#22 item 7): what a snapshot of KEYS keys (default 1,000,000; 16-byte keys, 100-byte string
 * values) costs, and what it does to the latency of puts applied meanwhile.
 *
 * Figures printed (`ms` wall time; `cpuMs` CPU time of the process, GC threads included, which a machine busy
 * with other work inflates less):
 * - fill: the store built by applying KEYS puts straight to the state machine (no consensus), and the heap it
 *   takes per key (process.memoryUsage().heapUsed after a full GC, before and after, divided by KEYS; node runs
 *   with --expose-gc);
 * - snapshot: `snapshot()` (the synchronous call of the StateMachine contract) time and bytes; and, when the
 *   machine has it, `beginSnapshot()` (the incremental snapshot the host uses since format 4) driven as the
 *   host drives it (steps of 64 keys for up to 0.5 ms, then a turn of the event loop): wall time, slices, the
 *   longest slice, whether its bytes equal `snapshot()`'s, the longest event-loop stall while it ran (a 1 ms
 *   timer's worst lateness), the stalls over 2, 5, 10 and 20 ms, and the collector's pauses;
 * - restore: `restore()` of those bytes into a fresh machine, once the filled store is dropped (the heap then
 *   holds the snapshot bytes only, as on a node restarting from its snapshot file), and the heap per key after it;
 *   the restored store serves the put runs. `restore()` holds the event loop for all of it (a 1 ms timer's worst
 *   lateness while it ran is printed too);
 * - follower install: `beginRestore()` (what the host runs for a snapshot from the leader) into another fresh
 *   machine, driven as the host drives it (steps of 64 keys for up to 0.5 ms, then a turn of the event loop):
 *   wall time, slices, the longest event-loop stall, and whether the result matches `restore()`'s;
 * - puts through a real host: a one-node raft `ConsensusNode` (MemoryStorage, in-process transport) over the
 *   restored machine, 16 puts in flight (overwrites of existing keys, each a key no run wrote before: the runs go
 *   on through the keys where the last one stopped), latency of each put from its arrival to its result, each
 *   request arriving in its own event-loop turn (as from a socket). A warm-up run of about 1 s (WARMUP_MS) comes
 *   first and is not reported (the put path compiled, the heap at its working size). Then run 1 takes no
 *   snapshot (`snapshotEvery: 0`); run 2 lets the host take one (its `snapshotEvery` is set so it falls about
 *   1 s into the run) and reports the puts in flight while the snapshot was in progress (from the host asking
 *   the machine for it until storage holds it), against run 1's figures. Both runs also report the worst
 *   event-loop stall seen by a 1 ms timer, how many stalls passed 2, 5, 10 and 20 ms, and the collector's
 *   pauses in the window (perf_hooks 'gc' entries: [count, total ms, longest ms] of minor and major ones); run 2
 *   also times `beginSnapshot()` and each step of the job (the longest, those over 1 ms and how many of those a
 *   collector pause fell in: the rest are the step's own work, or the process not running on a busy machine).
 *   The same two runs are then made at a fixed rate (RATE puts per second, default 2,000; 0 skips them): a put
 *   due every 1/RATE s whatever the answers, its latency counted from when it was due. The closed loop above
 *   sends fewer puts while a snapshot slows each one, so each stall (which catches the 16 in flight) weighs more
 *   in its p99 than in the p99 without a snapshot; at a fixed rate a stall delays every put due during it in
 *   either run, as for clients that do not wait for each other (and a stall of 1% of the window sets the p99).
 *
 * Run: pnpm --filter @consensus-kit/kv bench:large   (LARGE_VALUES=1 runs bench/large-values.bench.ts instead: 64 KiB
 * values and their history, the snapshot's and the follower install's worst step; KEYS=100000 for a quick look; PUTS=0 stops after the restores; SYNC=1 makes the host use
 * `snapshot()` as it did before format 4; KV_MODULE=/abs/path/src/index.ts measures another kv source; RATE=0
 * skips the fixed-rate runs; WARMUP_MS sets the warm-up run)
 */
import { PerformanceObserver, constants as perfConstants, performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import type * as Kv from '@consensus-kit/kv';
import type { KvQuery, KvQueryResult, KvRequest, KvResult } from '@consensus-kit/kv';
import { raft } from '@consensus-kit/raft';

// LARGE_VALUES=1: the large-values case instead (bench/large-values.bench.ts: 64 KiB values and their history).
if (process.env.LARGE_VALUES === '1') {
  await import('./large-values.bench');
  process.exit(0);
}

const KEYS = Number(process.env.KEYS ?? 1_000_000);
// KV_MODULE=<path to another kv source's index.ts>: measure that code instead (e.g. an older commit's
// packages/kv/src extracted beside this one), under the same conditions.
const { KvStateMachine } = (process.env.KV_MODULE ? await import(process.env.KV_MODULE) : await import('@consensus-kit/kv')) as typeof Kv;
type KvStateMachine = InstanceType<typeof KvStateMachine>;
const IN_FLIGHT = 16;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (pnpm bench:large does)');

const key = (i: number) => `k${String(i).padStart(15, '0')}`; // 16 bytes
const value = (i: number) => `v${String(i).padStart(15, '0')}`.padEnd(100, '.'); // 100 bytes

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

/** CPU time of this process (all its threads, GC helpers included) since `since`, in ms. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return Number(((u.user + u.system) / 1000).toFixed(1));
}

function ms(x: number): number {
  return Number(x.toFixed(3));
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

/**
 * Every garbage collection pause of the main thread (perf_hooks 'gc' entries), to tell which stalls the collector
 * made: a run reports the pauses that began within its window, by kind.
 */
const gcPauses: { start: number; ms: number; kind: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration, kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0 });
}).observe({ entryTypes: ['gc'] });

/** The collector's pauses that began within [from, to]: minor (scavenges) and major (mark-compact), count and ms. */
function gcIn(from: number, to: number) {
  const xs = gcPauses.filter((g) => g.start >= from && g.start <= to);
  const sum = (k: number) => {
    const ys = xs.filter((g) => g.kind === k);
    return [ys.length, ms(ys.reduce((a, g) => a + g.ms, 0)), ms(ys.reduce((a, g) => Math.max(a, g.ms), 0))];
  };
  // [count, total ms, longest ms] of each kind.
  return { minor: sum(perfConstants.NODE_PERFORMANCE_GC_MINOR), major: sum(perfConstants.NODE_PERFORMANCE_GC_MAJOR) };
}

/** The worst lateness of a 1 ms interval timer: how long the event loop was stalled, sampled with timestamps. */
function stallMonitor() {
  const samples: { at: number; late: number }[] = [];
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    samples.push({ at: now, late: now - last - 1 });
    last = now;
  }, 1);
  return {
    stop: () => clearInterval(t),
    /** The worst stall that ended within [from, to]. */
    worst: (from = 0, to = Number.POSITIVE_INFINITY) => samples.filter((s) => s.at >= from && s.at - s.late <= to).reduce((m, s) => Math.max(m, s.late), 0),
    /** How many stalls within [from, to] were at least 2, 5, 10 and 20 ms long. */
    counts: (from = 0, to = Number.POSITIVE_INFINITY) => {
      const xs = samples.filter((s) => s.at >= from && s.at - s.late <= to);
      return [2, 5, 10, 20].map((t) => xs.filter((s) => s.late >= t).length);
    },
  };
}

console.log(JSON.stringify({ step: 'start', keys: KEYS, loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));

// ---- fill ----------------------------------------------------------------------------------------------------
/**
 * Fill, `snapshot()` and `beginSnapshot()`, in a function whose frame ends with it: the filled machine is then
 * garbage (a suspended top-level await can keep what its registers last held alive), so the restore below is
 * measured with a heap holding only the snapshot bytes.
 */
let beginSnap: StateMachine['beginSnapshot'];
let cpu0: NodeJS.CpuUsage;
let t0: number;
async function fillAndSnapshot(): Promise<Uint8Array> {
  const heap0 = heap();
  const filled = new KvStateMachine();
  const entry: LogEntry = { index: 0, term: 1, type: 'command', data: new Uint8Array() };
  t0 = performance.now();
  for (let i = 0; i < KEYS; i++) {
    entry.index = i + 1;
    filled.apply(entry, { cmd: { op: 'put', key: key(i), value: value(i) } });
  }
  const fillMs = performance.now() - t0;
  const heap1 = heap();
  console.log(JSON.stringify({ step: 'fill', keys: KEYS, applyMs: ms(fillMs), heapBytesPerKey: Math.round((heap1 - heap0) / KEYS), heapMB: Math.round((heap1 - heap0) / 2 ** 20) }));

  // ---- snapshot and restore ------------------------------------------------------------------------------------
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  const bytes = filled.snapshot();
  const snapshotMs = performance.now() - t0;
  console.log(JSON.stringify({ step: 'snapshot()', ms: ms(snapshotMs), cpuMs: cpuMs(cpu0), bytes: bytes.length, bytesPerKey: Math.round(bytes.length / KEYS) }));

  beginSnap = (filled as Partial<Pick<StateMachine, 'beginSnapshot'>>).beginSnapshot;
  if (beginSnap !== undefined) {
    // Driven as the host's Snapshotter drives it: steps of 64 keys for up to 0.5 ms, then a turn of the event loop.
    const mon = stallMonitor();
    await new Promise((r) => setTimeout(r, 20));
    t0 = performance.now();
    const job = beginSnap.call(filled);
    let slices = 0;
    let longestSlice = 0;
    const b = await new Promise<Uint8Array>((resolve) => {
      const slice = () => {
        slices++;
        const from = performance.now();
        const until = from + 0.5;
        let out: Uint8Array | undefined;
        do out = job.step(64);
        while (out === undefined && performance.now() < until);
        longestSlice = Math.max(longestSlice, performance.now() - from);
        if (out === undefined) setImmediate(slice);
        else resolve(out);
      };
      setImmediate(slice);
    });
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 5));
    mon.stop();
    console.log(
      JSON.stringify({ step: 'beginSnapshot() in 0.5 ms slices', ms: ms(t1 - t0), slices, longestSliceMs: ms(longestSlice), bytes: b.length, sameBytes: Buffer.compare(b, bytes) === 0, worstStallMs: ms(mon.worst(t0, t1)), stallsOver2_5_10_20Ms: mon.counts(t0, t1), gc: gcIn(t0, t1) }),
    );
  }

  // The filled store goes before the restore: the restore is timed with a heap holding only the snapshot bytes,
  // as on a node restarting from its snapshot file. The restored store then serves the put runs.
  return bytes;
}
const bytes = await fillAndSnapshot();
const sm = new KvStateMachine();
{
  const h0 = heap();
  const mon = stallMonitor();
  await new Promise((r) => setTimeout(r, 20));
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  sm.restore(bytes);
  const restoreMs = performance.now() - t0;
  const restoreCpu = cpuMs(cpu0);
  await new Promise((r) => setTimeout(r, 5));
  mon.stop();
  const h1 = heap();
  console.log(JSON.stringify({ step: 'restore()', ms: ms(restoreMs), cpuMs: restoreCpu, keys: sm.size, heapBytesPerKeyAfterRestore: Math.round((h1 - h0) / KEYS), worstStallMs: ms(mon.worst(t0, t0 + restoreMs)) }));
}

const beginRestore = (sm as Partial<Pick<StateMachine, 'beginRestore'>>).beginRestore;
if (beginRestore !== undefined) {
  // A follower installing the leader's snapshot: the host's runRestoreJob, steps of 64 keys for up to 0.5 ms,
  // then a turn of the event loop (setImmediate).
  let follower: KvStateMachine | undefined = new KvStateMachine();
  const mon = stallMonitor();
  await new Promise((r) => setTimeout(r, 20));
  const cpu1 = process.cpuUsage();
  t0 = performance.now();
  const job = beginRestore.call(follower, bytes);
  let slices = 0;
  await new Promise<void>((resolve) => {
    const slice = () => {
      slices++;
      const until = performance.now() + 0.5;
      let done: boolean;
      do done = job.step(64);
      while (!done && performance.now() < until);
      if (done) resolve();
      else setImmediate(slice);
    };
    slice();
  });
  const t1 = performance.now();
  const installCpu = cpuMs(cpu1);
  await new Promise((r) => setTimeout(r, 5));
  mon.stop();
  const probe = key(KEYS >> 1);
  const matches = follower.size === sm.size && follower.revision === sm.revision && JSON.stringify(follower.query({ op: 'get', key: probe })) === JSON.stringify(sm.query({ op: 'get', key: probe }));
  console.log(JSON.stringify({ step: 'beginRestore() in 0.5 ms slices (follower install)', ms: ms(t1 - t0), cpuMs: installCpu, slices, keys: follower.size, matchesRestore: matches, worstStallMs: ms(mon.worst(t0, t1)) }));
  follower = undefined;
}

// ---- puts through a host -------------------------------------------------------------------------------------
interface Run {
  latencies: { start: number; end: number }[];
  snapshots: { start: number; end: number }[];
  worstStall: (from?: number, to?: number) => number;
  stallCounts: (from?: number, to?: number) => number[];
  /** When the puts began and ended. */
  begin: number;
  end: number;
  /**
   * The snapshot job (as the host ran it): how long `beginSnapshot()` took, its steps: how many, the longest,
   * and those that took over 1 ms (when, how long, which step).
   */
  steps: { beginMs: number; count: number; longestMs: number; slow: { start: number; ms: number; step: number }[] };
  entries: number;
}

/**
 * Puts so far, over all runs: each run goes on through the keys where the last one stopped, so every run's puts
 * are first writes of restored keys alike (a run starting again at the first key would rewrite the keys the run
 * before it had already moved out of the restored key index, a cheaper put).
 */
let n = 0;

/**
 * Puts through a one-node host for at least `minMs` (and, `untilSnapshot`, until 0.5 s after its first snapshot is
 * stored). `rate` 0: closed loop, IN_FLIGHT puts at a time, each sent when the one before it is answered. `rate`
 * > 0: open loop, a put due every 1/rate s whatever the answers, its latency counted from when it was due (so
 * a stall delays, and counts, every put due during it, as for clients that do not wait for each other).
 */
async function run(snapshotEvery: number, minMs: number, untilSnapshot: boolean, rate = 0): Promise<Run> {
  const snapshots: { start: number; end: number }[] = [];
  // Marks when the host asks the machine for a snapshot (either call), and when storage holds it.
  const marked: StateMachine<KvRequest, KvResult, KvQuery, KvQueryResult> = {
    apply: (e, c) => sm.apply(e, c),
    query: (q) => sm.query(q),
    restore: (d) => sm.restore(d),
    timeCommand: (term, clock) => sm.timeCommand(term, clock),
    snapshot: () => {
      snapshots.push({ start: performance.now(), end: Number.NaN });
      return sm.snapshot();
    },
  };
  const beginJob = beginSnap;
  const steps: Run['steps'] = { beginMs: 0, count: 0, longestMs: 0, slow: [] };
  if (beginJob !== undefined && process.env.SYNC !== '1') {
    marked.beginSnapshot = () => {
      const start = performance.now();
      snapshots.push({ start, end: Number.NaN });
      const job = beginJob.call(sm);
      steps.beginMs = performance.now() - start;
      // Each step timed (two clock reads per step of 64 keys), to tell a step that overran its slice from a
      // stall between steps.
      return {
        step: (budget: number) => {
          const t = performance.now();
          try {
            return job.step(budget);
          } finally {
            const d = performance.now() - t;
            steps.count++;
            if (d > steps.longestMs) steps.longestMs = d;
            if (d > 1) steps.slow.push({ start: t, ms: d, step: steps.count });
          }
        },
        cancel: () => job.cancel(),
      };
    };
  }
  const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
    id: 'n1',
    peers: ['n1'],
    protocol: raft,
    storage: new MemoryStorage(),
    transport: new LocalNetwork().transport('n1'),
    stateMachine: marked,
    tickMs: 10,
    electionTicks: 10,
    snapshotEvery,
    timeoutMs: 60_000,
  });
  node.on('snapshot', () => {
    const s = snapshots.at(-1);
    if (s !== undefined && Number.isNaN(s.end)) s.end = performance.now();
  });
  await node.start();
  await node.waitForLeader();
  const mon = stallMonitor();
  const latencies: { start: number; end: number }[] = [];
  const begin = performance.now();
  const done = () => {
    const now = performance.now();
    if (now - begin < minMs) return false;
    if (!untilSnapshot) return true;
    const s = snapshots[0];
    return (s !== undefined && !Number.isNaN(s.end) && now - s.end > 500) || now - begin > 120_000;
  };
  const put = () => {
    const i = (n++ * 7919) % KEYS;
    return node.propose({ cmd: { op: 'put', key: key(i), value: value(i + 1) } });
  };
  if (rate > 0) {
    const pending = new Set<Promise<unknown>>();
    let sent = 0;
    // The puts due are sent by a 1 ms interval timer (a loop of setImmediate would allocate an object per turn,
    // and turn far more often without a snapshot than with one: more garbage, and scavenges, in the run without).
    // A put waits up to about 1 ms to be sent, the same in both runs; its latency counts from when it was due.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        for (let due = begin + (sent * 1000) / rate; due <= now; due = begin + (sent * 1000) / rate) {
          sent++;
          const p = put().then(() => latencies.push({ start: due, end: performance.now() }));
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        if (done()) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    await Promise.all(pending);
  }
  await Promise.all(
    Array.from({ length: rate > 0 ? 0 : IN_FLIGHT }, async () => {
      while (!done()) {
        // Each request arrives in its own event-loop turn, as from a socket: puts chained through promises
        // alone would run in microtasks and starve every timer (the host's tick, the stall monitor).
        // The latency counts from the request's arrival, so time it waited for the loop counts.
        const start = performance.now();
        await new Promise((r) => setImmediate(r));
        await put();
        latencies.push({ start, end: performance.now() });
      }
    }),
  );
  const end = performance.now();
  mon.stop();
  const entries = node.status().appliedIndex;
  await node.stop();
  return { latencies, snapshots, worstStall: mon.worst, stallCounts: mon.counts, begin, end, steps, entries };
}

function report(name: string, lat: { start: number; end: number }[], stall: number, extra: Record<string, unknown> = {}) {
  const xs = lat.map((l) => l.end - l.start);
  console.log(JSON.stringify({ step: name, puts: xs.length, p50Ms: ms(percentile(xs, 50)), p99Ms: ms(percentile(xs, 99)), maxMs: ms(xs.reduce((m, x) => Math.max(m, x), 0)), worstStallMs: ms(stall), ...extra }));
}

if (process.env.PUTS === '0') {
  console.log(JSON.stringify({ step: 'end', loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
  process.exit(0);
}
// A first run, not reported: the put path compiled and the heap grown to its working size, so that the run
// without a snapshot is not slowed by what the first puts after a restore cost, which the run with one is spared.
const warmup = await run(0, Number(process.env.WARMUP_MS ?? 1000), false);
console.log(JSON.stringify({ step: 'warm-up puts (not counted)', puts: warmup.latencies.length }));
/** A run without a snapshot, then one with, at `rate` (0: closed loop); their figures, named after `what`. */
async function compare(what: string, rate: number): Promise<void> {
  const base = await run(0, 3000, false, rate);
  report(`puts${what}, no snapshot`, base.latencies, base.worstStall(), {
    entries: base.entries,
    putsPerSec: Math.round(base.latencies.length / ((base.end - base.begin) / 1000)),
    stallsOver2_5_10_20Ms: base.stallCounts(),
    gc: gcIn(base.begin, base.end),
  });
  const every = Math.max(1000, Math.round(base.entries / 3)); // about 1 s into the next run
  const withSnap = await run(every, 2000, true, rate);
  const s = withSnap.snapshots[0];
  if (s === undefined || Number.isNaN(s.end)) {
    console.log(JSON.stringify({ step: `puts${what} during a snapshot`, error: 'no snapshot completed', snapshotEvery: every }));
    return;
  }
  const during = withSnap.latencies.filter((l) => l.end >= s.start && l.start <= s.end);
  const p99Base = percentile(
    base.latencies.map((l) => l.end - l.start),
    99,
  );
  const p99During = percentile(
    during.map((l) => l.end - l.start),
    99,
  );
  report(`puts${what} during a snapshot`, during, withSnap.worstStall(s.start, s.end), {
    snapshotMs: ms(s.end - s.start),
    snapshotEvery: every,
    p99VsNoSnapshot: Number((p99During / p99Base).toFixed(2)),
    putsPerSec: Math.round(during.length / ((s.end - s.start) / 1000)),
    stallsOver2_5_10_20Ms: withSnap.stallCounts(s.start, s.end),
    gc: gcIn(s.start, s.end),
    beginSnapshotMs: ms(withSnap.steps.beginMs),
    steps: withSnap.steps.count,
    longestStepMs: ms(withSnap.steps.longestMs),
    stepsOver1Ms: withSnap.steps.slow.length,
    // Steps over 1 ms during which the collector paused the thread (the rest: the step's own work, or the
    // process not running: a busy machine).
    stepsOver1MsWithGc: withSnap.steps.slow.filter((x) => gcPauses.some((g) => g.start < x.start + x.ms && g.start + g.ms > x.start)).length,
    slowestSteps: withSnap.steps.slow
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((x) => `#${x.step}:${x.ms.toFixed(1)}ms`),
  });
}

await compare('', 0);
// The same at a fixed rate (RATE puts per second, 0 to skip): a closed loop sends fewer puts while a snapshot
// slows each one, so the puts a stall catches (IN_FLIGHT of them) are a larger share of the run with the
// snapshot than of the run without; at a fixed rate a stall catches the puts due during it in either run.
const RATE = Number(process.env.RATE ?? 2000);
if (RATE > 0) await compare(` at ${RATE}/s`, RATE);
console.log(JSON.stringify({ step: 'end', loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
