import { pack, unpack } from 'msgpackr';
import { InvalidArgumentError, MalformedMessageError, ReplicatedTime, type LogEntry, type ReplicatedTimeState, type StateMachine } from '@consensus-kit/core';
import { checkName, validateLockCommand, validateLockQuery, type LockCommand, type LockEvent, type LockKind, type LockMode, type LockQuery, type LockResult, type RequestState, MAX_SESSION_TTL_MS } from './commands';
import { LockKindError, LockSessionExpiredError } from './errors';

/** The shortest session TTL by default: 1.5 election timeouts of a default node (as kv's minimum lease TTL). */
export const DEFAULT_MIN_SESSION_TTL_MS = 1_500;
/**
 * Lock-delay by default (Chubby §2.4): after a holder's session expires, its locks are granted to nobody for
 * this long, so a holder that has not noticed (paused, partitioned, its clock slow) stops before anyone else
 * starts. Chubby allows up to a minute; 1 s covers a client that gives up a TTL after its last acknowledged
 * keepalive while its clock runs a third slow, at the default minimum TTL.
 */
export const DEFAULT_LOCK_DELAY_MS = 1_000;
/** Live sessions at most by default; an open beyond it is refused the same way on every replica. */
export const DEFAULT_MAX_SESSIONS = 100_000;
/** Finished request ids a session remembers (so a late retry stays a no-op); older ones fall below its floor. */
export const DONE_REQUESTS_KEPT = 1_024;

export interface LockStateMachineOptions {
  /** Sessions asking for less get this TTL (ms). The same on every replica. Default `DEFAULT_MIN_SESSION_TTL_MS`. */
  minSessionTtlMs?: number;
  /** Lock-delay after an expiry, in ms of replicated time (0: none). Default `DEFAULT_LOCK_DELAY_MS`. */
  lockDelayMs?: number;
  maxSessions?: number;
  /** `ReplicatedTime`'s largest step per time entry. Default 5,000 ms. */
  maxTimeStepMs?: number;
}

export interface LockRequest {
  cmd: LockCommand;
}

interface Hold {
  session: number;
  mode: LockMode;
  /** The fencing token: the log index of the entry that granted it (Chubby's sequencer number). */
  token: number;
  /** The request ids this hold answers: more than one when reentered. */
  reqs: number[];
  /** Semaphore permits held (1 otherwise). */
  count: number;
}

interface Waiter {
  session: number;
  req: number;
  mode: LockMode;
  count: number;
  /** Log index of the acquire that queued it: the queue is in this order (FIFO by log index). */
  index: number;
}

interface Lock {
  name: string;
  kind: LockKind;
  /** A semaphore's size (0 for the others). */
  permits: number;
  holds: Hold[];
  queue: Waiter[];
  /** Replicated time before which nothing is granted (lock-delay after an expiry); 0 when none. */
  delayUntil: number;
}

interface Session {
  id: number;
  ttl: number;
  expiry: number;
  owner: string;
  /** Live requests: held or waiting, and on which lock. Derived from the locks (not in the snapshot). */
  live: Map<number, { name: string; state: 'held' | 'waiting' }>;
  /** Finished request ids (retries of them change nothing), at most `DONE_REQUESTS_KEPT`. */
  done: Set<number>;
  /** Every request id at or below this that is not live is finished. */
  floor: number;
}

/** What `query` answers about one lock. */
export interface LockInfo {
  name: string;
  kind: LockKind;
  permits: number;
  holders: { session: number; mode: LockMode; token: number; reqs: number[]; count: number }[];
  waiters: { session: number; req: number; mode: LockMode; count: number; index: number }[];
  /** Replicated time at which lock-delay ends (0: none). */
  delayUntil: number;
}

export interface SessionInfo {
  id: number;
  ttl: number;
  /** Ms of replicated time left before it expires. */
  remaining: number;
  owner: string;
  /** Live requests; a held one with its fencing token. */
  requests: { req: number; name: string; state: 'held' | 'waiting'; token?: number }[];
}

export type LockQueryResult = LockInfo | LockInfo[] | SessionInfo | SessionInfo[] | RequestState | number | undefined;

type SnapshotV1 = {
  v: 1;
  time: ReplicatedTimeState;
  sessions: [id: number, ttl: number, expiry: number, owner: string, floor: number, done: number[]][];
  locks: [name: string, kind: LockKind, permits: number, delayUntil: number, holds: [number, LockMode, number, number[], number][], queue: [number, number, LockMode, number, number][]][];
};

const KIND_OF: Record<LockMode, LockKind> = { mutex: 'mutex', read: 'rwlock', write: 'rwlock', semaphore: 'semaphore' };

/**
 * The lock service as a replicated state machine: sessions with a TTL on replicated time, mutexes (reentrant
 * per session), read/write locks (a write holder may take the read side and release the write: downgrade),
 * counting semaphores, FIFO queues, lock-delay and fencing tokens.
 *
 * - Sessions (Chubby §2.8 "KeepAlives"; etcd's concurrency.Session on a lease): a session lives while
 *   keepalives renew it within its TTL. Expiry is decided here only, from time entries (DESIGN r2): a replica's
 *   clock never matters. A time entry of a newer term extends every session by its TTL (etcd's lessor on
 *   promotion): keepalives sent to the old leader may not have reached the log.
 * - Fencing (Chubby §2.4 "sequencers"; Kleppmann, "How to do distributed locking"): every grant carries a
 *   token, the log index of the entry that granted it, so tokens grow strictly from one holder of a lock to the
 *   next, across leader changes (the log index does). A resource refuses a token lower than one it saw.
 * - Lock-delay (Chubby §2.4): a lock freed by an expiry is granted to nobody for `lockDelayMs`; a clean
 *   release or close hands it on at once.
 * - Fairness (ZooKeeper's lock recipe, Curator's InterProcessMutex; etcd's Mutex waits on the key of the
 *   next-lower revision): waiters are served in the order of the entries that queued them; only the head of
 *   the queue can be granted (no barging), so a release with N waiters wakes exactly one mutex waiter.
 *   A read/write lock grants a run of readers at the head together (Curator's InterProcessReadWriteLock).
 * - A waiter whose session expires fails at once (an event), its place goes to the next.
 * - Idempotence: acquire and release name a request id; a retry answers the request's state now and never
 *   creates a second holder or waiter (etcd's Mutex keys its waiter by session for the same reason).
 *
 * Every command's result carries `events`: what the entry did to requests other than its own answer (grants
 * from a queue, holds lost and waits failed by an expiry, clean releases), which the server pushes to clients.
 */
export class LockStateMachine implements StateMachine<LockRequest, LockResult, LockQuery, LockQueryResult> {
  private readonly time: ReplicatedTime;
  private readonly sessions = new Map<number, Session>();
  private readonly locks = new Map<string, Lock>();
  /** Locks under lock-delay: looked at by every time entry. */
  private readonly delayed = new Set<string>();
  readonly minSessionTtl: number;
  readonly lockDelay: number;
  private readonly maxSessions: number;
  /** The last applied entry's events (not state: never in the snapshot). */
  private last: { index: number; events: LockEvent[] } = { index: 0, events: [] };

  constructor(options: LockStateMachineOptions = {}) {
    this.time = new ReplicatedTime(options.maxTimeStepMs === undefined ? {} : { maxStepMs: options.maxTimeStepMs });
    this.minSessionTtl = options.minSessionTtlMs ?? DEFAULT_MIN_SESSION_TTL_MS;
    this.lockDelay = options.lockDelayMs ?? DEFAULT_LOCK_DELAY_MS;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (!Number.isSafeInteger(this.minSessionTtl) || this.minSessionTtl <= 0 || this.minSessionTtl > MAX_SESSION_TTL_MS) throw new InvalidArgumentError(`minSessionTtlMs must be a positive integer, got ${String(this.minSessionTtl)}`);
    if (!Number.isSafeInteger(this.lockDelay) || this.lockDelay < 0) throw new InvalidArgumentError(`lockDelayMs must be a non-negative integer, got ${String(this.lockDelay)}`);
    if (!Number.isSafeInteger(this.maxSessions) || this.maxSessions <= 0) throw new InvalidArgumentError(`maxSessions must be a positive integer, got ${String(this.maxSessions)}`);
  }

  /** Replicated time in ms. */
  get now(): number {
    return this.time.now;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The time entry the leader's host proposes (DESIGN r2). */
  timeCommand(term: number, clockMs: number): LockRequest {
    return { cmd: { op: 'time', term, ms: clockMs } };
  }

  /**
   * The events of the entry applied last, if it is `index` (else none): what a server pushes after each apply
   * (`ConsensusNode` announces every applied entry), whichever machine's result a combined node returned.
   */
  /** The index of the last entry this machine applied (0 after a restore, until the next). */
  get appliedIndex(): number {
    return this.last.index;
  }

  eventsAt(index: number): readonly LockEvent[] {
    return this.last.index === index ? this.last.events : [];
  }

  apply(entry: LogEntry, request: LockRequest): LockResult {
    const events: LockEvent[] = [];
    this.last = { index: entry.index, events };
    if (typeof request !== 'object' || request === null) throw new InvalidArgumentError('lock request must be { cmd }');
    const cmd = request.cmd;
    validateLockCommand(cmd);
    switch (cmd.op) {
      case 'time':
        this.tick(entry.index, cmd.term, cmd.ms, events);
        return { op: 'time', now: this.time.now, events };
      case 'open': {
        if (this.sessions.size >= this.maxSessions) throw new InvalidArgumentError(`too many lock sessions: at most ${this.maxSessions} may be live at once`);
        // The session id is the log index of this entry: unique, and the same on every replica.
        const ttl = Math.max(cmd.ttl, this.minSessionTtl);
        this.sessions.set(entry.index, { id: entry.index, ttl, expiry: this.time.now + ttl, owner: cmd.owner ?? '', live: new Map(), done: new Set(), floor: 0 });
        return { op: 'open', session: entry.index, ttl, events };
      }
      case 'keepalive': {
        const s = this.requireSession(cmd.session);
        s.expiry = this.time.now + s.ttl;
        return { op: 'keepalive', session: s.id, ttl: s.ttl, events };
      }
      case 'close': {
        const s = this.requireSession(cmd.session);
        const released = s.live.size;
        this.serveAll(this.endSession(s, false, events), entry.index, events);
        return { op: 'close', session: s.id, released, events };
      }
      case 'acquire':
        return { op: 'acquire', req: cmd.req, ...this.acquire(entry.index, cmd, events), events };
      case 'release':
        return { op: 'release', req: cmd.req, released: this.release(entry.index, cmd.session, cmd.req, events), events };
    }
  }

  private requireSession(id: number): Session {
    const s = this.sessions.get(id);
    if (s === undefined) throw new LockSessionExpiredError(id);
    return s;
  }

  // --- acquire and release ---------------------------------------------------------------------------------

  private acquire(index: number, cmd: Extract<LockCommand, { op: 'acquire' }>, events: LockEvent[]): RequestState {
    const s = this.requireSession(cmd.session);
    const live = s.live.get(cmd.req);
    if (live !== undefined) {
      // A retry: the request's state now, whatever the retry asks (it is the same request).
      return this.requestState(s, cmd.req) as RequestState;
    }
    if (isDone(s, cmd.req)) return { status: 'done' };
    const kind = KIND_OF[cmd.mode];
    const permits = cmd.mode === 'semaphore' ? (cmd.permits as number) : 0;
    const count = cmd.mode === 'semaphore' ? (cmd.count ?? 1) : 1;
    let lock = this.locks.get(cmd.name);
    if (lock !== undefined) {
      if (lock.kind !== kind) throw new LockKindError(cmd.name, `it is a ${lock.kind}, not taken as ${cmd.mode}`);
      if (kind === 'semaphore' && lock.permits !== permits) throw new LockKindError(cmd.name, `it is a semaphore of ${lock.permits} permits, not ${permits}`);
    }
    const mine = lock?.holds.filter((h) => h.session === s.id) ?? [];
    if (cmd.mode === 'write' && mine.length > 0 && !mine.some((h) => h.mode === 'write')) {
      throw new LockKindError(cmd.name, `session ${s.id} holds the read lock: upgrading to write is refused (two upgrading readers would deadlock)`);
    }
    lock ??= { name: cmd.name, kind, permits, holds: [], queue: [], delayUntil: 0 };
    const waiter: Waiter = { session: s.id, req: cmd.req, mode: cmd.mode, count, index };
    // Reentrance (Curator's InterProcessMutex, per owner; here the owner is the session): a session holding
    // the mutex, or the side of a read/write lock it asks for, gets it again at once, ahead of the queue; so
    // does a write holder asking for the read side (the first half of a downgrade).
    const reentrant = cmd.mode !== 'semaphore' && mine.some((h) => h.mode === cmd.mode || (cmd.mode === 'read' && h.mode === 'write'));
    if (reentrant || (lock.queue.length === 0 && this.grantable(lock, waiter))) {
      this.locks.set(lock.name, lock);
      const token = this.grant(lock, waiter, index, events);
      return { status: 'granted', token, name: lock.name, mode: cmd.mode };
    }
    if (cmd.wait === false) {
      markDone(s, cmd.req);
      return { status: 'busy', name: cmd.name };
    }
    this.locks.set(lock.name, lock);
    lock.queue.push(waiter);
    s.live.set(cmd.req, { name: lock.name, state: 'waiting' });
    return { status: 'waiting', name: lock.name, mode: cmd.mode, position: lock.queue.length - 1 };
  }

  /**
   * Whether `w` may be granted now, ignoring the queue in front of it: no lock-delay, and the holds leave room
   * (none for a mutex or a writer, no writer for a reader, enough permits). A session's own holds never block
   * it on a mutex or a read/write lock (reentrance; a waiter queued behind its own session's grant).
   */
  private grantable(lock: Lock, w: Waiter): boolean {
    if (lock.delayUntil > this.time.now) return false;
    const others = lock.holds.filter((h) => h.session !== w.session);
    switch (w.mode) {
      case 'mutex':
        return others.length === 0;
      case 'write':
        return others.length === 0 && (lock.holds.length === 0 || lock.holds.some((h) => h.mode === 'write'));
      case 'read':
        return !others.some((h) => h.mode === 'write');
      case 'semaphore':
        return lock.holds.reduce((n, h) => n + h.count, 0) + w.count <= lock.permits;
    }
  }

  /** Grants `w` at entry `index`; returns its token (a reentered hold keeps the token of its first grant). */
  private grant(lock: Lock, w: Waiter, index: number, events: LockEvent[]): number {
    const s = this.sessions.get(w.session) as Session;
    let hold = w.mode === 'semaphore' ? undefined : lock.holds.find((h) => h.session === w.session && h.mode === w.mode);
    if (hold === undefined) {
      hold = { session: w.session, mode: w.mode, token: index, reqs: [], count: w.count };
      lock.holds.push(hold);
    }
    hold.reqs.push(w.req);
    s.live.set(w.req, { name: lock.name, state: 'held' });
    events.push({ type: 'granted', session: w.session, req: w.req, name: lock.name, mode: w.mode, token: hold.token });
    return hold.token;
  }

  /** Grants from the head of the queue while the head can be granted (FIFO, no barging). */
  private serve(lock: Lock, index: number, events: LockEvent[]): void {
    while (lock.queue.length > 0) {
      const head = lock.queue[0] as Waiter;
      if (!this.grantable(lock, head)) break;
      lock.queue.shift();
      this.grant(lock, head, index, events);
    }
    if (lock.delayUntil <= this.time.now) {
      lock.delayUntil = 0;
      this.delayed.delete(lock.name);
    }
    if (lock.holds.length === 0 && lock.queue.length === 0 && lock.delayUntil === 0) this.locks.delete(lock.name);
  }

  private release(index: number, session: number, req: number, events: LockEvent[]): 'held' | 'waiting' | 'none' {
    const s = this.requireSession(session);
    const live = s.live.get(req);
    if (live === undefined) {
      markDone(s, req);
      return 'none';
    }
    const lock = this.locks.get(live.name) as Lock;
    s.live.delete(req);
    markDone(s, req);
    if (live.state === 'waiting') {
      lock.queue = lock.queue.filter((w) => !(w.session === session && w.req === req));
    } else {
      const hold = lock.holds.find((h) => h.session === session && h.reqs.includes(req)) as Hold;
      hold.reqs = hold.reqs.filter((r) => r !== req);
      if (hold.reqs.length === 0) {
        lock.holds = lock.holds.filter((h) => h !== hold);
        events.push({ type: 'released', session, name: lock.name, token: hold.token });
      }
    }
    this.serve(lock, index, events);
    return live.state;
  }

  private requestState(s: Session, req: number): RequestState | undefined {
    const live = s.live.get(req);
    if (live === undefined) return isDone(s, req) ? { status: 'done' } : undefined;
    const lock = this.locks.get(live.name) as Lock;
    if (live.state === 'held') {
      const hold = lock.holds.find((h) => h.session === s.id && h.reqs.includes(req)) as Hold;
      return { status: 'granted', token: hold.token, name: lock.name, mode: hold.mode };
    }
    const position = lock.queue.findIndex((w) => w.session === s.id && w.req === req);
    return { status: 'waiting', name: lock.name, mode: (lock.queue[position] as Waiter).mode, position };
  }

  // --- sessions and time -----------------------------------------------------------------------------------

  /**
   * Ends a session: every hold is released and every waiter removed. On expiry (`expired`), each hold is
   * `lost` and its lock enters lock-delay, each waiter `failed`; a clean close releases at once. Returns the
   * locks touched, whose queues the caller serves once every session ending at this entry has ended.
   */
  private endSession(s: Session, expired: boolean, events: LockEvent[]): Set<string> {
    const touched = new Set<string>();
    for (const [req, live] of [...s.live].sort((a, b) => a[0] - b[0])) {
      const lock = this.locks.get(live.name) as Lock;
      touched.add(lock.name);
      if (live.state === 'waiting') {
        lock.queue = lock.queue.filter((w) => !(w.session === s.id && w.req === req));
        if (expired) events.push({ type: 'failed', session: s.id, req, name: lock.name, reason: 'expired' });
      } else {
        const hold = lock.holds.find((h) => h.session === s.id && h.reqs.includes(req)) as Hold;
        if (expired) events.push({ type: 'lost', session: s.id, req, name: lock.name, token: hold.token, reason: 'expired' });
        hold.reqs = hold.reqs.filter((r) => r !== req);
        if (hold.reqs.length === 0) {
          lock.holds = lock.holds.filter((h) => h !== hold);
          if (!expired) events.push({ type: 'released', session: s.id, name: lock.name, token: hold.token });
          else if (this.lockDelay > 0) {
            lock.delayUntil = Math.max(lock.delayUntil, this.time.now + this.lockDelay);
            this.delayed.add(lock.name);
          }
        }
      }
    }
    this.sessions.delete(s.id);
    if (expired) events.push({ type: 'expired', session: s.id });
    return touched;
  }

  /** Serves the queues of the locks named, in name order (deterministic on every replica). */
  private serveAll(names: Iterable<string>, index: number, events: LockEvent[]): void {
    for (const name of [...names].sort()) {
      const lock = this.locks.get(name);
      if (lock !== undefined) this.serve(lock, index, events);
    }
  }

  /**
   * A time entry: replicated time moves (core `ReplicatedTime`); a newer term extends every session by its
   * TTL; sessions past their expiry end (in id order), then the locks they touched and those whose lock-delay
   * is over serve their queues.
   */
  private tick(index: number, term: number, ms: number, events: LockEvent[]): void {
    const step = this.time.observe(term, ms);
    const now = this.time.now;
    if (step.newTerm) for (const s of this.sessions.values()) s.expiry = now + s.ttl;
    const expired = [...this.sessions.values()].filter((s) => s.expiry <= now).sort((a, b) => a.id - b.id);
    // Every session that expires at this entry ends before any queue is served: a waiter whose session expires
    // now must fail, not be granted a lock it would lose within the same entry (a grant and a loss sharing
    // one token, found by the simulator without lock-delay).
    const touched = new Set<string>();
    for (const s of expired) for (const name of this.endSession(s, true, events)) touched.add(name);
    for (const name of this.delayed) {
      const lock = this.locks.get(name);
      if (lock === undefined) this.delayed.delete(name);
      else if (lock.delayUntil <= now) touched.add(name);
    }
    this.serveAll(touched, index, events);
  }

  // --- queries -----------------------------------------------------------------------------------------------

  query(q: LockQuery): LockQueryResult {
    validateLockQuery(q);
    switch (q.op) {
      case 'lock': {
        checkName(q.name);
        const l = this.locks.get(q.name);
        return l === undefined ? undefined : describeLock(l);
      }
      case 'locks':
        return [...this.locks.values()]
          .filter((l) => q.prefix === undefined || l.name.startsWith(q.prefix))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map(describeLock);
      case 'session': {
        const s = this.sessions.get(q.session);
        return s === undefined ? undefined : this.describeSession(s);
      }
      case 'sessions':
        return [...this.sessions.values()].sort((a, b) => a.id - b.id).map((s) => this.describeSession(s));
      case 'request': {
        const s = this.sessions.get(q.session);
        return s === undefined ? undefined : this.requestState(s, q.req);
      }
      case 'now':
        return this.time.now;
    }
  }

  private describeSession(s: Session): SessionInfo {
    return {
      id: s.id,
      ttl: s.ttl,
      remaining: Math.max(0, s.expiry - this.time.now),
      owner: s.owner,
      requests: [...s.live]
        .sort((a, b) => a[0] - b[0])
        .map(([req, l]) => {
          const token = l.state === 'held' ? this.locks.get(l.name)?.holds.find((h) => h.session === s.id && h.reqs.includes(req))?.token : undefined;
          return token === undefined ? { req, name: l.name, state: l.state } : { req, name: l.name, state: l.state, token };
        }),
    };
  }

  // --- snapshot ----------------------------------------------------------------------------------------------

  snapshot(): Uint8Array {
    const snap: SnapshotV1 = {
      v: 1,
      time: this.time.state(),
      sessions: [...this.sessions.values()].map((s) => [s.id, s.ttl, s.expiry, s.owner, s.floor, [...s.done]]),
      locks: [...this.locks.values()].map((l) => [
        l.name,
        l.kind,
        l.permits,
        l.delayUntil,
        l.holds.map((h) => [h.session, h.mode, h.token, h.reqs, h.count]),
        l.queue.map((w) => [w.session, w.req, w.mode, w.count, w.index]),
      ]),
    };
    return pack(snap);
  }

  /** Restores a snapshot of format 1 (the only one so far); anything else is a `MalformedMessageError`. */
  restore(bytes: Uint8Array): void {
    let snap: SnapshotV1;
    try {
      snap = unpack(bytes) as SnapshotV1;
    } catch (cause) {
      throw new MalformedMessageError('lock snapshot is not valid msgpack', { cause });
    }
    if (typeof snap !== 'object' || snap === null || snap.v !== 1 || !Array.isArray(snap.sessions) || !Array.isArray(snap.locks)) {
      throw new MalformedMessageError(`lock snapshot has an unknown format (version ${String((snap as { v?: unknown } | null)?.v)})`);
    }
    // Built aside and swapped in at the end, as kv's restore is: a malformed entry (MalformedMessageError, or a
    // TypeError from an entry of the wrong shape, reported as one) leaves the machine as it was.
    const time = new ReplicatedTime();
    time.restore(snap.time);
    const sessions = new Map<number, Session>();
    const locks = new Map<string, Lock>();
    const delayed = new Set<string>();
    try {
      for (const [id, ttl, expiry, owner, floor, done] of snap.sessions) {
        sessions.set(id, { id, ttl, expiry, owner, floor, done: new Set(done), live: new Map() });
      }
      const sessionOf = (id: number): Session => {
        const s = sessions.get(id);
        if (s === undefined) throw new MalformedMessageError(`lock snapshot names session ${id}, which it does not hold`);
        return s;
      };
      for (const [name, kind, permits, delayUntil, holds, queue] of snap.locks) {
        const lock: Lock = {
          name,
          kind,
          permits,
          delayUntil,
          holds: holds.map(([session, mode, token, reqs, count]) => ({ session, mode, token, reqs: [...reqs], count })),
          queue: queue.map(([session, req, mode, count, index]) => ({ session, req, mode, count, index })),
        };
        locks.set(name, lock);
        if (delayUntil > 0) delayed.add(name);
        for (const h of lock.holds) for (const req of h.reqs) sessionOf(h.session).live.set(req, { name, state: 'held' });
        for (const w of lock.queue) sessionOf(w.session).live.set(w.req, { name, state: 'waiting' });
      }
    } catch (cause) {
      if (MalformedMessageError.is(cause)) throw cause;
      throw new MalformedMessageError('lock snapshot holds a malformed session or lock', { cause });
    }
    this.time.restore(time.state());
    this.sessions.clear();
    for (const [id, session] of sessions) this.sessions.set(id, session);
    this.locks.clear();
    for (const [name, lock] of locks) this.locks.set(name, lock);
    this.delayed.clear();
    for (const name of delayed) this.delayed.add(name);
  }
}

function describeLock(l: Lock): LockInfo {
  return {
    name: l.name,
    kind: l.kind,
    permits: l.permits,
    holders: l.holds.map((h) => ({ session: h.session, mode: h.mode, token: h.token, reqs: [...h.reqs], count: h.count })),
    waiters: l.queue.map((w) => ({ ...w })),
    delayUntil: l.delayUntil,
  };
}

function isDone(s: Session, req: number): boolean {
  return req <= s.floor || s.done.has(req);
}

/** Remembers `req` as finished; past `DONE_REQUESTS_KEPT`, the oldest one remembered moves the floor up. */
function markDone(s: Session, req: number): void {
  if (req <= s.floor) return;
  s.done.add(req);
  if (s.done.size > DONE_REQUESTS_KEPT) {
    const oldest = s.done.values().next().value as number;
    s.done.delete(oldest);
    s.floor = Math.max(s.floor, oldest);
    // Requests now at or below the floor need no entry of their own.
    for (const r of s.done) if (r <= s.floor) s.done.delete(r);
  }
}
