import { createKvClient, type CreateKvClientOptions, type KvClient } from '@consensus-kit/kv';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { ClusterDir, endpointsOf, type ClusterFile } from './cluster-file';

/**
 * A key-value client for the cluster recorded in `dir`, made by kv's own `createKvClient` (follows redirects
 * to the leader, skips dead nodes, retries writes exactly once through its session).
 */
export function connectKv(dir: string, options: Omit<CreateKvClientOptions, 'endpoints' | 'clusterId'> = {}): { cluster: ClusterFile; kv: KvClient } {
  const cluster = new ClusterDir(dir).read();
  return { cluster, kv: createKvClient({ timeoutMs: 15_000, ...options, endpoints: endpointsOf(cluster), clusterId: cluster.clusterId }) };
}

/** A request channel for the CLI's admin requests to the cluster in `dir`: follows redirects to the leader. */
export function connectAdmin(dir: string): { cluster: ClusterFile; rpc: RpcClient } {
  const cluster = new ClusterDir(dir).read();
  return { cluster, rpc: createRpcClient({ endpoints: endpointsOf(cluster), clusterId: cluster.clusterId, connectTimeoutMs: 300, timeoutMs: 5000 }) };
}
