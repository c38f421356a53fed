/**
 * `pnpm mutate [--protocol raft|paxos] [--seeds 1000] [--only name,name] [--from 1] [--nodes 3] [--keep]`
 *
 * Mutation testing of the simulator: for each protocol, first the unmodified code (the control, which must
 * show no violation), then each mutant of the catalogue (catalogue.ts), each in a temporary copy of the
 * package and of the simulator taken from git HEAD (`git archive`, node_modules symlinked to the real
 * packages'), so the working tree is never touched and the table describes committed code. Each sweep runs
 * heavy-fault seeds with the simulator's defaults (snapshots, crashes mid-save, scenarios) in a child process
 * and stops at the first violation. One sweep at a time.
 *
 * Prints a table: caught (seed, seeds run, what the simulator saw) or MISSED, and how to replay each finding.
 * Exit code 0 when every control is clean and every mutant is caught, 1 otherwise, 2 on bad arguments.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CATALOGUE, applyMutant, optionSets, type Mutant, type MutantProtocol } from './catalogue';
import type { WorkerOutput } from './sweep-worker';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PROTOCOLS: MutantProtocol[] = ['raft', 'paxos'];

interface Row {
  protocol: MutantProtocol;
  name: string;
  options: Record<string, unknown>;
  control: boolean;
  out?: WorkerOutput;
  error?: string;
  copy?: string;
}

function usage(msg: string): never {
  process.stderr.write(`mutate: ${msg}\nusage: pnpm mutate [--protocol raft|paxos] [--seeds 1000] [--from 1] [--only name,name] [--nodes 3] [--keep] [--no-control]\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      args: process.argv.slice(2).filter((a) => a !== '--'),
      options: {
        protocol: { type: 'string' },
        seeds: { type: 'string', default: '1000' },
        from: { type: 'string', default: '1' },
        only: { type: 'string', multiple: true },
        nodes: { type: 'string', default: '3' },
        keep: { type: 'boolean', default: false },
        'no-control': { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (e) {
    return usage((e as Error).message);
  }
})();

const int = (v: string | undefined, what: string, min: number): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) usage(`${what} must be an integer >= ${min}, got ${String(v)}`);
  return n;
};
const seeds = int(values.seeds, '--seeds', 1);
const from = int(values.from, '--from', 0);
const nodes = int(values.nodes, '--nodes', 1);
if (values.protocol !== undefined && !PROTOCOLS.includes(values.protocol as MutantProtocol)) usage(`--protocol must be raft or paxos, got ${values.protocol}`);
const only = (values.only ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '');
for (const name of only) if (!CATALOGUE.some((m) => m.name === name)) usage(`no mutant named ${name} (pnpm mutate --list)`);

if (values.list) {
  for (const m of CATALOGUE) process.stdout.write(`${m.name.padEnd(40)} ${m.bug}\n`);
  process.exit(0);
}

const selected = CATALOGUE.filter((m) => (values.protocol === undefined || m.protocol === values.protocol) && (only.length === 0 || only.includes(m.name)));
const reportRoot = join(ROOT, '.sim-reports', 'mutate');
mkdirSync(reportRoot, { recursive: true });

/**
 * A copy of packages/<protocol> and packages/sim at HEAD in a temporary directory (node_modules symlinked to
 * the real packages'), with `mutant` applied when given: the table describes committed code, whatever is being
 * edited in the working tree meanwhile.
 */
function makeCopy(protocol: MutantProtocol, label: string, mutant: Mutant | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), `mut-${label}-`));
  const paths = [protocol, 'sim'].flatMap((p) => [`packages/${p}/src`, `packages/${p}/package.json`]);
  const archive = execFileSync('git', ['archive', 'HEAD', ...paths], { cwd: ROOT, maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  for (const p of [protocol, 'sim']) symlinkSync(join(ROOT, 'packages', p, 'node_modules'), join(dir, 'packages', p, 'node_modules'), 'dir');
  const pkg = join(dir, 'packages', protocol);
  if (mutant !== undefined) {
    const file = join(pkg, 'src', mutant.file);
    writeFileSync(file, applyMutant(readFileSync(file, 'utf8'), mutant));
  }
  return dir;
}

function sweep(protocol: MutantProtocol, copy: string, label: string, options: Record<string, unknown>): Promise<WorkerOutput> {
  const input = {
    sim: join(copy, 'packages', 'sim', 'src', 'index.ts'),
    module: join(copy, 'packages', protocol, 'src', 'index.ts'),
    protocol,
    seeds,
    from,
    nodes,
    faults: 'heavy',
    protocolOptions: options,
    reportDir: join(reportRoot, label),
  };
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(tsx, ['--conditions=@consensus-kit/source', join(ROOT, 'scripts/mutate/sweep-worker.ts'), JSON.stringify(input)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolvePromise(JSON.parse(line) as WorkerOutput);
      } catch {
        reject(new Error(`sweep worker exited ${code}: ${(err || out).trim().split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

function optionsText(o: Record<string, unknown>): string {
  return Object.entries(o).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

async function runOne(row: Row, mutant: Mutant | undefined): Promise<void> {
  const label = row.control ? `control-${row.protocol}${Object.keys(row.options).length > 0 ? `-${optionsText(row.options).replace(/[^\w]+/g, '-')}` : ''}` : row.name;
  let copy: string | undefined;
  try {
    copy = makeCopy(row.protocol, label, mutant);
    row.out = await sweep(row.protocol, copy, label, row.options);
  } catch (e) {
    row.error = (e as Error).message;
  } finally {
    if (copy !== undefined) {
      if (values.keep) row.copy = copy;
      else rmSync(copy, { recursive: true, force: true });
    }
  }
  process.stderr.write(`${describe(row)}\n`);
}

function verdict(row: Row): string {
  if (row.error !== undefined) return 'ERROR';
  const v = row.out?.violation;
  if (row.control) return v === undefined ? 'clean' : 'CONTROL FAILED';
  return v === undefined ? 'MISSED' : 'caught';
}

function describe(row: Row): string {
  const v = row.out?.violation;
  return `${row.control ? 'control' : row.name}: ${verdict(row)}${v ? ` at seed ${v.seed} (${v.kind} ${v.name})` : ''}${row.out ? ` after ${row.out.seedsRun} seeds, ${(row.out.elapsedMs / 1000).toFixed(1)} s` : ''}${row.error ? `: ${row.error}` : ''}`;
}

const rows: Row[] = [];
const started = performance.now();
for (const protocol of PROTOCOLS) {
  const mutants = selected.filter((m) => m.protocol === protocol);
  if (mutants.length === 0) continue;
  if (!values['no-control']) {
    for (const options of optionSets(protocol, mutants).values()) {
      const row: Row = { protocol, name: `(control)${Object.keys(options).length > 0 ? ` ${optionsText(options)}` : ''}`, options, control: true };
      rows.push(row);
      await runOne(row, undefined);
    }
  }
  for (const m of mutants) {
    const row: Row = { protocol, name: m.name, options: m.protocolOptions ?? {}, control: false };
    rows.push(row);
    await runOne(row, m);
  }
}

// --- the table ---------------------------------------------------------------------------------------------
const header = ['protocol', 'mutant', 'result', 'seed', 'seeds run', 'time', 'what the simulator saw'];
const body = rows.map((r) => {
  const v = r.out?.violation;
  const saw = r.error ?? (v ? `${v.kind} ${v.name}: ${v.message}` : r.out && r.out.unknown.length > 0 ? `${r.out.unknown.length} histories undecided` : '');
  return [
    r.protocol,
    r.name,
    verdict(r),
    v ? String(v.seed) : '-',
    r.out ? String(r.out.seedsRun) : '-',
    r.out ? `${(r.out.elapsedMs / 1000).toFixed(1)} s` : '-',
    saw.length > 90 ? `${saw.slice(0, 87)}...` : saw,
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
const out: string[] = [];
out.push(`pnpm mutate: ${seeds} seeds from ${from}, ${nodes} nodes, heavy faults, simulator defaults (snapshots, crash mid-save, scenarios)`);
out.push(line(header));
out.push(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const b of body) out.push(line(b));
const mutantRows = rows.filter((r) => !r.control);
const caught = mutantRows.filter((r) => verdict(r) === 'caught').length;
out.push('');
out.push(`${caught} of ${mutantRows.length} mutants caught; controls ${rows.filter((r) => r.control).every((r) => verdict(r) === 'clean') ? 'clean' : 'NOT clean'}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`);
const replays = rows.filter((r) => r.out?.violation !== undefined);
if (replays.length > 0) {
  out.push('');
  out.push('replay a finding: pnpm mutate --only <mutant> --from <seed> --seeds 1 --keep   (then, in the kept copy: the sim replay below)');
  for (const r of replays) {
    const v = r.out?.violation as NonNullable<WorkerOutput['violation']>;
    out.push(`  ${r.control ? `${r.protocol} control` : r.name}: pnpm mutate ${r.control ? `--protocol ${r.protocol} --no-control` : `--only ${r.name}`} --from ${v.seed} --seeds 1 --keep`);
    if (r.copy !== undefined) out.push(`    ${v.replay}`);
  }
}
process.stdout.write(`${out.join('\n')}\n`);
writeFileSync(join(reportRoot, 'results.json'), `${JSON.stringify(rows, null, 2)}\n`);
const ok = rows.every((r) => (r.control ? verdict(r) === 'clean' : verdict(r) === 'caught'));
process.exit(ok ? 0 : 1);
