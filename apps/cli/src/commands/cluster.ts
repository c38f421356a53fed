import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { relative } from 'node:path';
import pc from 'picocolors';
import type { NodeId } from '@consensus-kit/core';
import { ClusterDir, type ClusterFile } from '../cluster-file';
import { membershipNotes } from '../pending-add';
import { hasStoredState } from '@consensus-kit/storage-fs';
import { readNodeConfig, type NodeConfig } from '../config';
import { viewCluster } from '../connect';
import { withDeadline } from '../deadline';
import { connectLocks } from './lock';
import { dirTarget } from '../target';
import type { LockInfo } from '@consensus-kit/lock';
import type { Target } from '../target';
import { CliError } from '../errors';
import { hint } from '../invocation';
import { PROTOCOLS, checkProtocolOptionFlags, checkProtocolOptions } from '../protocols';
import { judgeCluster, outputFor, renderDetails, renderLiveView, renderStatusTable, statusRows, type NodeHealth } from '../render';
import { agreedLeader, checkPortsFree, exitReason, fetchReports, sleep, spawnNode, stopNode, waitForLeader } from '../supervisor';
import { detachedUiNote, serveClusterUi, type ClusterUi } from './ui';

export interface StartOptions {
  dir: string;
  nodes: number;
  protocol: string;
  /** `--protocol-option key=value` flags: written into every node's config (checked first). */
  protocolOptions?: Record<string, unknown>;
  port: number;
  detach?: boolean;
  json?: boolean;
  /** Print nothing (used when another command starts a cluster for itself). */
  quiet?: boolean;
  tickMs?: number;
  /** For tests: stop after this long in the foreground instead of waiting for Ctrl-C. */
  foregroundMs?: number;
  /** Options given on the command line (not defaults): an existing cluster keeps its own, so say so. */
  given?: readonly ('nodes' | 'port' | 'protocol')[];
  /** `--ui [port]`: serve the visualizer while the cluster runs in the foreground (`true`: any free port). */
  ui?: boolean | number;
}

const HOST = '127.0.0.1';

/** Writes the cluster file and one node config per node; nothing is written if a port is taken. */
async function createCluster(cd: ClusterDir, o: StartOptions): Promise<ClusterFile> {
  if (!PROTOCOLS.includes(o.protocol)) throw new CliError(`unknown protocol ${JSON.stringify(o.protocol)} (available: ${PROTOCOLS.join(', ')})`, 2);
  await checkProtocolOptionFlags(o.protocol, o.protocolOptions);
  const { cluster, configs } = await planCluster(o);
  for (const config of configs) {
    mkdirSync(cd.nodeDir(config.id), { recursive: true });
    writeFileSync(cd.configFile(config.id), `${JSON.stringify(config, null, 2)}\n`);
  }
  cd.write(cluster);
  return cluster;
}

/**
 * The cluster file and node configs of a new local cluster (what `start` and `snapshot restore` lay out): a new
 * cluster id, nodes n1..nN on 127.0.0.1, node i on port+i and its http on port+100+i (checked free).
 */
export async function planCluster(o: {
  nodes: number;
  port: number;
  protocol: string;
  protocolOptions?: Record<string, unknown>;
  tickMs?: number;
}): Promise<{ cluster: ClusterFile; configs: NodeConfig[] }> {
  const protocolOptions = o.protocolOptions !== undefined && Object.keys(o.protocolOptions).length > 0 ? { protocolOptions: o.protocolOptions } : {};
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({ id: `n${i + 1}`, host: HOST, port: o.port + i + 1, httpPort: o.port + 100 + i + 1 }));
  if (nodes.some((n) => n.httpPort > 65535)) throw new CliError(`--port ${o.port} leaves no room for ${o.nodes} nodes`, 2);
  await checkPortsFree(HOST, nodes.flatMap((n) => [n.port, n.httpPort]));
  const cluster: ClusterFile = { version: 1, clusterId: `local-${randomBytes(4).toString('hex')}`, protocol: o.protocol, nodes };
  const peers = Object.fromEntries(nodes.map((n) => [n.id, `${n.host}:${n.port}`]));
  const configs = nodes.map(
    (n): NodeConfig => ({
      clusterId: cluster.clusterId,
      id: n.id,
      protocol: o.protocol,
      ...protocolOptions,
      dataDir: './data',
      listen: { host: n.host, port: n.port },
      http: { host: n.host, port: n.httpPort },
      peers,
      tickMs: o.tickMs ?? 50,
      electionTicks: 10,
      heartbeatTicks: 1,
      // A local cluster for trying things: partition, heal and leader transfer work (the tour uses them).
      admin: true,
    }),
  );
  return { cluster, configs };
}

/** `consensus-cli start`: create (or reopen) the cluster in --dir, start every node, wait for a leader. */
export async function start(o: StartOptions): Promise<void> {
  const cd = new ClusterDir(o.dir);
  let cluster: ClusterFile;
  if (cd.exists()) {
    cluster = cd.read();
    const running = cluster.nodes.filter((n) => cd.livePid(n.id) !== undefined);
    if (running.length > 0) throw new CliError(`the cluster in ${cd.dir} is already running (${running.map((n) => n.id).join(', ')}); use \`${hint('status')}\``);
    await checkPortsFree(HOST, cluster.nodes.flatMap((n) => [n.port, n.httpPort]));
    say(o, `restarting the ${cluster.nodes.length}-node ${cluster.protocol} cluster in ${display(cd.dir)} with its data`);
    // Node i listens on base+i: a base none of the nodes' ports comes from is another layout.
    const fromBase = (base: number) => cluster.nodes.some((n) => n.port > base && n.port <= base + 99);
    const differs = (o.given ?? []).filter((k) =>
      k === 'nodes' ? o.nodes !== cluster.nodes.length : k === 'protocol' ? o.protocol !== cluster.protocol : !fromBase(o.port),
    );
    if (differs.length > 0) {
      console.error(`note: ${differs.map((k) => `--${k}`).join(', ')} ignored: ${display(cd.dir)} already holds a cluster, which keeps its own (use another --dir for a new one)`);
    }
    if (o.protocolOptions !== undefined) {
      await setProtocolOptions(cd, cluster, o.protocolOptions);
      say(o, `protocol options ${JSON.stringify(o.protocolOptions)} written into every node's config`);
    }
  } else {
    cluster = await createCluster(cd, o);
    say(o, `starting a ${cluster.nodes.length}-node ${cluster.protocol} cluster in ${display(cd.dir)}`);
  }
  // Every node's config, protocol options included, is checked before any node starts.
  await checkNodeConfigs(cd, cluster);
  // From the first spawn on, Ctrl-C, a kill or a closed terminal stops what this command started: before a
  // leader is elected whatever the mode, and in the foreground until the end.
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    // A node that lost its data stays down (see refuseLostState); the rest can still elect a leader.
    const lost = lostState(cd, cluster);
    if (lost.length > 0) console.error(`warning: not starting ${lostMessage(cd, lost)}`);
    for (const n of cluster.nodes) if (!lost.includes(n.id)) spawnNode(cd, n.id);
    let leader: NodeId;
    try {
      leader = await waitForLeader(cd, lost.length > 0 ? { ...cluster, nodes: cluster.nodes.filter((n) => !lost.includes(n.id)) } : cluster, undefined, interrupted.signal);
    } catch (e) {
      if (interrupted.signal.aborted) say(o, 'interrupted: stopping the nodes...');
      await Promise.all(cluster.nodes.map((n) => stopNode(cd, n.id, 'SIGTERM', 3000)));
      throw e;
    }
    // A majority can elect before the last node is up (ZAB's election takes a tick once two servers talk): wait,
    // briefly, until every node started also answers, so the commands that follow find the whole cluster.
    await waitForStartedNodes(cluster, cluster.nodes.filter((n) => !lost.includes(n.id)).map((n) => n.id), STARTED_GRACE_MS, interrupted.signal);
    if (o.detach) {
      await printStarted(cd, cluster, leader, o);
      if (wantsUi(o)) console.error(detachedUiNote(display(cd.dir)));
      return;
    }
    await foreground(cd, cluster, o, interrupted.signal);
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

/** How long `start` waits, once a leader is elected, for the nodes that have not answered yet. */
const STARTED_GRACE_MS = 10_000;

/**
 * Waits until every node of `ids` answers its status request and knows a leader, up to `graceMs` (or until
 * `signal`); a node still silent or looking then is left to the status table to show, not an error: the cluster
 * already has a leader.
 */
async function waitForStartedNodes(cluster: ClusterFile, ids: readonly NodeId[], graceMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + graceMs;
  const started = { ...cluster, nodes: cluster.nodes.filter((n) => ids.includes(n.id)) };
  while (!signal.aborted && Date.now() < deadline) {
    const reports = await fetchReports(started);
    if (reports.every((r) => typeof r?.status.leader === 'string')) return;
    await sleep(100);
  }
}

async function printStarted(cd: ClusterDir, cluster: ClusterFile, leader: NodeId, o: StartOptions): Promise<void> {
  if (o.quiet) return;
  const reports = await fetchReports(cluster);
  if (o.json) {
    console.log(JSON.stringify({ dir: cd.dir, leader, nodes: statusRows(cluster, reports, cluster.nodes.map((n) => cd.livePid(n.id))) }));
  } else {
    console.log(renderStatusTable(statusRows(cluster, reports, cluster.nodes.map((n) => cd.livePid(n.id))), outputFor(o)));
    console.log(`leader: ${leader}. Try: ${hint(`put hello world --dir ${display(cd.dir)}`)}   (stop with: ${hint(`stop --dir ${display(cd.dir)}`)})`);
  }
}

/**
 * The live view: a refreshing status table, leader changes as they happen (one JSON object per line with
 * --json), and Ctrl-C (or SIGTERM, SIGHUP) stops the cluster.
 */
async function foreground(cd: ClusterDir, cluster: ClusterFile, o: StartOptions, interrupted: AbortSignal): Promise<void> {
  const out = outputFor(o);
  const tty = process.stdout.isTTY === true;
  const events: string[] = [];
  let lastLeader: string | undefined;
  let lastTerm = -1;
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    say(o, '\nstopping the cluster...');
    // The cluster as its file says now: members added meanwhile (from the page, `members add`) are stopped too.
    let now = cluster;
    try {
      now = cd.read();
    } catch {
      // the file as it was at start
    }
    await Promise.all(now.nodes.map((n) => stopNode(cd, n.id)));
    say(o, `stopped. Start it again with: ${hint(`start --dir ${display(cd.dir)}`)}`);
  };
  const until = o.foregroundMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + o.foregroundMs;
  // The lock table as one node has applied it (a serializable read: the view must not wait on a leaderless
  // cluster); unknown (no lines) while no node answers.
  const locksRpc = tty && !o.json ? connectLocks(dirTarget(cd.dir), 400) : undefined;
  const readLocks = async (): Promise<LockInfo[] | undefined> =>
    locksRpc?.request<LockInfo[]>({ t: 'lock.read', q: { op: 'locks' }, consistency: 'serializable' }, { timeoutMs: 400 }).catch(() => undefined);
  let page: ClusterUi | undefined;
  try {
    // `--ui`: the visualizer, served once the cluster is up and stopped before it (a failure to serve stops the cluster).
    if (wantsUi(o)) {
      page = await serveClusterUi({ dir: cd.dir, port: o.ui === true ? 0 : (o.ui as number) });
      if (o.json) console.log(JSON.stringify({ url: page.url }));
      else if (!tty) console.log(`ui: ${page.url}`);
    }
    let shown = cluster;
    while (!interrupted.aborted && Date.now() < until) {
      // The cluster as its file says now, on every refresh: members added (from the page, `members add`) or removed
      // since the start are shown, and count in the leader's majority. A file being rewritten keeps the last view.
      try {
        shown = cd.read();
      } catch {
        // the nodes of the last refresh
      }
      const [reports, locks] = await Promise.all([fetchReports(shown), readLocks()]);
      const pids = shown.nodes.map((n) => cd.livePid(n.id));
      const leader = agreedLeader(shown, reports);
      const term = Math.max(-1, ...reports.map((r) => r?.status.term ?? -1));
      if (leader !== lastLeader || (leader !== undefined && term !== lastTerm)) {
        const now = new Date().toISOString();
        const line = `${now.slice(11, 19)} ${leader === undefined ? 'no leader (election in progress)' : `leader is ${leader} (term ${term})`}`;
        events.push(line);
        if (o.json) console.log(JSON.stringify({ time: now, leader: leader ?? null, term }));
        else if (!tty) console.log(line);
        lastLeader = leader;
        lastTerm = term;
      }
      if (tty && !o.json) {
        // Each line of the view is cut to the terminal's width: with --ui the URL comes first, so it stays whole.
        const name = pc.bold(`consensus-kit ${cluster.protocol} cluster`);
        const title = page === undefined ? `${name}  ${display(cd.dir)}  (Ctrl-C stops it)` : `${name}  ${page.url}  (Ctrl-C stops it)  ${display(cd.dir)}`;
        process.stdout.write(`\x1b[H\x1b[2J${renderLiveView(title, statusRows(shown, reports, pids), events, out, locks)}\n`);
      }
      await sleepUnless(500, interrupted);
    }
  } finally {
    await page?.close().catch(() => undefined);
    await locksRpc?.close();
    await stopAll();
  }
}

/** `--ui` was given (`--ui` alone is `true`, `--ui 8080` the port). */
const wantsUi = (o: StartOptions): boolean => o.ui !== undefined && o.ui !== false;

/**
 * `consensus-cli status`: every node's status and health, the agreed leader, and one line saying whether the
 * cluster is healthy. Exits with `STATUS_EXIT`: 0 healthy, 3 degraded (a node down or unhealthy), 4 no leader
 * or no quorum (1 and 2 keep their meaning: the command failed, a usage error).
 */
export async function status(o: { target: Target; json?: boolean; verbose?: boolean; timeout?: number }): Promise<void> {
  const { cluster, reports, health, pids } = await withDeadline(o.timeout, { what: 'status' }, async () => {
    const healthOf = (c: ClusterFile) => Promise.all(c.nodes.map((n) => (n.httpPort > 0 ? fetchHealth(n) : Promise.resolve(undefined))));
    // A cluster the CLI started: its file names the http ports, so reports and health are asked at once. A remote
    // one: each node's report gives its http port.
    const known = o.target.kind === 'dir' ? new ClusterDir(o.target.dir).read() : undefined;
    const [view, early] = await Promise.all([viewCluster(o.target), known !== undefined ? healthOf(known) : undefined]);
    const h = early ?? (await healthOf(view.cluster));
    // A remote node's process is not this machine's to look up: whether it answers tells.
    return { ...view, health: h, pids: view.cluster.nodes.map((n) => view.dir?.livePid(n.id)) };
  });
  const rows = statusRows(cluster, reports, pids, health);
  const leader = agreedLeader(cluster, reports) ?? null;
  const verdict = judgeCluster(rows, leader);
  const membership = membershipNotes(cluster, reports);
  process.exitCode = verdict.exitCode;
  if (o.json) {
    const notes = membership.length > 0 ? { membership } : {};
    console.log(JSON.stringify({ clusterId: cluster.clusterId, protocol: cluster.protocol, leader, nodes: rows, health: verdict.health, reason: verdict.reason, ...notes }));
    return;
  }
  console.log(renderStatusTable(rows, outputFor(o)));
  console.log(leader === null ? 'no leader' : `leader: ${leader}`);
  for (const m of membership) console.log(m.text);
  if (o.verbose) console.log(`${cluster.protocol} details:\n${renderDetails(rows)}`);
  console.log(verdict.reason);
}

/** A node's /health (200 or 503, both with a JSON body), or undefined when it does not answer. */
async function fetchHealth(node: ClusterFile['nodes'][number], timeoutMs = 800): Promise<NodeHealth | undefined> {
  try {
    const res = await fetch(`http://${node.host}:${node.httpPort}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { reason?: unknown; message?: unknown };
    return {
      ok: res.status === 200,
      ...(typeof body.reason === 'string' ? { reason: body.reason } : {}),
      ...(typeof body.message === 'string' ? { message: body.message } : {}),
    };
  } catch {
    return undefined;
  }
}

export async function stop(o: { dir: string; json?: boolean; quiet?: boolean }): Promise<void> {
  const cd = new ClusterDir(o.dir);
  const cluster = cd.read();
  const stopped = await Promise.all(cluster.nodes.map(async (n) => ((await stopNode(cd, n.id)) ? n.id : undefined)));
  const ids = stopped.filter((x) => x !== undefined);
  if (o.quiet) return;
  if (o.json) console.log(JSON.stringify({ stopped: ids }));
  else console.log(ids.length === 0 ? 'no node was running' : `stopped ${ids.join(', ')}`);
}

export async function kill(o: { dir: string; json?: boolean }, id: string): Promise<void> {
  const { pid } = await killNode(o.dir, id);
  if (o.json) console.log(JSON.stringify({ killed: id, pid }));
  else console.log(`killed ${id} (pid ${pid}) with SIGKILL`);
}

/** `kill <node>` without the printing: SIGKILLs the node's process (a crash); a `CliError` when it is not running. */
export async function killNode(dir: string, id: string): Promise<{ killed: string; pid: number }> {
  const cd = new ClusterDir(dir);
  cd.node(cd.read(), id);
  const pid = cd.livePid(id);
  if (pid === undefined) throw new CliError(`node ${id} is not running`);
  await stopNode(cd, id, 'SIGKILL', 5000);
  return { killed: id, pid };
}

export async function restart(o: { dir: string; json?: boolean }, id: string): Promise<void> {
  const { pid } = await restartNode(o.dir, id);
  if (o.json) console.log(JSON.stringify({ restarted: id, pid }));
  else console.log(`restarted ${id} (pid ${pid})`);
}

/** `restart <node>` without the printing: stops it if it runs, starts it from its data, waits until it answers. */
export async function restartNode(dir: string, id: string): Promise<{ restarted: string; pid: number }> {
  const cd = new ClusterDir(dir);
  const cluster = cd.read();
  const n = cd.node(cluster, id);
  refuseLostState(cd, cluster, [id]);
  await stopNode(cd, id);
  // A process that was just killed can take a moment to let go of its sockets.
  for (let tries = 0; ; tries++) {
    try {
      await checkPortsFree(n.host, [n.port, n.httpPort]);
      break;
    } catch (e) {
      if (tries >= 30) throw e;
      await sleep(100);
    }
  }
  const pid = spawnNode(cd, id);
  // Wait until it answers, so the next command sees it; a node that exits says why in its log.
  const deadline = Date.now() + 15_000;
  let up = false;
  while (Date.now() < deadline && !up) {
    up = (await fetchReports({ ...cluster, nodes: [n] }))[0] !== undefined;
    if (up) break;
    if (cd.livePid(id) === undefined) {
      const reason = exitReason(cd, id);
      throw new CliError(`node ${id} exited during restart${reason ? `: ${reason}` : ''} (see ${cd.logFile(id)})`);
    }
    await sleep(100);
  }
  if (!up) throw new CliError(`node ${id} did not come up within 15 s; see ${cd.logFile(id)}`);
  return { restarted: id, pid };
}

/** Merges `--protocol-option` flags into the protocolOptions of every node's config (checked first). */
async function setProtocolOptions(cd: ClusterDir, cluster: ClusterFile, given: Record<string, unknown>): Promise<void> {
  const configs = cluster.nodes.map((n) => {
    const file = cd.configFile(n.id);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const old = typeof raw.protocolOptions === 'object' && raw.protocolOptions !== null ? (raw.protocolOptions as Record<string, unknown>) : {};
    return { file, config: { ...raw, protocolOptions: { ...old, ...given } } };
  });
  for (const { config } of configs) await checkProtocolOptionFlags(cluster.protocol, config.protocolOptions);
  for (const { file, config } of configs) writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
}

/** Reads and checks every node's config, its protocol options with the protocol's own parseOptions. */
async function checkNodeConfigs(cd: ClusterDir, cluster: ClusterFile): Promise<void> {
  for (const n of cluster.nodes) {
    const file = cd.configFile(n.id);
    const config = readNodeConfig(file);
    await checkProtocolOptions(config.protocol, config.protocolOptions, `${file}: protocolOptions`);
  }
}

function say(o: { json?: boolean; quiet?: boolean }, text: string): void {
  if (!o.json && !o.quiet) console.log(text);
}

function display(dir: string): string {
  const r = relative(process.cwd(), dir);
  return r === '' ? '.' : r.startsWith('..') ? dir : r;
}

/** Sleeps `ms`, or less if `signal` aborts first. */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Refuses to start a node whose data directory lost its state (deleted, or restored without it) while the
 * cluster has run: started empty it would vote again in terms it already voted in, and count for a majority
 * it no longer holds the entries of (Raft assumes stable storage, thesis 3.8). It rejoins as a new member.
 */
function refuseLostState(cd: ClusterDir, cluster: ClusterFile, ids: readonly NodeId[]): void {
  const lost = lostState(cd, cluster).filter((id) => ids.includes(id));
  if (lost.length > 0) throw new CliError(`cannot start ${lostMessage(cd, lost)}`);
}

/** The nodes without stored state, when others have theirs (in a new cluster every node starts empty). */
function lostState(cd: ClusterDir, cluster: ClusterFile): NodeId[] {
  const has = (id: NodeId) => hasStoredState(cd.dataDir(id));
  if (!cluster.nodes.some((n) => has(n.id))) return [];
  return cluster.nodes.filter((n) => !has(n.id)).map((n) => n.id);
}

function lostMessage(cd: ClusterDir, lost: readonly NodeId[]): string {
  const x = lost[0] as NodeId;
  const dir = display(cd.dir);
  return (
    `${lost.join(', ')}: no term and vote stored in ${display(cd.dataDir(x))}${lost.length > 1 ? ' and the others' : ''}, though the cluster has run. ` +
    `Its stored state is lost or damaged, and started without it it could undo acknowledged writes. Bring it back as a new member: ` +
    `${hint(`members remove ${x} --dir ${dir}`)}, move ${display(cd.dataDir(x))} aside if it is still there, then ${hint(`members add ${x} --dir ${dir}`)}`
  );
}
