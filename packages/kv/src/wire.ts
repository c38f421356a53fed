import { InvalidArgumentError, preview } from '@consensus-kit/core';
import type { KvQuery, KvRequest } from './commands';

/** How a read is served: through a read barrier on the leader (default), or from a node's local state. */
export type Consistency = 'linearizable' | 'serializable';

/** What a kv client sends to a node. */
export type KvWireRequest =
  | { t: 'kv.write'; req: KvRequest }
  | { t: 'kv.read'; q: KvQuery; consistency?: Consistency };

export function validateWireRequest(body: unknown): asserts body is KvWireRequest {
  if (typeof body !== 'object' || body === null) throw new InvalidArgumentError(`kv request must be an object, got ${preview(body)}`);
  const b = body as Record<string, unknown>;
  if (b.t === 'kv.write') {
    if (typeof b.req !== 'object' || b.req === null) throw new InvalidArgumentError('kv.write needs `req`');
    return;
  }
  if (b.t === 'kv.read') {
    if (typeof b.q !== 'object' || b.q === null) throw new InvalidArgumentError('kv.read needs `q`');
    if (b.consistency !== undefined && b.consistency !== 'linearizable' && b.consistency !== 'serializable') {
      throw new InvalidArgumentError(`unknown consistency ${preview(b.consistency)}`);
    }
    return;
  }
  throw new InvalidArgumentError(`unknown kv request type ${preview(b.t)}`);
}

/**
 * A request/response channel to a cluster: sends a body to some node (following redirects to the leader)
 * and resolves with the answer, or rejects with a consensus-kit error carrying its `code`. transport-tcp's
 * `createRpcClient` is one; tests use an in-process one.
 */
export interface KvChannel {
  request<T = unknown>(body: unknown, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
  close(): Promise<void>;
}
