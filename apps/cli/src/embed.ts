import type { RequestListener } from 'node:http';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  AbortedError,
  ConfigError,
  InvalidArgumentError,
  NotLeaderError,
  assertNodeId,
  isConsensusError,
  parseOptions,
  preview,
  type Logger,
  type NodeId,
  type OptionSpecs,
  type StateMachine,
  type Status,
} from '@consensus-kit/core';
import type { ConsensusNode, OperationOptions } from '@consensus-kit/core/host';
import { KvClient, KvStateMachine, type KvStateMachineOptions, type KvSubscribeChannel, type PushSink } from '@consensus-kit/kv';
import { LockStateMachine, type LockStateMachineOptions } from '@consensus-kit/lock';
import type { PaxosSpecificOptions } from '@consensus-kit/paxos';
import type { RaftSpecificOptions } from '@consensus-kit/raft';
import { createRpcClient, type RpcClient, type TlsOptions } from '@consensus-kit/transport-tcp';
import type { ZabSpecificOptions } from '@consensus-kit/zab';
import type { Registry } from 'prom-client';
import { CliError } from './errors';
import { createNodeLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './logger';
import { HTTP_ROUTES, launchNode, type HealthAnswer, type HttpRoute, type KitNode, type LaunchedNode, type NodeMachines, type NodeSpec } from './node-runner';
import { checkProtocolOptions } from './protocols';

/**
 * Embedding: one call runs a consensus-kit node inside your own process (etcd's `embed.StartEtcd`, hashicorp/raft's
 * `NewRaft`). It is the code `consensus-cli node` runs (node-runner.ts), with the options typed and checked:
 *
 * ```ts
 * const n = await startNode({ protocol: 'raft', dir: './data/n1', id: 'n1', listen: '127.0.0.1:7101',
 *   peers: { n1: '127.0.0.1:7101', n2: '127.0.0.1:7102', n3: '127.0.0.1:7103' } });
 * await n.client.put('greeting', 'hello');  // kv mode (the default): a KvClient, working on any node
 * createServer(n.handlers).listen(8080);    // /health /livez /readyz /metrics /status
 * await n.stop();
 * ```
 */

/** The protocols a node runs, and each one's own options (the types its package exports). */
export interface ProtocolOptionsByName {
  raft: RaftSpecificOptions;
  paxos: PaxosSpecificOptions;
  zab: ZabSpecificOptions;
}
export type ProtocolName = keyof ProtocolOptionsByName;

/** `protocol` and its typed `protocolOptions` (checked again at run time by the protocol's `parseOptions`). */
export type ProtocolChoice =
  | { /** Default 'raft'. */ protocol?: 'raft'; protocolOptions?: RaftSpecificOptions }
  | { protocol: 'paxos'; protocolOptions?: PaxosSpecificOptions }
  | { protocol: 'zab'; protocolOptions?: ZabSpecificOptions };

/** 'host:port', or the same as an object. */
export type Address = string | { host: string; port: number };

/** The options every embedded node takes, whatever its protocol and state machine. */
export interface StartNodeBaseOptions {
  /** This node's id: 1 to 128 characters without whitespace. */
  id: NodeId;
  /** The data directory (write-ahead log, hard state, snapshots); created when missing. */
  dir: string;
  /**
   * Every voter's id -> 'host:port', this node included (on first boot: the initial configuration). Default: a
   * cluster of this node alone.
   */
  peers?: Record<NodeId, string>;
  /**
   * Where to listen for peers and clients (one TCP port). Default: this node's address in `peers`. A node alone
   * with neither does not listen at all: only the returned client and `node` reach it.
   */
  listen?: Address;
  /**
   * An HTTP server of the node's own for /health, /livez, /readyz, /metrics and /status. Default: none; mount
   * `handlers` in your own server instead.
   */
  http?: Address;
  /** Checked in every peer and client handshake: a node or client of another cluster is refused. Default 'embedded'. */
  clusterId?: string;
  /** Shared cluster secret (HMAC handshake), at least 8 characters; every member and client needs it. */
  secret?: string;
  /** TLS for peer and client traffic (PEM contents, not paths): transport-tcp's `TlsOptions`. Needs `listen`. */
  tls?: TlsOptions;
  /** Join a running cluster: bootstrap no configuration; a membership change on the leader adds this node. */
  join?: boolean;
  /** Wall-clock length of one tick. Default 100 ms. */
  tickMs?: number;
  /** Election timeout in ticks (randomized up to twice this). Default 10. */
  electionTicks?: number;
  /** Heartbeat interval in ticks; below `electionTicks`. Default 1. */
  heartbeatTicks?: number;
  /** Take a state-machine snapshot after this many applied entries (0: never). Default 10,000. */
  snapshotEvery?: number;
  /** ... or after this many bytes of applied entries' data, whichever comes first (0: never). Default 64 MiB. */
  snapshotBytes?: number;
  /** Default deadline of a proposal or read barrier on the node, in ms. Default 5,000. */
  timeoutMs?: number;
  /** storage-fs `blockingWrites` (see the node config's field). Default true. */
  blockingWrites?: boolean;
  /** Serve the admin requests that cut links, move leadership and change membership (`consensus-cli partition`, ...). Default false. */
  admin?: boolean;
  /**
   * A core `Logger`, or the CLI's node logger chosen by format and level (text or pino JSON on stderr;
   * `CONSENSUS_LOG_FORMAT` / `CONSENSUS_LOG_LEVEL` win over them). Default: the CLI's logger at level warn.
   */
  logger?: Logger | { format?: LogFormat; level?: LogLevel };
}

/** kv mode (the default): the kv and lock state machines the CLI's nodes run, so every kv and lock client works against it. */
export interface KvModeOptions {
  /** `true` (the default) or the kv state machine's options (`historyRevisions`, lease limits; alike on every member). */
  kv?: true | KvStateMachineOptions;
  /** The lock state machine's options (alike on every member). */
  lock?: LockStateMachineOptions;
  stateMachine?: undefined;
}

/** Custom mode: your own state machine on the log (deterministic; see core's `StateMachine`). */
export interface CustomModeOptions<C, R, Q, A> {
  stateMachine: StateMachine<C, R, Q, A>;
  kv?: undefined;
  lock?: undefined;
}

export type StartKvNodeOptions = StartNodeBaseOptions & ProtocolChoice & KvModeOptions;
export type StartCustomNodeOptions<C, R, Q, A> = StartNodeBaseOptions & ProtocolChoice & CustomModeOptions<C, R, Q, A>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StartNodeOptions = StartKvNodeOptions | StartCustomNodeOptions<any, any, any, any>;

/**
 * The node's HTTP routes: itself a `node:http` request listener (every route, 404 for anything else), and one
 * listener per route for a server of your own (`app.get('/readyz', n.handlers.readyz)` in express).
 */
export type EmbeddedHandlers = RequestListener & { [K in RouteName]: RequestListener };
/** `handlers`' route names: 'health', 'livez', 'readyz', 'metrics', 'status' and 'ui' (the visualizer's `/ui`). */
export type RouteName = HttpRoute extends `/${infer N}` ? N : never;

/** What both modes return. */
export interface EmbeddedNodeBase {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly protocol: ProtocolName;
  /** 'host:port' of the peer and client port; undefined for a node that does not listen. */
  readonly address: string | undefined;
  /** 'host:port' of the node's own HTTP server; undefined without one. */
  readonly httpAddress: string | undefined;
  /** The node's Prometheus metrics (etcd-named series: `consensus_server_has_leader`, ...). */
  readonly metrics: { registry: Registry; contentType: string; text(): Promise<string> };
  /** What /health, /livez and /readyz answer (their HTTP status is 200 when `ok`, else 503). */
  readonly health: { health(): HealthAnswer; live(): HealthAnswer; ready(): Promise<HealthAnswer> };
  readonly handlers: EmbeddedHandlers;
  /** The protocol-neutral status: role, leader, term, commit and applied index, configuration. */
  status(): Status;
  /** The leader this node knows, with its address from the address book; undefined while none is known. */
  leader(): { id: NodeId; address: string | undefined } | undefined;
  /**
   * Sets members' addresses ('host:port'; '' forgets one) without changing membership: addresses are not in the
   * log, so every member learns a new one this way (or from its `peers` when it starts).
   */
  setPeers(addresses: Record<NodeId, string>): void;
  /**
   * On the leader (hashicorp/raft's `AddVoter`): records `address`, then adds `id` as a voter (or a learner) and
   * resolves once the configuration with it is in force. Start the new node with `join: true` first, and give
   * the other members its address with `setPeers`. On a follower: `LeaderRedirectError`.
   */
  addMember(id: NodeId, address: string, options?: { learner?: boolean } & OperationOptions): Promise<void>;
  /** On the leader (hashicorp/raft's `RemoveServer`): takes `id` out of the configuration, then forgets its address. */
  removeMember(id: NodeId, options?: OperationOptions): Promise<void>;
  /**
   * Stops the client, then the node (the batch in flight is made durable first), its transport, storage and
   * HTTP server: every port it opened is free once this resolves. Idempotent.
   */
  stop(): Promise<void>;
}

/** A node in kv mode. */
export interface EmbeddedKvNode extends EmbeddedNodeBase {
  readonly mode: 'kv';
  readonly node: KitNode;
  readonly machines: NodeMachines;
  /**
   * A kv client in this process (`createKvClient`'s API: put, get, range, txn, leases, watch...). Requests go to
   * this node without a socket; on a follower, writes and linearizable reads are forwarded to the leader over the
   * client port, as etcd's in-process client does. Closed by `stop()`.
   */
  readonly client: KvClient;
}

/** A node in custom mode. */
export interface EmbeddedNode<C, R, Q, A> extends EmbeddedNodeBase {
  readonly mode: 'custom';
  readonly node: ConsensusNode<C, R, Q, A>;
  /** Typed on your state machine's commands and queries. */
  readonly client: StateMachineClient<C, R, Q, A>;
}

export interface StateMachineReadOptions extends OperationOptions {
  /** 'linearizable' (default): a read barrier first (ReadIndex). 'serializable': this node's state as it is. */
  consistency?: 'linearizable' | 'serializable';
}

/** Proposals and reads through this node, typed on the state machine. */
export interface StateMachineClient<C, R, Q, A> {
  /**
   * Replicates `command`; resolves with what `apply` returned once it is applied on this node. On a follower it
   * rejects at once with `LeaderRedirectError` (a `NotLeaderError`), naming the leader and its address.
   */
  propose(command: C, options?: OperationOptions): Promise<R>;
  /** Answers `query` from the state machine; linearizable reads on a follower reject like `propose` where the protocol serves barriers only on its leader. */
  read(query: Q, options?: StateMachineReadOptions): Promise<A>;
}

/** A `NotLeaderError` that also says where the leader listens (its address in `peers`), when known. */
export class LeaderRedirectError extends NotLeaderError {
  readonly leaderAddress: string | undefined;
  constructor(leaderHint: NodeId | undefined, leaderAddress: string | undefined) {
    super(
      leaderHint,
      leaderHint === undefined
        ? 'not the leader; no leader is known yet'
        : `not the leader; the leader is ${leaderHint}${leaderAddress !== undefined ? ` at ${leaderAddress}` : ''}`,
    );
    this.leaderAddress = leaderAddress;
  }
}

const BASE_KEYS = [
  'id',
  'dir',
  'peers',
  'listen',
  'http',
  'clusterId',
  'secret',
  'tls',
  'join',
  'tickMs',
  'electionTicks',
  'heartbeatTicks',
  'snapshotEvery',
  'snapshotBytes',
  'timeoutMs',
  'blockingWrites',
  'admin',
  'logger',
  'protocol',
  'protocolOptions',
  'kv',
  'lock',
  'stateMachine',
] as const;

/** The scalar options, checked with core's `parseOptions` (the protocols' option checker): bounds as a node config's. */
const SCALAR_SPECS = {
  protocol: { type: 'string', values: ['raft', 'paxos', 'zab'], description: 'the protocol' },
  clusterId: { type: 'string', description: 'cluster id' },
  secret: { type: 'string', description: 'cluster secret' },
  join: { type: 'boolean', description: 'join a running cluster' },
  tickMs: { type: 'integer', min: 1, max: 60_000, description: 'tick length in ms' },
  electionTicks: { type: 'integer', min: 2, max: 100_000, description: 'election timeout in ticks' },
  heartbeatTicks: { type: 'integer', min: 1, max: 100_000, description: 'heartbeat interval in ticks' },
  snapshotEvery: { type: 'integer', min: 0, description: 'entries between snapshots' },
  snapshotBytes: { type: 'integer', min: 0, description: 'applied bytes between snapshots' },
  timeoutMs: { type: 'integer', min: 1, max: 2 ** 31 - 1, description: 'default operation deadline' },
  blockingWrites: { type: 'boolean', description: 'synchronous log writes' },
  admin: { type: 'boolean', description: 'serve admin requests' },
} as const satisfies OptionSpecs;

const ADDRESS = /^([^\s:]+):(\d{1,5})$/;

function fail(message: string): never {
  throw new ConfigError(`startNode: ${message}`);
}

function parseAddress(v: unknown, what: string): { host: string; port: number } {
  if (typeof v === 'string') {
    const m = ADDRESS.exec(v);
    const port = Number(m?.[2]);
    if (m === null || port > 65535) fail(`${what} must be "host:port" with a port in 0-65535, got ${preview(v)}`);
    return { host: m[1] as string, port };
  }
  if (typeof v === 'object' && v !== null) {
    const { host, port } = v as { host?: unknown; port?: unknown };
    if (typeof host === 'string' && host.length > 0 && typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535) return { host, port };
  }
  return fail(`${what} must be "host:port" or { host, port } with a port in 0-65535, got ${preview(v)}`);
}

function isLogger(v: unknown): v is Logger {
  const l = v as Partial<Logger> | null;
  return typeof l === 'object' && l !== null && ['debug', 'info', 'warn', 'error'].every((k) => typeof (l as Record<string, unknown>)[k] === 'function');
}

function isStateMachine(v: unknown): v is StateMachine<unknown, unknown, unknown, unknown> {
  const s = v as Record<string, unknown> | null;
  return typeof s === 'object' && s !== null && ['apply', 'query', 'snapshot', 'restore'].every((k) => typeof s[k] === 'function');
}

/** `startNode`'s options, checked and resolved: every problem is a `ConfigError` naming the option, before anything starts. */
async function checkStartNodeOptions(raw: unknown): Promise<{ spec: NodeSpec; logger: Logger; protocol: ProtocolName }> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`options must be an object, got ${preview(raw)}`);
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => o[k] !== undefined && !(BASE_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    // Core's option checker names the closest known option ("did you mean").
    const specs = Object.fromEntries(BASE_KEYS.map((k) => [k, { type: 'string', description: k }])) as OptionSpecs;
    try {
      parseOptions('startNode', specs, { [unknown[0] as string]: '' });
    } catch (e) {
      if (ConfigError.is(e)) throw new ConfigError(e.message.replace(/^unknown startNode option/, 'startNode: unknown option'), { cause: e });
      throw e;
    }
  }
  let scalars;
  try {
    scalars = parseOptions('startNode', SCALAR_SPECS, Object.fromEntries(Object.keys(SCALAR_SPECS).map((k) => [k, o[k]])));
  } catch (e) {
    if (ConfigError.is(e)) throw new ConfigError(e.message.replace(/^startNode option/, 'startNode: option'), { cause: e });
    throw e;
  }
  try {
    assertNodeId(o.id, 'id');
  } catch (e) {
    fail((e as Error).message);
  }
  const id = o.id;
  if (typeof o.dir !== 'string' || o.dir.length === 0) fail(`dir must be a non-empty path (the data directory), got ${preview(o.dir)}`);
  const protocol = (scalars.protocol ?? 'raft') as ProtocolName;
  if (scalars.clusterId !== undefined && scalars.clusterId.length === 0) fail('clusterId must be a non-empty string');
  if (scalars.secret !== undefined && scalars.secret.length < 8) fail('secret must be a string of at least 8 characters');
  if ((scalars.electionTicks ?? 10) <= (scalars.heartbeatTicks ?? 1)) fail('electionTicks must be greater than heartbeatTicks');

  let listen = o.listen === undefined ? undefined : parseAddress(o.listen, 'listen');
  let peers: Record<NodeId, string>;
  if (o.peers === undefined) {
    peers = { [id]: listen === undefined ? '' : `${listen.host}:${listen.port}` };
  } else {
    if (typeof o.peers !== 'object' || o.peers === null || Array.isArray(o.peers)) fail(`peers must be an object of id -> "host:port", got ${preview(o.peers)}`);
    peers = {};
    for (const [peer, addr] of Object.entries(o.peers as Record<string, unknown>)) {
      try {
        assertNodeId(peer, `peers: the id ${preview(peer)}`);
      } catch (e) {
        fail((e as Error).message);
      }
      parseAddress(addr, `peers.${peer}`);
      peers[peer] = addr as string;
    }
    if (!(id in peers)) fail(`peers must include this node (${id})`);
    listen ??= parseAddress(peers[id], `peers.${id}`);
  }
  const others = Object.keys(peers).filter((p) => p !== id);
  if (listen === undefined && (others.length > 0 || scalars.join === true)) fail('listen is needed for a node with peers (or give this node an address in peers)');
  const http = o.http === undefined ? undefined : parseAddress(o.http, 'http');
  if (http !== undefined && listen !== undefined && http.port !== 0 && http.port === listen.port && (http.host === listen.host || [http.host, listen.host].some((h) => h === '0.0.0.0' || h === '::'))) {
    fail(`http and listen are both ${http.host}:${http.port}: the HTTP server and the peer and client port need a port each`);
  }
  let tls: TlsOptions | undefined;
  if (o.tls !== undefined) {
    if (typeof o.tls !== 'object' || o.tls === null || Array.isArray(o.tls)) fail(`tls must be transport-tcp's TlsOptions { cert, key, ca, mutual?, servername? } (PEM contents), got ${preview(o.tls)}`);
    const t = o.tls as Record<string, unknown>;
    const known = ['cert', 'key', 'ca', 'mutual', 'servername'];
    const extra = Object.keys(t).filter((k) => !known.includes(k));
    if (extra.length > 0) fail(`tls has unknown field ${JSON.stringify(extra[0])} (known: ${known.join(', ')})`);
    for (const k of ['cert', 'key', 'ca']) if (t[k] === undefined) fail(`tls.${k} is needed (PEM contents: cert, key and ca)`);
    if (listen === undefined) fail('tls needs listen (a node that does not listen has no traffic to protect)');
    tls = t as TlsOptions;
  }

  const hasSm = o.stateMachine !== undefined;
  if (hasSm && (o.kv !== undefined || o.lock !== undefined)) fail(`give either stateMachine (your own) or kv/lock (the kv and lock machines), not both`);
  if (hasSm && !isStateMachine(o.stateMachine)) fail('stateMachine must implement apply, query, snapshot and restore');
  if (o.kv !== undefined && o.kv !== true && (typeof o.kv !== 'object' || o.kv === null || Array.isArray(o.kv))) fail(`kv must be true or the kv state machine's options, got ${preview(o.kv)}`);
  if (o.lock !== undefined && (typeof o.lock !== 'object' || o.lock === null || Array.isArray(o.lock))) fail(`lock must be the lock state machine's options, got ${preview(o.lock)}`);
  const machines: NodeSpec['machines'] = hasSm
    ? { kind: 'custom', stateMachine: o.stateMachine as StateMachine<unknown, unknown, unknown, unknown> }
    : {
        kind: 'kv',
        ...(typeof o.kv === 'object' ? { kv: o.kv as KvStateMachineOptions } : {}),
        ...(o.lock !== undefined ? { lock: o.lock as LockStateMachineOptions } : {}),
      };

  // The machines' own checks, now: a bad option is refused here as a ConfigError rather than after storage opened.
  if (machines.kind === 'kv') {
    const check = (what: string, make: () => unknown) => {
      try {
        make();
      } catch (e) {
        if (isConsensusError(e)) fail(`${what}: ${e.message}`);
        throw e;
      }
    };
    check('kv', () => new KvStateMachine(machines.kv));
    check('lock', () => new LockStateMachine(machines.lock));
  }

  let logger: Logger;
  if (o.logger === undefined || (typeof o.logger === 'object' && o.logger !== null && !isLogger(o.logger))) {
    const l = (o.logger ?? {}) as Record<string, unknown>;
    const extra = Object.keys(l).filter((k) => k !== 'format' && k !== 'level');
    if (extra.length > 0) fail(`logger must be a Logger (debug, info, warn, error) or { format, level }, got a field ${JSON.stringify(extra[0])}`);
    if (l.format !== undefined && !(LOG_FORMATS as readonly unknown[]).includes(l.format)) fail(`logger.format must be one of ${LOG_FORMATS.join(', ')}, got ${preview(l.format)}`);
    if (l.level !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(l.level)) fail(`logger.level must be one of ${LOG_LEVELS.join(', ')}, got ${preview(l.level)}`);
    logger = createNodeLogger({ id, logFormat: (l.format as LogFormat | undefined) ?? 'text', logLevel: (l.level as LogLevel | undefined) ?? 'warn' });
  } else if (isLogger(o.logger)) {
    logger = o.logger;
  } else {
    fail(`logger must be a Logger (debug, info, warn, error) or { format, level }, got ${preview(o.logger)}`);
  }

  // The protocol's own checker: an unknown or misspelt option is refused with the closest name.
  const protocolOptions = await checkProtocolOptions(protocol, o.protocolOptions, 'startNode: protocolOptions');
  const spec: NodeSpec = {
    clusterId: scalars.clusterId ?? 'embedded',
    id,
    protocol,
    protocolOptions,
    dataDir: o.dir,
    listen,
    http,
    peers,
    machines,
    ...(scalars.join !== undefined ? { join: scalars.join } : {}),
    ...(scalars.tickMs !== undefined ? { tickMs: scalars.tickMs } : {}),
    ...(scalars.electionTicks !== undefined ? { electionTicks: scalars.electionTicks } : {}),
    ...(scalars.heartbeatTicks !== undefined ? { heartbeatTicks: scalars.heartbeatTicks } : {}),
    ...(scalars.secret !== undefined ? { secret: scalars.secret } : {}),
    ...(scalars.snapshotEvery !== undefined ? { snapshotEvery: scalars.snapshotEvery } : {}),
    ...(scalars.snapshotBytes !== undefined ? { snapshotBytes: scalars.snapshotBytes } : {}),
    ...(scalars.timeoutMs !== undefined ? { timeoutMs: scalars.timeoutMs } : {}),
    ...(scalars.blockingWrites !== undefined ? { blockingWrites: scalars.blockingWrites } : {}),
    ...(scalars.admin !== undefined ? { admin: scalars.admin } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  return { spec, logger, protocol };
}

/**
 * Makes the data directory `dir` (resolved) and its missing parents, one level at a time, and checks a file can be
 * written in it, before storage opens it; a `ConfigError` naming the option when it cannot. Node's recursive
 * mkdir never settles where a directory cannot be made in a parent that exists (procfs answers ENOENT, and it
 * retries the parent forever, holding a thread of the pool), so storage's own mkdir is never reached with such a
 * path: here each missing level is tried once, bounded by the path's depth.
 */
function prepareDataDir(dir: string): void {
  const full = resolve(dir);
  const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  const missing: string[] = [];
  for (let at = full; ; ) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (e) {
      // ENOTDIR: a level above is a file, which the walk up finds and names.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') fail(`dir ${preview(dir)} cannot be used: ${at} cannot be read (${why(e)})`);
      missing.push(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
      continue;
    }
    if (!isDir) fail(`dir ${preview(dir)} cannot be used: ${at} is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      // Made meanwhile (another node's start, a second call): fine if it is a directory now.
      const made = (e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d, { throwIfNoEntry: false })?.isDirectory() === true;
      if (!made) fail(`dir ${preview(dir)} cannot be created: mkdir ${d} failed (${why(e)})`);
    }
  }
  const probe = join(full, `.startnode-write-check-${process.pid}`);
  try {
    writeFileSync(probe, '');
  } catch (e) {
    fail(`dir ${preview(dir)} cannot be written: a file cannot be created in ${full} (${why(e)})`);
  }
  rmSync(probe, { force: true });
}

/** The data directories of the nodes `startNode` runs in this process (resolved paths). */
const dirsInUse = new Set<string>();

/**
 * Starts one node in this process and resolves once it runs (it may not know a leader yet: `node.waitForLeader()`).
 * Bad options reject with a `ConfigError` naming the option before anything is opened or listens; a port in
 * use or a data directory of another node rejects with everything opened closed again.
 */
export function startNode<C, R, Q, A>(options: StartCustomNodeOptions<C, R, Q, A>): Promise<EmbeddedNode<C, R, Q, A>>;
export function startNode(options: StartKvNodeOptions): Promise<EmbeddedKvNode>;
export async function startNode(options: StartNodeOptions): Promise<EmbeddedKvNode | EmbeddedNode<unknown, unknown, unknown, unknown>> {
  const { spec, logger, protocol } = await checkStartNodeOptions(options);
  // One node per data directory in this process, claimed before anything opens: a second start on the same
  // directory (at the same time, or before the first stopped) is refused by name, not left to race the first.
  const claimed = resolve(spec.dataDir);
  if (dirsInUse.has(claimed)) throw new ConfigError(`startNode: ${claimed} is the data directory of a node this process already runs (stop it first)`);
  dirsInUse.add(claimed);
  let launched: LaunchedNode;
  try {
    prepareDataDir(spec.dataDir);
    launched = await launchNode(spec, logger);
  } catch (e) {
    dirsInUse.delete(claimed);
    // The CLI's own error class (a port in use, a data directory of another node) reaches embedders as the kit's.
    if (e instanceof CliError) throw new ConfigError(`startNode: ${e.message}`, { cause: e });
    throw e;
  }
  const addressOf = (id: NodeId): string | undefined => {
    const address = launched.peers()[id];
    return address === undefined || address === '' ? undefined : address;
  };
  const leader = (): { id: NodeId; address: string | undefined } | undefined => {
    const l = launched.node.status().leader;
    return l === undefined ? undefined : { id: l, address: addressOf(l) };
  };
  const redirect = (e: unknown): never => {
    if (NotLeaderError.is(e) && !(e instanceof LeaderRedirectError)) {
      const hint = e.leaderHint ?? leader()?.id;
      throw new LeaderRedirectError(hint, hint === undefined ? undefined : addressOf(hint));
    }
    throw e;
  };
  const setPeers = (addresses: Record<NodeId, string>): void => {
    if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) throw new InvalidArgumentError(`setPeers takes { id: 'host:port' }, got ${preview(addresses)}`);
    for (const [id, addr] of Object.entries(addresses)) {
      assertNodeId(id, 'setPeers: a member id');
      if (addr !== '' && (typeof addr !== 'string' || !ADDRESS.test(addr))) throw new InvalidArgumentError(`setPeers: the address of ${id} must be "host:port" (or '' to forget it), got ${preview(addr)}`);
      if (id === spec.id) throw new InvalidArgumentError(`setPeers: ${id} is this node; its address is its listen address`);
    }
    launched.setPeers(addresses);
  };
  const changeMembers = (change: { op: 'addVoter' | 'addLearner' | 'remove'; node: NodeId }, o: OperationOptions = {}): Promise<void> =>
    launched.node.changeMembership({ changes: [change] }, o).then(() => undefined, redirect);
  const handlers: EmbeddedHandlers = Object.assign(
    ((req, res) => launched.handle(req, res)) as RequestListener,
    Object.fromEntries(HTTP_ROUTES.map((r) => [r.slice(1), launched.routes[r]])) as Record<RouteName, RequestListener>,
  );
  const registry = launched.metrics.registry;
  const address = (a: { host: string; port: number } | undefined) => (a === undefined ? undefined : `${a.host}:${a.port}`);
  let closeClient: () => Promise<void> = () => Promise.resolve();
  let stopping: Promise<void> | undefined;
  const base: EmbeddedNodeBase = {
    id: spec.id,
    clusterId: spec.clusterId,
    protocol,
    address: address(spec.listen),
    httpAddress: address(spec.http),
    metrics: { registry, contentType: registry.contentType, text: () => registry.metrics() },
    health: launched.health,
    handlers,
    status: () => launched.node.status(),
    leader,
    setPeers,
    addMember: async (id, address, o = {}) => {
      const { learner, ...op } = o;
      if (typeof address !== 'string' || !ADDRESS.test(address)) throw new InvalidArgumentError(`addMember: the address of ${preview(id)} must be "host:port", got ${preview(address)}`);
      setPeers({ [id]: address });
      await changeMembers({ op: learner === true ? 'addLearner' : 'addVoter', node: id }, op);
    },
    removeMember: async (id, o = {}) => {
      assertNodeId(id, 'removeMember: the member id');
      await changeMembers({ op: 'remove', node: id }, o);
      if (id !== spec.id) setPeers({ [id]: '' });
    },
    stop: () => {
      stopping ??= (async () => {
        try {
          await closeClient().catch(() => undefined);
          await launched.stop();
        } finally {
          dirsInUse.delete(claimed);
        }
      })();
      return stopping;
    },
  };
  if (spec.machines.kind === 'custom') {
    const sm = spec.machines.stateMachine;
    const node = launched.node as ConsensusNode<unknown, unknown, unknown, unknown>;
    const client: StateMachineClient<unknown, unknown, unknown, unknown> = {
      propose: (command, o) => node.propose(command, o).catch(redirect),
      read: (query, o = {}) => {
        const { consistency, ...op } = o;
        if (consistency !== undefined && consistency !== 'linearizable' && consistency !== 'serializable') {
          return Promise.reject(new InvalidArgumentError(`consistency must be 'linearizable' or 'serializable', got ${preview(consistency)}`));
        }
        if (consistency === 'serializable') {
          try {
            return Promise.resolve(sm.query(query));
          } catch (e) {
            return Promise.reject(e);
          }
        }
        return node.read(query, op).catch(redirect);
      },
    };
    return { ...base, mode: 'custom', node, client };
  }
  const channel = inProcessChannel(launched, spec, logger);
  // A call's deadline (retries included) is the client's default 10 s, or longer when the node's own deadline for
  // one proposal is: an in-process attempt ends when the node's proposal does.
  const client = new KvClient({ channel, ...(spec.timeoutMs !== undefined ? { timeoutMs: Math.max(spec.timeoutMs, 10_000) } : {}) });
  closeClient = () => client.close();
  const machines = launched.machines as NodeMachines;
  return { ...base, mode: 'kv', node: launched.node as KitNode, machines, client };
}

/**
 * The kv client's channel in this process: requests go to the node's client-port handler (the same code TCP
 * clients reach, counted in the same metrics) without a socket; bodies and answers are copied, so neither side
 * can change the other's objects (a `Uint8Array` value the caller reuses, a stored key the caller edits). A
 * follower's not-leader answer that names a leader is forwarded to the cluster over the client port (an rpc
 * client made on first use, which follows redirects to the leader): the client works on every node. Watches are
 * served by this node from its own applied state, as any node serves them. An in-process attempt lasts until the
 * node answers (its own deadline, `timeoutMs`, bounds a proposal or read barrier); a call's signal is honoured.
 */
function inProcessChannel(launched: LaunchedNode, spec: NodeSpec, logger: Logger): KvSubscribeChannel {
  let remote: RpcClient | undefined;
  const subscriptions = new Set<AbortController>();
  const others = Object.entries(spec.peers).filter(([id, addr]) => id !== spec.id && addr !== '');
  const forwardable = (e: unknown): boolean => NotLeaderError.is(e) && e.leaderHint !== undefined && e.leaderHint !== spec.id && others.length > 0;
  const toCluster = (leader: NodeId | undefined): RpcClient =>
    (remote ??= createRpcClient({
      // The leader first; redirects lead there from any of them.
      endpoints: [...others.filter(([id]) => id === leader), ...others.filter(([id]) => id !== leader)].map(([, addr]) => addr),
      clusterId: spec.clusterId,
      clientId: `embedded-${spec.id}`,
      logger,
      ...(spec.secret !== undefined ? { secret: spec.secret } : {}),
      ...(spec.tls !== undefined ? { tls: spec.tls } : {}),
    }));
  return {
    async request<T>(body: unknown, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T> {
      try {
        return structuredClone(await launched.serve(structuredClone(body), options?.signal !== undefined ? { signal: options.signal } : {})) as T;
      } catch (e) {
        if (!forwardable(e)) throw e;
        return toCluster((e as NotLeaderError).leaderHint).request<T>(body, options);
      }
    },
    subscribe<T>(body: unknown, onPush: (value: unknown) => void, options?: { signal?: AbortSignal }): Promise<T> {
      const outer = options?.signal;
      if (outer?.aborted) return Promise.reject(new AbortedError(outer.reason));
      const ac = new AbortController();
      subscriptions.add(ac);
      const onAbort = () => ac.abort(outer?.reason);
      outer?.addEventListener('abort', onAbort, { once: true });
      const sink: PushSink = {
        push(value) {
          if (ac.signal.aborted) return false;
          onPush(structuredClone(value));
          return true;
        },
        signal: ac.signal,
      };
      const ended = new Promise<never>((_, reject) => {
        const end = () => reject(new AbortedError(ac.signal.reason, 'the subscription was cancelled'));
        if (ac.signal.aborted) end();
        else ac.signal.addEventListener('abort', end, { once: true });
      });
      ended.catch(() => undefined);
      let served: Promise<unknown>;
      try {
        served = launched.serve(structuredClone(body), { subscription: sink });
      } catch (e) {
        served = Promise.reject(e);
      }
      return Promise.race([served.then((v) => structuredClone(v) as T), ended]).finally(() => {
        outer?.removeEventListener('abort', onAbort);
        subscriptions.delete(ac);
        // The node stops pushing once the sink's signal aborts (a finished subscription needs no more).
        ac.abort(new AbortedError(undefined, 'the subscription ended'));
      });
    },
    async close(): Promise<void> {
      for (const ac of subscriptions) ac.abort(new AbortedError(undefined, 'the embedded kv client was closed'));
      await remote?.close();
    },
  };
}

export type { HealthAnswer, KitNode, NodeMachines };
