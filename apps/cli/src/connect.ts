import { KvClient } from '@consensus-kit/kv';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { ClusterDir, endpointsOf, type ClusterFile } from './cluster-file';

/** A request channel to the cluster recorded in `dir`: follows redirects to the leader, skips dead nodes. */
export function connect(dir: string): { cluster: ClusterFile; rpc: RpcClient; kv: KvClient } {
  const cluster = new ClusterDir(dir).read();
  const rpc = createRpcClient({ endpoints: endpointsOf(cluster), clusterId: cluster.clusterId, connectTimeoutMs: 300, timeoutMs: 5000 });
  return { cluster, rpc, kv: new KvClient({ channel: rpc, timeoutMs: 15_000 }) };
}
