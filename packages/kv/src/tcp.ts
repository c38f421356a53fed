import { createRpcClient, type RpcClientOptions } from '@consensus-kit/transport-tcp';
import { KvClient, type KvClientOptions } from './client';

export interface CreateKvClientOptions extends Omit<KvClientOptions, 'channel'> {
  /** Node addresses ('host:port'); any subset works, redirects lead to the leader. */
  endpoints: string[];
  clusterId: string;
  /** Shared cluster secret, when the cluster uses one. */
  secret?: string;
  /** Give up on a dead endpoint's connect after this long and try the next (default 300 ms). */
  connectTimeoutMs?: number;
  /** Further options for the underlying transport-tcp client. */
  rpc?: Omit<RpcClientOptions, 'endpoints' | 'clusterId' | 'secret' | 'connectTimeoutMs'>;
}

/**
 * A key-value client over TCP: finds the leader, follows redirects, skips dead endpoints quickly, and
 * retries safely through its session after a leader crash (each write applies exactly once).
 */
export function createKvClient(options: CreateKvClientOptions): KvClient {
  const { endpoints, clusterId, secret, connectTimeoutMs, rpc, ...client } = options;
  const channel = createRpcClient({
    ...rpc,
    endpoints,
    clusterId,
    connectTimeoutMs: connectTimeoutMs ?? 300,
    ...(secret !== undefined ? { secret } : {}),
  });
  return new KvClient({ ...client, channel });
}
