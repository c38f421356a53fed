import { ConfigError } from '@consensus-kit/core';
import type { FaultLevel } from './faults';
import { writeReport, type ReportFiles } from './report';
import type { ResolvedProtocol } from './resolve-protocol';
import { simulate, type SimResult, type SimulateOptions, type Violation } from './simulator';

/**
 * Sweeps snapshot and compact every this many applied entries unless told otherwise (`--snapshot-every 0`
 * turns it off): snapshot installs, compaction and the crashes around them are part of every sweep.
 */
export const DEFAULT_SNAPSHOT_EVERY = 25;

export interface SweepOptions {
  protocol: ResolvedProtocol;
  /** How many seeds to run, starting at `from` (default 1). */
  seeds: number;
  from?: number;
  nodes?: number;
  ticks?: number;
  faults?: FaultLevel;
  clients?: number;
  /** Snapshot and compact every n applied entries; 0 = never. Default `DEFAULT_SNAPSHOT_EVERY` (25). */
  snapshotEvery?: number;
  /** The protocol's own options, validated by its `parseOptions` (`--protocol-option key=value`). */
  protocolOptions?: Record<string, unknown>;
  /** A crash keeps a random prefix of a save at the disk (default true; `--no-crash-mid-save` turns it off). */
  crashMidSave?: boolean;
  /** Where failing runs write their trace and timeline. Default `.sim-reports` in cwd. */
  reportDir?: string;
  /** Stop at the first violation. */
  failFast?: boolean;
  /** Write a report for every seed, not only failing ones. */
  reportAll?: boolean;
  /** How the replay command starts (default `pnpm sim`); `--module <path>` is added for user modules. */
  command?: string;
  modulePath?: string;
  /** Where progress and findings go (default: stderr for progress, stdout for findings). */
  log?: (line: string) => void;
  progress?: (line: string) => void;
}

export interface SweepFailure {
  seed: number;
  violation: Violation;
  replay: string;
  /** The command that shows the run step by step in the browser (`... replay <seed> ... --ui`). */
  replayUi: string;
  report?: ReportFiles;
}

export interface SweepSummary {
  seedsRun: number;
  violations: SweepFailure[];
  /** Operations checked by the history checker (linearizability by default), over all seeds. */
  opsChecked: number;
  /** Seeds whose history check gave up (too large): neither passed nor failed. */
  unknown: number[];
  steps: number;
  elapsedMs: number;
}

/** The command line that replays one seed of a sweep (only non-default settings are spelled out). */
export function replayCommand(o: Omit<SweepOptions, 'seeds'>, seed: number): string {
  const { head, rest } = replayParts(o);
  return [o.command ?? 'pnpm sim', ...head, '--seed', String(seed), ...rest].join(' ');
}

/** The command line that shows one seed of a sweep step by step in the browser (`replay <seed> ... --ui`). */
export function replayUiCommand(o: Omit<SweepOptions, 'seeds'>, seed: number): string {
  const { head, rest } = replayParts(o);
  return [o.command ?? 'pnpm sim', 'replay', String(seed), ...head, ...rest, '--ui'].join(' ');
}

/** The options of a replay command: the protocol (`head`), then the settings that differ from the defaults. */
function replayParts(o: Omit<SweepOptions, 'seeds'>): { head: string[]; rest: string[] } {
  const head: string[] = [];
  if (o.modulePath !== undefined) head.push('--module', o.modulePath);
  if (o.modulePath === undefined || o.protocol.name !== o.protocol.module.name) head.push('--protocol', o.protocol.name);
  const parts: string[] = [];
  if (o.nodes !== undefined && o.nodes !== 3) parts.push('--nodes', String(o.nodes));
  if (o.ticks !== undefined && o.ticks !== 400) parts.push('--ticks', String(o.ticks));
  if (o.faults !== undefined && o.faults !== 'light') parts.push('--faults', o.faults);
  if (o.clients !== undefined && o.clients !== 3) parts.push('--clients', String(o.clients));
  if (o.snapshotEvery !== undefined && o.snapshotEvery !== DEFAULT_SNAPSHOT_EVERY) parts.push('--snapshot-every', String(o.snapshotEvery));
  if (o.crashMidSave === false) parts.push('--no-crash-mid-save');
  for (const [key, value] of Object.entries(o.protocolOptions ?? {})) {
    if (value !== undefined) parts.push('--protocol-option', shellQuote(`${key}=${formatOptionValue(value)}`));
  }
  return { head, rest: parts };
}

/**
 * Parses `--protocol-option key=value`: the value as JSON when it parses (`true`, `5`, `"5"`), else as the
 * string it is (`mode=fast`). Throws a `ConfigError` without `=` or a key.
 */
export function parseProtocolOption(arg: string, into: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--protocol-option takes key=value, got ${JSON.stringify(arg)}`);
  const key = arg.slice(0, eq);
  const raw = arg.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // not JSON: the string itself
  }
  // An own property even for `__proto__`: assigning would set the prototype instead, and the protocol's
  // parseOptions would then see no option at all and ignore it in silence rather than refuse it.
  Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  return into;
}

/** The text of a value that `parseProtocolOption` reads back as the same value. */
function formatOptionValue(value: unknown): string {
  if (typeof value === 'string') {
    let reparsed: unknown = value;
    try {
      reparsed = JSON.parse(value);
    } catch {
      return value;
    }
    return reparsed === value ? value : JSON.stringify(value);
  }
  // JSON writes -0 as 0: spell it so the replay gets the very value the run had.
  return Object.is(value, -0) ? '-0' : JSON.stringify(value);
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function simulateOptions(o: Omit<SweepOptions, 'seeds'>, seed: number, trace: boolean): SimulateOptions {
  const opts: SimulateOptions = {
    protocol: o.protocol.module,
    seed,
    nodes: o.nodes ?? 3,
    ticks: o.ticks ?? 400,
    faults: o.faults ?? 'light',
    workload: { clients: o.clients ?? 3 },
    trace,
  };
  if (o.protocol.invariants !== undefined) opts.invariants = o.protocol.invariants;
  const snapshotEvery = o.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
  if (snapshotEvery > 0) opts.snapshotEvery = snapshotEvery;
  if (o.protocolOptions !== undefined) opts.protocolOptions = o.protocolOptions;
  if (o.crashMidSave === false) opts.crashMidSave = false;
  return opts;
}

/**
 * Runs seeds `from .. from + seeds - 1`, each a full simulation with invariants and a linearizability check.
 * A failing seed is run again with tracing on (same seed, same run) to write its NDJSON trace and HTML
 * timeline, and its replay command is printed. Bad settings throw a typed error before the first seed.
 */
export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  const log = options.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const progress = options.progress ?? defaultProgress();
  const from = options.from ?? 1;
  const started = performance.now();
  const summary: SweepSummary = { seedsRun: 0, violations: [], opsChecked: 0, unknown: [], steps: 0, elapsedMs: 0 };
  // Validate the settings once, before anything is reported as run.
  simulateOptions(options, from, false);
  for (let i = 0; i < options.seeds; i++) {
    const seed = from + i;
    const result = simulate(simulateOptions(options, seed, false));
    summary.seedsRun++;
    summary.steps += result.stats.steps;
    summary.opsChecked += result.check?.checkedOps ?? 0;
    if (result.check?.result === 'unknown') summary.unknown.push(seed);
    if (!result.ok || options.reportAll) {
      const replay = replayCommand(options, seed);
      const replayUi = replayUiCommand(options, seed);
      const traced: SimResult = simulate(simulateOptions(options, seed, true));
      const report = await writeReport(traced, { dir: options.reportDir ?? '.sim-reports', replay });
      if (!result.ok) {
        const v = result.violation as Violation;
        summary.violations.push({ seed, violation: v, replay, replayUi, report });
        progress('');
        log(`seed ${seed}: ${v.kind} violation (${v.name}): ${v.message}`);
        log(`  replay: ${replay}`);
        log(`  step through it in the browser: ${replayUi}`);
        log(`  report: ${report.timeline}`);
        if (options.failFast) break;
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    progress(`[${summary.seedsRun}/${options.seeds}] seed ${seed} · ${summary.violations.length} violations · ${summary.opsChecked} ops checked · ${elapsed.toFixed(1)} s`);
  }
  progress('');
  summary.elapsedMs = performance.now() - started;
  log(
    `${options.protocol.name}: ${summary.seedsRun} seeds run, ${summary.violations.length} violations, ${summary.opsChecked} ops checked, ` +
      `${summary.steps} steps, ${(summary.elapsedMs / 1000).toFixed(1)} s${summary.unknown.length > 0 ? `, ${summary.unknown.length} seeds too large to check (${summary.unknown.join(' ')})` : ''}`,
  );
  return summary;
}

function defaultProgress(): (line: string) => void {
  if (!process.stderr.isTTY) {
    let last = 0;
    return (line) => {
      const now = performance.now();
      if (line !== '' && now - last > 2000) {
        last = now;
        process.stderr.write(`${line}\n`);
      }
    };
  }
  return (line) => process.stderr.write(`\r\u001b[2K${line}`);
}

/** What `checkSeeds` found: one line per failing seed, ok operations, and seeds whose history was undecided. */
export interface SeedCheck {
  failures: string[];
  ops: number;
  unknown: number;
}

/**
 * Runs seeds `from .. from + count - 1` synchronously with the given options (no traces, no reports): the
 * compact form a protocol package's own test suite uses to keep a seed sweep in `pnpm test`.
 */
export function checkSeeds(options: Omit<SimulateOptions, 'seed'>, count: number, from = 1): SeedCheck {
  const out: SeedCheck = { failures: [], ops: 0, unknown: 0 };
  for (let seed = from; seed < from + count; seed++) {
    const r = simulate({ ...options, seed });
    out.ops += r.stats.opsOk;
    if (r.check?.result === 'unknown') out.unknown++;
    if (!r.ok) out.failures.push(`seed ${seed}: ${r.violation?.kind} ${r.violation?.name}: ${r.violation?.message}`);
  }
  return out;
}
