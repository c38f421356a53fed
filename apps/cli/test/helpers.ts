import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, inject, vi } from 'vitest';
import { run } from '../src/cli';
import { ClusterDir } from '../src/cluster-file';
import { alive, checkPortsFree, sleep, stopNode } from '../src/supervisor';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The command line that runs `consensus-cli` from sources as a process of its own: plain node on the bundle
 * global-setup.ts made of the sources at the start of the run (a process starts in a fraction of the time tsx
 * takes), or, under a config without that setup, node with the tsx loader and the source condition on src/bin.ts.
 */
export function cliCommand(): string[] {
  const bundle = inject('cliBundle') as string | undefined;
  if (bundle !== undefined) return [process.execPath, '--enable-source-maps', bundle];
  return [process.execPath, '--import', new URL(`file://${require.resolve('tsx')}`).href, '--conditions=@consensus-kit/source', join(here, '..', 'src', 'bin.ts')];
}

/** Node processes run the CLI from sources (see cliCommand). */
export function useSourceNodes(): void {
  process.env.CONSENSUS_CLI_NODE_CMD = JSON.stringify(cliCommand());
}

/**
 * The protocols the end-to-end suites run for, each as it does for the others: raft, paxos and zab by default;
 * `CK_PROTOCOLS=paxos` (comma-separated) narrows a run.
 */
export const PROTOCOLS_UNDER_TEST: readonly string[] = (process.env.CK_PROTOCOLS ?? 'raft,paxos,zab').split(',').map((p) => p.trim()).filter((p) => p !== '');

/**
 * Each vitest worker takes port ranges from a band of its own (VITEST_POOL_ID is 1..workers), so two test files
 * running at once never probe the same range free and then both bind it. Within the band, ranges are reused
 * round-robin, each probed free first. The bands lie in 20,000-32,000, below Linux's ephemeral range (32,768 and
 * up), where the outgoing connections of every test running beside these could take a port between the probe
 * and a node's bind.
 */
const BAND = 1_500;
const poolId = Number(process.env.VITEST_POOL_ID ?? process.pid % 8);
const bandStart = 20_000 + (Number.isSafeInteger(poolId) ? poolId % 8 : 0) * BAND;
let nextBase = bandStart;

/** A base port whose node and http ports (base+1..+9, base+101..+109) are free. */
export async function freeBase(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = nextBase;
    nextBase += 200;
    if (nextBase + 200 > bandStart + BAND) nextBase = bandStart;
    try {
      await checkPortsFree('127.0.0.1', [1, 2, 3, 4, 5, 101, 102, 103, 104, 105].map((d) => base + d));
      return base;
    } catch {
      // taken: try the next range
    }
  }
  throw new Error('no free port range');
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'consensus-cli-test-'));
}

/**
 * Stops every node recorded in `dir` and removes it. With `CK_KEEP_DIRS=<dir>` a copy (node logs, data) is kept
 * there first, to read after a failure.
 */
export async function cleanup(dir: string): Promise<void> {
  const cd = new ClusterDir(dir);
  if (cd.exists()) {
    const c = cd.read();
    await Promise.all(c.nodes.map((n) => stopNode(cd, n.id, 'SIGKILL', 5000)));
  }
  const keep = process.env.CK_KEEP_DIRS;
  if (keep !== undefined && keep !== '' && cd.exists()) cpSync(dir, join(keep, String(Date.now())), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A 3-node cluster started with `start --detach` (`protocol`, or the default one) before the suite's tests and
 * stopped after them; call at the top of a `describe`. Returns its directory (read it inside tests).
 */
export function useStartedCluster(protocol?: string): () => string {
  let dir = '';
  beforeAll(async () => {
    dir = tempDir();
    const chosen = protocol === undefined ? [] : ['--protocol', protocol];
    expect((await cli('start', ...chosen, '--dir', dir, '--port', String(await freeBase()), '--detach', '--json')).code).toBe(0);
  });
  afterAll(async () => {
    await cleanup(dir);
  });
  return () => dir;
}

/** Runs the CLI in-process, capturing what it prints. */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    err += `${a.join(' ')}\n`;
  });
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  const prevExit = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await run(['node', 'consensus-cli', ...args]);
    return { code, out, err };
  } finally {
    process.exitCode = prevExit;
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

export interface StatusJson {
  leader: string | null;
  nodes: { node: string; role: string; term: number | null; applied: number | null; pid: number | null; http: string }[];
}

/**
 * `consensus-cli status --json` of the cluster in `dir`. It exits 0 (healthy), 3 (degraded: a node down or
 * unhealthy) or 4 (no leader or no quorum); anything else is a failure of the command.
 */
export async function statusOf(dir: string): Promise<StatusJson> {
  const r = await cli('status', '--dir', dir, '--json');
  expect([0, 3, 4]).toContain(r.code);
  return JSON.parse(r.out) as StatusJson;
}

/**
 * The leader a majority agrees on, waiting for one. A single `status` can show none for a moment (an election,
 * or a node slow to answer its /status on a busy machine).
 */
export async function leaderOf(dir: string): Promise<string> {
  return waitFor('a leader', async () => (await statusOf(dir)).leader ?? undefined);
}

/**
 * Polls `fn` until it returns a value; fails naming `what` after `timeoutMs`. Generous by default: what is awaited
 * can include starting a node process from sources on a slow, busy machine, and the wait ends as soon as it holds.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A `consensus-cli` process of a test's own, whose output is read as it comes and which can be signalled. */
export interface CliProcess {
  /** Non-empty stdout lines so far. */
  lines: () => string[];
  stderr: () => string;
  exited: Promise<number | null>;
  signal: (s: NodeJS.Signals) => void;
}

/** `consensus-cli <args>` as its own process, from sources (it can be signalled and killed like a user's). */
export function spawnCli(args: string[]): CliProcess {
  const [cmd, ...pre] = cliCommand();
  const child = spawn(cmd as string, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { lines: () => out.split('\n').filter((l) => l !== ''), stderr: () => err, exited, signal: (s) => child.kill(s) };
}

/** SIGKILLs the node processes a test started by hand (no cluster directory) and waits, bounded, until they are gone. */
export async function killPids(pids: readonly number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 100 && pids.some((p) => alive(p)); i++) await sleep(50);
}

/** The `{ url }` line a `--json` run of `ui` or `start --ui` prints once the page is served. */
export async function uiUrlOf(p: CliProcess, timeoutMs = 60_000): Promise<string> {
  return waitFor(
    `the ui url (stderr: ${p.stderr()})`,
    async () => {
      for (const line of p.lines()) {
        try {
          const j = JSON.parse(line) as { url?: unknown };
          if (typeof j.url === 'string') return j.url;
        } catch {
          // not JSON
        }
      }
      return undefined;
    },
    timeoutMs,
  );
}
