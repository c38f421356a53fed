#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isConsensusError } from '@consensus-kit/core';
import { writeReport } from './report';
import { resolveProtocol } from './resolve-protocol';
import { DEFAULT_SNAPSHOT_EVERY, parseProtocolOption, replayCommand, runSweep, simulateOptions, type SweepOptions } from './sweep';
import { simulate } from './simulator';

function int(what: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min}`);
    return n;
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command()
    .name('sim')
    .description('Deterministic simulation of a consensus protocol: seeded faults, invariants after every step, linearizability of the client history.')
    .option('--protocol <name>', 'toy, toy-commit-one-ack, toy-forget-vote, toy-local-reads, or a package @consensus-kit/<name>')
    .option('--module <path>', 'a file exporting your own ProtocolModule (and optional `invariants`)')
    .option('--seed <n>', 'run this one seed (traced; report written if it fails)', int('--seed', 0))
    .option('--seeds <k>', 'sweep k seeds', int('--seeds', 1))
    .option('--from <n>', 'first seed of a sweep', int('--from', 0), 1)
    .option('--nodes <n>', 'replicas', int('--nodes', 1), 3)
    .option('--ticks <n>', 'length of each run in ticks', int('--ticks', 1), 400)
    .addOption(new Option('--faults <level>', 'fault intensity').choices(['none', 'light', 'heavy']).default('light'))
    .option('--clients <n>', 'concurrent clients', int('--clients', 0), 3)
    .option('--snapshot-every <n>', 'snapshot and compact every n applied entries (0 = never)', int('--snapshot-every', 0), DEFAULT_SNAPSHOT_EVERY)
    .option('--protocol-option <key=value>', "one of the protocol's own options, repeatable (value parsed as JSON when it parses, else a string)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-crash-mid-save', 'a crash loses the whole save at the disk (default: a random prefix of it survives)')
    .option('--report-dir <dir>', 'where failing runs write trace.ndjson and timeline.html (relative to where the command was typed)', '.sim-reports')
    .option('--report', 'write a report even when the run passes')
    .option('--fail-fast', 'stop a sweep at the first violation')
    .exitOverride();
  try {
    program.parse(argv as string[], { from: 'user' });
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const o = program.opts<{
    protocol?: string;
    module?: string;
    seed?: number;
    seeds?: number;
    from: number;
    nodes: number;
    ticks: number;
    faults: 'none' | 'light' | 'heavy';
    clients: number;
    snapshotEvery: number;
    protocolOption: string[];
    crashMidSave: boolean;
    reportDir: string;
    report?: boolean;
    failFast?: boolean;
  }>();
  // `pnpm sim` runs this in the package's directory; paths on the command line are meant from where it was typed.
  const base = process.env.INIT_CWD || process.cwd();
  o.reportDir = resolve(base, o.reportDir);
  try {
    const protocolOptions: Record<string, unknown> = {};
    for (const arg of o.protocolOption) parseProtocolOption(arg, protocolOptions);
    const protocol = await resolveProtocol(o.protocol, o.module !== undefined ? { module: o.module, cwd: base } : { cwd: base });
    const sweep: SweepOptions = {
      protocol,
      seeds: o.seeds ?? 1,
      from: o.seed ?? o.from,
      nodes: o.nodes,
      ticks: o.ticks,
      faults: o.faults,
      clients: o.clients,
      snapshotEvery: o.snapshotEvery,
      ...(o.protocolOption.length > 0 ? { protocolOptions } : {}),
      ...(o.crashMidSave ? {} : { crashMidSave: false }),
      reportDir: o.reportDir,
      ...(o.failFast ? { failFast: true } : {}),
      ...(o.module !== undefined ? { modulePath: o.module } : {}),
    };
    if (o.seed !== undefined && o.seeds === undefined) {
      const result = simulate(simulateOptions(sweep, o.seed, true));
      const replay = replayCommand(sweep, o.seed);
      const s = result.stats;
      console.log(`${protocol.name} seed ${o.seed}: ${result.ok ? 'ok' : 'VIOLATION'} · ${s.steps} steps · ${s.ops} ops (${s.opsOk} ok, ${s.opsIndeterminate} indeterminate) · ${s.crashes} crashes (${s.tornSaves} torn saves) · committed ${s.committedIndex}`);
      if (!result.ok || o.report) {
        const files = await writeReport(result, { dir: o.reportDir, replay });
        if (result.violation) {
          console.log(`${result.violation.kind} violation (${result.violation.name}): ${result.violation.message}`);
        }
        console.log(`replay: ${replay}`);
        console.log(`report: ${files.timeline}`);
        console.log(`trace:  ${files.trace}`);
      }
      return result.ok ? 0 : 1;
    }
    const summary = await runSweep({ ...sweep, ...(o.report ? { reportAll: true } : {}) });
    return summary.violations.length === 0 ? 0 : 1;
  } catch (e) {
    if (isConsensusError(e)) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function invokedDirectly(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

const isMain = invokedDirectly();
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 3;
    },
  );
}
