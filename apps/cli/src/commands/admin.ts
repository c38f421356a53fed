import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect, describeInspectReport } from '@consensus-kit/storage-fs';
import { ClusterDir, NODE_ID, type ClusterFile, type ClusterNode } from '../cluster-file';
import { connectAdmin, connectNode, viewCluster } from '../connect';
import { dirTarget, type Target } from '../target';
import { withDeadline } from '../deadline';
import { localizeHints } from '../invocation';
import { CliError, describeError } from '../errors';
import { forgetMemberRecord, memberRecordProblem, type NodeReport } from '../node-runner';
import type { NodeConfig } from '../config';
import { ErrorCode, hasQuorum, type NodeId } from '@consensus-kit/core';
import { agreedLeader, alive, checkPortsFree, exitReason, fetchReports, sleep, spawnNode, stopNode } from '../supervisor';

interface AdminOptions {
  /** The cluster (commands that manage processes: `requireDir`). */
  target: Target;
  json?: boolean;
  /** `--timeout`: give up after this many ms. */
  timeout?: number;
}

/** Options of the commands that manage the node processes of a cluster the CLI started. */
interface DirOptions {
  dir: string;
  json?: boolean;
  timeout?: number;
}

/** `leader transfer`'s deadline when `--timeout` is not given (as before the flag). */
const TRANSFER_TIMEOUT_MS = 15_000;

export async function leaderTransfer(o: AdminOptions, to: string): Promise<void> {
  const r = await transferLeadership(o, to);
  if (o.json) console.log(JSON.stringify(r));
  else console.log(`leadership moved to ${r.leader ?? to} (term ${r.term})`);
}

/** `leader transfer <to>` without the printing: the leader and term the cluster reports once it moved. */
export async function transferLeadership(o: Omit<AdminOptions, 'json'>, to: string): Promise<{ leader: string | null; term: number }> {
  const timeoutMs = o.timeout ?? TRANSFER_TIMEOUT_MS;
  if (o.target.kind === 'dir') {
    const cd = new ClusterDir(o.target.dir);
    cd.node(cd.read(), to);
  }
  const { rpc } = connectAdmin(o.target);
  try {
    const r = await withDeadline(timeoutMs, { what: `leader transfer ${to}`, byDefault: o.timeout === undefined, note: 'leadership may still move (`consensus-cli status` tells)' }, (signal) =>
      rpc.request<NodeReport>({ t: 'admin.transfer', to }, { timeoutMs: timeoutMs + 1000, ...(signal ? { signal } : {}) }),
    );
    return { leader: r.status.leader ?? null, term: r.status.term };
  } finally {
    await rpc.close();
  }
}

export async function membersList(o: AdminOptions): Promise<void> {
  const { cluster, reports } = await withDeadline(o.timeout, { what: 'members list' }, () => viewCluster(o.target));
  const leader = agreedLeader(cluster, reports);
  const source = reports.find((r) => r?.id === leader) ?? reports.find((r) => r !== undefined);
  if (source === undefined) throw new CliError('no node answered; is the cluster running?');
  const { voters, learners, outgoing } = source.status.config;
  if (o.json) {
    console.log(JSON.stringify({ voters, learners, outgoing: outgoing ?? null, leader: leader ?? null }));
    return;
  }
  for (const id of voters) console.log(`${id}\tvoter${id === leader ? ' (leader)' : ''}`);
  for (const id of learners) console.log(`${id}\tlearner`);
  if (outgoing !== undefined) console.log(`(joint configuration in progress; outgoing voters: ${outgoing.join(', ')})`);
}

export async function inspectNode(o: { dir: string; json?: boolean }, id: string): Promise<void> {
  const cd = new ClusterDir(o.dir);
  cd.node(cd.read(), id);
  const report = await inspect(cd.dataDir(id));
  // A wiped directory looks like a new one to the storage; the member record beside it knows better.
  const problem = memberRecordProblem(cd.dataDir(id), report.identity);
  if (problem !== undefined) {
    report.problems.push(problem);
    report.ok = false;
  }
  if (o.json) console.log(JSON.stringify(report));
  else console.log(describeInspectReport(report));
  // Like fsck: a script can tell a damaged directory from a sound one by the exit code alone.
  if (!report.ok) process.exitCode = 1;
}

export async function partition(o: AdminOptions, id: string, from: string[]): Promise<void> {
  const r = await cutLinks(o, id, from);
  console.log(o.json ? JSON.stringify(r) : `cut ${id} off from ${r.from.join(', ')}`);
}

/** `partition <id> [peers...]` without the printing: cuts the links both ways; returns who was cut from whom. */
export function cutLinks(o: Omit<AdminOptions, 'json'>, id: string, from: string[]): Promise<{ isolated: string; from: string[] }> {
  return withDeadline(o.timeout, { what: `partition ${id}`, note: 'some links may be cut: `consensus-cli heal` restores them' }, () => cutOff(o, id, from));
}

async function cutOff(o: Omit<AdminOptions, 'json'>, id: string, from: string[]): Promise<{ isolated: string; from: string[] }> {
  const { cluster, reports, dir } = await viewCluster(o.target);
  const cd = dir ?? new ClusterDir('.');
  cd.node(cluster, id);
  for (const peer of from) {
    cd.node(cluster, peer);
    if (peer === id) throw new CliError(`cannot cut ${id} off from itself`, 2);
  }
  const others = from.length > 0 ? from : cluster.nodes.map((n) => n.id).filter((x) => x !== id);
  // Both sides drop, so the cut holds whichever side sends.
  let cut = 0;
  for (const [i, n] of cluster.nodes.entries()) {
    const peers = n.id === id ? others : others.includes(n.id) ? [id] : [];
    if (peers.length === 0) continue;
    if (!running(dir, n.id, reports[i])) continue; // not running: nothing to cut there
    const { rpc } = connectNode(o.target, `${n.host}:${n.port}`);
    try {
      await rpc.request({ t: 'admin.partition', peers }, { timeoutMs: 5000 });
      cut++;
    } catch (e) {
      throw new CliError(`could not cut the links of ${n.id} (${describeError(e)})${cut > 0 ? '; run heal to undo a partial cut' : ''}`);
    } finally {
      await rpc.close();
    }
  }
  // Every node on either side stopped: nothing was cut (a node starts with every link healed), say so.
  if (cut === 0) throw new CliError(others.length === 0 ? `${id} has no peer to cut it off from` : `no link to cut: ${[id, ...others].join(', ')} are not running (a node starts with every link healed)`);
  return { isolated: id, from: others };
}

/** Whether a node runs: its process, for a cluster the CLI started; whether it answered, for a remote one. */
function running(dir: ClusterDir | undefined, id: NodeId, report: NodeReport | undefined): boolean {
  return dir !== undefined ? dir.livePid(id) !== undefined : report !== undefined;
}

export async function heal(o: AdminOptions): Promise<void> {
  const { healed, down, failed } = await healLinks(o);
  if (o.json) console.log(JSON.stringify({ healed, down, failed }));
  else {
    console.log(failed.length === 0 ? `every link restored (${healed.join(', ')})` : `links restored on ${healed.join(', ') || 'no node'}`);
    if (down.length > 0) console.log(`not running: ${down.join(', ')} (no cut links; they start healed)`);
  }
  if (failed.length > 0) throw new CliError(`could not reach ${failed.join('; ')}: run heal again`);
}

/**
 * `heal` without the printing: asks every running node to restore its cut links. `failed` names the nodes that
 * could not be reached (each with the reason); the caller decides whether that is an error.
 */
export function healLinks(o: Omit<AdminOptions, 'json'>): Promise<{ healed: string[]; down: string[]; failed: string[] }> {
  return withDeadline(o.timeout, { what: 'heal', note: 'some links may still be cut: run `consensus-cli heal` again' }, () => healAll(o));
}

async function healAll(o: Omit<AdminOptions, 'json'>): Promise<{ healed: string[]; down: string[]; failed: string[] }> {
  const { cluster, reports, dir } = await viewCluster(o.target);
  const healed: string[] = [];
  const down: string[] = [];
  const failed: string[] = [];
  for (const [i, n] of cluster.nodes.entries()) {
    // A node that is not running has no cut links to restore: its faults live in memory and go with it.
    if (!running(dir, n.id, reports[i])) {
      down.push(n.id);
      continue;
    }
    const { rpc } = connectNode(o.target, `${n.host}:${n.port}`);
    try {
      await rpc.request({ t: 'admin.heal' }, { timeoutMs: 5000 });
      healed.push(n.id);
    } catch (e) {
      failed.push(`${n.id} (${describeError(e)})`);
    } finally {
      await rpc.close();
    }
  }
  return { healed, down, failed };
}

/** Sends `body` to every running node directly (no redirects). */
async function toEveryNode(target: Target, nodes: { host: string; port: number; id: string }[], body: unknown, skip?: string): Promise<void> {
  for (const n of nodes) {
    if (n.id === skip) continue;
    const { rpc } = connectNode(target, `${n.host}:${n.port}`);
    try {
      await rpc.request(body, { timeoutMs: 3000 }).catch(() => undefined);
    } finally {
      await rpc.close();
    }
  }
}

/**
 * Ports for a member being added: the ones it had, when it was a member before (its config is still in its
 * directory) and they are free, so clients that list its address keep working; otherwise the next ones after
 * the cluster's highest.
 */
async function portsFor(cd: ClusterDir, id: string, host: string, nodes: { port: number; httpPort: number }[]): Promise<{ port: number; httpPort: number }> {
  try {
    const previous = JSON.parse(readFileSync(cd.configFile(id), 'utf8')) as Partial<NodeConfig>;
    const port = previous.listen?.port;
    const httpPort = previous.http?.port;
    const taken = (p: number) => nodes.some((n) => n.port === p || n.httpPort === p);
    if (previous.listen?.host === host && typeof port === 'number' && typeof httpPort === 'number' && !taken(port) && !taken(httpPort)) {
      await checkPortsFree(host, [port, httpPort]);
      return { port, httpPort };
    }
  } catch {
    // never a member here, or its old ports are in use: new ones
  }
  const port = Math.max(...nodes.map((n) => n.port)) + 1;
  const httpPort = Math.max(...nodes.map((n) => n.httpPort)) + 1;
  await checkPortsFree(host, [port, httpPort]);
  return { port, httpPort };
}

function warnConfigs(failed: string[]): void {
  if (failed.length > 0) console.error(`warning: could not update the peers of ${failed.join('; ')}`);
}

/**
 * One membership change at a time per cluster directory: two at once would pick the same ports and write the
 * cluster file over each other. The lock file holds the pid; a lock whose process is gone is taken over.
 */
function lockMembership(cd: ClusterDir): () => void {
  const file = join(cd.dir, 'members.lock');
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (holder !== process.pid && alive(holder)) throw new CliError(`another membership change is in progress (pid ${holder}); try again when it is done`);
    writeFileSync(file, String(process.pid));
  }
  return () => rmSync(file, { force: true });
}

/** Where `id` stands in the configuration of the leader a majority agrees on; `undefined` when no such leader answers. */
async function memberRole(cluster: ClusterFile, id: NodeId): Promise<'voter' | 'learner' | 'none' | undefined> {
  const reports = await fetchReports(cluster);
  // The leader a majority follows; else (a member that just joined may not know the leader yet) the leader
  // of the newest term that answers.
  const agreed = agreedLeader(cluster, reports);
  const leaders = reports.filter((r): r is NodeReport => r !== undefined && r.status.role === 'leader');
  const newest = leaders.sort((a, b) => b.status.term - a.status.term)[0];
  const config = (reports.find((r) => r !== undefined && r.id === agreed) ?? newest)?.status.config;
  if (config === undefined) return undefined;
  return config.voters.includes(id) ? 'voter' : config.learners.includes(id) ? 'learner' : 'none';
}

/**
 * Proposes a membership change through the leader. A change whose answer was lost (the leader stepped down,
 * a timeout) may still have been committed: then the configuration decides, once a leader answers, and only
 * a change that did not take effect is an error.
 */
async function changeMembers(dir: string, cluster: ClusterFile, op: 'addVoter' | 'addLearner' | 'remove', id: NodeId): Promise<void> {
  const want = op === 'addVoter' ? 'voter' : op === 'addLearner' ? 'learner' : 'none';
  let failure: unknown;
  // Refusals that say the change was not made (no leader yet, say, after the leader was killed) are tried
  // again until a leader takes it.
  for (const until = Date.now() + 20_000; ; ) {
    const { rpc } = connectAdmin(dirTarget(dir));
    try {
      await rpc.request({ t: 'admin.members', change: { changes: [{ op, node: id }] } }, { timeoutMs: Math.max(1000, until - Date.now()) });
      return;
    } catch (e) {
      failure = e;
    } finally {
      await rpc.close();
    }
    const refused = (failure as { code?: string }).code;
    if ((refused !== ErrorCode.NOT_LEADER && refused !== ErrorCode.PROPOSAL_DROPPED) || Date.now() > until) break;
    await sleep(200);
  }
  const code = (failure as { code?: string }).code;
  if (code !== ErrorCode.LEADERSHIP_LOST && code !== ErrorCode.TIMEOUT && code !== ErrorCode.TRANSPORT) throw failure;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const role = await memberRole(cluster, id);
    if (role === want) return;
    if (role !== undefined || Date.now() > deadline) {
      const where = role === undefined ? 'no leader answered to tell whether it took effect' : `${id} is ${role === 'none' ? 'not a member' : `a ${role}`}`;
      throw Object.assign(new CliError(`${(failure as Error).message}; ${where}`), { unknownOutcome: role === undefined });
    }
    await sleep(200);
  }
}

/** Waits until `id` answers its /status, or fails with the reason it exited. */
async function waitUntilUp(cd: ClusterDir, cluster: ClusterFile, node: ClusterNode, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fetchReports({ ...cluster, nodes: [node] }))[0] !== undefined) return;
    if (cd.livePid(node.id) === undefined) {
      const reason = exitReason(cd, node.id);
      throw new CliError(`${node.id} exited before it joined${reason ? `: ${reason}` : ''} (see ${cd.logFile(node.id)})`);
    }
    await sleep(100);
  }
  throw new CliError(`${node.id} did not answer within ${Math.round(timeoutMs / 1000)} s; see ${cd.logFile(node.id)}`);
}

/** Waits until `id` has applied what the leader had committed when the wait began. */
async function waitCaughtUp(cluster: ClusterFile, id: NodeId, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let target: number | undefined;
  while (Date.now() < deadline) {
    const reports = await fetchReports(cluster);
    const leader = agreedLeader(cluster, reports);
    const l = reports.find((r) => r !== undefined && r.id === leader);
    target ??= l?.status.commitIndex;
    const applied = reports.find((r) => r?.id === id)?.status.appliedIndex;
    if (target !== undefined && applied !== undefined && applied >= target) return true;
    await sleep(100);
  }
  return false;
}

/**
 * `members add <id>`: provisions a node (ports, config, data dir), starts it in join mode and waits until it
 * answers, tells every node its address, then adds it through the log: first as a learner, which catches up
 * without counting towards any quorum, then (unless `--learner`) promotes it to voter once it has caught up.
 * Adding a voter that cannot keep up at once can cost the cluster its quorum: the second member of a 1-node
 * cluster is needed for every commit from the moment the change is appended (Raft thesis 4.2.1; etcd adds
 * members as learners first for the same reason).
 */
export async function membersAdd(o: DirOptions & { learner?: boolean }, id: string): Promise<void> {
  const r = await addMemberNode(o, id, { interruptible: true });
  if ('promoted' in r) {
    if (o.json) console.log(JSON.stringify(r));
    else console.log(`promoted ${id} from learner to voter`);
  } else if (o.json) console.log(JSON.stringify(r));
  else console.log(`added ${id} as a ${r.learner ? 'learner' : 'voter'} at ${r.address} (http ${r.http})`);
}

/** What `members add` did: a new member started and added, or a learner of the cluster promoted to voter. */
export type MembersAddResult = { added: string; learner: boolean; address: string; http: string } | { promoted: string };

/**
 * `members add <id>` without the printing. `interruptible`: Ctrl-C (SIGINT, SIGTERM, SIGHUP) undoes what it
 * started and exits the process (the command); a long-running host (`consensus-cli ui`) leaves its signals alone.
 */
export async function addMemberNode(o: Omit<DirOptions, 'json'> & { learner?: boolean }, id: string, how: { interruptible?: boolean } = {}): Promise<MembersAddResult> {
  const cd = new ClusterDir(o.dir);
  cd.read();
  const unlock = lockMembership(cd);
  const progress: AddProgress = { phase: 'provisioning' };
  // Ctrl-C (or a kill, or a closed terminal) must not leave a node process that nothing tracks.
  const onSignal = () => void interruptAdd(cd, id, progress, unlock);
  const signals = how.interruptible ? (['SIGINT', 'SIGTERM', 'SIGHUP'] as const) : [];
  for (const sig of signals) process.on(sig, onSignal);
  try {
    // Past --timeout, what it started is undone as on Ctrl-C (the node stopped, or kept on record if it may
    // have become a member), and the command fails saying so.
    return await withDeadline(o.timeout, { what: `members add ${id}`, onTimeout: () => abandonAdd(cd, id, progress, 'timed out') }, () => addMember(cd, o, id, progress));
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
    unlock();
  }
}

interface AddProgress {
  /**
   * provisioning: not proposed yet; proposing: the learner change was sent; member: it took effect; existing:
   * promoting a learner that was a member already (nothing to undo).
   */
  phase: 'provisioning' | 'proposing' | 'member' | 'existing';
  /** Set on Ctrl-C or past --timeout: the add stops at its next step (it must not start a node after that). */
  abandoned?: boolean;
  /** Writes the new node into the cluster file and every config. */
  record?: () => void;
}

async function interruptAdd(cd: ClusterDir, id: NodeId, progress: AddProgress, unlock: () => void): Promise<void> {
  await abandonAdd(cd, id, progress, 'interrupted');
  unlock();
  process.exit(130);
}

/** Leaves an unfinished `members add` in a state the other commands can deal with, and says which. */
async function abandonAdd(cd: ClusterDir, id: NodeId, progress: AddProgress, why: 'interrupted' | 'timed out'): Promise<void> {
  progress.abandoned = true;
  if (progress.phase === 'existing') {
    console.error(localizeHints(`${why} while promoting ${id}: \`consensus-cli members list\` tells whether it became a voter`));
  } else if (progress.phase === 'member') {
    console.error(localizeHints(`${why}: ${id} is a learner of the cluster; \`consensus-cli members add ${id}\` promotes it`));
  } else {
    await stopNode(cd, id, 'SIGTERM', 3000);
    if (progress.phase === 'proposing') {
      // The change may still commit: keep the node on record, so `members remove` can take it out.
      progress.record?.();
      console.error(
        localizeHints(
          `${why} while ${id} was being added: it may have become a learner. It is stopped and recorded; \`consensus-cli members list\` tells, \`consensus-cli members remove ${id}\` takes it out`,
        ),
      );
    } else {
      console.error(`${why}: ${id} was not added, and its process is stopped`);
    }
  }
}

async function addMember(cd: ClusterDir, o: Omit<DirOptions, 'json'> & { learner?: boolean }, id: string, progress: AddProgress): Promise<MembersAddResult> {
  // After Ctrl-C or --timeout the command has given up and undone what it could: take no further step.
  const goOn = () => {
    if (progress.abandoned) throw new CliError(`members add ${id} was abandoned`);
  };
  const cluster = cd.read();
  if (cluster.nodes.some((n) => n.id === id)) {
    progress.phase = 'existing';
    // A learner of this cluster is promoted (etcd's `member promote`), once it has caught up.
    if (o.learner || (await memberRole(cluster, id)) !== 'learner') throw new CliError(`${id} is already in this cluster`, 2);
    if (!(await waitCaughtUp(cluster, id))) throw new CliError(`${id} has not caught up within 60 s, so it was not made a voter; see ${cd.logFile(id)}`);
    await changeMembers(o.dir, cluster, 'addVoter', id);
    return { promoted: id };
  }
  if (!NODE_ID.test(id)) throw new CliError(`node id ${JSON.stringify(id)} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`, 2);
  const template = JSON.parse(readFileSync(cd.configFile(cluster.nodes[0]!.id), 'utf8')) as NodeConfig;
  const host = cluster.nodes[0]!.host;
  const { port, httpPort } = await portsFor(cd, id, host, cluster.nodes);
  goOn();
  const peers = { ...Object.fromEntries(cluster.nodes.map((n) => [n.id, `${n.host}:${n.port}`])), [id]: `${host}:${port}` };
  mkdirSync(cd.nodeDir(id), { recursive: true });
  // A new member under an id used before: the record that the old one was initialised here no longer applies.
  forgetMemberRecord(cd.dataDir(id));
  const config: NodeConfig = { ...template, id, dataDir: './data', listen: { host, port }, http: { host, port: httpPort }, peers, join: true };
  writeFileSync(cd.configFile(id), `${JSON.stringify(config, null, 2)}\n`);
  const added: ClusterNode = { id, host, port, httpPort };
  const withNew: ClusterFile = { ...cluster, nodes: [...cluster.nodes, added] };
  spawnNode(cd, id);
  progress.record = () => {
    cd.write(withNew);
    warnConfigs(cd.setPeerAddress(cluster.nodes.map((n) => n.id), id, `${host}:${port}`));
  };
  try {
    await waitUntilUp(cd, cluster, added);
    goOn();
    await toEveryNode(dirTarget(cd.dir), cluster.nodes, { t: 'admin.peers', peers: { [id]: `${host}:${port}` } });
    goOn();
    progress.phase = 'proposing';
    await changeMembers(o.dir, cluster, 'addLearner', id);
  } catch (e) {
    // Not a member (the change did not take effect): undo the provisioning. When no leader could say whether
    // it took effect, it may still commit: keep the (stopped) node on record, so `members remove` reaches it.
    // Abandoned: abandonAdd has stopped it, or recorded it if it may have become a learner.
    if (progress.abandoned) throw e;
    const unknown = progress.phase === 'proposing' && (e as { unknownOutcome?: boolean }).unknownOutcome === true;
    progress.phase = 'provisioning';
    await stopNode(cd, id);
    if (unknown) progress.record();
    throw e;
  }
  // The learner change took effect after the command gave up: abandonAdd stopped the node and recorded it.
  goOn();
  // From here on it is a member: whatever happens next, the cluster file and the configs must list it.
  progress.record();
  progress.phase = 'member';
  if (!o.learner) {
    const caughtUp = await waitCaughtUp(withNew, id);
    goOn();
    if (!caughtUp) {
      throw new CliError(`${id} joined as a learner but has not caught up within 60 s, so it was not made a voter; see ${cd.logFile(id)}`);
    }
    await changeMembers(o.dir, withNew, 'addVoter', id);
  }
  return { added: id, learner: o.learner === true, address: `${host}:${port}`, http: `${host}:${httpPort}` };
}

/**
 * Refuses a removal after which the voters still running would not be a majority of the voters left: the
 * configuration takes effect when its entry is appended (Raft thesis 4.1), so the change itself could not
 * commit, and the cluster would stop until the missing voters came back (etcd's strict reconfiguration check).
 */
async function refuseQuorumLoss(cluster: ClusterFile, id: NodeId, force: boolean): Promise<void> {
  if (force) return;
  // The configuration of the leader; just after a leader died there is none for a moment, so wait for one
  // (and in the end take the configuration any node reports).
  let reports = await fetchReports(cluster);
  let config: NodeReport['status']['config'] | undefined;
  for (const until = Date.now() + 10_000; ; ) {
    const leader = agreedLeader(cluster, reports);
    config = reports.find((r) => r !== undefined && r.id === leader)?.status.config;
    if (config !== undefined) break;
    if (Date.now() > until) {
      config = reports.find((r) => r !== undefined)?.status.config;
      break;
    }
    await sleep(200);
    reports = await fetchReports(cluster);
  }
  if (config === undefined || !config.voters.includes(id)) return; // nobody answers, or a learner: nothing to lose
  const left = config.voters.filter((v) => v !== id);
  let running = left.filter((v) => reports.some((r) => r?.id === v));
  // Removing the last voter leaves no quorum at all (core's arithmetic calls an empty voter set satisfied).
  const keepsQuorum = () => left.length > 0 && hasQuorum({ voters: left }, new Set(running));
  // A busy node can be slow to answer: ask the silent ones twice more before calling them down.
  for (let tries = 0; tries < 2 && !keepsQuorum(); tries++) {
    await sleep(300);
    const again = await fetchReports(cluster);
    running = left.filter((v) => again.some((r) => r?.id === v) || running.includes(v));
  }
  if (keepsQuorum()) return;
  const down = left.filter((v) => !running.includes(v));
  throw new CliError(
    `removing ${id} would leave ${left.length} voters of which only ${running.length} run (${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} down): ` +
      `the cluster would lose its majority. Bring ${down.join(', ')} back first, or pass --force`,
  );
}

/**
 * Waits until every remaining member that answers reports a configuration in force without `id`, before `id` is
 * stopped. The leader answered once the change was in force there; a member that has not heard so yet (the
 * leader's next heartbeat tells it) still counts `id` in its quorums. For Raft that is harmless: it has the entry.
 * For Multi-Paxos the configuration decided in slot s governs from slot s + WINDOW (PMMC section 4): a member
 * whose commit point is below that, left alone with the new configuration when a removed leader stops, would run
 * phase 1 with the old configuration, which needs the stopped node (a 2-node cluster removing its leader never
 * elected another). Bounded: a member that does not answer, or stays behind past `timeoutMs`, is not waited for.
 */
async function waitUntilOutEverywhere(cluster: ClusterFile, rest: ClusterNode[], id: NodeId, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reports = (await fetchReports({ ...cluster, nodes: rest })).filter((r): r is NodeReport => r !== undefined);
    const named = (r: NodeReport) => r.status.config.voters.includes(id) || r.status.config.learners.includes(id) || (r.status.config.outgoing ?? []).includes(id);
    if (reports.length > 0 && !reports.some(named)) return;
    await sleep(100);
  }
}

/** `members remove <id>`: removes a member through the log, then stops its process. */
export async function membersRemove(o: DirOptions & { force?: boolean }, id: string): Promise<void> {
  const r = await removeMemberNode(o, id);
  if (o.json) console.log(JSON.stringify({ removed: id }));
  else console.log(`removed ${id} (its data stays in ${r.dataDir})`);
}

/** `members remove <id>` without the printing: removes it through the log and stops it; where its data stays. */
export async function removeMemberNode(o: Omit<DirOptions, 'json'> & { force?: boolean }, id: string): Promise<{ removed: string; dataDir: string }> {
  const cd = new ClusterDir(o.dir);
  cd.read();
  const unlock = lockMembership(cd);
  try {
    return await withDeadline(o.timeout, { what: `members remove ${id}`, note: 'the removal may still take effect (`consensus-cli members list` tells)' }, () => removeMember(cd, o, id));
  } finally {
    unlock();
  }
}

async function removeMember(cd: ClusterDir, o: Omit<DirOptions, 'json'> & { force?: boolean }, id: string): Promise<{ removed: string; dataDir: string }> {
  const cluster = cd.read();
  cd.node(cluster, id);
  await refuseQuorumLoss(cluster, id, o.force === true);
  // A leader that removes itself steps down once the change commits, which can lose the answer: the
  // configuration tells whether it went through (changeMembers).
  await changeMembers(o.dir, cluster, 'remove', id);
  const rest = cluster.nodes.filter((n) => n.id !== id);
  await waitUntilOutEverywhere(cluster, rest, id);
  await stopNode(cd, id);
  cd.write({ ...cluster, nodes: rest });
  // Its port may go to the next member added: no node should keep sending there under the old id.
  await toEveryNode(dirTarget(cd.dir), rest, { t: 'admin.peers', peers: { [id]: '' } });
  warnConfigs(cd.setPeerAddress(rest.map((n) => n.id), id, undefined));
  return { removed: id, dataDir: cd.nodeDir(id) };
}
