/**
 * Linearizability checker throughput (printed, never asserted): 1,000-operation histories over 5 keys (4
 * registers, 1 list) from 8 clients with 20% indeterminate operations, generated from seeds 1..N
 * (`generateHistory`), each checked as generated (linearizable) and with one injected stale read (illegal;
 * the time includes shrinking the counterexample). Reports checked operations per second.
 *
 *   pnpm exec tsx --conditions=@consensus-kit/source bench/linearizability.bench.ts [seeds] [ops]
 */
import { checkLinearizability } from '../src/linearizability';
import { generateHistory, injectStaleRead } from '../src/lin-generate';

const seeds = Number(process.argv[2] ?? 20);
const size = Number(process.argv[3] ?? 1000);

function run(label: string, make: (seed: number) => Parameters<typeof checkLinearizability>[0] | undefined, expected: string): void {
  let ops = 0;
  let ms = 0;
  let worst = 0;
  const verdicts = new Map<string, number>();
  for (let seed = 1; seed <= seeds; seed++) {
    const h = make(seed);
    if (h === undefined) continue;
    const t0 = performance.now();
    const r = checkLinearizability(h);
    const dt = performance.now() - t0;
    ms += dt;
    worst = Math.max(worst, dt);
    ops += r.checkedOps;
    verdicts.set(r.result, (verdicts.get(r.result) ?? 0) + 1);
  }
  const v = [...verdicts].map(([k, n]) => `${n} ${k}`).join(', ');
  console.log(
    `  ${label.padEnd(26)} ${Math.round((ops / ms) * 1000).toLocaleString('en').padStart(9)} ops/s  ${(ms / 1000).toFixed(2)} s total, worst ${worst.toFixed(0)} ms  (${v}; expected ${expected})`,
  );
}

// Warm up the JIT on a few small histories first so the first seed does not pay for compilation.
for (let s = 1000; s < 1010; s++) checkLinearizability(generateHistory({ seed: s, ops: 200 }));

console.log(`linearizability checker: ${seeds} seeds x ${size} ops, 5 keys, 8 clients, 20% indeterminate`);
run('linearizable', (seed) => generateHistory({ seed, ops: size }), 'ok');
run('one injected stale read', (seed) => injectStaleRead(generateHistory({ seed, ops: size }), seed)?.history, 'illegal');
