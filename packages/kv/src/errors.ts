import { CompactedError, ErrorCode, InvalidArgumentError, SessionExpiredError, isConsensusError, type ConsensusError } from '@consensus-kit/core';

/**
 * etcd's ErrCompacted: a read (or a compaction) named a revision older than the store's compaction point,
 * whose history is gone. Carries core's `COMPACTED` code, so it travels as a `CompactedError` (`index` is the
 * revision asked for, `firstIndex` the compaction revision) and the kv client turns it back into this class.
 * Never retried: asking again gives the same answer.
 */
export class RevisionCompactedError extends CompactedError {
  /** The revision asked for. */
  readonly revision: number;
  /** The store's compaction revision: the oldest revision still readable. */
  readonly compactRevision: number;
  constructor(revision: number, compactRevision: number, message?: string) {
    super(revision, compactRevision);
    this.revision = revision;
    this.compactRevision = compactRevision;
    this.message = message ?? `mvcc: required revision ${revision} has been compacted (the oldest readable revision is ${compactRevision})`;
  }
  static override is(e: unknown): e is RevisionCompactedError {
    return e instanceof RevisionCompactedError || (isConsensusError(e, ErrorCode.COMPACTED) && typeof (e as { revision?: unknown }).revision === 'number');
  }
}

/**
 * etcd's ErrFutureRev: a read (or a compaction) named a revision the store has not reached. An
 * `InvalidArgumentError` (code `INVALID_ARGUMENT`), so it is never retried; the kv client rebuilds this class
 * from the message, as etcd's client maps its fixed error strings. A serializable read on a lagging follower
 * can get it for a revision the leader already has.
 */
export class FutureRevisionError extends InvalidArgumentError {
  readonly revision: number;
  /** The store's revision when the request was refused. */
  readonly currentRevision: number;
  constructor(revision: number, currentRevision: number, message?: string) {
    super(message ?? `mvcc: required revision ${revision} is a future revision (current revision ${currentRevision})`);
    this.revision = revision;
    this.currentRevision = currentRevision;
  }
  static override is(e: unknown): e is FutureRevisionError {
    return e instanceof FutureRevisionError || (isConsensusError(e, ErrorCode.INVALID_ARGUMENT) && typeof (e as { currentRevision?: unknown }).currentRevision === 'number');
  }
}

/** Why a transaction was refused before anything in it ran. */
export type InvalidTxnReason = 'too-many-ops' | 'too-many-compares' | 'duplicate-key' | 'bad-compare' | 'bad-op';

/** A malformed transaction (an `InvalidArgumentError`): nothing in it was applied. */
export class InvalidTxnError extends InvalidArgumentError {
  readonly reason: InvalidTxnReason;
  constructor(reason: InvalidTxnReason, message: string) {
    super(`txn: ${message}`);
    this.reason = reason;
  }
  static override is(e: unknown): e is InvalidTxnError {
    return e instanceof InvalidTxnError || (isConsensusError(e, ErrorCode.INVALID_ARGUMENT) && typeof (e as { reason?: unknown }).reason === 'string');
  }
}

const FUTURE = /mvcc: required revision (\d+) is a future revision \(current revision (\d+)\)/;
const LEASE_NOT_FOUND = /(?:^|: )lease (\d+) not found$/;

/**
 * The kv class of an error that crossed the wire as one of core's classes: a `COMPACTED` error becomes a
 * `RevisionCompactedError` (its fields travel), an `INVALID_ARGUMENT` whose text is the future-revision
 * message becomes a `FutureRevisionError`, one whose text is `lease <id> not found` a `LeaseNotFoundError`. Other
 * errors are returned as they are. The message is kept.
 */
export function kvErrorFromRemote(e: unknown): unknown {
  if (!isConsensusError(e) || e instanceof RevisionCompactedError || e instanceof FutureRevisionError || e instanceof LeaseNotFoundError) return e;
  if (e.code === ErrorCode.COMPACTED) {
    const c = e as CompactedError;
    return keepStack(new RevisionCompactedError(c.index, c.firstIndex, e.message), e);
  }
  if (e.code === ErrorCode.INVALID_ARGUMENT) {
    const m = FUTURE.exec(e.message);
    if (m !== null) return keepStack(new FutureRevisionError(Number(m[1]), Number(m[2]), e.message), e);
    const l = LEASE_NOT_FOUND.exec(e.message);
    if (l !== null) return keepStack(new LeaseNotFoundError(Number(l[1]), e.message), e);
  }
  return e;
}

function keepStack<T extends Error>(to: T, from: ConsensusError): T {
  if (from.stack !== undefined) to.stack = from.stack;
  return to;
}

/** An error as a session keeps it for a retried request: code, message and the typed fields of kv's errors. */
export interface StoredError {
  code: string;
  message: string;
  revision?: number;
  compactRevision?: number;
  currentRevision?: number;
  reason?: string;
  leaseId?: number;
}

export function storeError(e: unknown): StoredError {
  const err = e as Record<string, unknown> | null;
  const out: StoredError = {
    code: typeof err?.code === 'string' ? err.code : 'ERROR',
    message: String(err?.message ?? e),
  };
  for (const k of ['revision', 'compactRevision', 'currentRevision', 'leaseId'] as const) if (typeof err?.[k] === 'number') out[k] = err[k] as number;
  if (typeof err?.reason === 'string') out.reason = err.reason;
  return out;
}

/** Rebuilds the error a session stored, with its class: the same error is thrown on the first try and on every retry. */
export function errorFromStored(s: StoredError, sessionId: string): ConsensusError {
  if (s.code === ErrorCode.COMPACTED && s.revision !== undefined && s.compactRevision !== undefined) return new RevisionCompactedError(s.revision, s.compactRevision, s.message);
  if (s.code === ErrorCode.INVALID_ARGUMENT && s.revision !== undefined && s.currentRevision !== undefined) return new FutureRevisionError(s.revision, s.currentRevision, s.message);
  if (s.code === ErrorCode.INVALID_ARGUMENT && s.leaseId !== undefined) return new LeaseNotFoundError(s.leaseId, s.message);
  if (s.code === ErrorCode.INVALID_ARGUMENT && s.reason !== undefined) {
    const e = new InvalidTxnError(s.reason as InvalidTxnReason, '');
    e.message = s.message;
    return e;
  }
  if (s.code === ErrorCode.SESSION_EXPIRED) return new SessionExpiredError(sessionId, s.message);
  return new InvalidArgumentError(s.message);
}

/**
 * etcd's ErrLeaseNotFound: a put, revoke, time-to-live or keepalive named a lease that does not exist (never
 * granted, revoked, or expired). An `InvalidArgumentError` (never retried: asking again gives the same answer),
 * thrown the same way on every replica; the kv client rebuilds this class from the message.
 */
export class LeaseNotFoundError extends InvalidArgumentError {
  readonly leaseId: number;
  constructor(leaseId: number, message?: string) {
    super(message ?? `lease ${leaseId} not found`);
    this.leaseId = leaseId;
  }
  static override is(e: unknown): e is LeaseNotFoundError {
    return e instanceof LeaseNotFoundError || (isConsensusError(e, ErrorCode.INVALID_ARGUMENT) && typeof (e as { leaseId?: unknown }).leaseId === 'number');
  }
}
