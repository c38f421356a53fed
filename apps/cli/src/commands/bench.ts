import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import { ClusterDir } from '../cluster-file';
import { connectKv } from '../connect';
import { CliError } from '../errors';
import { checkProtocolOptionFlags } from '../protocols';
import { consensusContenders, describeLockLoop, runLockLoop, type LockLoopResult } from '../lock-bench';
import { checkPortsFree } from '../supervisor';
import { dirTarget } from '../target';
import { start, stop } from './cluster';

export interface BenchOptions {
  dir: string;
  clients: number;
  durationMs: number;
  /** Load run before measuring, not counted. Default 0. */
  warmupMs?: number;
  valueSize: number;
  /**
   * `txn`: one compare (the key exists) and one put, as etcd's benchmark `txn-put` with a guard.
   * `lock`: `contenders` lock clients loop acquire -> fenced write -> release on one mutex (see `runLockLoop`).
   */
  op: 'put' | 'get' | 'mixed' | 'txn' | 'lock';
  /** `--op lock`: lock clients competing for one mutex, each with its own session. Default 8. */
  contenders?: number;
  temp?: boolean;
  json?: boolean;
  /** Print nothing, no progress bar either: the caller shows the result it gets back (`consensus-cli ui`). */
  quiet?: boolean;
  /**
   * Requests still in flight this long after the run's end are abandoned (errors) rather than waited for, so the
   * bench ends on time even when no majority answers (the page's bench). Default: wait for them (up to the kv
   * client's own timeout).
   */
  graceMs?: number;
  keys?: number;
  /** Protocol of the temporary cluster (default raft). */
  protocol?: string;
  /** Protocol options of the temporary cluster's nodes, checked by the protocol before anything starts. */
  protocolOptions?: Record<string, unknown>;
}

export interface BenchResult {
  op: string;
  clients: number;
  valueSize: number;
  durationMs: number;
  warmupMs: number;
  ops: number;
  errors: number;
  opsPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** One 320-byte O_DSYNC write in the cluster's directory, before the run: what a log flush costs there. */
  diskSyncUs: { p50: number; p99: number };
}

/**
 * Times `writes` O_DSYNC writes of 320 bytes (about one small log batch) in `dir` and returns the median and
 * the 99th percentile in µs. Every node flushes its log this way, so this bounds what any run can reach; it is
 * printed beside the figures because on shared or virtual disks it varies a lot over time.
 */
export function probeDiskSync(dir: string, writes = 200): { p50: number; p99: number } {
  const path = join(dir, `.disk-probe-${process.pid}.tmp`);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
  const buf = Buffer.alloc(320, 0x5a);
  const us: number[] = [];
  try {
    for (let i = 0; i < writes; i++) {
      const t0 = process.hrtime.bigint();
      writeSync(fd, buf, 0, buf.length, i * buf.length);
      us.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  us.sort((a, b) => a - b);
  const at = (q: number) => Math.round(us[Math.min(us.length - 1, Math.floor(q * us.length))] ?? 0);
  return { p50: at(0.5), p99: at(0.99) };
}

async function freeBasePort(): Promise<number> {
  for (let base = 17100; base < 30000; base += 250) {
    try {
      await checkPortsFree('127.0.0.1', [base + 1, base + 2, base + 3, base + 101, base + 102, base + 103]);
      return base;
    } catch {
      // try the next range
    }
  }
  throw new CliError('no free port range for a temporary cluster');
}

export interface LockBenchResult extends LockLoopResult {
  op: 'lock';
  diskSyncUs: { p50: number; p99: number };
}

/** `consensus-cli bench`: load against the cluster in --dir (or a temporary 3-node one) with N in flight. */
export async function bench(o: BenchOptions & { op: 'lock' }): Promise<LockBenchResult>;
export async function bench(o: BenchOptions): Promise<BenchResult>;
export async function bench(o: BenchOptions): Promise<BenchResult | LockBenchResult> {
  let dir = o.dir;
  let temp: string | undefined;
  if (o.temp || !new ClusterDir(dir).exists()) {
    const protocol = o.protocol ?? 'raft';
    await checkProtocolOptionFlags(protocol, o.protocolOptions);
    temp = mkdtempSync(join(tmpdir(), 'consensus-bench-'));
    dir = temp;
    if (!o.json && !o.quiet) console.error(`starting a temporary 3-node ${protocol} cluster in ${temp}`);
    try {
      await start({ dir, nodes: 3, protocol, ...(o.protocolOptions ? { protocolOptions: o.protocolOptions } : {}), port: await freeBasePort(), detach: true, quiet: true });
    } catch (e) {
      await stop({ dir: temp, quiet: true }).catch(() => undefined);
      rmSync(temp, { recursive: true, force: true });
      throw e;
    }
  } else if ((o.protocol !== undefined || o.protocolOptions !== undefined) && !o.quiet) {
    console.error(`note: --protocol and --protocol-option apply to a temporary cluster (--temp); the cluster in ${dir} keeps its own`);
  }
  if (o.op === 'lock') {
    try {
      return await lockBench(o, dir);
    } finally {
      if (temp !== undefined) {
        await stop({ dir: temp, quiet: true }).catch(() => undefined);
        rmSync(temp, { recursive: true, force: true });
      }
    }
  }
  const { kv } = connectKv(dir);
  try {
    const diskSyncUs = probeDiskSync(dir);
    const value = 'x'.repeat(o.valueSize);
    const keys = o.keys ?? 1000;
    if (o.op !== 'put') {
      // Reads need keys to find: write them first, as many at a time as the run will have in flight.
      let next = 0;
      const load = async () => {
        while (next < keys) await kv.put(`bench/${next++}`, value);
      };
      await Promise.all(Array.from({ length: Math.min(o.clients, keys) }, load));
    }
    const latencies: number[] = [];
    let errors = 0;
    let done = 0;
    const bar = process.stderr.isTTY && !o.json && !o.quiet ? new SingleBar({ format: ' {bar} {percentage}% | {value}/{total} s | {ops} ops' }) : undefined;
    const warmupMs = o.warmupMs ?? 0;
    const seconds = Math.ceil((warmupMs + o.durationMs) / 1000);
    bar?.start(seconds, 0, { ops: 0 });
    const warmAt = performance.now();
    // Operations that start before startAt are the warm-up: run, never counted.
    const startAt = warmAt + warmupMs;
    const endAt = startAt + o.durationMs;
    const ticker = setInterval(() => bar?.update(Math.min(seconds, Math.floor((performance.now() - warmAt) / 1000)), { ops: done }), 250);
    let n = 0;
    const giveUp = new AbortController();
    const giveUpTimer = o.graceMs === undefined ? undefined : setTimeout(() => giveUp.abort(), endAt - performance.now() + o.graceMs);
    const call = o.graceMs === undefined ? {} : { signal: giveUp.signal };
    const worker = async () => {
      while (performance.now() < endAt) {
        const i = n++;
        const key = `bench/${i % keys}`;
        const doPut = o.op === 'put' || (o.op === 'mixed' && i % 2 === 0);
        const t0 = performance.now();
        const counted = t0 >= startAt;
        try {
          if (o.op === 'txn') await kv.txn({ if: [{ key, target: 'version', cmp: '>', value: 0 }], then: [{ op: 'put', key, value }], else: [{ op: 'put', key, value }] }, call);
          else if (doPut) await kv.put(key, value, call);
          else await kv.get(key, call);
          if (counted) {
            latencies.push(performance.now() - t0);
            done++;
          }
        } catch {
          if (counted) errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: o.clients }, worker));
    clearTimeout(giveUpTimer);
    const elapsed = performance.now() - startAt;
    clearInterval(ticker);
    bar?.update(seconds, { ops: done });
    bar?.stop();
    latencies.sort((a, b) => a - b);
    const q = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
    const result: BenchResult = {
      op: o.op,
      clients: o.clients,
      valueSize: o.valueSize,
      durationMs: Math.round(elapsed),
      warmupMs,
      ops: done,
      errors,
      opsPerSec: Math.round((done / elapsed) * 1000),
      latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: round(latencies.at(-1) ?? 0), mean: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)) },
      diskSyncUs,
    };
    if (o.quiet) {
      // the caller shows it
    } else if (o.json) console.log(JSON.stringify(result));
    else {
      const warm = warmupMs > 0 ? ` after a ${(warmupMs / 1000).toFixed(1)} s warm-up` : '';
      console.log(`${o.op}: ${o.clients} in flight, ${o.valueSize}-byte values, ${(elapsed / 1000).toFixed(1)} s measured${warm}`);
      console.log(`  ${result.opsPerSec.toLocaleString('en-US')} ops/s (${done.toLocaleString('en-US')} ops, ${errors} errors)`);
      const l = result.latencyMs;
      console.log(`  latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`);
      console.log(`  disk: one 320-byte O_DSYNC write took p50 ${diskSyncUs.p50} µs, p99 ${diskSyncUs.p99} µs (measured before the run)`);
    }
    return result;
  } finally {
    await kv.close();
    if (temp !== undefined) {
      await stop({ dir: temp, quiet: true }).catch(() => undefined);
      rmSync(temp, { recursive: true, force: true });
    }
  }
}

/**
 * `bench --op lock`: `contenders` lock clients (each its own session and connection) loop acquire -> one fenced
 * write -> release on the mutex `bench/lock`. Fails (CliError) on any stale or overlapping write.
 */
async function lockBench(o: BenchOptions, dir: string): Promise<LockBenchResult> {
  const target = dirTarget(dir);
  const diskSyncUs = probeDiskSync(dir);
  const contenders = o.contenders ?? 8;
  const clients = consensusContenders(contenders, 'bench/lock', { endpoints: target.endpoints, clusterId: target.clusterId, ...(target.secret !== undefined ? { secret: target.secret } : {}), ...(target.tls !== undefined ? { rpc: { tls: target.tls } } : {}) });
  let loop: LockLoopResult;
  try {
    loop = await runLockLoop(clients, { durationMs: o.durationMs, warmupMs: o.warmupMs ?? 0 });
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
  const result: LockBenchResult = { op: 'lock', ...loop, diskSyncUs };
  if (o.quiet) {
    // the caller shows it
  } else if (o.json) console.log(JSON.stringify({ ...result, spread: Number.isFinite(result.spread) ? result.spread : null }));
  else {
    const warm = result.warmupMs > 0 ? ` after a ${(result.warmupMs / 1000).toFixed(1)} s warm-up` : '';
    console.log(`lock: ${contenders} contender${contenders === 1 ? '' : 's'} on one mutex, acquire -> fenced write -> release, ${(result.durationMs / 1000).toFixed(1)} s measured${warm}`);
    for (const line of describeLockLoop(result)) console.log(line);
    console.log(`  disk: one 320-byte O_DSYNC write took p50 ${diskSyncUs.p50} µs, p99 ${diskSyncUs.p99} µs (measured before the run)`);
  }
  if (result.staleWrites > 0 || result.overlaps > 0) throw new CliError(`mutual exclusion broken: ${result.staleWrites} stale fenced writes, ${result.overlaps} overlapping grants`);
  return result;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
