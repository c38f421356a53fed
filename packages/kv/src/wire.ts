import { InvalidArgumentError, preview } from '@consensus-kit/core';
import { MAX_KEY_BYTES, type KvQuery, type KvRequest } from './commands';
import type { KvEvent } from './mvcc-store';

/** How a read is served: through a read barrier on the leader (default), or from a node's local state. */
export type Consistency = 'linearizable' | 'serializable';

/** What a kv client sends to a node. */
export type KvWireRequest =
  | { t: 'kv.write'; req: KvRequest }
  | { t: 'kv.read'; q: KvQuery; consistency?: Consistency }
  | KvWatchRequest;

/**
 * Opens a watch (etcd's WatchCreateRequest), sent as a subscription (`KvSubscribeChannel.subscribe`): the
 * node pushes `WatchPush` values until the client cancels, the connection closes, or the watch ends with an
 * error (its final answer).
 */
export interface KvWatchRequest {
  t: 'kv.watch';
  /** The key, or the prefix with `prefix: true` (an empty prefix watches every key). */
  key: string;
  prefix?: boolean;
  /** First revision to deliver (history is replayed from it). Default: the node's current revision + 1. */
  startRevision?: number;
  /** Events carry the key's previous version (`prev`). */
  prevKv?: boolean;
  /** Pushes `{ progress: true, revision }` on the node's progress interval while the watch is caught up. */
  progressNotify?: boolean;
  /**
   * The client takes fragments (etcd's WatchCreateRequest.fragment): a revision whose events are too large for
   * one push is sent in several, all but the last marked `fragment: true`. Without it such a revision is one
   * push, which fails once it passes the transport's message size, at every attempt.
   */
  fragment?: boolean;
}

/**
 * What a watch pushes. In every push `revision` means: this watch has been sent every matching event up to
 * and including this revision, so a client that reconnects resumes with `startRevision: revision + 1` and
 * neither misses nor repeats an event (etcd's header revision, made per watch).
 * - `created`: the first push; `revision` is the start revision - 1; `compactRevision` is the node's.
 * - `events`: the matching events of one or more whole revisions, in revision order (a revision's events,
 *   a transaction's for example, are never split across pushes).
 * - `progress`: nothing matched up to `revision` (sent only when asked for, with `progressNotify`).
 * - `fragment`: (only to a watch opened with `fragment: true`) part of revision `revision`'s events; more of
 *   them follow, the last in a push without `fragment`. Nothing is complete until then: a client that loses the
 *   subscription in between drops the fragments it holds and resumes from `revision` (it is sent again whole).
 */
export type WatchPush =
  | { created: true; revision: number; compactRevision: number }
  | { events: KvEvent[]; revision: number; fragment?: true }
  | { progress: true; revision: number };

/** The push side of a subscription as the kv service uses it; transport-tcp's `Subscription` is one. */
export interface PushSink {
  /** Pushes one value; false once the subscription is over (stop pushing). */
  push(value: unknown): boolean;
  /** Aborted when the subscription ends (client cancel, disconnect, a slow subscriber cancelled). */
  readonly signal: AbortSignal;
  /** True while pushes are held back because the client is reading slowly: a watch replays no more then. */
  readonly congested?: boolean;
}

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
  if (b.t === 'kv.watch') {
    validateWatchRequest(b);
    return;
  }
  throw new InvalidArgumentError(`unknown kv request type ${preview(b.t)}`);
}

function validateWatchRequest(b: Record<string, unknown>): void {
  if (typeof b.key !== 'string') throw new InvalidArgumentError(`kv.watch needs a string \`key\`, got ${preview(b.key)}`);
  if (Buffer.byteLength(b.key) > MAX_KEY_BYTES) throw new InvalidArgumentError(`watch key exceeds ${MAX_KEY_BYTES} bytes`);
  if (b.key === '' && b.prefix !== true) throw new InvalidArgumentError('watch key must not be empty (use prefix: true with an empty key to watch every key)');
  for (const f of ['prefix', 'prevKv', 'progressNotify', 'fragment'] as const) {
    if (b[f] !== undefined && typeof b[f] !== 'boolean') throw new InvalidArgumentError(`kv.watch \`${f}\` must be a boolean, got ${preview(b[f])}`);
  }
  const r = b.startRevision;
  if (r !== undefined && (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 1)) {
    throw new InvalidArgumentError(`kv.watch \`startRevision\` must be a positive integer, got ${preview(r)}`);
  }
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

/** Options of `KvSubscribeChannel.subscribe`. */
export interface KvSubscribeOptions {
  /** Ends the subscription; the promise rejects with an AbortedError. */
  signal?: AbortSignal;
}

/**
 * A channel that can also open subscriptions (server push): sends `body` to one node (any node: not redirected
 * to the leader), hands each pushed value to `onPush` in order, and settles with the final answer.
 * transport-tcp's `createRpcClient` is one. A TransportError means the subscription was lost (connection
 * closed, or cancelled as a slow subscriber) and may be opened again.
 */
export interface KvSubscribeChannel extends KvChannel {
  subscribe<T = unknown>(body: unknown, onPush: (value: unknown) => void, options?: KvSubscribeOptions): Promise<T>;
}

/** Whether `channel` can open subscriptions (watches need it). */
export function canSubscribe(channel: KvChannel): channel is KvSubscribeChannel {
  return typeof (channel as Partial<KvSubscribeChannel>).subscribe === 'function';
}
