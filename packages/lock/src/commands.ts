import { InvalidArgumentError, preview } from '@consensus-kit/core';

/** How a lock is taken: a mutex, either side of a read/write lock, or permits of a counting semaphore. */
export type LockMode = 'mutex' | 'read' | 'write' | 'semaphore';
/** What a lock is, fixed when it is first taken: `rwlock` serves both `read` and `write`. */
export type LockKind = 'mutex' | 'rwlock' | 'semaphore';

/** Longest lock name, in UTF-16 units. */
export const MAX_LOCK_NAME_LENGTH = 512;
/** The largest semaphore. */
export const MAX_PERMITS = 1_000_000;
/** The longest session TTL (about 31 years; keeps `now + ttl` far from 2^53). */
export const MAX_SESSION_TTL_MS = 1e12;

export type LockCommand =
  /** Opens a session of `ttl` ms (raised to the minimum); answers its id, the log index of this entry. */
  | { op: 'open'; ttl: number; owner?: string }
  /** Renews the session to `now + ttl` (Chubby's KeepAlive); `LockSessionExpiredError` once it is gone. */
  | { op: 'keepalive'; session: number }
  /** Ends the session cleanly: releases everything it holds, drops its waiters, no lock-delay. */
  | { op: 'close'; session: number }
  /**
   * Asks for `name` in `mode` under request id `req` (a positive integer, unique within the session). Granted
   * at once when free (or reentrant), else queued in log order unless `wait` is false (tryAcquire: `busy`).
   * A retry with the same `req` answers the request's state now and never queues twice.
   */
  | { op: 'acquire'; session: number; name: string; mode: LockMode; req: number; wait?: boolean; permits?: number; count?: number }
  /** Ends request `req`: a hold is released (its reentrant count drops), a waiter leaves the queue. Idempotent. */
  | { op: 'release'; session: number; req: number }
  /** A time entry (DESIGN r2): the leader's term and clock. Never sent by a client. */
  | { op: 'time'; term: number; ms: number };

export type LockQuery =
  | { op: 'lock'; name: string }
  | { op: 'locks'; prefix?: string }
  | { op: 'session'; session: number }
  | { op: 'sessions' }
  | { op: 'request'; session: number; req: number }
  | { op: 'now' };

/** What happened to a request outside its own command (pushed to the session's client, DESIGN r2 push). */
export type LockEvent =
  /** A queued request was granted at this entry; `token` is the fencing token. */
  | { type: 'granted'; session: number; req: number; name: string; mode: LockMode; token: number }
  /** A hold ended by session expiry (never by a clean release): the holder must stop using `token`. */
  | { type: 'lost'; session: number; req: number; name: string; token: number; reason: 'expired' }
  /** A waiter failed: its session expired while it waited. */
  | { type: 'failed'; session: number; req: number; name: string; reason: 'expired' }
  /** A hold ended by a clean release or close (its lock is handed on at once, no lock-delay). */
  | { type: 'released'; session: number; name: string; token: number }
  /** The session expired (every hold and wait of it is in its own event too). */
  | { type: 'expired'; session: number };

/** The state of one request. */
export type RequestState =
  | { status: 'granted'; token: number; name: string; mode: LockMode }
  | { status: 'waiting'; name: string; mode: LockMode; position: number }
  /** tryAcquire found the lock taken: nothing was queued. */
  | { status: 'busy'; name: string }
  /** The request is over (released, cancelled or busy before): a retry changes nothing. */
  | { status: 'done' };

export type LockResult =
  | { op: 'open'; session: number; ttl: number; events: LockEvent[] }
  | { op: 'keepalive'; session: number; ttl: number; events: LockEvent[] }
  | { op: 'close'; session: number; released: number; events: LockEvent[] }
  | ({ op: 'acquire'; req: number; events: LockEvent[] } & RequestState)
  | { op: 'release'; req: number; released: 'held' | 'waiting' | 'none'; events: LockEvent[] }
  | { op: 'time'; now: number; events: LockEvent[] };

export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_LOCK_NAME_LENGTH) {
    throw new InvalidArgumentError(`lock name must be a string of 1-${MAX_LOCK_NAME_LENGTH} characters, got ${preview(name)}`);
  }
}

function positiveInt(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > max) throw new InvalidArgumentError(`${what} must be a positive integer up to ${max}, got ${preview(v)}`);
}

const MODES: ReadonlySet<string> = new Set(['mutex', 'read', 'write', 'semaphore']);

/** Throws `InvalidArgumentError` unless `c` is a well-formed `LockCommand` (the same on every replica). */
export function validateLockCommand(c: unknown): asserts c is LockCommand {
  if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('lock command must be an object with an op');
  const x = c as Record<string, unknown>;
  switch (x.op) {
    case 'open':
      positiveInt(x.ttl, 'session ttl', MAX_SESSION_TTL_MS);
      if (x.owner !== undefined && (typeof x.owner !== 'string' || x.owner.length > 256)) throw new InvalidArgumentError('session owner must be a string of at most 256 characters');
      return;
    case 'keepalive':
    case 'close':
      positiveInt(x.session, 'session');
      return;
    case 'acquire':
      positiveInt(x.session, 'session');
      positiveInt(x.req, 'request id');
      checkName(x.name);
      if (typeof x.mode !== 'string' || !MODES.has(x.mode)) throw new InvalidArgumentError(`lock mode must be mutex, read, write or semaphore, got ${preview(x.mode)}`);
      if (x.wait !== undefined && typeof x.wait !== 'boolean') throw new InvalidArgumentError('wait must be a boolean');
      if (x.mode === 'semaphore') {
        positiveInt(x.permits, 'semaphore permits', MAX_PERMITS);
        if (x.count !== undefined) positiveInt(x.count, 'permit count', x.permits);
      } else if (x.permits !== undefined || x.count !== undefined) throw new InvalidArgumentError(`permits and count are for semaphores, not ${x.mode}`);
      return;
    case 'release':
      positiveInt(x.session, 'session');
      positiveInt(x.req, 'request id');
      return;
    case 'time':
      if (typeof x.term !== 'number' || !Number.isSafeInteger(x.term) || x.term < 0 || typeof x.ms !== 'number' || !Number.isFinite(x.ms)) {
        throw new InvalidArgumentError('a time entry needs a non-negative integer term and a finite clock reading');
      }
      return;
    default:
      throw new InvalidArgumentError(`unknown lock op ${preview(x.op)}`);
  }
}

export function validateLockQuery(q: unknown): asserts q is LockQuery {
  if (typeof q !== 'object' || q === null) throw new InvalidArgumentError('lock query must be an object with an op');
  const x = q as Record<string, unknown>;
  switch (x.op) {
    case 'lock':
      return checkName(x.name);
    case 'locks':
      if (x.prefix !== undefined && typeof x.prefix !== 'string') throw new InvalidArgumentError('prefix must be a string');
      return;
    case 'session':
      return positiveInt(x.session, 'session');
    case 'request':
      positiveInt(x.session, 'session');
      return positiveInt(x.req, 'request id');
    case 'sessions':
    case 'now':
      return;
    default:
      throw new InvalidArgumentError(`unknown lock query ${preview(x.op)}`);
  }
}
