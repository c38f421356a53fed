import { createKvClient, type CreateKvClientOptions, type KvClient } from '@consensus-kit/kv';
import { createRpcClient, HandshakeError, type RpcClient } from '@consensus-kit/transport-tcp';
import { ClusterDir, NODE_ID, type ClusterFile, type ClusterNode } from './cluster-file';
import { CliError } from './errors';
import type { NodeReport } from './node-runner';
import { fetchReports } from './supervisor';
import { dirTarget, type Target } from './target';

const secretOf = (t: Pick<Target, 'secret'>) => (t.secret !== undefined ? { secret: t.secret } : {});
const tlsOf = (t: Pick<Target, 'tls'>) => (t.tls !== undefined ? { tls: t.tls } : {});

/**
 * A key-value client for the target cluster (or the cluster the CLI started in a directory), made by kv's own
 * `createKvClient` (follows redirects to the leader, skips dead nodes, retries writes exactly once through its
 * session).
 */
export function connectKv(to: Target | string, options: Omit<CreateKvClientOptions, 'endpoints' | 'clusterId' | 'secret'> = {}): { kv: KvClient } {
  const target = typeof to === 'string' ? dirTarget(to) : to;
  return {
    kv: createKvClient({
      timeoutMs: 15_000,
      ...options,
      endpoints: target.endpoints,
      clusterId: target.clusterId,
      ...secretOf(target),
      ...(target.tls !== undefined ? { rpc: { ...options.rpc, tls: target.tls } } : {}),
    }),
  };
}

/** A request channel for the CLI's admin requests to the target cluster: follows redirects to the leader. */
export function connectAdmin(target: Target): { rpc: RpcClient } {
  return { rpc: createRpcClient({ endpoints: target.endpoints, clusterId: target.clusterId, ...secretOf(target), ...tlsOf(target), connectTimeoutMs: 300, timeoutMs: 5000 }) };
}

/** A channel to one node only (no redirects): a busy machine gets time to answer rather than failing the command. */
export function connectNode(target: Pick<Target, 'clusterId' | 'secret' | 'tls'>, endpoint: string): { rpc: RpcClient } {
  return {
    rpc: createRpcClient({
      endpoints: [endpoint],
      clusterId: target.clusterId,
      ...secretOf(target),
      ...tlsOf(target),
      connectTimeoutMs: 2000,
      handshakeTimeoutMs: 3000,
      maxRedirects: 0,
    }),
  };
}

/** What a command sees of the target cluster: its nodes (as a cluster file) and each one's report. */
export interface ClusterView {
  cluster: ClusterFile;
  reports: (NodeReport | undefined)[];
  /** A cluster the CLI started (pids, logs and configs are on this machine); undefined for a remote one. */
  dir?: ClusterDir;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/**
 * The nodes of the target and their reports. A cluster the CLI started: its cluster file and each node's
 * /status. A remote cluster: each endpoint asked `admin.status` over the client port (with the cluster id and
 * secret, so a foreign or locked cluster refuses); a node that does not answer is listed under its endpoint.
 * When no endpoint answers and one refused the handshake (a wrong cluster id or secret), that refusal is the
 * error: it, not "every node is down", is what the user has to fix.
 */
export async function viewCluster(target: Target, timeoutMs = 2000): Promise<ClusterView> {
  if (target.kind === 'dir') {
    const dir = new ClusterDir(target.dir);
    const cluster = dir.read();
    return { cluster, reports: await fetchReports(cluster), dir };
  }
  const refusals: string[] = [];
  const answers = await Promise.all(
    target.endpoints.map(async (endpoint) => {
      const { rpc } = connectNode(target, endpoint);
      try {
        return await rpc.request<NodeReport>({ t: 'admin.status' }, { timeoutMs });
      } catch (e) {
        if (HandshakeError.is(e) && e.reason !== 'timeout' && e.reason !== 'closed') refusals.push(`${endpoint}: ${e.message}`);
        return undefined;
      } finally {
        await rpc.close();
      }
    }),
  );
  if (answers.every((a) => a === undefined) && refusals.length > 0) {
    throw new CliError(`no node of cluster ${target.clusterId} let the CLI in (${refusals.join('; ')}); check --cluster-id and the secret`);
  }
  const nodes: ClusterNode[] = target.endpoints.map((endpoint, i) => {
    const r = answers[i];
    const { host, port } = splitAddress(endpoint);
    if (r === undefined) return { id: endpoint, host, port, httpPort: 0 };
    // The http server (/health, /status) is reached at the host the endpoint names: the node's own http host
    // may be a wildcard (0.0.0.0) or an address only its machine knows.
    return { id: NODE_ID.test(r.id) ? r.id : endpoint, host, port, httpPort: splitAddress(r.http).port };
  });
  return { cluster: { version: 1, clusterId: target.clusterId, protocol: 'unknown', nodes }, reports: answers };
}
