import { resolveProtocol, runSweep, simulate, toyInvariants, type FaultEvent } from '@consensus-kit/sim';

// 1. A seed sweep, as `pnpm sim --protocol toy --seeds 20 --nodes 5 --faults heavy` runs it.
const toy = await resolveProtocol('toy'); // or any @consensus-kit/<name>, or { module: './my-protocol.ts' }
const summary = await runSweep({ protocol: toy, seeds: 20, nodes: 5, faults: 'heavy' });
if (summary.violations.length > 0) process.exitCode = 1;

// 2. One run with a scripted schedule: a bridge node between two halves, then a crash, then heal.
const events: FaultEvent[] = [
  { at: 50, action: { type: 'bridge', bridge: 'n3', left: ['n1', 'n2'], right: ['n4', 'n5'] } },
  { at: 120, action: { type: 'crash', node: 'n3' } },
  { at: 160, action: { type: 'restart', node: 'n3' } },
  { at: 200, action: { type: 'heal' } },
];
const run = simulate({ protocol: toy.module, seed: 7, nodes: 5, faults: { kind: 'scripted', events }, invariants: toyInvariants });
console.log(`scripted run: ${run.ok ? 'ok' : run.violation?.message}, ${run.stats.opsOk} ops ok, linearizability ${run.check?.result}`);

// 3. A replica that serves reads locally, without a read barrier, is caught.
const broken = await runSweep({ protocol: await resolveProtocol('toy-local-reads'), seeds: 5, log: () => {} });
console.log(`local reads: ${broken.violations.length} of 5 seeds violate linearizability, e.g. replay: ${broken.violations[0]?.replay}`);
