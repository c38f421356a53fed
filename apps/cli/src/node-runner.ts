import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { basename, dirname, join } from 'node:path';
import { ConsensusNode } from '@consensus-kit/core/host';
import {
  ConfigError,
  CorruptLogError,
  combineStateMachines,
  InvalidArgumentError,
  NotLeaderError,
  hasQuorum,
  isConsensusError,
  preview,
  type CombinedCommand,
  type CombinedQuery,
  type CombinedRead,
  type CombinedResult,
  type ConfigChange,
  type DurableStorage,
  type Logger,
  type NodeId,
  type StateMachine,
  type Status,
  type Transport,
} from '@consensus-kit/core';
import { KvStateMachine, createKvService, type KvQuery, type KvQueryResult, type KvRequest, type KvResult } from '@consensus-kit/kv';
import { LockStateMachine, createLockService } from '@consensus-kit/lock';
import { hasStoredState, openFileStorage, readDataDirIdentity, type FileStorage } from '@consensus-kit/storage-fs';
import { DEFAULT_LIMITS, tcpTransport, type TcpTransport, type TlsOptions } from '@consensus-kit/transport-tcp';
import type { NodeSnapshot } from './backup';
import type { NodeConfig, NodeTlsConfig } from './config';
import { CliError } from './errors';
import { LockWatchHub, isLockWatchRequest } from './lock-watch';
import { createNodeLogger } from './logger';
import { createNodeMetrics, type NodeMetrics } from './metrics';
import { NodeObserver } from './node-observe';
import { checkProtocolOptions, loadProtocol } from './protocols';

/** Requests the CLI sends to nodes besides kv traffic. */
export type AdminRequest =
  | { t: 'admin.transfer'; to: NodeId }
  | { t: 'admin.status' }
  | { t: 'admin.partition'; peers: NodeId[]; direction?: 'both' | 'inbound' | 'outbound' }
  | { t: 'admin.heal' }
  | { t: 'admin.peers'; peers: Record<NodeId, string> }
  | { t: 'admin.members'; change: ConfigChange }
  | { t: 'admin.snapshot' };

/** The machines every node runs on its one log: kv, and the lock table beside it (`consensus-cli lock ...`). */
export interface NodeMachines {
  kv: KvStateMachine;
  lock: LockStateMachine;
}

/**
 * The node's state machine: `{ kv, lock }` on one log, with kv as the primary machine (DESIGN, "Composition").
 * A cluster directory written when nodes ran kv alone keeps working: its bare kv snapshots restore into kv and
 * its old log entries (kv commands without `sm`) apply to kv, so every key survives the upgrade; kv clients
 * keep sending unrouted requests, and lock requests are routed `{ sm: 'lock', ... }` by the lock service.
 */
export function nodeStateMachine(machines: NodeMachines = { kv: new KvStateMachine(), lock: new LockStateMachine() }): StateMachine<CombinedCommand<Machines, 'kv'>, CombinedResult<Machines>, CombinedQuery<Machines, 'kv'>, CombinedRead<Machines>> {
  return combineStateMachines({ kv: machines.kv, lock: machines.lock }, { primary: 'kv' });
}

type Machines = { kv: KvStateMachine; lock: LockStateMachine };
/** The node as the runner builds it: kv commands and queries (unrouted, kv being primary) and routed lock ones. */
export type KitNode = ConsensusNode<CombinedCommand<Machines, 'kv'>, CombinedResult<Machines>, CombinedQuery<Machines, 'kv'>, CombinedRead<Machines>>;

export interface RunningNode {
  node: KitNode;
  machines: NodeMachines;
  transport: TcpTransport;
  http: Server;
  stop(): Promise<void>;
}

/** What `/status` and `admin.status` answer. */
export interface NodeReport {
  id: NodeId;
  pid: number;
  address: string;
  http: string;
  status: ReturnType<ConsensusNode['status']>;
}

/**
 * Runs one node: file storage, TCP transport (peers and clients on one port), the key-value state machine
 * under the configured protocol, and an HTTP server for /health, /metrics and /status.
 */
export async function runNode(config: NodeConfig, logger: Logger = createNodeLogger(config)): Promise<RunningNode> {
  const protocol = await loadProtocol(config.protocol);
  // Before anything starts: a misspelt option must not leave a half-started node behind.
  const protocolOptions = await checkProtocolOptions(config.protocol, config.protocolOptions, 'protocolOptions');
  const metrics = createNodeMetrics(config.id, { protocol: config.protocol });
  const http = await listenHttp(config);
  const health = new HealthTracker(config);
  let storage;
  try {
    storage = health.watchStorage(metrics.instrument(await openNodeStorage(config, logger, metrics)));
  } catch (e) {
    await closeServer(http);
    throw e;
  }
  const transport = tcpTransport({
    id: config.id,
    clusterId: config.clusterId,
    listen: config.listen,
    peers: config.peers,
    logger,
    onRoundTrip: (peer, ms) => metrics.peerRoundTrip(peer, ms),
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
    ...(config.tls !== undefined ? { tls: readTls(config.tls) } : {}),
  });
  // `GET /ui` (consensus-cli ui, #23): peer traffic counted and sampled, node events, the log tail.
  const observer = new NodeObserver({ id: config.id });
  const machines: NodeMachines = { kv: new KvStateMachine(), lock: new LockStateMachine() };
  const stateMachine = machines.kv;
  const combined = nodeStateMachine(machines);
  const node: KitNode = new ConsensusNode({
    id: config.id,
    peers: config.join === true ? [] : Object.keys(config.peers),
    protocol,
    protocolOptions,
    storage,
    // The node's peer traffic passes through the tracker, which notes when each peer was last heard from.
    transport: observer.watchTransport(health.watchTransport(transport)),
    stateMachine: metrics.instrumentStateMachine(combined),
    logger,
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    ...(config.heartbeatTicks !== undefined ? { heartbeatTicks: config.heartbeatTicks } : {}),
    ...(config.snapshotEvery !== undefined ? { snapshotEvery: config.snapshotEvery } : {}),
  });
  metrics.attach(node as unknown as ConsensusNode<never, never, never, never>);
  metrics.watchPeers(() => transport.peerStats());
  node.on('error', (e) => health.failed(e));
  // kv's clients send unrouted requests, which the primary machine answers: its service is the kv-only one.
  const kv = createKvService({ node: node as unknown as ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>, stateMachine });
  const lock = createLockService({ node, stateMachine: machines.lock, route: 'lock' });
  const lockWatches = new LockWatchHub(node, machines.lock);
  const report = (): NodeReport => ({
    id: config.id,
    pid: process.pid,
    address: `${config.listen.host}:${config.listen.port}`,
    http: `${config.http.host}:${config.http.port}`,
    status: node.status(),
  });

  // Not an async function: every request passes here, and an extra async layer costs a promise and a turn
  // of the microtask queue per request. Only writes are counted, so only they get a continuation.
  const countWrite = (answer: unknown): unknown => {
    metrics.proposalsOk.inc();
    metrics.proposalsPending.dec();
    return answer;
  };
  const countFailedWrite = (e: unknown): never => {
    metrics.proposalsPending.dec();
    metrics.proposalFailed(isConsensusError(e) ? e.code.toLowerCase() : 'error');
    throw e;
  };
  transport.onRequest((body, ctx) => {
    const t = (body as { t?: unknown } | null)?.t;
    if (typeof t === 'string' && t.startsWith('admin.')) return admin(body as AdminRequest);
    // Lock requests are `lock.*`, kv's are `kv.*` (each service refuses any other type): one prefix, one service.
    if (typeof t === 'string' && t.startsWith('lock.')) return isLockWatchRequest(body) ? lockWatches.watch(body, ctx.subscription) : lock(body, ctx);
    if (t !== 'kv.write' && t !== 'kv.read') return kv(body, ctx);
    // Client request latency by op (its series resolved when the metrics were made), arrival to answer.
    const latency = metrics.clientRequest(kvOp(body));
    const began = performance.now();
    const timed = (): void => latency.observe((performance.now() - began) / 1000);
    if (t === 'kv.write') metrics.proposalsPending.inc();
    const answer = kv(body, ctx);
    answer.then(timed, timed);
    return t === 'kv.write' ? answer.then(countWrite, countFailedWrite) : answer;
  });

  let addressBook = { ...config.peers };
  async function admin(req: AdminRequest): Promise<unknown> {
    refuseAdmin(config, req);
    observer.admin(req);
    switch (req.t) {
      case 'admin.peers':
        // Addresses only: membership itself changes through the log (admin.members).
        addressBook = { ...addressBook, ...req.peers };
        for (const [id, addr] of Object.entries(req.peers)) if (addr === '') delete addressBook[id];
        transport.setPeers(addressBook);
        return report();
      case 'admin.members':
        await node.changeMembership(req.change, { timeoutMs: 15_000 });
        return report();
      case 'admin.status':
        return report();
      case 'admin.transfer':
        await node.transferLeadership(req.to, { timeoutMs: 10_000 });
        return report();
      case 'admin.partition':
        for (const peer of req.peers) transport.faults.block(peer, req.direction ?? 'both');
        return report();
      case 'admin.heal':
        transport.faults.heal();
        return report();
      case 'admin.snapshot':
        return snapshotAfterBarrier();
      default:
        throw new InvalidArgumentError(`unknown admin request ${preview((req as { t?: unknown }).t)}`);
    }
  }

  /**
   * `admin.snapshot` (`consensus-cli snapshot save`): the state machine's snapshot, at least as new as every
   * write acknowledged before the request arrived. A read barrier first (ReadIndex, Raft thesis 6.4; a protocol
   * that serves barriers only on its leader throws NotLeaderError here, and the client follows the redirect):
   * once it completes, this node has applied everything committed when it began. The applied index, the
   * snapshot and the kv figures are then taken in one synchronous step, so they describe the same state.
   */
  async function snapshotAfterBarrier(): Promise<NodeSnapshot> {
    await node.read({ op: 'revision' }, { timeoutMs: 10_000 });
    const { appliedIndex, term } = node.status();
    // The whole state the node runs, { kv, lock }: a backup restores the one state machine a node runs.
    const data = combined.snapshot();
    const answer: NodeSnapshot = {
      stateMachine: 'kv+lock',
      clusterId: config.clusterId,
      nodeId: config.id,
      protocol: config.protocol,
      appliedIndex,
      term,
      revision: stateMachine.currentRevision,
      compactRevision: stateMachine.compactRevision,
      keys: stateMachine.size,
      data,
    };
    // One answer carries it all: past transport-tcp's maxMessageSize the request server could only answer that
    // the answer is too large. Say so here, with the figures (streaming it in chunks is #22 item 7).
    if (data.length > SNAPSHOT_ANSWER_LIMIT) {
      throw new InvalidArgumentError(
        `the state-machine snapshot of node ${config.id} is ${data.length} bytes; one answer on the client port carries at most ` +
          `${SNAPSHOT_ANSWER_LIMIT} (transport-tcp maxMessageSize ${DEFAULT_LIMITS.maxMessageSize} less room for the envelope): ` +
          `snapshot save cannot fetch a store this large yet; copy a stopped node's data directory instead`,
      );
    }
    return answer;
  }

  const answer = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  http.on('request', (req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    if (path === '/health') {
      const h = health.health(health.running ? node.status() : undefined);
      answer(res, h.ok ? 200 : 503, h.body);
    } else if (path === '/livez') {
      const h = health.live();
      answer(res, h.ok ? 200 : 503, h.body);
    } else if (path === '/readyz') {
      health.ready(health.running ? node : undefined).then(
        (h) => answer(res, h.ok ? 200 : 503, h.body),
        (e: unknown) => answer(res, 503, { status: 'unavailable', reason: 'error', message: String(e) }),
      );
    } else if (url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (e: unknown) => {
          res.writeHead(500);
          res.end(String(e));
        },
      );
    } else if (path === '/ui') {
      observer.serve(req, res);
    } else if (url === '/status') {
      if (!health.answersStatus) answer(res, 503, { status: 'unavailable', reason: 'starting', message: 'the node is starting' });
      else answer(res, 200, report());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /health, /livez, /readyz, /metrics, /status or /ui\n');
    }
  });

  try {
    await node.start();
  } catch (e) {
    await closeServer(http);
    await storage.close().catch(() => undefined);
    observer.close();
    throw e;
  }
  health.started();
  observer.attach({ node, storage, faults: transport.faults });
  node.on('leader', (leader, term) => logger.info(leader === undefined ? 'no leader' : `leader is ${leader}`, { term }));
  node.on('error', (e) => logger.error('node failed', { error: String(e) }));

  let stopping: Promise<void> | undefined;
  return {
    node,
    machines,
    transport,
    http,
    stop: () => {
      stopping ??= (async () => {
        health.stopping();
        lock.close();
        lockWatches.close();
        await node.stop();
        await closeServer(http);
      })();
      return stopping;
    },
  };
}

/** The kv op of a client request (`put`, `range`, ...) for its latency series; "other" when it has none. */
function kvOp(body: unknown): string {
  const b = body as { req?: { cmd?: { op?: unknown } }; q?: { op?: unknown } } | null;
  const op = b?.req?.cmd?.op ?? b?.q?.op;
  return typeof op === 'string' ? op : 'other';
}

/**
 * The largest state-machine snapshot `admin.snapshot` answers with: transport-tcp's default maxMessageSize
 * (32 MiB; the transport splits a message into frames of at most maxFrameSize, 1 MiB) less 64 KiB for the
 * rest of the answer and its encoding.
 */
export const SNAPSHOT_ANSWER_LIMIT = DEFAULT_LIMITS.maxMessageSize - 64 * 1024;

/**
 * Admin requests that change the cluster's network, leadership or membership: served only with `admin: true`.
 * `admin.status` and `admin.snapshot` are reads and always served: a snapshot holds what any client of the
 * cluster (which has its id and secret) can already read with `range`, and a backup must work against nodes
 * deployed without `admin` (the default).
 */
export const GATED_ADMIN_REQUESTS: readonly AdminRequest['t'][] = ['admin.transfer', 'admin.partition', 'admin.heal', 'admin.peers', 'admin.members'];

/**
 * Refuses a gated admin request on a node whose config does not set `admin: true`, with a `ConfigError` (it
 * travels to the client with its code) naming the flag. `admin.status` is a read and always served.
 */
export function refuseAdmin(config: Pick<NodeConfig, 'id' | 'admin'>, req: { t?: unknown }): void {
  if (config.admin === true || !(GATED_ADMIN_REQUESTS as readonly unknown[]).includes(req.t)) return;
  throw new ConfigError(
    `admin requests are off on node ${config.id}: ${String(req.t)} needs "admin": true in its node config (it lets a client cut links, move leadership and change membership)`,
  );
}

/** What `/health`, `/livez` and `/readyz` answer: the HTTP status follows `ok` (200 or 503). */
export interface HealthAnswer {
  ok: boolean;
  body: {
    status: 'ok' | 'unavailable';
    /** Why not ok, as a stable code: starting, stopping, failed, stuck, no-leader, no-quorum, leader-silent, read-barrier. */
    reason?: string;
    /** The same, in a sentence. */
    message?: string;
    role?: Status['role'];
    leader?: NodeId | null;
    term?: number;
    [key: string]: unknown;
  };
}

/** The node's life as health sees it. */
type Phase = 'starting' | 'running' | 'stopping' | 'failed';

/**
 * Health, liveness and readiness of one node, after etcd's `/health`, `/livez` and `/readyz`.
 *
 * The neutral `Status` says who leads but not whether that leader still reaches a quorum, and protocol
 * `details` are not to be interpreted (DESIGN r2). So this tracker derives it from what the host itself sees:
 * the peer transport handed to the node is wrapped to note when each peer was last heard from (any message
 * counts, as Raft's CheckQuorum counts any, thesis 6.2), and the storage to note writes in flight.
 * - health: a leader is known, and either this node leads and heard from a quorum of the configuration in
 *   force within `staleMs`, or it follows and heard from its leader within `staleMs` (a leader cut off from its
 *   quorum goes silent once it steps down, which Raft's CheckQuorum and Paxos' do within an election timeout);
 * - liveness: the node has not failed and no storage write has been in flight for `stuckMs`;
 * - readiness: a leader is known and a linearizable read barrier (ReadIndex through the host) completes within
 *   `readyTimeoutMs`; where the protocol serves barriers only on the leader (Paxos), a follower is ready when
 *   it heard from its leader within `staleMs`, since its clients are redirected there.
 */
export class HealthTracker {
  /** Monotonic ms at which each peer was last heard from. */
  private readonly heard = new Map<NodeId, number>();
  /** Monotonic ms at which each storage write in flight started. */
  private readonly writes = new Set<{ since: number }>();
  private phase: Phase = 'starting';
  private failure: unknown;
  readonly staleMs: number;
  readonly readyTimeoutMs: number;
  readonly stuckMs: number;

  constructor(
    config: Pick<NodeConfig, 'tickMs' | 'electionTicks'>,
    private readonly now: () => number = () => performance.now(),
  ) {
    // Two election timeouts: a heartbeat goes out every heartbeat interval (well under one), so a healthy peer
    // is heard several times per window; CheckQuorum steps a cut-off leader down within one.
    const electionMs = (config.tickMs ?? 100) * (config.electionTicks ?? 10);
    this.staleMs = 2 * electionMs;
    this.readyTimeoutMs = Math.max(1000, 2 * electionMs);
    this.stuckMs = Math.max(10_000, 10 * electionMs);
  }

  get running(): boolean {
    return this.phase === 'running';
  }

  /** The node answers `status()` (it has started; it may since have stopped). */
  get answersStatus(): boolean {
    return this.phase !== 'starting';
  }

  started(): void {
    if (this.phase === 'starting') this.phase = 'running';
  }

  stopping(): void {
    if (this.phase !== 'failed') this.phase = 'stopping';
  }

  failed(error: unknown): void {
    this.phase = 'failed';
    this.failure = error;
  }

  /** The transport as the node sees it: the same, noting the time of every envelope delivered. */
  watchTransport(transport: Transport): Transport {
    return {
      start: (handler) =>
        transport.start({
          ...handler,
          deliver: (envelope) => {
            this.heard.set(envelope.from, this.now());
            handler.deliver(envelope);
          },
        }),
      send: (envelopes) => transport.send(envelopes),
      stop: () => transport.stop(),
    };
  }

  /** The storage, noting each write while it is in flight. */
  watchStorage<S extends DurableStorage>(storage: S): S {
    const save = storage.save.bind(storage);
    storage.save = async (batch) => {
      const w = { since: this.now() };
      this.writes.add(w);
      try {
        await save(batch);
      } finally {
        this.writes.delete(w);
      }
    };
    return storage;
  }

  /** `/health`: 200 only when the node is part of a working cluster. */
  health(status: Status | undefined): HealthAnswer {
    const down = this.notRunning();
    if (down !== undefined || status === undefined) return down ?? unavailable('starting', 'the node is starting');
    const about = { role: status.role, leader: status.leader ?? null, term: status.term };
    if (status.leader === undefined) return unavailable('no-leader', `no leader known in term ${status.term}`, about);
    // Names itself without leading (yet, or any more): no leader serves this term.
    if (status.leader === status.id && status.role !== 'leader') return unavailable('no-leader', `not established as leader in term ${status.term}`, about);
    const now = this.now();
    if (status.leader === status.id) {
      const recent = new Set([status.id, ...[...this.heard].filter(([, t]) => now - t <= this.staleMs).map(([id]) => id)]);
      if (!hasQuorum(status.config, recent)) {
        const voters = [...new Set([...status.config.voters, ...(status.config.outgoing ?? [])])];
        const heard = voters.filter((v) => recent.has(v));
        return unavailable(
          'no-quorum',
          `leader of term ${status.term} heard from ${heard.length} of ${voters.length} voters (${heard.join(', ')}) in the last ${this.staleMs} ms`,
          about,
        );
      }
      return { ok: true, body: { status: 'ok', ...about } };
    }
    const last = this.heard.get(status.leader);
    if (last === undefined || now - last > this.staleMs) {
      const since = last === undefined ? 'never heard from' : `not heard from for ${Math.round(now - last)} ms`;
      return unavailable('leader-silent', `leader ${status.leader} ${since} (limit ${this.staleMs} ms)`, about);
    }
    return { ok: true, body: { status: 'ok', ...about } };
  }

  /** `/livez`: 200 unless the node failed or a storage write has hung. */
  live(): HealthAnswer {
    if (this.phase === 'failed') return unavailable('failed', `the node failed: ${String(this.failure)}`);
    const now = this.now();
    let oldest = now;
    for (const w of this.writes) oldest = Math.min(oldest, w.since);
    if (now - oldest > this.stuckMs) return unavailable('stuck', `a storage write has been in flight for ${Math.round(now - oldest)} ms`);
    return { ok: true, body: { status: 'ok' } };
  }

  /** `/readyz`: 200 only when the node can serve linearizable requests now. */
  async ready(node: Pick<KitNode, 'status' | 'read'> | undefined): Promise<HealthAnswer> {
    const down = this.notRunning();
    if (down !== undefined || node === undefined) return down ?? unavailable('starting', 'the node is starting');
    const status = node.status();
    const about = { role: status.role, leader: status.leader ?? null, term: status.term };
    if (status.leader === undefined) return unavailable('no-leader', `no leader known in term ${status.term}`, about);
    try {
      await node.read({ op: 'revision' }, { timeoutMs: this.readyTimeoutMs });
      return { ok: true, body: { status: 'ok', ...about, barrier: 'read-index' } };
    } catch (e) {
      if (NotLeaderError.is(e) && status.leader !== status.id) {
        // The protocol answers barriers only on its leader: clients of this node are redirected there.
        const h = this.health(node.status());
        return h.ok ? { ok: true, body: { ...h.body, barrier: 'leader-contact' } } : h;
      }
      const why = isConsensusError(e) ? `${e.message} [${e.code}]` : String(e);
      return unavailable('read-barrier', `a read barrier did not complete within ${this.readyTimeoutMs} ms: ${why}`, about);
    }
  }

  private notRunning(): HealthAnswer | undefined {
    if (this.phase === 'failed') return unavailable('failed', `the node failed: ${String(this.failure)}`);
    if (this.phase === 'stopping') return unavailable('stopping', 'the node is stopping');
    if (this.phase === 'starting') return unavailable('starting', 'the node is starting');
    return undefined;
  }
}

function unavailable(reason: string, message: string, about: Partial<HealthAnswer['body']> = {}): HealthAnswer {
  return { ok: false, body: { status: 'unavailable', reason, message, ...about } };
}

function listenHttp(config: NodeConfig): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new CliError(`http port ${config.http.host}:${config.http.port} is already in use`)
          : new CliError(`cannot listen on ${config.http.host}:${config.http.port}: ${e.message}`),
      );
    });
    server.listen(config.http.port, config.http.host, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** What `<dataDir>.member.json` holds: the node a data directory was initialised for, and that directory's incarnation. */
interface MemberRecord {
  clusterId: string;
  nodeId: NodeId;
  incarnation: string;
}

/**
 * Beside the data directory (not inside it, so it outlives a wiped or lost one): the record that this node was
 * initialised there. A data directory without state but with this record lost what the node had promised.
 */
export function memberRecordPath(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}.member.json`);
}

function readMemberRecord(path: string): MemberRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const r = JSON.parse(text) as Partial<MemberRecord>;
    if (typeof r.clusterId === 'string' && typeof r.nodeId === 'string' && typeof r.incarnation === 'string') {
      return { clusterId: r.clusterId, nodeId: r.nodeId, incarnation: r.incarnation };
    }
  } catch {
    // reported below
  }
  throw new CliError(`${path} is not a member record (it names the node initialised in the data directory beside it); restore it, or see \`consensus-cli inspect\``);
}

/** Writes the member record durably (temp file, fsync, rename, fsync of the directory). */
function writeMemberRecord(path: string, record: MemberRecord): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify(record, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Forgets that a node was initialised beside `dataDir` (`members add` of a new member under a reused id). */
export function forgetMemberRecord(dataDir: string): void {
  rmSync(memberRecordPath(dataDir), { force: true });
}

/**
 * For `inspect`: what is wrong between the member record beside `dataDir` and the identity the directory holds
 * (`undefined`: nothing, or no record).
 */
export function memberRecordProblem(dataDir: string, identity: { incarnation: string } | undefined): string | undefined {
  const path = memberRecordPath(dataDir);
  let record: MemberRecord | undefined;
  try {
    record = readMemberRecord(path);
  } catch (e) {
    return (e as Error).message;
  }
  if (record === undefined) return undefined;
  if (identity === undefined) {
    return `node ${record.nodeId} of cluster ${record.clusterId} was initialised here (${path}), but the directory holds no identity: its state was lost or wiped; the node refuses to start`;
  }
  if (identity.incarnation !== record.incarnation) {
    return `the directory's incarnation ${identity.incarnation} is not the one node ${record.nodeId} ran on (${record.incarnation}, ${path}): re-created or restored from another copy; the node refuses to start`;
  }
  return undefined;
}

/** How an operator brings back a node whose stored state is gone or damaged. */
function rejoinAdvice(config: NodeConfig, recordPath: string): string {
  return (
    `Bring it back as a new member: \`consensus-cli members remove ${config.id}\`, move ${config.dataDir} aside, then ` +
    `\`consensus-cli members add ${config.id}\` (without the CLI: remove it from the cluster, move the directory aside, delete ` +
    `${recordPath}, and start it with "join": true before adding it back)`
  );
}

/**
 * Opens the node's storage and checks the data directory belongs to it (etcd keeps member and cluster ids in its
 * data directory for the same reason). The directory records cluster id, node id and an incarnation; the member
 * record beside it records the same once the node has started there. A directory that lost its state while the
 * record says the node was initialised there (wiped, or restored from another copy) is refused: started empty,
 * the node would vote again in terms it voted in and count towards majorities for entries it no longer holds
 * (Raft thesis 3.8). A first start (no record, nothing stored: a new cluster, or `members add`) goes ahead.
 */
async function openNodeStorage(config: NodeConfig, logger: Logger, metrics?: NodeMetrics): Promise<FileStorage> {
  const recordPath = memberRecordPath(config.dataDir);
  const record = readMemberRecord(recordPath);
  if (record !== undefined) {
    if (record.clusterId !== config.clusterId || record.nodeId !== config.id) {
      throw new CliError(
        `${recordPath} says node ${record.nodeId} of cluster ${record.clusterId} was initialised in ${config.dataDir}, but this config is ` +
          `node ${config.id} of cluster ${config.clusterId}: a wrong dataDir, or a config copied from another node`,
      );
    }
    // A damaged hard-state file is the storage's to report (with the file and offset), when it is opened below.
    const stored = await readDataDirIdentity(config.dataDir).catch(() => null);
    if (stored === undefined && !hasStoredState(config.dataDir)) {
      throw new CliError(
        `${config.dataDir} holds no state, but node ${config.id} of cluster ${config.clusterId} was initialised there (${recordPath}): ` +
          `its data was lost or wiped. Started empty it could vote twice in one term and undo writes it acknowledged. ${rejoinAdvice(config, recordPath)}`,
      );
    }
    if (stored !== undefined && stored !== null && stored.incarnation !== record.incarnation) {
      throw new CliError(
        `${config.dataDir} is not the data directory node ${config.id} was running on (incarnation ${stored.incarnation}, ` +
          `expected ${record.incarnation} from ${recordPath}): it was re-created or restored from another copy, which may lack ` +
          `what the node acknowledged. ${rejoinAdvice(config, recordPath)}`,
      );
    }
  }
  let storage: FileStorage;
  try {
    storage = await openFileStorage(config.dataDir, {
      logger,
      blockingWrites: config.blockingWrites ?? true,
      identity: { clusterId: config.clusterId, nodeId: config.id },
      ...(metrics !== undefined ? { onWalWrite: (t: Parameters<NodeMetrics['onWalWrite']>[0]) => metrics.onWalWrite(t) } : {}),
    });
  } catch (e) {
    if (CorruptLogError.is(e)) throw new CliError(`${e.message} [${e.code}]. ${rejoinAdvice(config, recordPath)}`);
    throw e;
  }
  const identity = storage.identity;
  if (identity !== undefined && record?.incarnation !== identity.incarnation) {
    try {
      writeMemberRecord(recordPath, { clusterId: identity.clusterId, nodeId: identity.nodeId, incarnation: identity.incarnation });
    } catch (e) {
      await storage.close().catch(() => undefined);
      throw new CliError(`cannot write ${recordPath}: ${(e as Error).message}`);
    }
  }
  return storage;
}

/** The PEM files of a node's `tls` config, read now: a missing or unreadable one is a ConfigError naming it. */
function readTls(t: NodeTlsConfig): TlsOptions {
  const read = (what: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError(`tls.${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const out: TlsOptions = { cert: read('cert', t.cert), key: read('key', t.key), ca: read('ca', t.ca) };
  if (t.mutual === true) out.mutual = true;
  if (t.servername !== undefined) out.servername = t.servername;
  return out;
}
