/**
 * Large values (bench:large with LARGE_VALUES=1): a store of KEYS keys (default 500) written WRITES times in turn
 * (default 3,000) with VALUE_BYTES-byte string values (default 64 KiB), so the snapshot holds KEYS live values and
 * the rest as history (about 200 MB by default): what a leader's snapshot and a follower's install of it do to the
 * event loop, driven as the host drives them (steps of 64 units for up to 0.5 ms, then a turn of the event loop).
 *
 * Figures printed: for `beginSnapshot()` and for `beginRestore()` (of the bytes as they are, and at an odd offset
 * of a larger buffer, as a snapshot unpacked from a message sits): the time of the call itself, the slices, the
 * worst step (one `step(64)` call), the worst step no collector pause began in (the step's own work), the steps over
 * 1 ms, the longest slice, the worst event-loop stall (a 1 ms timer's lateness) and
 * the collector's pauses (count, total ms, longest ms). A follower blocked for a second misses its leader's
 * heartbeats: no step may run long, the first included.
 *
 * Run: LARGE_VALUES=1 pnpm --filter @consensus-kit/kv bench:large   (KEYS, WRITES, VALUE_BYTES as above; KV_MODULE as
 * in bench:large)
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import type { LogEntry, RestoreJob, SnapshotJob } from '@consensus-kit/core';
import type * as Kv from '@consensus-kit/kv';

// KV_MODULE=<path to another kv source's index.ts>: measure that code instead (as bench:large does).
const { KvStateMachine } = (process.env.KV_MODULE ? await import(process.env.KV_MODULE) : await import('@consensus-kit/kv')) as typeof Kv;

const KEYS = Number(process.env.KEYS ?? 500);
const WRITES = Number(process.env.WRITES ?? 3000);
const VALUE_BYTES = Number(process.env.VALUE_BYTES ?? 64 * 1024);
const ms = (x: number) => Number(x.toFixed(3));

const gcPauses: { start: number; ms: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration });
}).observe({ entryTypes: ['gc'] });
const gcIn = (from: number, to: number) => {
  const xs = gcPauses.filter((g) => g.start >= from && g.start <= to);
  return [xs.length, ms(xs.reduce((a, g) => a + g.ms, 0)), ms(xs.reduce((a, g) => Math.max(a, g.ms), 0))];
};

/** Runs a job as the host does, timing each step and each slice, with a 1 ms timer watching the event loop. */
async function drive<T>(what: string, begin: () => { step(budget: number): T }, finished: (r: T) => boolean): Promise<T> {
  let last = performance.now();
  let worstStall = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstStall = Math.max(worstStall, now - last - 1);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const job = begin();
  const beginMs = performance.now() - t0;
  let slices = 0;
  let steps = 0;
  let worstStep = 0;
  let worstStepAt = 0;
  let longestSlice = 0;
  /** Steps over 1 ms: [start, ms], to tell those a collector pause fell in from the step's own work. */
  const slow: [number, number][] = [];
  const result = await new Promise<T>((resolve) => {
    const slice = () => {
      slices++;
      const from = performance.now();
      let r: T;
      for (;;) {
        const s = performance.now();
        r = job.step(64);
        const d = performance.now() - s;
        steps++;
        if (d > 1) slow.push([s, d]);
        if (d > worstStep) {
          worstStep = d;
          worstStepAt = steps;
        }
        if (finished(r) || performance.now() >= from + 0.5) break;
      }
      longestSlice = Math.max(longestSlice, performance.now() - from);
      if (finished(r)) resolve(r);
      else setImmediate(slice);
    };
    slice();
  });
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  // The slowest step no collector pause began in: the step's own work (or the process not running on a busy machine).
  const own = slow.filter(([s, d]) => !gcPauses.some((g) => g.start >= s && g.start <= s + d)).reduce((m, [, d]) => Math.max(m, d), 0);
  console.log(
    JSON.stringify({ step: what, ms: ms(t1 - t0), beginMs: ms(beginMs), slices, steps, worstStepMs: ms(worstStep), worstStepIndex: worstStepAt, worstStepWithoutGcMs: ms(own), stepsOver1Ms: slow.length, longestSliceMs: ms(longestSlice), worstStallMs: ms(worstStall), gc: gcIn(t0, t1) }),
  );
  return result;
}

console.log(JSON.stringify({ step: 'start (large values)', keys: KEYS, writes: WRITES, valueBytes: VALUE_BYTES, loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
const sm = new KvStateMachine();
const entry: LogEntry = { index: 0, term: 1, type: 'command', data: new Uint8Array() };
for (let i = 0; i < WRITES; i++) {
  entry.index = i + 1;
  sm.apply(entry, { cmd: { op: 'put', key: `bench/${String(i % KEYS).padStart(6, '0')}`, value: String.fromCharCode(97 + (i % 26)).repeat(VALUE_BYTES) } });
}
const bytes = await drive<Uint8Array | undefined>('beginSnapshot() in 0.5 ms slices (large values)', () => sm.beginSnapshot() as SnapshotJob, (r) => r !== undefined);
const snapshot = bytes as Uint8Array;
console.log(JSON.stringify({ step: 'snapshot bytes', bytes: snapshot.length, sameAsSnapshot: Buffer.compare(snapshot, sm.snapshot()) === 0 }));
const odd = new Uint8Array(snapshot.length + 3).subarray(3);
odd.set(snapshot);
for (const [name, b] of [
  ['', snapshot],
  [' at an odd offset', odd],
] as const) {
  const follower = new KvStateMachine();
  await drive(`beginRestore() in 0.5 ms slices (large values${name})`, () => follower.beginRestore(b) as RestoreJob, (r) => r);
  console.log(JSON.stringify({ step: `restored${name}`, keys: follower.size, sameBytes: Buffer.compare(follower.snapshot(), snapshot) === 0 }));
}
console.log(JSON.stringify({ step: 'end', loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
