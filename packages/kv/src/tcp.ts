import type { Clock } from '@consensus-kit/core';
import { createRpcClient, type RpcClientOptions } from '@consensus-kit/transport-tcp';
import { KvClient } from './client';

export interface CreateKvClientOptions {
  /** Node client addresses ('host:port'); any subset of the cluster works, redirects lead to the leader. */
  endpoints: string[];
  /** The cluster's id, checked in the handshake: a node of another cluster refuses the connection. */
  clusterId: string;
  /** Shared cluster secret (HMAC handshake), when the cluster uses one. */
  secret?: string;
  /** Overall deadline of one call, retries included. Default 10,000 ms; `Infinity` retries until aborted or closed. */
  timeoutMs?: number;
  /** Deadline of one attempt, after which the call is retried (a write through its session). Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /** Give up on a dead endpoint's TCP connect after this long and try the next. Default 300 ms. */
  connectTimeoutMs?: number;
  /** Session id for exactly-once writes, 1 to 128 characters. Default: random. */
  sessionId?: string;
  /**
   * Time for deadlines, retries and backoff pauses, in the kv client and its rpc client alike. Default:
   * `systemClock` from `@consensus-kit/core/host`; pass a `ManualClock` to drive them in tests.
   */
  clock?: Clock;
  /** Further options for the underlying transport-tcp rpc client (TLS, logger, handshake timeout, redirects...). */
  rpc?: Omit<RpcClientOptions, 'endpoints' | 'clusterId' | 'secret' | 'connectTimeoutMs' | 'clock'>;
}

/**
 * The key-value client over TCP, and the one way to make one: finds the leader, follows redirects, skips
 * dead endpoints quickly, and retries safely through its session after a leader crash (each write applies
 * exactly once).
 *
 * ```ts
 * import { createKvClient } from '@consensus-kit/kv';
 *
 * const kv = createKvClient({ endpoints: ['127.0.0.1:7101', '127.0.0.1:7102'], clusterId: 'local-1a2b3c4d' });
 * await kv.put('greeting', 'hello');
 * console.log((await kv.get('greeting'))?.value); // 'hello'
 * await kv.close();
 * ```
 */
export function createKvClient(options: CreateKvClientOptions): KvClient {
  const { endpoints, clusterId, secret, timeoutMs, attemptTimeoutMs, connectTimeoutMs, sessionId, clock, rpc } = options;
  const channel = createRpcClient({
    ...rpc,
    endpoints,
    clusterId,
    connectTimeoutMs: connectTimeoutMs ?? 300,
    ...(secret !== undefined ? { secret } : {}),
    ...(clock !== undefined ? { clock } : {}),
  });
  return new KvClient({
    channel,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(attemptTimeoutMs !== undefined ? { attemptTimeoutMs } : {}),
    ...(sessionId !== undefined ? { sessionId } : {}),
    ...(clock !== undefined ? { clock } : {}),
  });
}
