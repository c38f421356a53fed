import { InvalidArgumentError, SessionExpiredError } from '@consensus-kit/core';
import type { SessionStamp } from './commands';
import { storeError, type StoredError } from './errors';

/** An answer kept for a retried request: the result, or the error it produced (code, message, typed fields). */
export type StoredAnswer<T> = { ok: T } | { error: StoredError };

interface Session<T> {
  /** Log index of the session's last request: expiry is counted in log entries, so it is deterministic. */
  lastIndex: number;
  /** Every seq at or below this is acknowledged by the client: its answer was dropped. */
  acked: number;
  answers: Map<number, StoredAnswer<T>>;
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

export type SessionSnapshot<T> = [id: string, lastIndex: number, acked: number, answers: [number, StoredAnswer<T>][]][];

/**
 * Exactly-once client sessions (Raft thesis 6.3). Expiry depends only on log indexes, never on clocks, so
 * every replica forgets the same sessions at the same entry; the table is part of the snapshot.
 */
export class SessionTable<T> {
  private readonly sessions = new Map<string, Session<T>>();
  private readonly expireAfter: number;
  private readonly maxAnswers: number;
  private lastSweep = 0;

  constructor(options: SessionTableOptions = {}) {
    this.expireAfter = options.expireAfterEntries ?? 100_000;
    this.maxAnswers = options.maxAnswersPerSession ?? 4096;
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
  run(stamp: SessionStamp, index: number, execute: () => T): StoredAnswer<T> {
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
    let answer: StoredAnswer<T>;
    try {
      answer = { ok: execute() };
    } catch (e) {
      answer = { error: storeError(e) };
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

  toSnapshot(): SessionSnapshot<T> {
    return [...this.sessions].map(([id, s]) => [id, s.lastIndex, s.acked, [...s.answers]]);
  }

  restore(data: SessionSnapshot<T>, lastSweep: number): void {
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
function dropAcknowledged<T>(s: Session<T>): void {
  if (s.ascending) {
    for (const seq of s.answers.keys()) {
      if (seq > s.acked) break;
      s.answers.delete(seq);
    }
  } else {
    for (const seq of s.answers.keys()) if (seq <= s.acked) s.answers.delete(seq);
  }
}
