#!/usr/bin/env node
// zab against raft, and against ZooKeeper 3.8, in one run on this machine (issue #19, "Benchmark").
//
//   1. the latency floor (scripts/latency-floor.mjs): what one put at 1 in flight costs with no consensus code;
//   2. `consensus-cli bench --temp --protocol raft|zab --clients 64|1` (built CLI; each run starts its own
//      3-node cluster on 127.0.0.1 and stops it);
//   3. Debian's ZooKeeper 3.8: 3 servers on 127.0.0.1 (own temp dirs and ports, forceSync=yes, quorum of 3,
//      a plain zoo.cfg written here), setData at 64 and 1 in flight from ZkSetDataBench.java (compiled here
//      with javac against /usr/share/java/zookeeper.jar), connected to the leader as our kv client is; the
//      client's own CPU is printed beside its figures;
//   4. pure core, zab against raft on core/testing's shared harness (packages/{raft,zab}/bench).
// Then one table. Everything started is stopped on exit, error, Ctrl-C or SIGTERM. Not part of `pnpm test`.
//
// Usage: pnpm compare:zookeeper [--duration 10s] [--warmup 2s] [--value-size 256] [--zk-sessions 8]
//        [--zk-warmup 5s] [--core-entries 1000000] [--core-rounds 5] [--only floor,raft,zab,zookeeper,core] [--no-build]
//        [--profile <dir>]   (node --cpu-prof for every CLI bench process and its 3 nodes, one directory per run;
//                             read them with scripts/compare/cpuprofile-top.mjs)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'apps/cli/dist/bin.js');
const ZK_JAR = '/usr/share/java/zookeeper.jar';
/** slf4j binding for the servers' and the client's logs (ZooKeeper's jar names only slf4j-api). */
const SLF4J_SIMPLE = '/usr/share/java/slf4j-simple.jar';
const INSTALL = 'sudo apt-get update && sudo apt-get install -y zookeeper default-jdk-headless';
const PARTS = ['floor', 'raft', 'zab', 'zookeeper', 'core'];

class UsageError extends Error {}

function parseDuration(name, text, min) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text);
  if (m === null) throw new UsageError(`${name} must be a duration such as 10s or 500ms, got ${text}`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : 1000);
  if (ms < min || ms > 600_000) throw new UsageError(`${name} must be from ${min} ms to 600 s, got ${text}`);
  return Math.round(ms);
}

function parseInt10(name, text, min, max) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}, got ${text}`);
  return n;
}

function options() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10s' },
      warmup: { type: 'string', default: '2s' },
      'zk-warmup': { type: 'string', default: '5s' },
      'value-size': { type: 'string', default: '256' },
      'zk-sessions': { type: 'string', default: '8' },
      'core-entries': { type: 'string', default: '1000000' },
      'core-rounds': { type: 'string', default: '5' },
      profile: { type: 'string' },
      only: { type: 'string', default: PARTS.join(',') },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const only = new Set(values.only.split(',').map((s) => s.trim()));
  for (const p of only) if (!PARTS.includes(p)) throw new UsageError(`--only takes ${PARTS.join(', ')}; got ${p}`);
  return {
    durationMs: parseDuration('--duration', values.duration, 1000),
    warmupMs: parseDuration('--warmup', values.warmup, 0),
    // ZooKeeper's JVMs reach steady state later than our nodes (the JIT): a longer warm-up is its due.
    zkWarmupMs: parseDuration('--zk-warmup', values['zk-warmup'], 0),
    valueSize: parseInt10('--value-size', values['value-size'], 0, 1 << 20),
    zkSessions: parseInt10('--zk-sessions', values['zk-sessions'], 1, 64),
    coreEntries: parseInt10('--core-entries', values['core-entries'], 10_000, 10_000_000),
    coreRounds: parseInt10('--core-rounds', values['core-rounds'], 1, 20),
    profile: values.profile === undefined ? undefined : resolve(values.profile),
    only,
    build: !values['no-build'],
  };
}

// ---------------------------------------------------------------------------------------------------------
// What this run started, so that every exit path stops it.

/** Our own temp dir: the CLI's temporary clusters are made inside it (TMPDIR), ZooKeeper's dirs too. */
const work = mkdtempSync(join(tmpdir(), 'compare-zookeeper-'));
/** Child processes still running (CLI bench runs, ZooKeeper servers, the Java client, core benches). */
const children = new Set();
let cleanedUp = false;

/** Stops everything, synchronously, so it also runs from 'exit' and signal handlers. Idempotent. */
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const c of children) {
    try {
      // Detached children lead their own process group: end the group (a JVM, or a CLI run and its helpers).
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      try {
        c.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  // A CLI bench run that was interrupted leaves its temporary cluster (detached nodes) behind: stop each.
  for (const name of safeReaddir(work)) {
    if (name.startsWith('consensus-bench-')) spawnSync(process.execPath, [CLI, 'stop', '--dir', join(work, name)], { stdio: 'ignore', timeout: 20_000 });
  }
  const deadline = Date.now() + 5000;
  for (const c of children) {
    while (c.exitCode === null && c.signalCode === null && alive(c.pid) && Date.now() < deadline) spawnSync('sleep', ['0.1']);
    if (alive(c.pid)) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone between the two checks
      }
    }
  }
  rmSync(work, { recursive: true, force: true });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    // A zombie (exited, not yet reaped) still answers signal 0: ask /proc.
    const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout ?? '';
    return stat !== '' && !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping what this run started`);
    cleanup();
    process.exit(130);
  });
}

/**
 * Runs a command to its end in its own process group, collecting stdout (and stderr, shown on failure).
 * `env` adds to this process' environment.
 */
function run(cmd, args, { env = {}, cwd = ROOT, label = cmd, timeoutMs = 15 * 60_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${label}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolvePromise(out);
      else reject(new Error(`${label} failed (${signal ?? `exit ${code}`}):\n${err.trim() || out.trim()}`));
    });
  });
}

const log = (s) => console.error(`[${new Date().toISOString().slice(11, 19)} load ${loadavg()[0].toFixed(2)}] ${s}`);

// ---------------------------------------------------------------------------------------------------------
// Checks before anything starts.

function zookeeperVersion() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', 'zookeeper'], { encoding: 'utf8' });
  const m = /install ok installed (\S+)/.exec(r.stdout ?? '');
  return m === null ? undefined : m[1];
}

function checkPrerequisites(o) {
  if (o.only.has('zookeeper')) {
    const version = zookeeperVersion();
    if (version === undefined || !existsSync(ZK_JAR)) {
      console.error(`ZooKeeper is not installed (Debian package zookeeper, ${ZK_JAR}). Install it with:\n  ${INSTALL}`);
      process.exit(2);
    }
    if (!version.startsWith('3.8.')) {
      console.error(`the installed zookeeper package is ${version}; this comparison is against ZooKeeper 3.8. Install it with:\n  ${INSTALL}`);
      process.exit(2);
    }
    for (const tool of ['java', 'javac']) {
      if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).status !== 0) {
        console.error(`${tool} was not found (the ZooKeeper client is compiled here). Install it with:\n  ${INSTALL}`);
        process.exit(2);
      }
    }
    return version;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Parts of the run.

async function latencyFloor() {
  const out = await run(process.execPath, [join(ROOT, 'scripts/latency-floor.mjs'), '--dir', work], { label: 'latency-floor' });
  const m = /p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms/.exec(out);
  if (m === null) throw new Error(`latency-floor printed no figures: ${out}`);
  return { line: out.trim(), p50: Number(m[1]), p99: Number(m[3]) };
}

/** One `consensus-cli bench --temp` run: its own 3-node cluster, made in our work dir (TMPDIR), then stopped. */
async function cliBench(o, protocol, clients) {
  // With --profile, the CLI passes its own node flags to the nodes it starts (supervisor: process.execArgv).
  const prof = o.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(o.profile, `${protocol}-${clients}`)}`];
  const args = [...prof, CLI, 'bench', '--temp', '--protocol', protocol, '--clients', String(clients), '--duration', `${o.durationMs}ms`, '--warmup', `${o.warmupMs}ms`, '--value-size', String(o.valueSize), '--json'];
  const out = await run(process.execPath, args, { env: { TMPDIR: work }, label: `consensus-cli bench --protocol ${protocol} --clients ${clients}` });
  const r = JSON.parse(out.trim().split('\n').at(-1));
  return { opsPerSec: r.opsPerSec, p50: r.latencyMs.p50, p99: r.latencyMs.p99, errors: r.errors, note: `disk sync p50 ${r.diskSyncUs.p50} µs` };
}

/** A port that is free now, with its next `count - 1` neighbours, below Linux's ephemeral range. */
async function freePorts(count) {
  for (let base = 12_000; base < 16_000; base += 50) {
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return ports;
  }
  throw new Error('no free ports from 12000 to 16000 for ZooKeeper');
}

function portFree(port) {
  return new Promise((resolvePromise) => {
    const s = createServer();
    s.once('error', () => resolvePromise(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolvePromise(true)));
  });
}

/** A four-letter-word command ('srvr') to a server; undefined while it does not answer. */
function fourLetter(port, word) {
  return new Promise((resolvePromise) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolvePromise(undefined);
    }, 2000);
    s.on('connect', () => s.write(word));
    s.on('data', (d) => (out += d));
    s.on('error', () => {
      clearTimeout(timer);
      resolvePromise(undefined);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolvePromise(out === '' ? undefined : out);
    });
  });
}

function startZooKeeper(dir, id, config) {
  const data = join(dir, `zk${id}`, 'data');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'myid'), `${id}\n`);
  const cfg = join(dir, `zk${id}`, 'zoo.cfg');
  writeFileSync(cfg, config(data));
  const logFile = join(dir, `zk${id}`, 'server.log');
  const args = [
    '-Xms512m',
    '-Xmx512m',
    '-Dzookeeper.forceSync=yes',
    '-Dzookeeper.admin.enableServer=false',
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=info',
    `-Dorg.slf4j.simpleLogger.logFile=${logFile}`,
    '-cp',
    `${ZK_JAR}:${SLF4J_SIMPLE}`,
    'org.apache.zookeeper.server.quorum.QuorumPeerMain',
    cfg,
  ];
  const child = spawn('java', args, { cwd: dir, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.on('exit', () => children.delete(child));
  return { child, logFile, stderr: () => err };
}

/** CPU seconds a process has used so far (utime + stime from /proc), for the servers' share of the machine. */
function cpuSeconds(pid) {
  const r = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' });
  const fields = (r.stdout ?? '').slice((r.stdout ?? '').lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14 and 15) in clock ticks
}

async function zookeeperBench(o) {
  const dir = join(work, 'zookeeper');
  mkdirSync(dir);
  log('compiling scripts/compare/ZkSetDataBench.java');
  const classes = join(dir, 'classes');
  execFileSync('javac', ['-implicit:none', '-cp', ZK_JAR, '-d', classes, join(ROOT, 'scripts/compare/ZkSetDataBench.java')], { stdio: 'inherit' });

  const ports = await freePorts(9);
  const client = [ports[0], ports[1], ports[2]];
  const servers = [1, 2, 3].map((id) => `server.${id}=127.0.0.1:${ports[2 + id]}:${ports[5 + id]}`).join('\n');
  // A plain configuration: ZooKeeper's defaults, forceSync on (fsync of the txn log before each ack), a
  // quorum of the 3 servers, no admin server, four-letter words for the quorum check.
  const config = (id) => (data) =>
    [
      'tickTime=2000',
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${data}`,
      `clientPort=${client[id - 1]}`,
      'clientPortAddress=127.0.0.1',
      'forceSync=yes',
      'maxClientCnxns=0',
      'admin.enableServer=false',
      '4lw.commands.whitelist=srvr',
      servers,
      '',
    ].join('\n');
  log(`starting 3 ZooKeeper servers in ${dir} (client ports ${client.join(', ')})`);
  const zks = [1, 2, 3].map((id) => startZooKeeper(dir, id, config(id)));
  let leaderPort;
  /** Index of the leader in `zks`. */
  let leader = -1;
  const deadline = Date.now() + 60_000;
  while (leaderPort === undefined) {
    for (const z of zks) {
      if (z.child.exitCode !== null) throw new Error(`a ZooKeeper server exited with code ${z.child.exitCode}:\n${z.stderr()}\n(log: ${z.logFile})`);
    }
    const modes = await Promise.all(client.map(async (p) => /Mode: (\w+)/.exec((await fourLetter(p, 'srvr')) ?? '')?.[1]));
    if (modes.filter((m) => m === 'leader').length === 1 && modes.filter((m) => m === 'follower').length === 2) {
      leader = modes.indexOf('leader');
      leaderPort = client[leader];
    }
    else if (Date.now() > deadline) throw new Error(`no ZooKeeper quorum within 60 s (modes: ${modes.join(', ')})`);
    else await new Promise((r) => setTimeout(r, 250));
  }
  log(`ZooKeeper quorum up: leader on port ${leaderPort}, 2 followers`);

  const results = {};
  for (const inFlight of [64, 1]) {
    const sessions = Math.min(o.zkSessions, inFlight);
    const cpu0 = zks.map((z) => cpuSeconds(z.child.pid));
    const t0 = performance.now();
    const out = await run(
      'java',
      [
        '-Xmx512m',
        '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
        '-cp',
        `${classes}:${ZK_JAR}:${SLF4J_SIMPLE}`,
        'ZkSetDataBench',
        '--connect',
        `127.0.0.1:${leaderPort}`,
        '--in-flight',
        String(inFlight),
        '--sessions',
        String(sessions),
        '--value-size',
        String(o.valueSize),
        '--warmup-ms',
        String(o.zkWarmupMs),
        '--duration-ms',
        String(o.durationMs),
      ],
      { label: `ZkSetDataBench --in-flight ${inFlight}` },
    );
    const wall = (performance.now() - t0) / 1000;
    const serverCpu = zks.map((z, i) => cpuSeconds(z.child.pid) - cpu0[i]);
    const pct = (seconds) => `${Math.round((100 * seconds) / wall)}%`;
    const r = JSON.parse(out.trim().split('\n').at(-1));
    results[inFlight] = {
      opsPerSec: r.opsPerSec,
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      errors: r.errors,
      note: `client CPU ${r.clientCpuPercent}% of a core, ${sessions} session(s); CPU over the client's run: leader ${pct(serverCpu[leader])}, followers ${serverCpu.filter((_, i) => i !== leader).map(pct).join(' ')}`,
    };
  }
  for (const z of zks) {
    try {
      process.kill(-z.child.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await Promise.all(zks.map((z) => (z.child.exitCode === null ? new Promise((r) => z.child.once('exit', r)) : undefined)));
  log('ZooKeeper servers stopped');
  return results;
}

/** core/testing's shared harness, raft then zab, each in its own process; batches 100 / 1,000 / 4,096. */
async function coreBench(o, protocol) {
  const tsx = join(ROOT, 'node_modules/.bin/tsx');
  const out = await run(tsx, ['--conditions=@consensus-kit/source', `packages/${protocol}/bench/throughput.bench.ts`], {
    env: { RAFT_BENCH_ENTRIES: String(o.coreEntries), ZAB_BENCH_ENTRIES: String(o.coreEntries) },
    label: `${protocol} core bench`,
  });
  const byBatch = {};
  for (const m of out.matchAll(/batch +(\d+): ([\d,]+) committed entries\/s/g)) byBatch[m[1]] = Number(m[2].replaceAll(',', ''));
  if (Object.keys(byBatch).length !== 3) throw new Error(`${protocol} core bench printed:\n${out}`);
  return byBatch;
}

// ---------------------------------------------------------------------------------------------------------
// The table.

const fmt = (n) => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const ms = (n) => (n === undefined ? '-' : n.toFixed(3));
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(2)}x`);

function printTable(o, r, meta) {
  const lines = [];
  lines.push(`zab vs raft vs ZooKeeper ${meta.zkVersion ?? '(not run)'}, ${meta.when}, commit ${meta.commit}`);
  lines.push(`put/setData of ${o.valueSize}-byte values, 3 servers on 127.0.0.1, ${o.durationMs / 1000} s measured after a warm-up of ${o.warmupMs / 1000} s (ZooKeeper ${o.zkWarmupMs / 1000} s)`);
  lines.push(`load average before ${meta.loadBefore}, after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  lines.push('');
  const rows = [['in flight', 'system', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'notes']];
  for (const c of [64, 1]) {
    for (const s of ['raft', 'zab', 'zookeeper']) {
      const x = r[s]?.[c];
      rows.push([String(c), s === 'zookeeper' ? 'ZooKeeper' : s, fmt(x?.opsPerSec), ms(x?.p50), ms(x?.p99), x === undefined ? '-' : String(x.errors), x?.note ?? '']);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const [i, row] of rows.entries()) {
    lines.push(row.map((cell, j) => (j >= 2 && j <= 5 ? cell.padStart(widths[j]) : cell.padEnd(widths[j]))).join('  ').trimEnd());
    if (i === 0) lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  lines.push('');
  for (const c of [64, 1]) {
    const zab = r.zab?.[c]?.opsPerSec;
    lines.push(`${String(c).padStart(2)} in flight: zab/raft ${ratio(zab, r.raft?.[c]?.opsPerSec)} ops/s, zab/ZooKeeper ${ratio(zab, r.zookeeper?.[c]?.opsPerSec)} ops/s; p50 zab/raft ${ratio(r.zab?.[c]?.p50, r.raft?.[c]?.p50)}`);
  }
  if (r.floor !== undefined) {
    const zab1 = r.zab?.[1]?.p50;
    lines.push(`latency floor (no consensus code), 1 in flight: p50 ${ms(r.floor.p50)} ms, p99 ${ms(r.floor.p99)} ms; goal for 1 in flight: p50 <= floor + 0.15 = ${ms(r.floor.p50 + 0.15)} ms${zab1 === undefined ? '' : ` (zab p50 ${ms(zab1)} ms, raft p50 ${ms(r.raft?.[1]?.p50)} ms)`}`);
  }
  if (r.core !== undefined) {
    lines.push('');
    lines.push(`pure core (core/testing runThroughputBench, 3 replicas in one process, ${o.coreEntries.toLocaleString('en-US')} entries of 256 B), committed entries/s,`);
    lines.push(`best of ${o.coreRounds} alternating rounds (every round: raft / zab):`);
    lines.push(`  batch  raft (best)  zab (best)   zab/raft  rounds`);
    const best = (rounds, b) => Math.max(...rounds.map((x) => x[b]));
    for (const b of ['100', '1000', '4096']) {
      const raft = best(r.core.raft, b);
      const zab = best(r.core.zab, b);
      const rounds = r.core.raft.map((x, i) => `${fmt(x[b])} / ${fmt(r.core.zab[i][b])}`).join(', ');
      lines.push(`  ${b.padEnd(5)}  ${fmt(raft).padStart(11)}  ${fmt(zab).padStart(11)}  ${ratio(zab, raft).padStart(8)}  ${rounds}`);
    }
  }
  console.log(lines.join('\n'));
}

async function main() {
  const o = options();
  const zkVersion = checkPrerequisites(o);
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'packages/raft/src', 'packages/zab/src', 'packages/core/src', 'apps/cli/src'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  const meta = { zkVersion, commit: `${commit}${dirty ? ' (with uncommitted changes in src)' : ''}`, when: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', loadBefore: loadavg().map((x) => x.toFixed(2)).join(' ') };
  if (o.build && (o.only.has('raft') || o.only.has('zab'))) {
    log('building the CLI (turbo, consensus-cli and its dependencies)');
    await run('npx', ['--yes', 'pnpm@10', 'exec', 'turbo', 'run', 'build', '--filter=consensus-cli...', '--output-logs=errors-only'], { label: 'build' });
  }
  const r = {};
  if (o.only.has('floor')) {
    log('latency floor');
    r.floor = await latencyFloor();
    log(r.floor.line);
  }
  for (const clients of [64, 1]) {
    for (const protocol of ['raft', 'zab']) {
      if (!o.only.has(protocol)) continue;
      log(`consensus-cli bench --temp --protocol ${protocol} --clients ${clients}`);
      (r[protocol] ??= {})[clients] = await cliBench(o, protocol, clients);
      log(`  ${fmt(r[protocol][clients].opsPerSec)} ops/s, p50 ${r[protocol][clients].p50} ms, p99 ${r[protocol][clients].p99} ms`);
    }
  }
  if (o.only.has('zookeeper')) {
    r.zookeeper = await zookeeperBench(o);
    for (const c of [64, 1]) log(`  ZooKeeper ${c} in flight: ${fmt(r.zookeeper[c].opsPerSec)} ops/s, p50 ${r.zookeeper[c].p50} ms, p99 ${r.zookeeper[c].p99} ms; ${r.zookeeper[c].note}`);
  }
  if (o.only.has('core')) {
    // Rounds alternate raft and zab, each in a fresh process; the table shows every round and the best.
    r.core = { raft: [], zab: [] };
    for (let round = 1; round <= o.coreRounds; round++) {
      for (const protocol of ['raft', 'zab']) {
        log(`pure core: ${protocol}, round ${round} of ${o.coreRounds}`);
        r.core[protocol].push(await coreBench(o, protocol));
      }
    }
  }
  printTable(o, r, meta);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (e) => {
    console.error(e instanceof UsageError ? `compare:zookeeper: ${e.message}` : `compare:zookeeper failed: ${e.stack ?? e}`);
    cleanup();
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
