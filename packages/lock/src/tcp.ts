import type { Clock } from '@consensus-kit/core';
import { createRpcClient, type RpcClient, type RpcClientOptions } from '@consensus-kit/transport-tcp';
import { LockClient, type LockClientOptions } from './client';
import type { LockChannel } from './wire';

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
  const rpcOptions = (list: string[]) => ({
    ...rpc,
    endpoints: list,
    clusterId,
    connectTimeoutMs: connectTimeoutMs ?? 300,
    ...(secret !== undefined ? { secret } : {}),
    ...(clock !== undefined ? { clock } : {}),
  });
  const requests = createRpcClient(rpcOptions(endpoints));
  /** The connection of the open event subscription (closed when the subscription ends). */
  let events: RpcClient | undefined;
  const channel: LockChannel = {
    request: (body, o) => requests.request(body, o),
    /**
     * The session's events are heard from the node its requests go to (the leader, once one answered): the
     * leader applies an entry as soon as it commits, so a grant pushed from there arrives first; a follower
     * applies it only once a later append brings the new commit index. On its own connection, opened from the
     * leader's endpoint (then the others, as the rpc client goes on after a lost node).
     */
    async subscribe(body, onPush, o) {
      const first = requests.preferred;
      const sub = createRpcClient(rpcOptions([first, ...endpoints.filter((e) => e !== first)]));
      events = sub;
      try {
        return await sub.subscribe(body, onPush, o);
      } finally {
        if (events === sub) events = undefined;
        await sub.close();
      }
    },
    close: async () => {
      await events?.close();
      await requests.close();
    },
  };
  const c = new LockClient({ ...client, channel, ...(clock !== undefined ? { clock } : {}) });
  const close = c.close.bind(c);
  c.close = async () => {
    await close();
    await channel.close();
  };
  return c;
}
