/**
 * One sweep of `pnpm mutate`, in its own process: loads a protocol module from a (possibly mutated) copy of a
 * package, runs simulator seeds until the first violation, and prints one JSON line with the outcome.
 *
 *   tsx --conditions=@consensus-kit/source scripts/mutate/sweep-worker.ts <json>
 *   json: { sim, module, protocol, seeds, from, nodes, faults, protocolOptions, reportDir }
 *   sim: the simulator's src/index.ts to use (the runner passes a copy taken from git HEAD, like the protocol's)
 */
import type * as Sim from '../../packages/sim/src/index';

interface WorkerInput {
  sim: string;
  module: string;
  protocol: string;
  seeds: number;
  from: number;
  nodes: number;
  faults: 'none' | 'light' | 'heavy';
  protocolOptions: Record<string, unknown>;
  reportDir: string;
}

export interface WorkerOutput {
  seedsRun: number;
  elapsedMs: number;
  unknown: number[];
  violation?: { seed: number; kind: string; name: string; message: string; replay: string };
}

const input = JSON.parse(process.argv[2] ?? '') as WorkerInput;
const { resolveProtocol, runSweep } = (await import(input.sim)) as typeof Sim;
const protocol = await resolveProtocol(input.protocol, { module: input.module });
const summary = await runSweep({
  protocol,
  seeds: input.seeds,
  from: input.from,
  nodes: input.nodes,
  faults: input.faults,
  ...(Object.keys(input.protocolOptions).length > 0 ? { protocolOptions: input.protocolOptions } : {}),
  failFast: true,
  reportDir: input.reportDir,
  modulePath: input.module,
  log: () => {},
  progress: () => {},
});
const first = summary.violations[0];
const out: WorkerOutput = { seedsRun: summary.seedsRun, elapsedMs: Math.round(summary.elapsedMs), unknown: summary.unknown };
if (first !== undefined) {
  out.violation = { seed: first.seed, kind: first.violation.kind, name: first.violation.name, message: first.violation.message, replay: first.replay };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
