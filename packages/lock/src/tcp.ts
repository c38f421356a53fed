import type { Clock } from '@consensus-kit/core';
import { createRpcClient, type RpcClientOptions } from '@consensus-kit/transport-tcp';
import { LockClient, type LockClientOptions } from './client';

export interface CreateLockClientOptions extends Omit<LockClientOptions, 'channel'> {
  /** Node client addresses ('host:port'); redirects lead writes to the leader, subscriptions stay on any node. */
  endpoints: string[];
  /** The cluster's id, checked in the handshake. */
  clusterId: string;
  /** Shared cluster secret (HMAC handshake), when the cluster uses one. */
  secret?: string;
  /** Give up on a dead endpoint's TCP connect after this long and try the next. Default 300 ms. */
  connectTimeoutMs?: number;
  clock?: Clock;
  /** Further options for the transport-tcp rpc client. */
  rpc?: Omit<RpcClientOptions, 'endpoints' | 'clusterId' | 'secret' | 'connectTimeoutMs' | 'clock'>;
}

/**
 * The lock client over TCP.
 *
 * ```ts
 * import { createLockClient } from '@consensus-kit/lock/tcp';
 *
 * const locks = createLockClient({ endpoints: ['127.0.0.1:7101'], clusterId: 'local-1a2b3c4d', ttlMs: 5_000 });
 * await using lock = await locks.acquire('jobs/nightly');
 * await store.write(data, { fencingToken: lock.token, signal: lock.signal });
 * ```
 */
export function createLockClient(options: CreateLockClientOptions): LockClient {
  const { endpoints, clusterId, secret, connectTimeoutMs, clock, rpc, ...client } = options;
  const channel = createRpcClient({
    ...rpc,
    endpoints,
    clusterId,
    connectTimeoutMs: connectTimeoutMs ?? 300,
    ...(secret !== undefined ? { secret } : {}),
    ...(clock !== undefined ? { clock } : {}),
  });
  const c = new LockClient({ ...client, channel, ...(clock !== undefined ? { clock } : {}) });
  const close = c.close.bind(c);
  c.close = async () => {
    await close();
    await channel.close();
  };
  return c;
}
