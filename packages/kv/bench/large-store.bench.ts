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
 *   restored machine, once every key has been written after the restore (the store as a node holds it once every
 *   key was written since its restart; that history is compacted away), latency of each put from its arrival to
 *   its result. A warm-up run of about 1 s (WARMUP_MS) comes first and is not reported (the put path compiled,
 *   the heap at its working size). Then one run with 16 puts in flight, each request arriving in its own
 *   event-loop turn (as from a socket), in which the host takes CYCLES snapshots (default 3; its `snapshotEvery`
 *   is 5 s of the warm-up's puts, so 5 s without a snapshot come before the first, and between two as long as the
 *   host's pacing after a large snapshot asks: about twice a snapshot's length).
 *   Each put counts as during a snapshot (it overlaps one, from the host asking the machine for it until storage
 *   holds it, or the AFTER_MS after it, default 100: the log's compaction behind it) or without one, and the two
 *   p99s are compared, all snapshots' puts together and each snapshot's alone. Taking both from one run, in
 *   turns, compares them on the same store and heap: separate runs without and then with a snapshot differed by
 *   more than the snapshot did (their p99s are set by the collector: a young-generation collection, a pause of
 *   3 to 6 ms every ~20 ms, catches every put in flight, about 1% of the puts either way, so a 3 s window's p99
 *   fell above or below those pauses by chance: 1.6, 2.6 and 3.3 ms in three runs of the same code; and the
 *   later runs of a process were slower than its first). Both sides also report the worst event-loop stall seen
 *   by a 1 ms timer, how many stalls passed 2, 5, 10 and 20 ms, and the collector's pauses (perf_hooks 'gc'
 *   entries: [count, total ms, longest ms] of minor and major ones); the snapshots' side also times
 *   `beginSnapshot()` and each step of the jobs (the longest, those over 1 ms and how many of those a collector
 *   pause fell in: the rest are the step's own work, or the process not running on a busy machine). The same run
 *   is then made at a fixed rate (RATE puts per second, default 2,000; 0 skips it; a snapshot every 5 s of puts):
 *   a put due every 1/RATE s whatever the answers, its latency counted from when it was due. A closed loop sends
 *   fewer puts while a snapshot slows each one, so each stall (which catches the 16 in flight) weighs more among
 *   the puts during a snapshot than among those without; at a fixed rate a stall delays every put due during it
 *   either way, as for clients that do not wait for each other. Last, a run of SUSTAIN_MS (default 20 s) with 16
 *   in flight and the node's default snapshot triggers: the puts a second, the snapshots, and the share of the
 *   time spent snapshotting.
 *
 * Run: pnpm --filter @consensus-kit/kv bench:large   (LARGE_VALUES=1 runs bench/large-values.bench.ts instead: 64 KiB
 * values and their history, the snapshot's and the follower install's worst step; KEYS=100000 for a quick look;
 * PUTS=0 stops after the restores; SYNC=1 makes the host use `snapshot()` as it did before format 4;
 * KV_MODULE=/abs/path/src/index.ts measures another kv source; CLOSED=0 skips the closed-loop run, RATE=0 the
 * fixed-rate one, SUSTAIN_MS=0 the sustained one; CYCLES, AFTER_MS and WARMUP_MS as above)
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

/** The collector's pauses that began at a time `pick` selects, by kind: [count, total ms, longest ms]. */
function gcWhere(pick: (start: number) => boolean) {
  const xs = gcPauses.filter((g) => pick(g.start));
  const sum = (k: number) => {
    const ys = xs.filter((g) => g.kind === k);
    return [ys.length, ms(ys.reduce((a, g) => a + g.ms, 0)), ms(ys.reduce((a, g) => Math.max(a, g.ms), 0))];
  };
  // Minor ones (scavenges) and major ones (mark-compact).
  return { minor: sum(perfConstants.NODE_PERFORMANCE_GC_MINOR), major: sum(perfConstants.NODE_PERFORMANCE_GC_MAJOR) };
}

/** The collector's pauses that began within [from, to]. */
const gcIn = (from: number, to: number) => gcWhere((t) => t >= from && t <= to);

interface StallSample {
  /** When the timer ran, and how late it was (ms): the event loop was stalled that long before `at`. */
  at: number;
  late: number;
}

/** The stalls among `samples` that `pick` selects: the worst (ms), and how many were at least 2, 5, 10 and 20 ms. */
function stallsWhere(samples: StallSample[], pick: (s: StallSample) => boolean) {
  const xs = samples.filter(pick);
  return { worstStallMs: ms(xs.reduce((m, x) => Math.max(m, x.late), 0)), stallsOver2_5_10_20Ms: [2, 5, 10, 20].map((t) => xs.filter((x) => x.late >= t).length) };
}

/** The lateness of a 1 ms interval timer: how long the event loop was stalled, sampled with timestamps. */
function stallMonitor() {
  const samples: StallSample[] = [];
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    samples.push({ at: now, late: now - last - 1 });
    last = now;
  }, 1);
  return {
    samples,
    stop: () => clearInterval(t),
    /** The stalls that ended within [from, to]. */
    within: (from: number, to: number) => stallsWhere(samples, (x) => x.at >= from && x.at - x.late <= to),
  };
}

/** The heap before any store: what the heap per key after a step is counted from. */
const heapBase = heap();
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
      JSON.stringify({ step: 'beginSnapshot() in 0.5 ms slices', ms: ms(t1 - t0), slices, longestSliceMs: ms(longestSlice), bytes: b.length, sameBytes: Buffer.compare(b, bytes) === 0, ...mon.within(t0, t1), gc: gcIn(t0, t1) }),
    );
  }

  // The filled store goes before the restore: the restore is timed with a heap holding only the snapshot bytes,
  // as on a node restarting from its snapshot file. The restored store then serves the put runs.
  return bytes;
}
let bytes: Uint8Array | undefined = await fillAndSnapshot();
const sm = new KvStateMachine();
{
  const h0 = heap();
  const mon = stallMonitor();
  await new Promise((r) => setTimeout(r, 20));
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  sm.restore(bytes as Uint8Array);
  const restoreMs = performance.now() - t0;
  const restoreCpu = cpuMs(cpu0);
  await new Promise((r) => setTimeout(r, 5));
  mon.stop();
  const h1 = heap();
  console.log(JSON.stringify({ step: 'restore()', ms: ms(restoreMs), cpuMs: restoreCpu, keys: sm.size, heapBytesPerKeyAfterRestore: Math.round((h1 - h0) / KEYS), worstStallMs: mon.within(t0, t0 + restoreMs).worstStallMs }));
}

/**
 * A follower installing the leader's snapshot: the host's runRestoreJob, steps of 64 keys for up to 0.5 ms, then a
 * turn of the event loop (setImmediate). In a function whose frame ends with it, as `fillAndSnapshot`: the
 * follower's machine (as large as the restored one) is garbage afterwards instead of doubling the heap the put runs
 * work in (it did, held from the module's suspended top-level code, before this was a function of its own).
 */
async function followerInstall(beginRestore: NonNullable<StateMachine['beginRestore']>, snapshot: Uint8Array): Promise<void> {
  const follower = new KvStateMachine();
  const mon = stallMonitor();
  await new Promise((r) => setTimeout(r, 20));
  const cpu1 = process.cpuUsage();
  t0 = performance.now();
  const job = beginRestore.call(follower, snapshot);
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
  console.log(JSON.stringify({ step: 'beginRestore() in 0.5 ms slices (follower install)', ms: ms(t1 - t0), cpuMs: installCpu, slices, keys: follower.size, matchesRestore: matches, worstStallMs: mon.within(t0, t1).worstStallMs }));
}
{
  const beginRestore = (sm as Partial<Pick<StateMachine, 'beginRestore'>>).beginRestore;
  if (beginRestore !== undefined) await followerInstall(beginRestore, bytes as Uint8Array);
}

// ---- puts through a host -------------------------------------------------------------------------------------
interface Run {
  latencies: { start: number; end: number }[];
  /** Each snapshot: from the host asking the machine for it until storage holds it. */
  snapshots: { start: number; end: number }[];
  samples: StallSample[];
  /** When the puts began and ended. */
  begin: number;
  end: number;
  /**
   * The snapshot jobs (as the host ran them): the longest `beginSnapshot()` call, their steps: how many, the
   * longest, and those that took over 1 ms (when, how long, which step).
   */
  steps: { beginMs: number; count: number; longestMs: number; slow: { start: number; ms: number; step: number }[] };
  entries: number;
}

/**
 * Puts so far, over all runs: each run goes on through the keys where the last one stopped (7919 is prime, so
 * every key comes once in KEYS puts). Every key was written once after the restore (below), so every put of every
 * run is an overwrite of a key in the key map alike, however many puts the runs make (a restored key's first write
 * moves it out of the restored key index, a dearer put, and a run of over KEYS puts would pass from one to the
 * other part way).
 */
let n = 0;

/**
 * Puts through a one-node host (snapshots every `snapshotEvery` entries, 0: none) for at least `minMs`, and until
 * `snapshots` snapshots are stored and `tailMs` has passed since the last. `rate` 0: closed loop, IN_FLIGHT puts
 * at a time, each sent when the one before it is answered. `rate` > 0: open loop, a put due every 1/rate s
 * whatever the answers, its latency counted from when it was due (so a stall delays, and counts, every put due
 * during it, as for clients that do not wait for each other).
 */
async function run(snapshotEvery: number, minMs: number, wanted: number, tailMs: number, rate = 0): Promise<Run> {
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
      steps.beginMs = Math.max(steps.beginMs, performance.now() - start);
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
    if (now - begin > 240_000) return true;
    const stored = snapshots.filter((x) => !Number.isNaN(x.end));
    if (stored.length < wanted) return false;
    const last = stored.at(-1);
    return last === undefined || now - last.end > tailMs;
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
    // A put waits up to about 1 ms to be sent, with or without a snapshot; its latency counts from when it was due.
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
  return { latencies, snapshots, samples: mon.samples, begin, end, steps, entries };
}

function report(name: string, xs: number[], extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({
      step: name,
      puts: xs.length,
      p50Ms: ms(percentile(xs, 50)),
      p90Ms: ms(percentile(xs, 90)),
      p99Ms: ms(percentile(xs, 99)),
      p999Ms: ms(percentile(xs, 99.9)),
      maxMs: ms(xs.reduce((m, x) => Math.max(m, x), 0)),
      ...extra,
    }),
  );
}

if (process.env.PUTS === '0') {
  console.log(JSON.stringify({ step: 'end', loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
  process.exit(0);
}
// The snapshot the store was restored from is dropped, as a node drops the one it restarted from once its first
// own snapshot replaces it: the put runs' snapshots then find what a node's would (kv writes a snapshot into
// shared memory while fewer than MAX_SHARED_ALIVE earlier ones are uncollected).
bytes = undefined;
// Every key written once, straight to the machine (see `n`), and that history compacted away.
{
  t0 = performance.now();
  const entry: LogEntry = { index: 0, term: 1, type: 'command', data: new Uint8Array() };
  for (let i = 0; i < KEYS; i++) {
    entry.index = i + 1;
    sm.apply(entry, { cmd: { op: 'put', key: key(i), value: value(i) } });
  }
  entry.index = KEYS + 1;
  sm.apply(entry, { cmd: { op: 'compact', revision: sm.revision } });
  console.log(JSON.stringify({ step: 'every key written once after the restore', ms: ms(performance.now() - t0), heapBytesPerKey: Math.round((heap() - heapBase) / KEYS) }));
}
// A first run, not reported: the put path compiled and the heap grown to its working size, so that the first
// puts of a run (the puts without a snapshot come first) do not pay for what the first puts after a restore cost.
const warmup = await run(0, Number(process.env.WARMUP_MS ?? 1000), 0, 0);
const warmRate = warmup.latencies.length / ((warmup.end - warmup.begin) / 1000);
console.log(JSON.stringify({ step: 'warm-up puts (not counted)', puts: warmup.latencies.length, putsPerSec: Math.round(warmRate) }));

/** How many snapshots each comparison takes. */
const CYCLES = Math.max(1, Number(process.env.CYCLES ?? 3));
/**
 * Puts that end within this long after a snapshot is stored count as puts during it: the log's compaction behind
 * it, and the freeing of what it held, are part of what a snapshot costs.
 */
const AFTER_MS = Number(process.env.AFTER_MS ?? 100);

/**
 * One run at `rate` (0: closed loop) in which the host takes CYCLES snapshots, `every` entries apart, with puts
 * going on throughout; each put counts as during a snapshot (it overlaps one, or the AFTER_MS after one) or
 * without one, and the two p99s are compared. Both are taken in the same run, in turns, from the same store and
 * heap: separate runs without and with a snapshot differed by more than the snapshot did (the young-generation
 * collections, a pause of 3 to 6 ms every ~20 ms that catches every put in flight, hit about 1% of the puts
 * either way, so a 3 s window's p99 fell above or below their pauses by chance: 1.6, 2.6 and 3.3 ms in three
 * runs of the same code, and later runs of a process were slower than its first).
 */
async function compare(what: string, rate: number, every: number, tailMs: number): Promise<void> {
  // What the run before left (its node, log and latencies) collected first, so that its collection does not fall in this run.
  heap();
  await new Promise((r) => setTimeout(r, 500));
  const r = await run(every, 0, CYCLES, tailMs, rate);
  const windows = r.snapshots.filter((x) => !Number.isNaN(x.end)).map((x) => ({ start: x.start, end: x.end + AFTER_MS }));
  const overlaps = (from: number, to: number) => windows.some((w) => from <= w.end && to >= w.start);
  const during: number[] = [];
  const without: number[] = [];
  const each: number[][] = windows.map(() => []);
  for (const l of r.latencies) {
    const x = l.end - l.start;
    if (!overlaps(l.start, l.end)) {
      without.push(x);
      continue;
    }
    during.push(x);
    windows.forEach((w, i) => {
      if (l.start <= w.end && l.end >= w.start) each[i]?.push(x);
    });
  }
  const inWindows = (t: number) => windows.some((w) => t >= w.start && t <= w.end);
  const duringMs = windows.reduce((a, w) => a + Math.min(w.end, r.end) - w.start, 0);
  const withoutMs = r.end - r.begin - duringMs;
  const inRun = (t: number) => t >= r.begin && t <= r.end;
  /** The collector's pauses that began, and the event-loop stalls that ended, in (or out of) the snapshot windows. */
  const gcAt = (inside: boolean) => gcWhere((t) => inRun(t) && inWindows(t) === inside);
  const stalls = (inside: boolean) => stallsWhere(r.samples, (x) => inRun(x.at) && inWindows(x.at) === inside);
  const p99Without = percentile(without, 99);
  report(`puts${what}, no snapshot in progress`, without, { putsPerSec: Math.round(without.length / (withoutMs / 1000)), ...stalls(false), gc: gcAt(false) });
  if (windows.length === 0) {
    console.log(JSON.stringify({ step: `puts${what} during a snapshot`, error: 'no snapshot completed', snapshotEvery: every }));
    return;
  }
  report(`puts${what} during a snapshot`, during, {
    p99VsNoSnapshot: Number((percentile(during, 99) / p99Without).toFixed(2)),
    // Each snapshot's puts alone against the puts without one.
    eachP99VsNoSnapshot: each.map((xs) => Number((percentile(xs, 99) / p99Without).toFixed(2))),
    snapshots: windows.length,
    snapshotMs: r.snapshots.filter((x) => !Number.isNaN(x.end)).map((x) => Math.round(x.end - x.start)),
    snapshotEvery: every,
    putsPerSec: Math.round(during.length / (duringMs / 1000)),
    ...stalls(true),
    gc: gcAt(true),
    longestBeginSnapshotMs: ms(r.steps.beginMs),
    steps: r.steps.count,
    longestStepMs: ms(r.steps.longestMs),
    stepsOver1Ms: r.steps.slow.length,
    // Steps over 1 ms during which the collector paused the thread (the rest: the step's own work, or the
    // process not running: a busy machine).
    stepsOver1MsWithGc: r.steps.slow.filter((x) => gcPauses.some((g) => g.start < x.start + x.ms && g.start + g.ms > x.start)).length,
    slowestSteps: r.steps.slow
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((x) => `#${x.step}:${x.ms.toFixed(1)}ms`),
  });
}

// Closed loop: a snapshot every 5 s of the warm-up's puts, or as the host's pacing after a large snapshot allows
// (core's SNAPSHOT_PACE: about twice as long without a snapshot as with one), and 5 s of puts before the first.
if (process.env.CLOSED !== '0') await compare('', 0, Math.round(warmRate * 5), 2000);
// The same at a fixed rate (RATE puts per second, 0 to skip), a snapshot every 5 s of puts or as paced: a closed loop sends
// fewer puts while a snapshot slows each one, so the puts a stall catches (IN_FLIGHT of them) are a larger share
// of those during a snapshot than of those without; at a fixed rate a stall catches the puts due during it either way.
const RATE = Number(process.env.RATE ?? 2000);
if (RATE > 0) await compare(` at ${RATE}/s`, RATE, RATE * 5, 2000);
// Sustained load (16 in flight for SUSTAIN_MS, default 20 s; 0 skips it) with the node's default snapshot triggers
// (every 10,000 entries, paced after a long snapshot, or 64 MiB of entries): how many puts a second a node with
// this store keeps up, and how much of the time it spends snapshotting.
const SUSTAIN_MS = Number(process.env.SUSTAIN_MS ?? 20_000);
if (SUSTAIN_MS > 0) {
  heap();
  await new Promise((r) => setTimeout(r, 500));
  const r = await run(10_000, SUSTAIN_MS, 0, 0);
  const busyMs = r.snapshots.reduce((a, x) => a + Math.min(Number.isNaN(x.end) ? r.end : x.end, r.end) - x.start, 0);
  report(
    'puts under sustained load, default snapshot triggers',
    r.latencies.map((l) => l.end - l.start),
    {
      putsPerSec: Math.round(r.latencies.length / ((r.end - r.begin) / 1000)),
      snapshots: r.snapshots.length,
      snapshottingShare: Number((busyMs / (r.end - r.begin)).toFixed(2)),
      snapshotMs: r.snapshots.map((x) => (Number.isNaN(x.end) ? 'unfinished' : Math.round(x.end - x.start))),
    },
  );
}
console.log(JSON.stringify({ step: 'end', loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
