import { AbortedError, ErrorCode, InvalidArgumentError, SessionExpiredError, isConsensusError } from '@consensus-kit/core';

/**
 * The lock session named by a command is gone: it expired (no acknowledged keepalive for a TTL of replicated
 * time), was closed, or never existed. Every hold and wait of it is over; a retry can never grant anything to
 * it. Carries core's `SESSION_EXPIRED` code, so it crosses the wire as a `SessionExpiredError`.
 */
export class LockSessionExpiredError extends SessionExpiredError {
  readonly lockSession: number;
  constructor(session: number, message?: string) {
    super(String(session), message ?? `lock session ${session} not found (expired, closed or never opened)`);
    this.lockSession = session;
  }
  static override is(e: unknown): e is LockSessionExpiredError {
    return e instanceof LockSessionExpiredError || isConsensusError(e, ErrorCode.SESSION_EXPIRED);
  }
}

/**
 * A lock was asked for in a way its kind does not allow: a mutex acquired as a semaphore, a semaphore with a
 * different permit count, a read lock upgraded to a write lock (Curator refuses it too: two readers upgrading
 * would deadlock). An `InvalidArgumentError`: never retried.
 */
export class LockKindError extends InvalidArgumentError {
  readonly lock: string;
  constructor(lock: string, message: string) {
    super(`lock ${JSON.stringify(lock)}: ${message}`);
    this.lock = lock;
  }
}

/**
 * The holder lost its lock: its session expired in the cluster (pushed), or the client went a TTL without an
 * acknowledged keepalive and stopped believing it holds anything (the cluster may have given the lock away).
 * The reason of a `LockHandle`'s signal; thrown by `ifOwner` once the handle is lost.
 */
export class LockLostError extends AbortedError {
  readonly lock: string;
  readonly token: number;
  constructor(lock: string, token: number, why: string) {
    super(undefined, `lock ${JSON.stringify(lock)} (token ${token}) lost: ${why}`);
    this.lock = lock;
    this.token = token;
  }
}

/** A fenced resource refused a write: its token is lower than one the resource has already seen (a stale holder). */
export class StaleTokenError extends InvalidArgumentError {
  readonly token: number;
  readonly highest: number;
  constructor(token: number, highest: number, resource = 'resource') {
    super(`${resource} refused fencing token ${token}: it has seen token ${highest} (a newer holder)`);
    this.token = token;
    this.highest = highest;
  }
}
