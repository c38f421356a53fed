import {
  AbortedError,
  CompactedError,
  ConfigError,
  type ConsensusError,
  CorruptLogError,
  DROP_REASONS,
  ErrorCode,
  InvalidArgumentError,
  InvariantError,
  LeadershipLostError,
  MalformedMessageError,
  NotLeaderError,
  ProposalDroppedError,
  SessionExpiredError,
  StoppedError,
  StorageError,
  TimeoutError,
  TransportError,
  UnknownNodeError,
  isConsensusError,
  type DropReason,
} from './errors';

/**
 * A `ConsensusError` as it travels between processes (any transport's client channel): plain data that
 * msgpack or JSON carry as is. `code` and `message` are always there; the other fields are the typed fields
 * of the error class that `code` names (a `NotLeaderError`'s `leaderHint`, a `TimeoutError`'s `timeoutMs`...),
 * so the receiving side rebuilds the same class with the same fields.
 */
export interface WireError {
  code: string;
  message: string;
  leaderHint?: string;
  /** ProposalDroppedError. */
  reason?: string;
  /** TimeoutError. */
  timeoutMs?: number;
  /** CompactedError. */
  index?: number;
  firstIndex?: number;
  /** CorruptLogError. */
  file?: string;
  offset?: number;
  lastGoodIndex?: number;
  /** UnknownNodeError. */
  node?: string;
  /** SessionExpiredError. */
  session?: string;
}

/** Longest message (and string field) accepted from the wire: a remote side cannot make us keep megabytes. */
export const MAX_WIRE_TEXT = 2000;

/**
 * The wire form of `e`. A consensus-kit error keeps its code, message and typed fields; anything else is a
 * bug on the sending side and travels as `INVARIANT` with a fixed message (its text may hold internals that
 * are not the remote side's business: log it where it was thrown).
 */
export function errorToWire(e: unknown): WireError {
  if (!isConsensusError(e)) return { code: ErrorCode.INVARIANT, message: 'the request handler failed' };
  const w: WireError = { code: e.code, message: e.message };
  const f = e as unknown as Record<string, unknown>;
  for (const key of FIELDS[e.code] ?? []) {
    const v = f[key];
    if (v !== undefined) (w as unknown as Record<string, unknown>)[key] = v;
  }
  return w;
}

export interface ErrorFromWireOptions {
  /** Put before the remote message (e.g. `'remote: '`), so a log line tells where the error was raised. */
  prefix?: string;
}

/**
 * Rebuilds the error `errorToWire` sent: the local class of its code (so `instanceof` and the `is()` guards
 * both hold), its typed fields and its message. Input comes from another process and is checked, never
 * trusted: an unknown code, a field of the wrong type or an over-long string never throws here; an unknown
 * code or a malformed record becomes a `TransportError`, a bad field is left out.
 */
export function errorFromWire(raw: unknown, options: ErrorFromWireOptions = {}): ConsensusError {
  const prefix = options.prefix ?? '';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return new TransportError(`${prefix}malformed error from the remote side`);
  }
  // Each field is read exactly once, into a plain record, inside a try: a record that is not plain data (a
  // getter that throws, or answers differently on each read, a Proxy) is malformed, never a crash here.
  let w: Record<string, unknown>;
  try {
    w = readFields(raw as Record<string, unknown>);
  } catch {
    return new TransportError(`${prefix}malformed error from the remote side`);
  }
  const text = typeof w.message === 'string' ? w.message.slice(0, MAX_WIRE_TEXT) : 'remote error';
  const code = typeof w.code === 'string' && Object.hasOwn(DECODERS, w.code) ? (w.code as ErrorCode) : undefined;
  if (code === undefined) {
    const shown = typeof w.code === 'string' ? JSON.stringify(w.code.slice(0, 64)) : 'none';
    return new TransportError(`${prefix}${text} (unknown error code ${shown})`);
  }
  const e = DECODERS[code](w);
  // The class builds its own message from its fields; the sender's text is what the user should see.
  e.message = `${prefix}${text}`;
  return e;
}

function readFields(raw: Record<string, unknown>): Record<string, unknown> {
  const w: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of WIRE_KEYS) {
    if (Object.hasOwn(raw, key)) w[key] = raw[key];
  }
  return w;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= MAX_WIRE_TEXT ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const dropReason = (v: unknown): DropReason => ((DROP_REASONS as readonly unknown[]).includes(v) ? (v as DropReason) : 'queue-full');

/** The typed fields each code's class carries, beyond `code` and `message`. */
const FIELDS: Partial<Record<ErrorCode, readonly (keyof WireError)[]>> = {
  [ErrorCode.NOT_LEADER]: ['leaderHint'],
  [ErrorCode.PROPOSAL_DROPPED]: ['reason'],
  [ErrorCode.TIMEOUT]: ['timeoutMs'],
  [ErrorCode.COMPACTED]: ['index', 'firstIndex'],
  [ErrorCode.CORRUPT_LOG]: ['file', 'offset', 'lastGoodIndex'],
  [ErrorCode.UNKNOWN_NODE]: ['node'],
  [ErrorCode.SESSION_EXPIRED]: ['session'],
};

/** Every field a wire error may carry, read once: `code`, `message` and the typed fields of every class. */
const WIRE_KEYS: readonly string[] = ['code', 'message', ...new Set(Object.values(FIELDS).flat())];

/** One constructor call per code: the table that turns a wire record back into its class. */
const DECODERS: Record<ErrorCode, (w: Record<string, unknown>) => ConsensusError> = {
  [ErrorCode.NOT_LEADER]: (w) => new NotLeaderError(str(w.leaderHint)),
  // An unknown drop reason (a newer peer) still says "dropped": the nearest local reason is a full queue.
  [ErrorCode.PROPOSAL_DROPPED]: (w) => new ProposalDroppedError(dropReason(w.reason)),
  [ErrorCode.LEADERSHIP_LOST]: () => new LeadershipLostError(),
  [ErrorCode.TIMEOUT]: (w) => new TimeoutError(int(w.timeoutMs) ?? 0),
  [ErrorCode.ABORTED]: () => new AbortedError(),
  [ErrorCode.STOPPED]: () => new StoppedError(),
  [ErrorCode.CORRUPT_LOG]: (w) => new CorruptLogError({ file: str(w.file) ?? '(unknown file)', offset: int(w.offset) ?? 0, lastGoodIndex: int(w.lastGoodIndex) ?? 0 }, 'remote'),
  [ErrorCode.COMPACTED]: (w) => new CompactedError(int(w.index) ?? 0, int(w.firstIndex) ?? 0),
  [ErrorCode.STORAGE]: () => new StorageError(''),
  [ErrorCode.CONFIG]: () => new ConfigError(''),
  [ErrorCode.INVALID_ARGUMENT]: () => new InvalidArgumentError(''),
  [ErrorCode.MALFORMED_MESSAGE]: () => new MalformedMessageError(''),
  [ErrorCode.UNKNOWN_NODE]: (w) => new UnknownNodeError(str(w.node) ?? ''),
  [ErrorCode.TRANSPORT]: () => new TransportError(''),
  [ErrorCode.SESSION_EXPIRED]: (w) => new SessionExpiredError(str(w.session) ?? ''),
  [ErrorCode.INVARIANT]: () => new InvariantError(''),
};
