import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { basename, dirname, join } from 'node:path';
import { ConsensusNode } from '@consensus-kit/core/host';
import {
  ConfigError,
  CorruptLogError,
  combineStateMachines,
  InvalidArgumentError,
  InvariantError,
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
import { KvStateMachine, createKvService, type KvQuery, type KvQueryResult, type KvRequest, type KvResult, type KvStateMachineOptions, type PushSink } from '@consensus-kit/kv';
import { LockStateMachine, createLockService, type LockStateMachineOptions } from '@consensus-kit/lock';
import { hasStoredState, openFileStorage, readDataDirIdentity, type FileStorage } from '@consensus-kit/storage-fs';
import { DEFAULT_LIMITS, tcpTransport, type TcpTransport, type TlsOptions } from '@consensus-kit/transport-tcp';
import type { NodeSnapshot } from './backup';
import type { NodeConfig, NodeTlsConfig } from './config';
import { CliError } from './errors';
import { LockWatchHub, isLockWatchRequest } from './lock-watch';
import { SnapshotTransfers, type SnapshotCapture, type SnapshotTransferOptions, type StreamedSnapshot } from './snapshot-transfer';
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
  | { t: 'admin.snapshot'; pieces?: boolean }
  | { t: 'admin.snapshot.read'; id: string; offset: number }
  | { t: 'admin.snapshot.cancel'; id: string };

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
  /** The peer and client address ('host:port'); empty for an embedded node that does not listen. */
  address: string;
  /** The HTTP address ('host:port'); empty for an embedded node without an HTTP server of its own. */
  http: string;
  status: ReturnType<ConsensusNode['status']>;
}

/** What runs on a node's log: the CLI's `{ kv, lock }` (with their options), or an embedder's own state machine. */
export type NodeMachineSpec =
  | { kind: 'kv'; kv?: KvStateMachineOptions; lock?: LockStateMachineOptions }
  | { kind: 'custom'; stateMachine: StateMachine<unknown, unknown, unknown, unknown> };

/**
 * One node as `launchNode` runs it: a node config (`consensus-cli node`, read by `runNode`) or `startNode`'s
 * options (embed.ts), checked and resolved. Nothing in it is read from a file any more.
 */
export interface NodeSpec
  extends Pick<NodeConfig, 'clusterId' | 'id' | 'protocol' | 'dataDir' | 'peers' | 'initialMembers' | 'join' | 'tickMs' | 'electionTicks' | 'heartbeatTicks' | 'secret' | 'snapshotEvery' | 'blockingWrites' | 'admin'> {
  /** Also snapshot after this many bytes of applied entries (ConsensusNode's `snapshotBytes`). */
  snapshotBytes?: number;
  /** The protocol's own options, already checked by its `parseOptions` (`checkProtocolOptions`). */
  protocolOptions: Record<string, unknown>;
  /** Peer and client traffic (one TCP listener); undefined: none, for a cluster of this node alone. */
  listen: { host: string; port: number } | undefined;
  /** An HTTP server for the routes of `LaunchedNode.routes`; undefined: none (an embedder mounts `handle`). */
  http: { host: string; port: number } | undefined;
  /** TLS for `listen`, PEM contents (a node config's file paths are read by `runNode`). */
  tls?: TlsOptions;
  /** Default deadline of proposals and read barriers on the node (ConsensusNode's `timeoutMs`). */
  timeoutMs?: number;
  machines: NodeMachineSpec;
  /** Internal: how `snapshot save` transfers are served (piece size, idle TTL, how many at once); tests shrink them. */
  snapshotTransfers?: SnapshotTransferOptions;
}

/** The HTTP routes every node serves. */
export const HTTP_ROUTES = ['/health', '/livez', '/readyz', '/metrics', '/status', '/ui'] as const;
export type HttpRoute = (typeof HTTP_ROUTES)[number];

/** A node the runner assembled and started: what `runNode` and `startNode` (embed.ts) hand on. */
export interface LaunchedNode {
  // The state machine's types are the caller's: kv mode has `KitNode`, custom mode the embedder's machine.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  node: ConsensusNode<any, any, any, any>;
  /** kv mode's machines; undefined for a custom state machine. */
  machines: NodeMachines | undefined;
  /** undefined when the spec has no `listen`. */
  transport: TcpTransport | undefined;
  /** undefined when the spec has no `http`. */
  http: Server | undefined;
  metrics: NodeMetrics;
  /** The answers behind `/health`, `/livez` and `/readyz`. */
  health: { health(): HealthAnswer; live(): HealthAnswer; ready(): Promise<HealthAnswer> };
  /** One request listener per route, as the node's own HTTP server runs them. */
  routes: Record<HttpRoute, RequestListener>;
  /** Every route, and 404 for any other path: a `node:http` request listener. */
  handle: RequestListener;
  /**
   * The client port's request handler, called in process: kv, lock and admin requests answer as over TCP (the
   * metrics count them alike). A custom state machine's node answers only admin requests.
   */
  serve(body: unknown, ctx?: ServeContext): Promise<unknown>;
  report(): NodeReport;
  /** Sets peers' addresses (an empty one forgets it) in the transport's address book; no membership change. */
  setPeers(update: Record<NodeId, string>): void;
  /** The address book as it is now: every peer's id -> 'host:port'. */
  peers(): Record<NodeId, string>;
  /** Idempotent: stops the node (the batch in flight made durable), then the transport, storage and HTTP server. */
  stop(): Promise<void>;
}

/** What `serve` reads of a request's context: transport-tcp's `RequestContext` is one; in-process callers pass less. */
export interface ServeContext {
  signal?: AbortSignal;
  connectionSignal?: AbortSignal;
  subscription?: PushSink;
}

/**
 * Runs one node from its config: file storage, TCP transport (peers and clients on one port), the `{ kv, lock }`
 * state machine under the configured protocol, and an HTTP server for /health, /livez, /readyz, /metrics and
 * /status. `consensus-cli node` runs this; embedders call `startNode` (embed.ts), which runs the same code.
 */
export async function runNode(config: NodeConfig, logger: Logger = createNodeLogger(config)): Promise<RunningNode> {
  // Before anything starts: a misspelt option or an unreadable certificate must not leave a half-started node behind.
  const protocolOptions = await checkProtocolOptions(config.protocol, config.protocolOptions, 'protocolOptions');
  const tls = config.tls !== undefined ? readTls(config.tls) : undefined;
  const spec: NodeSpec = {
    clusterId: config.clusterId,
    id: config.id,
    protocol: config.protocol,
    protocolOptions,
    dataDir: config.dataDir,
    listen: config.listen,
    http: config.http,
    peers: config.peers,
    ...(config.initialMembers !== undefined ? { initialMembers: config.initialMembers } : {}),
    machines: { kind: 'kv' },
    ...(config.join !== undefined ? { join: config.join } : {}),
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    ...(config.heartbeatTicks !== undefined ? { heartbeatTicks: config.heartbeatTicks } : {}),
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
    ...(config.snapshotEvery !== undefined ? { snapshotEvery: config.snapshotEvery } : {}),
    ...(config.snapshotBytes !== undefined ? { snapshotBytes: config.snapshotBytes } : {}),
    ...(config.blockingWrites !== undefined ? { blockingWrites: config.blockingWrites } : {}),
    ...(config.admin !== undefined ? { admin: config.admin } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  const launched = await launchNode(spec, logger);
  const { machines, transport, http } = launched;
  if (machines === undefined || transport === undefined || http === undefined) throw new InvariantError('a node run from its config has machines, a transport and an HTTP server');
  return { node: launched.node as KitNode, machines, transport, http, stop: launched.stop };
}

/**
 * Assembles and starts one node from a checked spec: the one implementation behind `runNode` (the CLI's nodes)
 * and `startNode` (embedding). On failure everything it opened is closed again before it throws.
 */
export async function launchNode(spec: NodeSpec, logger: Logger): Promise<LaunchedNode> {
  const protocol = await loadProtocol(spec.protocol);
  // The machines first: their options are checked as they are made, before anything is opened.
  const machineSpec = spec.machines;
  const machines: NodeMachines | undefined =
    machineSpec.kind === 'kv' ? { kv: new KvStateMachine(machineSpec.kv), lock: new LockStateMachine(machineSpec.lock) } : undefined;
  const combined: StateMachine<unknown, unknown, unknown, unknown> =
    machineSpec.kind === 'custom' ? embeddedStateMachine(machineSpec.stateMachine) : (nodeStateMachine(machines) as StateMachine<unknown, unknown, unknown, unknown>);
  const metrics = createNodeMetrics(spec.id, { protocol: spec.protocol });
  const http = spec.http === undefined ? undefined : await listenHttp(spec.http);
  const health = new HealthTracker(spec);
  let storage;
  try {
    storage = health.watchStorage(metrics.instrument(await openNodeStorage(spec, logger, metrics)));
  } catch (e) {
    if (http !== undefined) await closeServer(http);
    throw e;
  }
  const listen = spec.listen;
  const transport =
    listen === undefined
      ? undefined
      : tcpTransport({
          id: spec.id,
          clusterId: spec.clusterId,
          listen,
          peers: spec.peers,
          logger,
          onRoundTrip: (peer, ms) => metrics.peerRoundTrip(peer, ms),
          ...(spec.secret !== undefined ? { secret: spec.secret } : {}),
          ...(spec.tls !== undefined ? { tls: spec.tls } : {}),
        });
  // `GET /ui` (consensus-cli ui, #23): peer traffic counted and sampled, node events, the log tail.
  const observer = new NodeObserver({ id: spec.id });
  let node: KitNode;
  try {
    node = new ConsensusNode({
      id: spec.id,
      // The configuration a node boots with while its log and snapshot hold none (etcd's initial cluster).
      peers: spec.join === true ? [] : (spec.initialMembers ?? Object.keys(spec.peers)),
      protocol,
      protocolOptions: spec.protocolOptions,
      storage,
      // The node's peer traffic passes through the tracker, which notes when each peer was last heard from.
      transport: observer.watchTransport(health.watchTransport(transport ?? aloneTransport())),
      stateMachine: metrics.instrumentStateMachine(combined),
      logger,
      ...(spec.tickMs !== undefined ? { tickMs: spec.tickMs } : {}),
      ...(spec.electionTicks !== undefined ? { electionTicks: spec.electionTicks } : {}),
      ...(spec.heartbeatTicks !== undefined ? { heartbeatTicks: spec.heartbeatTicks } : {}),
      ...(spec.snapshotEvery !== undefined ? { snapshotEvery: spec.snapshotEvery } : {}),
      ...(spec.snapshotBytes !== undefined ? { snapshotBytes: spec.snapshotBytes } : {}),
      ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
    }) as unknown as KitNode;
  } catch (e) {
    if (http !== undefined) await closeServer(http);
    await storage.close().catch(() => undefined);
    observer.close();
    throw e;
  }
  metrics.attach(node as unknown as ConsensusNode<never, never, never, never>);
  if (transport !== undefined) metrics.watchPeers(() => transport.peerStats());
  node.on('error', (e) => health.failed(e));
  // kv's clients send unrouted requests, which the primary machine answers: its service is the kv-only one.
  const kv = machines && createKvService({ node: node as unknown as ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>, stateMachine: machines.kv });
  const lock = machines && createLockService({ node, stateMachine: machines.lock, route: 'lock' });
  const lockWatches = machines && new LockWatchHub(node, machines.lock);
  const address = (a: { host: string; port: number } | undefined): string => (a === undefined ? '' : `${a.host}:${a.port}`);
  const report = (): NodeReport => ({ id: spec.id, pid: process.pid, address: address(listen), http: address(spec.http), status: node.status() });

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
  const serve = (body: unknown, ctx: ServeContext = {}): Promise<unknown> => {
    const t = (body as { t?: unknown } | null)?.t;
    if (typeof t === 'string' && t.startsWith('admin.')) return admin(body as AdminRequest, ctx);
    if (kv === undefined || lock === undefined || lockWatches === undefined) {
      return Promise.reject(new InvalidArgumentError(`node ${spec.id} runs an embedded state machine of its own: it answers no kv or lock requests (got ${preview(t)})`));
    }
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
  };
  transport?.onRequest(serve);

  const requireTransport = (): TcpTransport => {
    if (transport === undefined) throw new InvalidArgumentError(`node ${spec.id} does not listen: it has no peers to address or cut off`);
    return transport;
  };
  let addressBook = { ...spec.peers };
  // Addresses only: membership itself changes through the log (admin.members). An empty address forgets one.
  const setPeers = (update: Record<NodeId, string>): void => {
    const t = requireTransport();
    addressBook = { ...addressBook, ...update };
    for (const [id, addr] of Object.entries(update)) if (addr === '') delete addressBook[id];
    t.setPeers(addressBook);
  };
  async function admin(req: AdminRequest, ctx: ServeContext = {}): Promise<unknown> {
    refuseAdmin(spec, req);
    observer.admin(req);
    switch (req.t) {
      case 'admin.peers':
        setPeers(req.peers);
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
        for (const peer of req.peers) requireTransport().faults.block(peer, req.direction ?? 'both');
        return report();
      case 'admin.heal':
        requireTransport().faults.heal();
        return report();
      case 'admin.snapshot':
        return req.pieces === true ? snapshotInPieces(ctx) : snapshotAfterBarrier(ctx.signal);
      case 'admin.snapshot.read':
        return transfers.read(req.id, req.offset, ctx.connectionSignal);
      case 'admin.snapshot.cancel':
        return transfers.cancel(req.id);
      default:
        throw new InvalidArgumentError(`unknown admin request ${preview((req as { t?: unknown }).t)}`);
    }
  }

  const transfers = new SnapshotTransfers(spec.id, spec.snapshotTransfers);

  /**
   * The snapshot `consensus-cli snapshot save` asks for, at least as new as every write acknowledged before the
   * request arrived. A read barrier first (ReadIndex, Raft thesis 6.4; a protocol that serves barriers only on
   * its leader throws NotLeaderError here, and the client follows the redirect): once it completes, this node
   * has applied everything committed when it began. The applied index, the kv figures and the snapshot are then
   * captured in one synchronous step, so they describe the same state (an incremental `beginSnapshot` captures
   * the state as of its call and is written out in slices afterwards, while entries go on being applied).
   */
  async function captureAfterBarrier(): Promise<() => SnapshotCapture> {
    if (machines === undefined) throw new InvalidArgumentError(`node ${spec.id} runs an embedded state machine of its own: \`snapshot save\` reads kv nodes only`);
    await node.read({ op: 'revision' }, { timeoutMs: 10_000 });
    const kvMachine = machines.kv;
    return () => {
      const { appliedIndex, term } = node.status();
      // The whole state the node runs, { kv, lock }: a backup restores the one state machine a node runs.
      const data = typeof combined.beginSnapshot === 'function' ? combined.beginSnapshot() : combined.snapshot();
      return {
        meta: {
          stateMachine: 'kv+lock',
          clusterId: spec.clusterId,
          nodeId: spec.id,
          protocol: spec.protocol,
          appliedIndex,
          term,
          revision: kvMachine.currentRevision,
          compactRevision: kvMachine.compactRevision,
          keys: kvMachine.size,
        },
        data,
      };
    };
  }

  /**
   * `admin.snapshot { pieces: true }` (#22 item 7): the snapshot is held under a transfer id and served in
   * pieces (`admin.snapshot.read`), so a store of any size can be backed up (snapshot-transfer.ts).
   */
  async function snapshotInPieces(ctx: ServeContext): Promise<StreamedSnapshot> {
    transfers.checkRoom(); // before the barrier: a busy node refuses at once
    const capture = await captureAfterBarrier();
    return transfers.begin(capture, ctx.signal, ctx.connectionSignal);
  }

  /**
   * `admin.snapshot` as clients before #22 item 7 ask for it: the whole snapshot in one answer, which works up to
   * transport-tcp's maxMessageSize (past it the request server could only answer that the answer is too large:
   * this says so with the figures, and how to fetch it).
   */
  async function snapshotAfterBarrier(signal?: AbortSignal): Promise<NodeSnapshot> {
    // Taken as `snapshot save` in pieces takes one (incrementally, in slices, among the transfers a node holds
    // at once): a client of an older release asking for a large store must neither hold the event loop for
    // the whole of it (heartbeats stalled: elections) nor have any number of them taken at once.
    transfers.checkRoom();
    const { meta, data } = await transfers.whole(await captureAfterBarrier(), signal);
    if (data.length > SNAPSHOT_ANSWER_LIMIT) {
      throw new InvalidArgumentError(
        `the state-machine snapshot of node ${spec.id} is ${data.length} bytes; one answer on the client port carries at most ` +
          `${SNAPSHOT_ANSWER_LIMIT} (transport-tcp maxMessageSize ${DEFAULT_LIMITS.maxMessageSize} less room for the envelope): ` +
          `use a consensus-cli that fetches snapshots in pieces (admin.snapshot with pieces: true)`,
      );
    }
    return { ...meta, data };
  }

  // Readiness takes a read barrier: kv's is a revision read; a custom machine's is a probe its wrapper answers.
  const readiness: Pick<KitNode, 'status' | 'read'> =
    machines !== undefined ? node : { status: () => node.status(), read: (_q, o) => (node as unknown as ConsensusNode<unknown, unknown, unknown, unknown>).read(READY_PROBE, o) as never };
  const healthOf = {
    health: () => health.health(health.running ? node.status() : undefined),
    live: () => health.live(),
    ready: () => health.ready(health.running ? readiness : undefined),
  };
  const answer = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const routes: Record<HttpRoute, RequestListener> = {
    '/health': (_req, res) => {
      const h = healthOf.health();
      answer(res, h.ok ? 200 : 503, h.body);
    },
    '/livez': (_req, res) => {
      const h = healthOf.live();
      answer(res, h.ok ? 200 : 503, h.body);
    },
    '/readyz': (_req, res) => {
      healthOf.ready().then(
        (h) => answer(res, h.ok ? 200 : 503, h.body),
        (e: unknown) => answer(res, 503, { status: 'unavailable', reason: 'error', message: String(e) }),
      );
    },
    '/metrics': (_req, res) => {
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
    },
    '/status': (_req, res) => {
      if (!health.answersStatus) answer(res, 503, { status: 'unavailable', reason: 'starting', message: 'the node is starting' });
      else answer(res, 200, report());
    },
    '/ui': (req, res) => observer.serve(req, res),
  };
  const handle: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const route = (HTTP_ROUTES as readonly string[]).includes(path) ? routes[path as HttpRoute] : undefined;
    if (route !== undefined) return route(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /health, /livez, /readyz, /metrics, /status or /ui\n');
  };
  http?.on('request', handle);

  try {
    await node.start();
  } catch (e) {
    if (http !== undefined) await closeServer(http);
    await storage.close().catch(() => undefined);
    observer.close();
    throw e;
  }
  health.started();
  observer.attach({ node, storage, ...(transport !== undefined ? { faults: transport.faults } : {}) });
  node.on('leader', (leader, term) => logger.info(leader === undefined ? 'no leader' : `leader is ${leader}`, { term }));
  node.on('error', (e) => logger.error('node failed', { error: String(e) }));

  let stopping: Promise<void> | undefined;
  return {
    node,
    machines,
    transport,
    http,
    metrics,
    health: healthOf,
    routes,
    handle,
    serve,
    report,
    setPeers,
    peers: () => ({ ...addressBook }),
    stop: () => {
      stopping ??= (async () => {
        health.stopping();
        transfers.close();
        lock?.close();
        lockWatches?.close();
        await node.stop();
        if (http !== undefined) await closeServer(http);
      })();
      return stopping;
    },
  };
}

/** The query `/readyz` reads after its barrier on a node with an embedder's state machine: answered by the wrapper. */
const READY_PROBE: unknown = Object.freeze({ readyProbe: true });

/**
 * An embedder's state machine as the node runs it: the same methods, bound to it (so the metrics' timing wraps
 * this object, never the embedder's), with a query that answers the readiness probe without asking it.
 */
function embeddedStateMachine(sm: StateMachine<unknown, unknown, unknown, unknown>): StateMachine<unknown, unknown, unknown, unknown> {
  const wrapped: StateMachine<unknown, unknown, unknown, unknown> = {
    apply: (entry, command) => sm.apply(entry, command),
    query: (q) => (q === READY_PROBE ? undefined : sm.query(q)),
    snapshot: () => sm.snapshot(),
    restore: (data) => sm.restore(data),
  };
  const timeCommand = sm.timeCommand;
  if (timeCommand !== undefined) wrapped.timeCommand = (term, ms) => timeCommand.call(sm, term, ms);
  // r3: an incremental snapshot, when the machine has one (the host then runs it in slices).
  const beginSnapshot = sm.beginSnapshot;
  if (beginSnapshot !== undefined) wrapped.beginSnapshot = () => beginSnapshot.call(sm);
  return wrapped;
}

/** The transport of a node that is a cluster of its own and does not listen: there is nobody to send to. */
function aloneTransport(): Transport {
  return {
    start: () => Promise.resolve(),
    send: () => undefined,
    stop: () => Promise.resolve(),
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
 * `admin.status` and `admin.snapshot` (with its `.read` and `.cancel`) are reads and always served: a snapshot holds what any client of the
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

function listenHttp(at: { host: string; port: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new CliError(`http port ${at.host}:${at.port} is already in use`)
          : new CliError(`cannot listen on ${at.host}:${at.port}: ${e.message}`),
      );
    });
    server.listen(at.port, at.host, () => resolve(server));
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
function rejoinAdvice(config: Pick<NodeConfig, 'id' | 'dataDir'>, recordPath: string): string {
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
async function openNodeStorage(config: Pick<NodeConfig, 'id' | 'clusterId' | 'dataDir' | 'blockingWrites'>, logger: Logger, metrics?: NodeMetrics): Promise<FileStorage> {
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
