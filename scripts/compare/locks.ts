#!/usr/bin/env -S node --import tsx --conditions=@consensus-kit/source
// consensus-kit's fenced lock against etcd's lock and redlock, in one run on this machine (issue #21, "Benchmark").
//
// One loop for all three (apps/cli/src/lock-bench.ts, the one `consensus-cli bench --op lock` runs): each
// contender, with its own client, loops acquire -> one write to a shared counter -> release on one lock name,
// with 1 and then 8 contenders. Measured in this process on one monotonic clock:
//   handoffs/s   grants per second in the measured window;
//   handoff ms   from a holder's release() call to the next holder's acquire() resolving;
//   spread       max/min of the grants each contender got.
// The systems, started here on 127.0.0.1 (temp data dirs, own ports), one after the other, each stopped after
// its runs:
//   ours     a 3-node raft cluster started by the built CLI (`consensus-cli start --detach`), lock clients from
//            @consensus-kit/lock (createLockClient): blocking FIFO acquire, grants by server push, fencing tokens;
//   etcd     3 members of Debian's etcd 3.4; the etcd3 npm client's Lock (a lease, then a put if the key does not
//            exist, lease revoked on release): a try-lock, so a contender that fails retries after
//            --retry-ms plus up to as much again at random; no fencing token is exposed;
//   redlock  redlock v5 on ioredis against 3 independent redis-servers (a real majority quorum, 2 of 3; no
//            persistence: --save "" --appendonly no), retried the same way; no fencing token.
// Everything started is stopped on exit, error, Ctrl-C or SIGTERM. Not part of `pnpm test`.
//
// Usage: pnpm compare:locks [--duration 5s] [--warmup 1s] [--contenders 1,8] [--retry-ms 1]
//        [--only ours,etcd,redlock]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import Redis from 'ioredis';
import Redlock, { ExecutionError } from 'redlock';
import { probeDiskSync } from '../../apps/cli/src/commands/bench';
import { consensusContenders, describeLockLoop, runLockLoop, type BenchContender, type LockLoopResult } from '../../apps/cli/src/lock-bench';
import { dirTarget } from '../../apps/cli/src/target';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'apps/cli/dist/bin.js');
const INSTALL = 'sudo apt-get update && sudo apt-get install -y etcd-server redis-server';
const SYSTEMS = ['ours', 'etcd', 'redlock'] as const;
type System = (typeof SYSTEMS)[number];

class UsageError extends Error {}

function duration(name: string, text: string, min: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text);
  if (m === null) throw new UsageError(`${name} must be a duration such as 5s or 500ms, got ${text}`);
  const ms = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : 1000));
  if (ms < min || ms > 600_000) throw new UsageError(`${name} must be from ${min} ms to 600 s, got ${text}`);
  return ms;
}

function options() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5s' },
      warmup: { type: 'string', default: '1s' },
      contenders: { type: 'string', default: '1,8' },
      'retry-ms': { type: 'string', default: '1' },
      only: { type: 'string', default: SYSTEMS.join(',') },
    },
  });
  const contenders = values.contenders.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n < 1 || n > 64) throw new UsageError(`--contenders takes integers from 1 to 64, got ${s}`);
    return n;
  });
  const retryMs = Number(values['retry-ms']);
  if (!Number.isFinite(retryMs) || retryMs < 0 || retryMs > 1000) throw new UsageError(`--retry-ms must be from 0 to 1000, got ${values['retry-ms']}`);
  const only = values.only.split(',').map((s) => s.trim());
  for (const s of only) if (!(SYSTEMS as readonly string[]).includes(s)) throw new UsageError(`--only takes ${SYSTEMS.join(', ')}; got ${s}`);
  return { durationMs: duration('--duration', values.duration, 100), warmupMs: duration('--warmup', values.warmup, 0), contenders, retryMs, only: only as System[] };
}

// --- what this run started, and stopping it -------------------------------------------------------------------

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const clusters = new Set<string>();

function stopCluster(dir: string): void {
  clusters.delete(dir);
  spawnSync(process.execPath, [CLI, 'stop', '--dir', dir], { stdio: 'ignore', timeout: 30_000 });
}

async function stopChild(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Synchronous last resort (exit, a second signal): SIGKILL what is left, stop our cluster, remove the dirs. */
function cleanupNow(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const d of [...clusters]) stopCluster(d);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.on('exit', cleanupNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping everything this run started`);
    cleanupNow();
    process.exit(130);
  });
}

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `compare-locks-${name}-`));
  dirs.add(d);
  return d;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/** A base port such that base+1..base+span are all free (from 21,000 up, below Linux's ephemeral range). */
async function freeBase(span: number, from: number): Promise<number> {
  for (let base = from; base < 32_000; base += 250) {
    const ports = Array.from({ length: span }, (_, i) => base + 1 + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free port range on 127.0.0.1');
}

function launch(cmd: string, args: string[], logName: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (children.has(child)) console.error(`${logName} exited early (${code ?? signal}): ${err.trim().split('\n').slice(-5).join('\n')}`);
  });
  return child;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${ms} ms${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Whether an executable `name` is in a directory of PATH. */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const jittered = (ms: number) => sleep(ms + Math.random() * ms);

// --- the three systems -------------------------------------------------------------------------------------------

interface Started {
  /** `n` contenders on lock `name`, each with its own client. */
  contenders(n: number, name: string, retryMs: number): BenchContender[];
  describe: string;
  stop(): Promise<void>;
}

async function startOurs(): Promise<Started> {
  if (!existsSync(CLI)) throw new UsageError(`${CLI} is missing: build the CLI first (pnpm compare:locks builds it)`);
  const dir = tempDir('ours');
  const cluster = join(dir, 'cluster');
  const base = await freeBase(103, 21_000);
  clusters.add(cluster);
  const r = spawnSync(process.execPath, [CLI, 'start', '--dir', cluster, '--nodes', '3', '--port', String(base), '--detach', '--json'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`consensus-cli start failed (${r.status ?? r.signal}): ${r.stderr}`);
  const target = dirTarget(cluster);
  const disk = probeDiskSync(cluster);
  return {
    describe: `consensus-kit: 3 raft nodes (built CLI, start --detach) on ${target.endpoints.join(', ')}; disk: 320-byte O_DSYNC write p50 ${disk.p50} µs, p99 ${disk.p99} µs`,
    contenders: (n, name) => consensusContenders(n, name, { endpoints: target.endpoints, clusterId: target.clusterId, ...(target.secret !== undefined ? { secret: target.secret } : {}) }),
    stop: async () => stopCluster(cluster),
  };
}

async function startEtcd(): Promise<Started> {
  const dir = tempDir('etcd');
  const base = await freeBase(6, 23_000);
  const members = [1, 2, 3].map((i) => ({ name: `e${i}`, client: `http://127.0.0.1:${base + i}`, peer: `http://127.0.0.1:${base + 3 + i}` }));
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const procs = members.map((m) => {
    mkdirSync(join(dir, m.name));
    return launch(
      'etcd',
      [
        '--name', m.name, '--data-dir', join(dir, m.name),
        '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
        '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
        '--initial-cluster', initial, '--initial-cluster-token', `compare-locks-${base}`, '--initial-cluster-state', 'new',
        '--logger', 'zap', '--log-level', 'error',
      ],
      `etcd ${m.name}`,
    );
  });
  const hosts = members.map((m) => m.client);
  const probe = new Etcd3({ hosts });
  try {
    await until('etcd cluster', 30_000, async () => {
      await probe.put('compare-locks/ready').value('1');
      return true;
    });
  } finally {
    probe.close();
  }
  const version = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'etcd';
  const disk = probeDiskSync(dir);
  const clients: Etcd3[] = [];
  return {
    describe: `etcd: 3 members (${version.trim()}) on ${hosts.join(', ')}, etcd3 npm Lock with a 10 s lease; disk: 320-byte O_DSYNC write p50 ${disk.p50} µs, p99 ${disk.p99} µs`,
    contenders: (n, name, retryMs) =>
      Array.from({ length: n }, () => {
        const client = new Etcd3({ hosts });
        clients.push(client);
        return {
          async acquire(signal: AbortSignal) {
            for (;;) {
              const lock = client.lock(name).ttl(10);
              try {
                await lock.acquire();
                return { token: undefined, release: async () => void (await lock.release()) };
              } catch (e) {
                if (!(e instanceof EtcdLockFailedError)) throw e;
              }
              if (signal.aborted) throw new Error('run over');
              await jittered(retryMs);
            }
          },
          close: async () => client.close(),
        };
      }),
    stop: async () => {
      for (const c of clients.splice(0)) c.close();
      await Promise.all(procs.map(stopChild));
    },
  };
}

async function startRedis(): Promise<Started> {
  const dir = tempDir('redis');
  const base = await freeBase(3, 24_000);
  const ports = [1, 2, 3].map((i) => base + i);
  const procs = ports.map((port) => {
    mkdirSync(join(dir, String(port)));
    return launch('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', join(dir, String(port)), '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], `redis-server :${port}`);
  });
  await Promise.all(
    ports.map(async (port) => {
      const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await until(`redis-server :${port}`, 15_000, async () => {
          if (r.status !== 'ready') await r.connect();
          return (await r.ping()) === 'PONG' ? true : undefined;
        });
      } finally {
        r.disconnect();
      }
    }),
  );
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(0, 3).join(' ');
  const disk = probeDiskSync(dir);
  const conns: Redis[] = [];
  return {
    describe: `redlock v5 + ioredis: 3 independent ${version} on 127.0.0.1:${ports.join(', :')} (quorum 2 of 3, no persistence), 10 s lock TTL; disk (unused by redis here): 320-byte O_DSYNC write p50 ${disk.p50} µs, p99 ${disk.p99} µs`,
    contenders: (n, name, retryMs) =>
      Array.from({ length: n }, () => {
        const rs = ports.map((port) => new Redis({ port, host: '127.0.0.1' }));
        conns.push(...rs);
        // Retries are this loop's (the same as etcd's), not redlock's: one attempt per acquire call.
        const redlock = new Redlock(rs, { retryCount: 0, driftFactor: 0.01 });
        redlock.on('error', () => undefined);
        return {
          async acquire(signal: AbortSignal) {
            for (;;) {
              try {
                const lock = await redlock.acquire([name], 10_000);
                return { token: undefined, release: async () => void (await lock.release()) };
              } catch (e) {
                if (!(e instanceof ExecutionError)) throw e;
              }
              if (signal.aborted) throw new Error('run over');
              await jittered(retryMs);
            }
          },
          close: async () => {
            for (const r of rs) r.disconnect();
          },
        };
      }),
    stop: async () => {
      for (const c of conns.splice(0)) c.disconnect();
      await Promise.all(procs.map(stopChild));
    },
  };
}

const STARTERS: Record<System, () => Promise<Started>> = { ours: startOurs, etcd: startEtcd, redlock: startRedis };

// --- the run -------------------------------------------------------------------------------------------------------

interface Row {
  system: System;
  result: LockLoopResult;
}

function table(rows: Row[]): string {
  const head = ['system', 'contenders', 'handoffs/s', 'p50 ms', 'p99 ms', 'spread', 'grants', 'stale', 'overlaps', 'errors'];
  const body = rows.map(({ system, result: r }) => [
    system,
    String(r.contenders),
    r.handoffsPerSec.toLocaleString('en-US'),
    r.handoffMs.p50.toFixed(3),
    r.handoffMs.p99.toFixed(3),
    Number.isFinite(r.spread) ? `${r.spread.toFixed(2)}x` : 'inf',
    r.handoffs.toLocaleString('en-US'),
    r.fenced ? String(r.staleWrites) : 'n/a',
    String(r.overlaps),
    String(r.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const o = options();
  const need = [...(o.only.includes('etcd') ? ['etcd'] : []), ...(o.only.includes('redlock') ? ['redis-server'] : [])];
  const missing = need.filter((b) => !onPath(b));
  if (missing.length > 0) {
    console.error(`missing: ${missing.join(', ')}. Install them with:\n  ${INSTALL}`);
    return 2;
  }
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`lock comparison: ${o.contenders.join(' and ')} contenders, ${o.durationMs / 1000} s measured after ${o.warmupMs / 1000} s warm-up each; retry for etcd and redlock ${o.retryMs}-${2 * o.retryMs} ms`);
  console.log(`load average at start: ${load()}`);
  const rows: Row[] = [];
  for (const system of o.only) {
    const started = await STARTERS[system]();
    try {
      console.log(`\n${started.describe}`);
      for (const n of o.contenders) {
        const cs = started.contenders(n, `compare/lock-${n}`, o.retryMs);
        let result: LockLoopResult;
        try {
          result = await runLockLoop(cs, { durationMs: o.durationMs, warmupMs: o.warmupMs });
        } finally {
          await Promise.all(cs.map((c) => c.close().catch(() => undefined)));
        }
        console.log(`${system}, ${n} contender${n === 1 ? '' : 's'} (load ${load()}):`);
        for (const l of describeLockLoop(result)) console.log(l);
        rows.push({ system, result });
      }
    } finally {
      await started.stop();
    }
  }
  console.log(`\nhandoff = release() called -> next acquire() resolved, in this process; spread = max/min grants per contender`);
  console.log(`load average at end: ${load()}\n`);
  console.log(table(rows));
  const broken = rows.filter((r) => r.result.staleWrites > 0 || r.result.overlaps > 0);
  if (broken.length > 0) {
    console.error(`\nmutual exclusion broken in: ${broken.map((r) => `${r.system}/${r.result.contenders}`).join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    cleanupNow();
    process.exit(code);
  },
  (e: unknown) => {
    console.error(e instanceof UsageError ? `usage: ${e.message}` : e);
    cleanupNow();
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
