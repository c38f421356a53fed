import { createServer, type Server } from 'node:http';
import { ConsensusNode, consoleLogger } from '@consensus-kit/core/host';
import {
  InvalidArgumentError,
  isConsensusError,
  preview,
  type ConfigChange,
  type Logger,
  type NodeId,
} from '@consensus-kit/core';
import { KvStateMachine, createKvService, type KvQuery, type KvQueryResult, type KvRequest, type KvResult } from '@consensus-kit/kv';
import { openFileStorage } from '@consensus-kit/storage-fs';
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
    storage = metrics.instrument(await openFileStorage(config.dataDir, { logger, blockingWrites: config.blockingWrites ?? true }));
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
