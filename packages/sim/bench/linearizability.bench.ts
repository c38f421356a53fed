/**
 * Linearizability checker throughput (printed, never asserted): 1,000-operation histories over 5 keys (4
 * registers, 1 list) from 8 clients with 20% indeterminate operations, generated from seeds 1..N
 * (`generateHistory`), each checked as generated (linearizable) and with one injected stale read (illegal;
 * the time includes shrinking the counterexample). Reports checked operations per second of process CPU time
 * (steady on a shared, loaded machine) and of wall time, for the best of `reps` passes over the seeds (the
 * first pass also warms the JIT; a pass that takes over a minute is not repeated).
 *
 *   pnpm exec tsx --conditions=@consensus-kit/source bench/linearizability.bench.ts [seeds] [ops] [reps]
 */
import type { History } from '../src/history';
import { checkLinearizability } from '../src/linearizability';
import { generateHistory, injectStaleRead } from '../src/lin-generate';

const seeds = Number(process.argv[2] ?? 20);
const size = Number(process.argv[3] ?? 1000);
const reps = Number(process.argv[4] ?? 3);

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function run(label: string, histories: History[], expected: string): void {
  let best: { cpu: number; wall: number; worst: number; ops: number; verdicts: string } | undefined;
  for (let rep = 0; rep < reps; rep++) {
    let ops = 0;
    let worst = 0;
    const verdicts = new Map<string, number>();
    const cpu0 = cpuMs();
    const wall0 = performance.now();
    for (const h of histories) {
      const t0 = performance.now();
      const r = checkLinearizability(h);
      worst = Math.max(worst, performance.now() - t0);
      ops += r.checkedOps;
      verdicts.set(r.result, (verdicts.get(r.result) ?? 0) + 1);
    }
    const wall = performance.now() - wall0;
    const cpu = cpuMs() - cpu0;
    const v = [...verdicts].map(([k, n]) => `${n} ${k}`).join(', ');
    if (best === undefined || cpu < best.cpu) best = { cpu, wall, worst, ops, verdicts: v };
    if (wall > 60_000) break;
  }
  const b = best as NonNullable<typeof best>;
  const rate = (ms: number) => Math.round((b.ops / ms) * 1000).toLocaleString('en');
  console.log(
    `  ${label.padEnd(24)} ${rate(b.cpu).padStart(9)} ops/cpu-s ${rate(b.wall).padStart(9)} ops/wall-s  (${(b.cpu / 1000).toFixed(2)} cpu-s, ${(b.wall / 1000).toFixed(2)} wall-s; worst history ${b.worst.toFixed(0)} ms; ${b.verdicts}; expected ${expected})`,
  );
}

const linearizable: History[] = [];
const broken: History[] = [];
for (let seed = 1; seed <= seeds; seed++) {
  const h = generateHistory({ seed, ops: size });
  linearizable.push(h);
  const bad = injectStaleRead(h, seed);
  if (bad !== undefined) broken.push(bad.history);
}
console.log(`linearizability checker: ${seeds} seeds x ${size} ops, 5 keys, 8 clients, 20% indeterminate; best of ${reps}`);
run('linearizable', linearizable, 'ok');
run('one injected stale read', broken, 'illegal');
