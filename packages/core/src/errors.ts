import type { NodeId } from './types';

/** Every error code consensus-kit raises. Codes are stable; messages are for people. */
export const ErrorCode = {
  /** A proposal or read reached a node that is not the leader. */
  NOT_LEADER: 'NOT_LEADER',
  /** The protocol refused a proposal (transfer in progress, too many uncommitted bytes, ...). */
  PROPOSAL_DROPPED: 'PROPOSAL_DROPPED',
  /** Leadership was lost while the operation was pending: it may or may not have been applied. */
  LEADERSHIP_LOST: 'LEADERSHIP_LOST',
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  /** The node was stopped. */
  STOPPED: 'STOPPED',
  /** A storage record failed its checksum or framing before the tail. */
  CORRUPT_LOG: 'CORRUPT_LOG',
  /** The requested log position was compacted into a snapshot. */
  COMPACTED: 'COMPACTED',
  /** Any other storage failure or misuse. */
  STORAGE: 'STORAGE',
  /** Invalid options or configuration. */
  CONFIG: 'CONFIG',
  /** A public function was called with a bad argument. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** A message could not be decoded or failed validation. */
  MALFORMED_MESSAGE: 'MALFORMED_MESSAGE',
  /** A peer, client or message from outside the known cluster. */
  UNKNOWN_NODE: 'UNKNOWN_NODE',
  /** Transport-level failure (connection refused, handshake rejected, ...). */
  TRANSPORT: 'TRANSPORT',
  /** A client session expired or a request reused a sequence number it had already acknowledged. */
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  /** A broken internal invariant: a bug. The simulator treats it as a failure. */
  INVARIANT: 'INVARIANT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Brand that survives two copies of core in one node_modules, where `instanceof` does not. */
const BRAND = Symbol.for('@consensus-kit/core/ConsensusError');

export interface ConsensusErrorOptions {
  cause?: unknown;
}

/** Base class of every error consensus-kit throws on purpose. */
export class ConsensusError extends Error {
  readonly code: ErrorCode;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options?: ConsensusErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

/** True for any consensus-kit error, optionally of one `code`; works across package copies. */
export function isConsensusError(e: unknown, code?: ErrorCode): e is ConsensusError {
  if (typeof e !== 'object' || e === null) return false;
  if ((e as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (e as ConsensusError).code === code;
}

export class NotLeaderError extends ConsensusError {
  /** The node believed to be leader, when known. */
  readonly leaderHint: NodeId | undefined;
  constructor(leaderHint?: NodeId, message?: string) {
    super(
      ErrorCode.NOT_LEADER,
      message ?? (leaderHint === undefined ? 'not the leader; no leader is known' : `not the leader; try ${leaderHint}`),
    );
    this.leaderHint = leaderHint;
  }
  static is(e: unknown): e is NotLeaderError {
    return isConsensusError(e, ErrorCode.NOT_LEADER);
  }
}

/** Why a proposal was dropped; one list, so a reason read from the wire can be checked against it. */
export const DROP_REASONS = [
  'transfer-in-progress',
  'too-many-uncommitted',
  'config-change-in-progress',
  'not-a-voter',
  'removed',
  'overwritten',
  'queue-full',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export class ProposalDroppedError extends ConsensusError {
  readonly reason: DropReason;
  constructor(reason: DropReason, message?: string) {
    super(ErrorCode.PROPOSAL_DROPPED, message ?? `proposal dropped: ${reason}`);
    this.reason = reason;
  }
  static is(e: unknown): e is ProposalDroppedError {
    return isConsensusError(e, ErrorCode.PROPOSAL_DROPPED);
  }
}

export class LeadershipLostError extends ConsensusError {
  constructor(message = 'leadership lost while the operation was pending; its outcome is unknown') {
    super(ErrorCode.LEADERSHIP_LOST, message);
  }
  static is(e: unknown): e is LeadershipLostError {
    return isConsensusError(e, ErrorCode.LEADERSHIP_LOST);
  }
}

export class TimeoutError extends ConsensusError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number, what = 'operation') {
    super(ErrorCode.TIMEOUT, `${what} timed out after ${timeoutMs} ms; its outcome is unknown`);
    this.timeoutMs = timeoutMs;
  }
  static is(e: unknown): e is TimeoutError {
    return isConsensusError(e, ErrorCode.TIMEOUT);
  }
}

export class AbortedError extends ConsensusError {
  constructor(reason?: unknown, message = 'operation aborted by its signal; its outcome is unknown') {
    super(ErrorCode.ABORTED, message, { cause: reason });
  }
  static is(e: unknown): e is AbortedError {
    return isConsensusError(e, ErrorCode.ABORTED);
  }
}

export class StoppedError extends ConsensusError {
  constructor(message = 'the node is stopped') {
    super(ErrorCode.STOPPED, message);
  }
  static is(e: unknown): e is StoppedError {
    return isConsensusError(e, ErrorCode.STOPPED);
  }
}

export interface CorruptLogDetails {
  file: string;
  offset: number;
  /** The last index that was read intact before the corruption, 0 when none. */
  lastGoodIndex: number;
}

export class CorruptLogError extends ConsensusError {
  readonly file: string;
  readonly offset: number;
  readonly lastGoodIndex: number;
  constructor(details: CorruptLogDetails, reason: string, options?: ConsensusErrorOptions) {
    super(
      ErrorCode.CORRUPT_LOG,
      `corrupt record in ${details.file} at offset ${details.offset} (last good index ${details.lastGoodIndex}): ${reason}`,
      options,
    );
    this.file = details.file;
    this.offset = details.offset;
    this.lastGoodIndex = details.lastGoodIndex;
  }
  static is(e: unknown): e is CorruptLogError {
    return isConsensusError(e, ErrorCode.CORRUPT_LOG);
  }
}

export class CompactedError extends ConsensusError {
  readonly index: number;
  readonly firstIndex: number;
  constructor(index: number, firstIndex: number) {
    super(ErrorCode.COMPACTED, `log index ${index} is compacted (first available index is ${firstIndex})`);
    this.index = index;
    this.firstIndex = firstIndex;
  }
  static is(e: unknown): e is CompactedError {
    return isConsensusError(e, ErrorCode.COMPACTED);
  }
}

export class StorageError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.STORAGE, message, options);
  }
  static is(e: unknown): e is StorageError {
    return isConsensusError(e, ErrorCode.STORAGE);
  }
}

export class ConfigError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.CONFIG, message, options);
  }
  static is(e: unknown): e is ConfigError {
    return isConsensusError(e, ErrorCode.CONFIG);
  }
}

export class InvalidArgumentError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
  }
  static is(e: unknown): e is InvalidArgumentError {
    return isConsensusError(e, ErrorCode.INVALID_ARGUMENT);
  }
}

export class MalformedMessageError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.MALFORMED_MESSAGE, message, options);
  }
  static is(e: unknown): e is MalformedMessageError {
    return isConsensusError(e, ErrorCode.MALFORMED_MESSAGE);
  }
}

export class UnknownNodeError extends ConsensusError {
  readonly node: string;
  constructor(node: string, message?: string) {
    super(ErrorCode.UNKNOWN_NODE, message ?? `unknown node ${JSON.stringify(node)}`);
    this.node = node;
  }
  static is(e: unknown): e is UnknownNodeError {
    return isConsensusError(e, ErrorCode.UNKNOWN_NODE);
  }
}

export class TransportError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.TRANSPORT, message, options);
  }
  static is(e: unknown): e is TransportError {
    return isConsensusError(e, ErrorCode.TRANSPORT);
  }
}

/**
 * A client session's request can no longer be answered exactly once: the session expired from the state
 * machine's table, or the request's sequence number is at or below what the client already acknowledged.
 */
export class SessionExpiredError extends ConsensusError {
  readonly session: string;
  constructor(session: string, message?: string) {
    super(ErrorCode.SESSION_EXPIRED, message ?? `client session ${session} expired; its outcome cannot be reported exactly once`);
    this.session = session;
  }
  static is(e: unknown): e is SessionExpiredError {
    return isConsensusError(e, ErrorCode.SESSION_EXPIRED);
  }
}

/** A broken internal invariant. Never caused by remote input; always a bug. */
export class InvariantError extends ConsensusError {
  constructor(message: string, options?: ConsensusErrorOptions) {
    super(ErrorCode.INVARIANT, message, options);
  }
  static is(e: unknown): e is InvariantError {
    return isConsensusError(e, ErrorCode.INVARIANT);
  }
}
