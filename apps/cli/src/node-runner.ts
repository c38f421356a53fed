import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { ConsensusNode, consoleLogger } from '@consensus-kit/core/host';
import {
  CorruptLogError,
  InvalidArgumentError,
  isConsensusError,
  preview,
  type ConfigChange,
  type Logger,
  type NodeId,
} from '@consensus-kit/core';
import { KvStateMachine, createKvService, type KvQuery, type KvQueryResult, type KvRequest, type KvResult } from '@consensus-kit/kv';
import { hasStoredState, openFileStorage, readDataDirIdentity, type FileStorage } from '@consensus-kit/storage-fs';
import { tcpTransport, type TcpTransport } from '@consensus-kit/transport-tcp';
import type { NodeConfig } from './config';
import { CliError } from './errors';
import { createNodeMetrics } from './metrics';
import { checkProtocolOptions, loadProtocol } from './protocols';

/** Requests the CLI sends to nodes besides kv traffic. */
export type AdminRequest =
  | { t: 'admin.transfer'; to: NodeId }
  | { t: 'admin.status' }
  | { t: 'admin.partition'; peers: NodeId[]; direction?: 'both' | 'inbound' | 'outbound' }
  | { t: 'admin.heal' }
  | { t: 'admin.peers'; peers: Record<NodeId, string> }
  | { t: 'admin.members'; change: ConfigChange };

export interface RunningNode {
  node: ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>;
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
export async function runNode(config: NodeConfig, logger: Logger = consoleLogger(config.id, config.logLevel ?? 'info')): Promise<RunningNode> {
  const protocol = await loadProtocol(config.protocol);
  // Before anything starts: a misspelt option must not leave a half-started node behind.
  const protocolOptions = await checkProtocolOptions(config.protocol, config.protocolOptions, 'protocolOptions');
  const metrics = createNodeMetrics(config.id);
  const http = await listenHttp(config);
  let storage;
  try {
    storage = metrics.instrument(await openNodeStorage(config, logger));
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
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
  });
  const stateMachine = new KvStateMachine();
  const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
    id: config.id,
    peers: config.join === true ? [] : Object.keys(config.peers),
    protocol,
    protocolOptions,
    storage,
    transport,
    stateMachine,
    logger,
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    ...(config.heartbeatTicks !== undefined ? { heartbeatTicks: config.heartbeatTicks } : {}),
    ...(config.snapshotEvery !== undefined ? { snapshotEvery: config.snapshotEvery } : {}),
  });
  metrics.attach(node as unknown as ConsensusNode<never, never, never, never>);
  const kv = createKvService({ node, stateMachine });
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
    return answer;
  };
  const countFailedWrite = (e: unknown): never => {
    metrics.proposals.inc({ outcome: isConsensusError(e) ? e.code.toLowerCase() : 'error' });
    throw e;
  };
  transport.onRequest((body, ctx) => {
    const t = (body as { t?: unknown } | null)?.t;
    if (typeof t === 'string' && t.startsWith('admin.')) return admin(body as AdminRequest);
    const answer = kv(body, ctx);
    return t === 'kv.write' ? answer.then(countWrite, countFailedWrite) : answer;
  });

  let addressBook = { ...config.peers };
  async function admin(req: AdminRequest): Promise<unknown> {
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
      default:
        throw new InvalidArgumentError(`unknown admin request ${preview((req as { t?: unknown }).t)}`);
    }
  }

  http.on('request', (req, res) => {
    const url = req.url ?? '/';
    if (url === '/health') {
      const s = node.status();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', role: s.role, leader: s.leader ?? null, term: s.term }));
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
    } else if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(report()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /health, /metrics or /status\n');
    }
  });

  try {
    await node.start();
  } catch (e) {
    await closeServer(http);
    await storage.close().catch(() => undefined);
    throw e;
  }
  node.on('leader', (leader, term) => logger.info(leader === undefined ? 'no leader' : `leader is ${leader}`, { term }));
  node.on('error', (e) => logger.error('node failed', { error: String(e) }));

  let stopping: Promise<void> | undefined;
  return {
    node,
    transport,
    http,
    stop: () => {
      stopping ??= (async () => {
        await node.stop();
        await closeServer(http);
      })();
      return stopping;
    },
  };
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
async function openNodeStorage(config: NodeConfig, logger: Logger): Promise<FileStorage> {
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
