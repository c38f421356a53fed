import { InvalidArgumentError, preview } from '@consensus-kit/core';
import { validateLockCommand, validateLockQuery, type LockCommand, type LockEvent, type LockQuery } from './commands';
import type { SessionInfo } from './lock-state-machine';

/** What a lock client sends to a node. */
export type LockWireRequest =
  | { t: 'lock.write'; cmd: LockCommand }
  | { t: 'lock.read'; q: LockQuery; consistency?: 'linearizable' | 'serializable' }
  /** Opened as a subscription: the node pushes `LockPush` values about one session until it ends. */
  | { t: 'lock.events'; session: number };

/**
 * What a `lock.events` subscription pushes:
 * - `sync`: first, and again after the node restored a snapshot: the session as this node's state has it now
 *   (undefined: gone), so a client that (re)subscribes catches up on grants and losses it did not hear.
 * - `events`: the events of one applied entry (log `index`) that concern the session, in log order.
 */
export type LockPush = { sync: SessionInfo | undefined; index: number } | { events: LockEvent[]; index: number };

/**
 * A request/response channel to a cluster that can also open subscriptions (server push); transport-tcp's
 * `createRpcClient` is one, tests use an in-process one (the same shape as kv's `KvSubscribeChannel`).
 */
export interface LockChannel {
  request<T = unknown>(body: unknown, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
  subscribe<T = unknown>(body: unknown, onPush: (value: unknown) => void, options?: { signal?: AbortSignal }): Promise<T>;
  close(): Promise<void>;
}

/** The push side of a subscription; transport-tcp's `Subscription` is one. */
export interface PushSink {
  push(value: unknown): boolean;
  readonly signal: AbortSignal;
}

export function validateWireRequest(body: unknown): asserts body is LockWireRequest {
  if (typeof body !== 'object' || body === null) throw new InvalidArgumentError(`lock request must be an object, got ${preview(body)}`);
  const b = body as Record<string, unknown>;
  switch (b.t) {
    case 'lock.write':
      validateLockCommand(b.cmd);
      if ((b.cmd as LockCommand).op === 'time') throw new InvalidArgumentError('time entries come from the leader, never from a client');
      return;
    case 'lock.read':
      validateLockQuery(b.q);
      if (b.consistency !== undefined && b.consistency !== 'linearizable' && b.consistency !== 'serializable') throw new InvalidArgumentError(`unknown consistency ${preview(b.consistency)}`);
      return;
    case 'lock.events':
      if (typeof b.session !== 'number' || !Number.isSafeInteger(b.session) || b.session <= 0) throw new InvalidArgumentError(`lock.events needs a session id, got ${preview(b.session)}`);
      return;
    default:
      throw new InvalidArgumentError(`unknown lock request type ${preview(b.t)}`);
  }
}
