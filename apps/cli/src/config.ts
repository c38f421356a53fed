import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, assertNodeId, type NodeId } from '@consensus-kit/core';

/**
 * One node's configuration: what `consensus-cli node --config <file>` reads. The same file deploys a node on
 * a real machine: set `listen`/`http` to the machine's address and `peers` to every voter's address.
 */
export interface NodeConfig {
  clusterId: string;
  id: NodeId;
  /** Protocol package to load: 'raft' (paxos and zab plug in by name). */
  protocol: string;
  /**
   * The protocol's own options (raft: `preVote`, `checkQuorum`, `readOnly`, ...), checked with the protocol's
   * `parseOptions` before the node starts: an unknown or misspelt option is refused, naming it.
   */
  protocolOptions?: Record<string, unknown>;
  /** Storage directory; relative paths are relative to the config file. */
  dataDir: string;
  /** Peer and client traffic (one TCP listener). */
  listen: { host: string; port: number };
  /** /health, /metrics and /status. */
  http: { host: string; port: number };
  /** Every member's id -> 'host:port', this node included (the voters on first boot, unless `initialMembers`). */
  peers: Record<NodeId, string>;
  /**
   * The voters the cluster first started with, used only while this node's log and snapshot hold no
   * configuration yet (etcd's `--initial-cluster`: ignored once the cluster has a configuration of its own).
   * Unset: the ids in `peers`. `consensus-cli` sets it the first time it edits `peers`, so the address of a
   * member whose addition has not committed (a `members add` that lost its leader) never counts as a voter
   * when a node restarts.
   */
  initialMembers?: NodeId[];
  /** This node joins a running cluster: it does not bootstrap a configuration; a membership change adds it. */
  join?: boolean;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Shared cluster secret (HMAC handshake); optional. */
  secret?: string;
  snapshotEvery?: number;
  /** Also snapshot after this many bytes of applied entries (core's `snapshotBytes`, default 64 MiB; 0: entries only). */
  snapshotBytes?: number;
  /**
   * Flush the log with synchronous writes on the event loop's thread (storage-fs `blockingWrites`). Default
   * true: best where cores are scarce, as on one machine running a whole cluster; on a many-core server,
   * false lets the node decode messages while a flush is in flight.
   */
  blockingWrites?: boolean;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Log lines as text (default) or JSON, one object per line; `CONSENSUS_LOG_FORMAT` / `--log-format` win over it. */
  logFormat?: 'text' | 'json';
  /**
   * Serve the requests that change the cluster's network, leadership or membership (partition, heal, leader
   * transfer, members add/remove, peer addresses). Default false: any client that holds the cluster id and
   * secret could otherwise cut nodes off. `consensus-cli start` writes `true` into the configs it makes.
   */
  admin?: boolean;
  /**
   * TLS for peer and client traffic on `listen` (transport-tcp): PEM files, paths relative to the config file.
   * `cert` and `key` are this node's (served to peers and clients, and shown to peers it dials); `ca` verifies
   * the peers' certificates; `mutual` also requires a certificate signed by `ca` from every client and peer.
   * Every member of a cluster uses TLS or none does.
   */
  tls?: NodeTlsConfig;
}

/** `NodeConfig.tls`, with its paths resolved against the config file's directory. */
export interface NodeTlsConfig {
  cert: string;
  key: string;
  ca: string;
  mutual?: boolean;
  /** The name peers' certificates are checked against when they are dialed by IP with a DNS-only certificate. */
  servername?: string;
}

const LEVELS = ['debug', 'info', 'warn', 'error'];

function fail(file: string, msg: string): never {
  throw new ConfigError(`${file}: ${msg}`);
}

function checkHostPort(file: string, v: unknown, what: string): { host: string; port: number } {
  if (typeof v !== 'object' || v === null) fail(file, `${what} must be { "host": string, "port": number }`);
  const { host, port } = v as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || host.length === 0) fail(file, `${what}.host must be a non-empty string`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) fail(file, `${what}.port must be an integer in 0-65535`);
  return { host, port };
}

function optionalInt(file: string, v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(file, max === Number.MAX_SAFE_INTEGER ? `${what} must be an integer >= ${min}` : `${what} must be an integer from ${min} to ${max}`);
  }
  return v;
}

const KNOWN_FIELDS = [
  'clusterId',
  'id',
  'protocol',
  'protocolOptions',
  'dataDir',
  'listen',
  'http',
  'peers',
  'initialMembers',
  'join',
  'tickMs',
  'electionTicks',
  'heartbeatTicks',
  'secret',
  'snapshotEvery',
  'snapshotBytes',
  'blockingWrites',
  'logLevel',
  'logFormat',
  'admin',
  'tls',
];

/** Parses and validates a node config; every problem is a `ConfigError` naming the file and the field. */
export function parseNodeConfig(text: string, file: string): NodeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'must be a JSON object');
  const c = raw as Record<string, unknown>;
  // A misspelt field (`snapshotevery`) would otherwise be dropped without a word and its default used.
  const unknown = Object.keys(c).filter((k) => !KNOWN_FIELDS.includes(k));
  if (unknown.length > 0) fail(file, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${KNOWN_FIELDS.join(', ')})`);
  if (typeof c.clusterId !== 'string' || c.clusterId.length === 0) fail(file, 'clusterId must be a non-empty string');
  try {
    assertNodeId(c.id, 'id');
  } catch (e) {
    fail(file, (e as Error).message);
  }
  if (typeof c.protocol !== 'string' || !/^[a-z][a-z0-9-]*$/.test(c.protocol)) fail(file, 'protocol must be a protocol name such as "raft"');
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) fail(file, 'dataDir must be a non-empty path');
  const listen = checkHostPort(file, c.listen, 'listen');
  const http = checkHostPort(file, c.http, 'http');
  if (typeof c.peers !== 'object' || c.peers === null || Array.isArray(c.peers)) fail(file, 'peers must be an object of id -> "host:port"');
  const peers: Record<string, string> = {};
  for (const [id, addr] of Object.entries(c.peers as Record<string, unknown>)) {
    if (typeof addr !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(addr)) fail(file, `peers.${id} must be "host:port"`);
    peers[id] = addr;
  }
  if (!(c.id in peers)) fail(file, `peers must include this node (${c.id})`);
  let initialMembers: NodeId[] | undefined;
  if (c.initialMembers !== undefined) {
    if (!Array.isArray(c.initialMembers) || c.initialMembers.length === 0) fail(file, 'initialMembers must be a non-empty array of node ids');
    for (const [i, id] of (c.initialMembers as unknown[]).entries()) {
      try {
        assertNodeId(id, `initialMembers[${i}]`);
      } catch (e) {
        fail(file, (e as Error).message);
      }
    }
    initialMembers = [...new Set(c.initialMembers as NodeId[])];
  }
  if (c.logLevel !== undefined && !LEVELS.includes(c.logLevel as string)) fail(file, `logLevel must be one of ${LEVELS.join(', ')}`);
  if (c.logFormat !== undefined && c.logFormat !== 'text' && c.logFormat !== 'json') fail(file, 'logFormat must be one of text, json');
  if (c.secret !== undefined && (typeof c.secret !== 'string' || c.secret.length < 8)) fail(file, 'secret must be a string of at least 8 characters');
  const config: NodeConfig = {
    clusterId: c.clusterId,
    id: c.id,
    protocol: c.protocol,
    dataDir: resolve(dirname(file), c.dataDir),
    listen,
    http,
    peers,
  };
  if (initialMembers !== undefined) config.initialMembers = initialMembers;
  // A timer longer than 2^31-1 ms fires at once in Node; a minute per tick is already far past any sane setting.
  const tickMs = optionalInt(file, c.tickMs, 'tickMs', 1, 60_000);
  const electionTicks = optionalInt(file, c.electionTicks, 'electionTicks', 2, 100_000);
  const heartbeatTicks = optionalInt(file, c.heartbeatTicks, 'heartbeatTicks', 1, 100_000);
  const snapshotEvery = optionalInt(file, c.snapshotEvery, 'snapshotEvery', 0);
  const snapshotBytes = optionalInt(file, c.snapshotBytes, 'snapshotBytes', 0);
  if (tickMs !== undefined) config.tickMs = tickMs;
  if (electionTicks !== undefined) config.electionTicks = electionTicks;
  if (heartbeatTicks !== undefined) config.heartbeatTicks = heartbeatTicks;
  if (snapshotEvery !== undefined) config.snapshotEvery = snapshotEvery;
  if (snapshotBytes !== undefined) config.snapshotBytes = snapshotBytes;
  if (typeof c.secret === 'string') config.secret = c.secret;
  if (c.join !== undefined && typeof c.join !== 'boolean') fail(file, 'join must be true or false');
  if (c.join === true) config.join = true;
  if (c.blockingWrites !== undefined && typeof c.blockingWrites !== 'boolean') fail(file, 'blockingWrites must be true or false');
  if (typeof c.blockingWrites === 'boolean') config.blockingWrites = c.blockingWrites;
  if (c.admin !== undefined && typeof c.admin !== 'boolean') fail(file, 'admin must be true or false');
  if (c.admin === true) config.admin = true;
  if (c.tls !== undefined) config.tls = parseTls(file, c.tls);
  if (c.logLevel !== undefined) config.logLevel = c.logLevel as NodeConfig['logLevel'];
  if (c.logFormat !== undefined) config.logFormat = c.logFormat as NodeConfig['logFormat'];
  if (c.protocolOptions !== undefined) {
    // Only the shape here: the names and values are the protocol's to check (checkProtocolOptions).
    if (typeof c.protocolOptions !== 'object' || c.protocolOptions === null || Array.isArray(c.protocolOptions)) {
      fail(file, `protocolOptions must be an object of ${config.protocol} options, e.g. { "preVote": true }`);
    }
    config.protocolOptions = { ...(c.protocolOptions as Record<string, unknown>) };
  }
  if ((config.electionTicks ?? 10) <= (config.heartbeatTicks ?? 1)) fail(file, 'electionTicks must be greater than heartbeatTicks');
  return config;
}

export function readNodeConfig(file: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseNodeConfig(text, file);
}

function parseTls(file: string, raw: unknown): NodeTlsConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'tls must be an object { cert, key, ca, mutual?, servername? } of PEM file paths');
  const t = raw as Record<string, unknown>;
  const unknown = Object.keys(t).filter((k) => !['cert', 'key', 'ca', 'mutual', 'servername'].includes(k));
  if (unknown.length > 0) fail(file, `tls has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: cert, key, ca, mutual, servername)`);
  const path = (k: 'cert' | 'key' | 'ca'): string => {
    const v = t[k];
    if (typeof v !== 'string' || v.length === 0) fail(file, `tls.${k} must be the path of a PEM file (cert, key and ca are all needed)`);
    return resolve(dirname(file), v);
  };
  const out: NodeTlsConfig = { cert: path('cert'), key: path('key'), ca: path('ca') };
  if (t.mutual !== undefined && typeof t.mutual !== 'boolean') fail(file, 'tls.mutual must be true or false');
  if (t.mutual === true) out.mutual = true;
  if (t.servername !== undefined && (typeof t.servername !== 'string' || t.servername.length === 0)) fail(file, 'tls.servername must be a non-empty string');
  if (typeof t.servername === 'string') out.servername = t.servername;
  return out;
}
