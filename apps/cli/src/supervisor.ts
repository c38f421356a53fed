import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hasQuorum, type NodeId } from '@consensus-kit/core';
import { alive, type ClusterDir, type ClusterFile, type ClusterNode } from './cluster-file';
import { CliError } from './errors';
import type { NodeReport } from './node-runner';

/**
 * How to run `consensus-cli node`: the same executable and loader flags as this process (so it works from
 * the built bin and from sources under tsx), unless CONSENSUS_CLI_NODE_CMD gives a JSON array.
 */
export function nodeCommand(): string[] {
  const env = process.env.CONSENSUS_CLI_NODE_CMD;
  if (env) {
    const cmd = JSON.parse(env) as unknown;
    if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((x) => typeof x === 'string')) throw new CliError('CONSENSUS_CLI_NODE_CMD must be a JSON array of strings');
    return cmd as string[];
  }
  return [process.execPath, ...process.execArgv, process.argv[1] as string];
}

/** Where each node's log stood when this process last spawned it: what it logged since is this run's. */
const logStarts = new Map<string, number>();

/**
 * Starts one node process, detached, logging to `<dir>/<id>/node.log`; records its pid. The node inherits this
 * process's environment, CONSENSUS_LOG_FORMAT and CONSENSUS_LOG_LEVEL (`--log-format`, `--log-level`) included.
 */
export function spawnNode(cd: ClusterDir, id: NodeId): number {
  mkdirSync(cd.nodeDir(id), { recursive: true });
  logStarts.set(cd.logFile(id), sizeOf(cd.logFile(id)));
  const log = openSync(cd.logFile(id), 'a');
  const [cmd, ...args] = nodeCommand();
  const child = spawn(cmd as string, [...args, 'node', '--config', cd.configFile(id)], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new CliError(`could not start node ${id}`);
  child.unref();
  writeFileSync(cd.pidFile(id), `${child.pid}\n`);
  return child.pid;
}

/** Sends `signal` to a node and waits (up to `timeoutMs`) for it to exit; SIGKILL after that. */
export async function stopNode(cd: ClusterDir, id: NodeId, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<boolean> {
  const pid = cd.livePid(id);
  if (pid === undefined) {
    rmSync(cd.pidFile(id), { force: true });
    return false;
  }
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      await sleep(50);
      break;
    }
    await sleep(25);
  }
  rmSync(cd.pidFile(id), { force: true });
  return true;
}

export { alive };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fails with a one-line error when any of `ports` on `host` cannot be bound. */
export async function checkPortsFree(host: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const s = createServer();
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new CliError(e.code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use` : `cannot use port ${port} on ${host}: ${e.message}`)),
      );
      s.listen(port, host, () => s.close(() => resolve()));
    });
  }
}

/** A node's `/status`, or undefined when it does not answer within `timeoutMs`. */
export async function fetchReport(node: ClusterNode, timeoutMs = 800): Promise<NodeReport | undefined> {
  try {
    const res = await fetch(`http://${node.host}:${node.httpPort}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    return (await res.json()) as NodeReport;
  } catch {
    return undefined;
  }
}

export async function fetchReports(c: ClusterFile): Promise<(NodeReport | undefined)[]> {
  return Promise.all(c.nodes.map((n) => fetchReport(n)));
}

/** The leader a majority of the cluster's nodes agree on (same leader, same term), if any. */
export function agreedLeader(c: ClusterFile, reports: (NodeReport | undefined)[]): NodeId | undefined {
  const nodes = { voters: c.nodes.map((n) => n.id) };
  for (const l of reports) {
    if (l?.status.role !== 'leader') continue;
    const agree = new Set(reports.filter((r) => r !== undefined && r.status.leader === l.id && r.status.term === l.status.term).map((r) => r!.id));
    if (hasQuorum(nodes, agree)) return l.id;
  }
  return undefined;
}

/** Waits until a majority agrees on a leader; a `CliError` (with the tail of each log) after `timeoutMs`. */
export async function waitForLeader(cd: ClusterDir, c: ClusterFile, timeoutMs = 30_000, signal?: AbortSignal): Promise<NodeId> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new CliError('interrupted before a leader was elected');
    const leader = agreedLeader(c, await fetchReports(c));
    if (leader !== undefined) return leader;
    for (const n of c.nodes) {
      if (cd.livePid(n.id) === undefined && exitReason(cd, n.id) !== undefined) {
        // A node died during start: no point waiting for the timeout.
        throw new CliError(`node ${n.id} exited during start: ${exitReason(cd, n.id)}`);
      }
    }
    await sleep(100);
  }
  throw new CliError(`no leader was elected within ${Math.round(timeoutMs / 1000)} s; see the logs in ${cd.dir}/<node>/node.log`);
}

/** The last line node `id` logged since this process spawned it (why it exited, when it did), if any. */
export function exitReason(cd: ClusterDir, id: NodeId): string | undefined {
  const file = cd.logFile(id);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(logStarts.get(file) ?? 0, size - 64 * 1024);
    const buf = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buf, 0, buf.length, start);
    const line = buf.toString('utf8').trim().split('\n').at(-1);
    return line === undefined || line === '' ? undefined : readableLogLine(line);
  } finally {
    closeSync(fd);
  }
}

/**
 * A node log line as a person reads it: a JSON record (`--log-format json`) becomes `msg key=value ...` without
 * level, time and node (the caller names the node); a text line is returned as it is.
 */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null || typeof (record as { msg?: unknown }).msg !== 'string') return line;
  const { msg, level: _level, time: _time, node: _node, ...fields } = record as Record<string, unknown>;
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [msg as string, ...rest].join(' ');
}

/** The size of `file` now (0 when it does not exist): where the next run's lines start. */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

