import { InvalidArgumentError, SessionExpiredError } from './errors';

/**
 * A client session stamp (Raft thesis 6.3): a command carrying one is applied at most once; a retry of the
 * same `seq` returns the stored answer. `ack` is the highest seq below which the client has every answer,
 * so the state machine can forget those.
 */
export interface SessionStamp {
  id: string;
  seq: number;
  ack?: number;
}

/** Throws `InvalidArgumentError` unless `s` is a well-formed `SessionStamp`. */
export function validateSession(s: unknown): asserts s is SessionStamp {
  if (typeof s !== 'object' || s === null) throw new InvalidArgumentError('session must be { id, seq, ack? }');
  const x = s as Record<string, unknown>;
  if (typeof x.id !== 'string' || x.id.length === 0 || x.id.length > 128) throw new InvalidArgumentError('session.id must be a string of 1-128 characters');
  if (typeof x.seq !== 'number' || !Number.isSafeInteger(x.seq) || x.seq <= 0) throw new InvalidArgumentError('session.seq must be a positive integer');
  if (x.ack !== undefined && (typeof x.ack !== 'number' || !Number.isSafeInteger(x.ack) || x.ack < 0 || x.ack >= x.seq)) {
    throw new InvalidArgumentError('session.ack must be a non-negative integer below seq');
  }
}

/** An error as the table keeps it by default: its code and message (a state machine with typed fields passes its own `storeError`). */
export interface StoredSessionError {
  code: string;
  message: string;
}

/** The default `storeError`: code (or 'ERROR') and message. */
export function storeSessionError(e: unknown): StoredSessionError {
  const err = e as Record<string, unknown> | null;
  return { code: typeof err?.code === 'string' ? err.code : 'ERROR', message: String(err?.message ?? e) };
}

/** An answer kept for a retried request: the result, or the error it produced (as `storeError` kept it). */
export type StoredAnswer<T, E = StoredSessionError> = { ok: T } | { error: E };

interface Session<T, E> {
  /** Log index of the session's last request: expiry is counted in log entries, so it is deterministic. */
  lastIndex: number;
  /** Every seq at or below this is acknowledged by the client: its answer was dropped. */
  acked: number;
  answers: Map<number, StoredAnswer<T, E>>;
  /**
   * Whether `answers` holds its seqs in ascending insertion order (a client's writes are usually applied in
   * the order it sent them), so acknowledged answers are a prefix and dropping them stops at the first one
   * kept. Derived, never persisted: the table's contents are the same either way.
   */
  ascending: boolean;
  /** The largest seq stored since `answers` was last empty. */
  top: number;
}

export interface SessionTableOptions {
  /** A session with no request for this many log entries is forgotten. Default 100,000. */
  expireAfterEntries?: number;
  /** Answers kept per session before the oldest unacknowledged ones are dropped. Default 4,096. */
  maxAnswersPerSession?: number;
}

export type SessionSnapshot<T, E = StoredSessionError> = [id: string, lastIndex: number, acked: number, answers: [number, StoredAnswer<T, E>][]][];

/**
 * Exactly-once client sessions (Raft thesis 6.3; DESIGN r2 "Sessions": in core, shared by every state machine
 * that takes client commands). Expiry depends only on log indexes, never on clocks, so every replica forgets
 * the same sessions at the same entry; the table is part of the state machine's snapshot.
 *
 * Generic over the answer `T` and over the stored form `E` of an error: `storeError` turns what `execute`
 * threw into plain data that the snapshot can carry (the state machine rebuilds its typed error from it).
 */
export class SessionTable<T, E = StoredSessionError> {
  private readonly sessions = new Map<string, Session<T, E>>();
  private readonly expireAfter: number;
  private readonly maxAnswers: number;
  private readonly storeError: (e: unknown) => E;
  private lastSweep = 0;

  constructor(options: SessionTableOptions & { storeError?: (e: unknown) => E } = {}) {
    this.expireAfter = options.expireAfterEntries ?? 100_000;
    this.maxAnswers = options.maxAnswersPerSession ?? 4096;
    this.storeError = options.storeError ?? (storeSessionError as unknown as (e: unknown) => E);
    if (!Number.isSafeInteger(this.expireAfter) || this.expireAfter <= 0) throw new InvalidArgumentError('expireAfterEntries must be a positive integer');
    if (!Number.isSafeInteger(this.maxAnswers) || this.maxAnswers <= 0) throw new InvalidArgumentError('maxAnswersPerSession must be a positive integer');
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Runs `execute` at most once per (session, seq) and returns its answer; a duplicate gets the stored one.
   * Throws `SessionExpiredError` for a seq the client already acknowledged (its answer is gone).
   */
  run(stamp: SessionStamp, index: number, execute: () => T): StoredAnswer<T, E> {
    this.sweep(index);
    let s = this.sessions.get(stamp.id);
    if (s === undefined) {
      s = { lastIndex: index, acked: 0, answers: new Map(), ascending: true, top: 0 };
      this.sessions.set(stamp.id, s);
    }
    s.lastIndex = index;
    if (stamp.seq <= s.acked) throw new SessionExpiredError(stamp.id, `session ${stamp.id}: request ${stamp.seq} was already acknowledged`);
    const stored = s.answers.get(stamp.seq);
    if (stored !== undefined) return stored;
    if (stamp.ack !== undefined && stamp.ack > s.acked) {
      s.acked = stamp.ack;
      dropAcknowledged(s);
    }
    let answer: StoredAnswer<T, E>;
    try {
      answer = { ok: execute() };
    } catch (e) {
      answer = { error: this.storeError(e) };
    }
    if (s.answers.size === 0) {
      s.ascending = true;
      s.top = stamp.seq;
    } else if (stamp.seq > s.top) s.top = stamp.seq;
    else s.ascending = false;
    s.answers.set(stamp.seq, answer);
    if (s.answers.size > this.maxAnswers) {
      // A client that never acknowledges cannot make us grow without bound: drop its oldest answer.
      const oldest = Math.min(...s.answers.keys());
      s.answers.delete(oldest);
      s.acked = Math.max(s.acked, oldest);
    }
    return answer;
  }

  private sweep(index: number): void {
    if (index - this.lastSweep < Math.max(1, Math.floor(this.expireAfter / 16))) return;
    this.lastSweep = index;
    for (const [id, s] of this.sessions) if (index - s.lastIndex > this.expireAfter) this.sessions.delete(id);
  }

  toSnapshot(): SessionSnapshot<T, E> {
    return [...this.sessions].map(([id, s]) => [id, s.lastIndex, s.acked, [...s.answers]]);
  }

  restore(data: SessionSnapshot<T, E>, lastSweep: number): void {
    this.sessions.clear();
    for (const [id, lastIndex, acked, answers] of data) {
      let ascending = true;
      let top = 0;
      for (const [seq] of answers) {
        if (seq < top) ascending = false;
        top = Math.max(top, seq);
      }
      this.sessions.set(id, { lastIndex, acked, answers: new Map(answers), ascending, top });
    }
    this.lastSweep = lastSweep;
  }

  get sweepIndex(): number {
    return this.lastSweep;
  }
}

/** Drops the answers at or below `acked`: a prefix when the seqs ascend, else found by a full scan. */
function dropAcknowledged<T, E>(s: Session<T, E>): void {
  if (s.ascending) {
    for (const seq of s.answers.keys()) {
      if (seq > s.acked) break;
      s.answers.delete(seq);
    }
  } else {
    for (const seq of s.answers.keys()) if (seq <= s.acked) s.answers.delete(seq);
  }
}
