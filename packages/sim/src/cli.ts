#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, isConsensusError } from '@consensus-kit/core';
import { serveUi } from '@consensus-kit/ui';
import { writeReport } from './report';
import { resolveProtocol } from './resolve-protocol';
import { DEFAULT_SNAPSHOT_EVERY, parseProtocolOption, replayCommand, replayUiCommand, runSweep, simulateOptions, type SweepOptions } from './sweep';
import { simulate, type SimResult } from './simulator';
import { DEFAULT_MAX_FRAMES, recordRun, replaySource, type Recording } from './ui-recorder';

function int(what: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min}`);
    return n;
  };
}

/** `--port`: checked here, before the run is recorded, rather than by the server once it is. */
function port(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('--port must be an integer from 0 to 65535');
  return n;
}

/** The options of one run, shared by the sweep (`--seed`, `--seeds`) and `replay <seed>`. */
interface RunOpts {
  protocol?: string;
  module?: string;
  nodes: number;
  ticks: number;
  faults: 'none' | 'light' | 'heavy';
  clients: number;
  snapshotEvery: number;
  protocolOption: string[];
  crashMidSave: boolean;
  reportDir: string;
  report?: boolean;
}

function addRunOptions(program: Command): Command {
  return program
    .option('--protocol <name>', 'toy, toy-commit-one-ack, toy-forget-vote, toy-local-reads, or a package @consensus-kit/<name>')
    .option('--module <path>', 'a file exporting your own ProtocolModule (and optional `invariants`)');
}

function addSettingOptions(program: Command): Command {
  return program
    .option('--nodes <n>', 'replicas', int('--nodes', 1), 3)
    .option('--ticks <n>', 'length of each run in ticks', int('--ticks', 1), 400)
    .addOption(new Option('--faults <level>', 'fault intensity').choices(['none', 'light', 'heavy']).default('light'))
    .option('--clients <n>', 'concurrent clients', int('--clients', 0), 3)
    .option('--snapshot-every <n>', 'snapshot and compact every n applied entries (0 = never)', int('--snapshot-every', 0), DEFAULT_SNAPSHOT_EVERY)
    .option('--protocol-option <key=value>', "one of the protocol's own options, repeatable (value parsed as JSON when it parses, else a string)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-crash-mid-save', 'a crash loses the whole save at the disk (default: a random prefix of it survives)')
    .option('--report-dir <dir>', 'where failing runs write trace.ndjson and timeline.html (relative to where the command was typed)', '.sim-reports')
    .option('--report', 'write a report even when the run passes');
}

/** What `main` may be given besides the arguments (tests stop `replay --ui` this way). */
export interface MainIo {
  /** Stops `replay --ui` serving when aborted (default: at SIGINT or SIGTERM, i.e. Ctrl-C). */
  stop?: AbortSignal;
  /** Called with the page's URL once `replay --ui` serves it. */
  onServing?: (url: string) => void;
}

export async function main(argv: readonly string[], io: MainIo = {}): Promise<number> {
  if (argv[0] === 'replay') return replayMain(argv.slice(1), io);
  const program = addSettingOptions(
    addRunOptions(
      new Command()
        .name('sim')
        .description('Deterministic simulation of a consensus protocol: seeded faults, invariants after every step, linearizability of the client history.'),
    )
      .option('--seed <n>', 'run this one seed (traced; report written if it fails)', int('--seed', 0))
      .option('--seeds <k>', 'sweep k seeds', int('--seeds', 1))
      .option('--from <n>', 'first seed of a sweep', int('--from', 0), 1),
  )
    .option('--fail-fast', 'stop a sweep at the first violation')
    .addHelpText('after', '\nStep through one seed in the browser: sim replay <seed> [the run options above] --ui [--port N]')
    .exitOverride();
  try {
    program.parse(argv as string[], { from: 'user' });
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const o = program.opts<RunOpts & { seed?: number; seeds?: number; from: number; failFast?: boolean }>();
  try {
    const base = commandDir();
    const sweep = await sweepOptions(o, base);
    if (o.seed !== undefined && o.seeds === undefined) return await runOneSeed(sweep, o.seed, o.report === true);
    const summary = await runSweep({ ...sweep, seeds: o.seeds ?? 1, from: o.seed ?? o.from, ...(o.report ? { reportAll: true } : {}), ...(o.failFast ? { failFast: true } : {}) });
    return summary.violations.length === 0 ? 0 : 1;
  } catch (e) {
    if (isConsensusError(e)) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/** `pnpm sim` runs this in the package's directory; paths on the command line are meant from where it was typed. */
function commandDir(): string {
  return process.env.INIT_CWD || process.cwd();
}

/** The run's settings from the command line; the protocol resolved and its options parsed (typed errors otherwise). */
async function sweepOptions(o: RunOpts, base: string): Promise<Omit<SweepOptions, 'seeds'>> {
  const protocolOptions: Record<string, unknown> = {};
  for (const arg of o.protocolOption) parseProtocolOption(arg, protocolOptions);
  const protocol = await resolveProtocol(o.protocol, o.module !== undefined ? { module: o.module, cwd: base } : { cwd: base });
  return {
    protocol,
    nodes: o.nodes,
    ticks: o.ticks,
    faults: o.faults,
    clients: o.clients,
    snapshotEvery: o.snapshotEvery,
    ...(o.protocolOption.length > 0 ? { protocolOptions } : {}),
    ...(o.crashMidSave ? {} : { crashMidSave: false }),
    reportDir: resolve(base, o.reportDir),
    ...(o.module !== undefined ? { modulePath: o.module } : {}),
  };
}

/** `--seed N` (and `replay N` without `--ui`): one traced run, its summary, and a report when it fails. */
async function runOneSeed(sweep: Omit<SweepOptions, 'seeds'>, seed: number, report: boolean): Promise<number> {
  const result = simulate(simulateOptions(sweep, seed, true));
  await printRun(sweep, seed, result, report);
  return result.ok ? 0 : 1;
}

async function printRun(sweep: Omit<SweepOptions, 'seeds'>, seed: number, result: SimResult, report: boolean, ui = false): Promise<void> {
  const replay = replayCommand(sweep, seed);
  const s = result.stats;
  console.log(`${sweep.protocol.name} seed ${seed}: ${result.ok ? 'ok' : 'VIOLATION'} · ${s.steps} steps · ${s.ops} ops (${s.opsOk} ok, ${s.opsIndeterminate} indeterminate) · ${s.crashes} crashes (${s.tornSaves} torn saves) · committed ${s.committedIndex}`);
  if (!result.ok || report) {
    const files = await writeReport(result, { dir: sweep.reportDir ?? '.sim-reports', replay });
    if (result.violation) {
      console.log(`${result.violation.kind} violation (${result.violation.name}): ${result.violation.message}`);
    }
    console.log(`replay: ${replay}`);
    if (!result.ok && !ui) console.log(`step through it in the browser: ${replayUiCommand(sweep, seed)}`);
    console.log(`report: ${files.timeline}`);
    console.log(`trace:  ${files.trace}`);
  }
}

/**
 * `sim replay <seed> [run options] [--ui] [--port N]`: without `--ui`, what `--seed <seed>` does. With it: the
 * run is recorded (a frame per step, see `recordRun`) and served on 127.0.0.1 by `serveUi` until Ctrl-C.
 */
async function replayMain(argv: readonly string[], io: MainIo): Promise<number> {
  const program = addSettingOptions(
    addRunOptions(
      new Command()
        .name('sim replay')
        .description('Run one seed again; with --ui, step through it in the browser (served on 127.0.0.1 until Ctrl-C).')
        .argument('<seed>', 'the seed to run', int('seed', 0)),
    ),
  )
    .option('--ui', 'record the run step by step and serve it as a web page on 127.0.0.1')
    .option('--port <n>', 'port for --ui (default: a free one)', port)
    .option('--max-frames <n>', 'at most this many frames for --ui (more steps are merged)', int('--max-frames', 2), DEFAULT_MAX_FRAMES)
    .exitOverride();
  try {
    program.parse(argv as string[], { from: 'user' });
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const seed = program.processedArgs[0] as number;
  const o = program.opts<RunOpts & { ui?: boolean; port?: number; maxFrames: number }>();
  let recording: Recording;
  let sweep: Omit<SweepOptions, 'seeds'>;
  try {
    if (!o.ui && o.port !== undefined) throw new ConfigError('--port needs --ui');
    sweep = await sweepOptions(o, commandDir());
    if (!o.ui) return await runOneSeed(sweep, seed, o.report === true);
    recording = recordRun(simulateOptions(sweep, seed, true), { maxFrames: o.maxFrames });
  } catch (e) {
    if (isConsensusError(e)) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const result = recording.result;
  await printRun(sweep, seed, result, o.report === true, true);
  console.log(`${recording.frames.length} frames of ${recording.steps} steps${recording.thinned !== undefined ? ` (thinned: ${recording.thinned})` : ''}`);
  const verdict = result.violation !== undefined ? `${result.violation.kind} violation (${result.violation.name})` : 'ok';
  const source = replaySource(recording, {
    protocol: sweep.protocol.name,
    title: `${sweep.protocol.name} seed ${seed} · ${result.nodes.length} nodes · ${result.ticks} ticks · ${verdict}`,
    replayCommand: replayUiCommand(sweep, seed),
    // The command line sets no electionTicks: every replica runs with core's default of 10 (DESIGN r2).
    electionTimeout: 10,
  });
  let server: Awaited<ReturnType<typeof serveUi>>;
  try {
    server = await serveUi({ source, ...(o.port !== undefined ? { port: o.port } : {}) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
    console.error(`error: port ${o.port} on 127.0.0.1 is ${code === 'EACCES' ? 'not open to this user' : 'already in use'}: pick another with --port (0: any free port)`);
    return 2;
  }
  console.log(`ui: ${server.url} (Ctrl-C to stop)`);
  io.onServing?.(server.url);
  await stopped(io.stop);
  await server.close();
  return result.ok ? 0 : 1;
}

/** Resolves when `signal` aborts, or (without one) at the first SIGINT or SIGTERM. */
function stopped(signal: AbortSignal | undefined): Promise<void> {
  if (signal !== undefined) {
    return signal.aborted ? Promise.resolve() : new Promise((done) => signal.addEventListener('abort', () => done(), { once: true }));
  }
  return new Promise((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
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
