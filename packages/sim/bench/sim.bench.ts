/**
 * Simulator and checker figures (printed, never asserted):
 * - simulated steps per second for the toy Raft under no, light and heavy faults, 3 and 5 replicas;
 * - linearizability checker time for a 10,000-operation, 5-client history (from the simulator, and a
 *   synthetic single-register one, the worst case for per-key partitioning).
 */
import { checkLinearizability, simulate, toy, toyInvariants, type HistoryOp } from '../src/index';

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

console.log('simulated steps per second (toy protocol, 400 ticks per run, invariants after every step)');
for (const [faults, nodes] of [
  ['none', 3],
  ['light', 3],
  ['heavy', 3],
  ['heavy', 5],
] as const) {
  let steps = 0;
  let ops = 0;
  let simMs = 0;
  const seeds = 20;
  for (let seed = 1; seed <= seeds; seed++) {
    const [r, ms] = time(() => simulate({ protocol: toy, seed, faults, nodes, invariants: toyInvariants, checkLinearizability: false }));
    steps += r.stats.steps;
    ops += r.history.length;
    simMs += ms;
  }
  console.log(
    `  ${faults.padEnd(5)} ${nodes} nodes: ${Math.round((steps / simMs) * 1000).toLocaleString('en')} steps/s, ${(simMs / seeds).toFixed(1)} ms per run, ${Math.round(steps / seeds)} steps and ${Math.round(ops / seeds)} ops per run`,
  );
}

const [traced, tracedMs] = time(() => simulate({ protocol: toy, seed: 1, faults: 'heavy', nodes: 5, invariants: toyInvariants, trace: true, checkLinearizability: false }));
console.log(`  with trace on: ${Math.round((traced.stats.steps / tracedMs) * 1000).toLocaleString('en')} steps/s (${traced.trace?.length} trace lines)`);

console.log('linearizability checker, 10,000 operations from 5 clients');
const [big, bigMs] = time(() => simulate({ protocol: toy, seed: 3, faults: 'light', workload: { clients: 5 }, ticks: 6000, invariants: toyInvariants, checkLinearizability: false }));
const history = big.history.slice(0, 10_000);
const [r1, ms1] = time(() => checkLinearizability(history));
console.log(
  `  simulated history (${history.length} ops, ${history.filter((o) => o.status === 'info').length} indeterminate, 4 keys; simulation took ${(bigMs / 1000).toFixed(1)} s): ${r1.result} in ${ms1.toFixed(0)} ms`,
);

// A single register under 5 concurrent clients: every op in one partition.
let seed = 11;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const ops: HistoryOp[] = [];
const busy = [0, 0, 0, 0, 0];
const effects: { at: number; op: HistoryOp }[] = [];
for (let i = 0; i < 10_000; i++) {
  const c = i % 5;
  const start = (busy[c] as number) + Math.floor(rnd() * 5);
  const end = start + 1 + Math.floor(rnd() * 30);
  busy[c] = end + 1;
  const f = rnd();
  const op: HistoryOp =
    f < 0.35 ? { id: i, client: c, input: { f: 'put', key: 'r', value: `v${i}` }, invoke: start, complete: end, status: 'ok' } : { id: i, client: c, input: { f: 'get', key: 'r' }, invoke: start, complete: end, status: 'ok' };
  effects.push({ at: (start + Math.floor(rnd() * (end - start))) * 10 + c, op });
  ops.push(op);
}
let reg: string | null = null;
for (const { op } of effects.sort((a, b) => a.at - b.at)) {
  if (op.input.f === 'put') {
    reg = op.input.value;
    op.output = { ok: true };
  } else op.output = { value: reg };
}
const [r2, ms2] = time(() => checkLinearizability(ops));
console.log(`  synthetic single register (10,000 ops, up to 5 concurrent): ${r2.result} in ${ms2.toFixed(0)} ms`);
const broken = ops.map((o) => ({ ...o }));
const victim = broken.findLast((o) => o.input.f === 'get' && o.output && 'value' in o.output && o.output.value !== null)!;
victim.output = { value: 'never-written' };
const [r3, ms3] = time(() => checkLinearizability(broken));
console.log(`  same history with one bad read: ${r3.result} in ${ms3.toFixed(0)} ms${r3.result === 'illegal' ? ` (counterexample of ${r3.counterexample.length} ops)` : ''}`);
