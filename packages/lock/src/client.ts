import { setMaxListeners } from 'node:events';
import { AbortedError, ErrorCode, InvalidArgumentError, TimeoutError, isConsensusError, type Clock } from '@consensus-kit/core';
import { systemClock } from '@consensus-kit/core/host';
import { validateLockCommand, type LockCommand, type LockEvent, type LockMode, type LockResult } from './commands';
import { LockLostError, LockSessionExpiredError } from './errors';
import type { LockChannel, LockPush } from './wire';

export interface LockClientOptions {
  channel: LockChannel;
  /** The session's TTL in ms: the cluster expires it after this long without a keepalive. Default 10,000. */
  ttlMs?: number;
  /** Keepalives are sent this often. Default a third of the TTL. */
  keepaliveIntervalMs?: number;
  /** Shown in `lock list` and the live view. */
  owner?: string;
  /** Deadline of one call, retries included (not the wait for a grant: see `AcquireOptions.timeoutMs`). Default 10,000 ms. */
  timeoutMs?: number;
  /** Deadline of one attempt, after which it is retried (acquire and release are idempotent). Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /** Timers for keepalives, deadlines and retries. Default `systemClock`. */
  clock?: Clock;
}

export interface AcquireOptions {
  /** Default `mutex`. */
  mode?: LockMode;
  /** A semaphore's size (required for `semaphore`, the same for every client of it). */
  permits?: number;
  /** Semaphore permits to take. Default 1. */
  count?: number;
  /** Gives up waiting: the waiter is removed from the queue and the call rejects with `AbortedError`. */
  signal?: AbortSignal;
  /** Gives up waiting after this long: the waiter is removed and the call rejects with `TimeoutError`. Default: no limit. */
  timeoutMs?: number;
}

/** Errors after which the same request may be sent again (acquire and release are idempotent by request id). */
const RETRYABLE = new Set<string>([ErrorCode.NOT_LEADER, ErrorCode.LEADERSHIP_LOST, ErrorCode.TRANSPORT, ErrorCode.STOPPED, ErrorCode.TIMEOUT, ErrorCode.PROPOSAL_DROPPED]);

interface Waiter {
  resolve(token: number): void;
  reject(e: Error): void;
}

/** One session of the client: its keepalive loop, its deadline and its event subscription. */
class ClientSession {
  nextReq = 1;
  readonly waiting = new Map<number, Waiter>();
  readonly holds = new Map<number, LockHandle>();
  readonly stop = new AbortController();
  ended = false;
  keepalive: unknown;
  watchdog: unknown;
  constructor(
    readonly id: number,
    readonly ttl: number,
    /** The client's own deadline: a TTL after the invocation of the last keepalive the cluster acknowledged. */
    public deadline: number,
  ) {
    setMaxListeners(0, this.stop.signal);
  }
}

/**
 * A held lock: its fencing token (pass it to every resource you write to), and `signal`, aborted with a
 * `LockLostError` the moment the client learns or decides that the lock may be someone else's. Release it with
 * `release()` or by disposal (`await using lock = await client.acquire('name')`).
 */
export class LockHandle {
  private readonly lost = new AbortController();
  private released = false;

  /** @internal */
  constructor(
    private readonly client: LockClient,
    private readonly session: ClientSession,
    readonly req: number,
    readonly name: string,
    readonly mode: LockMode,
    /** The fencing token: the log index of the grant, higher for every later holder. */
    readonly token: number,
  ) {}

  /** Aborted (reason: `LockLostError`) when the hold is lost. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** Whether the client still takes the lock for its own (not released, not lost). */
  get held(): boolean {
    return !this.released && !this.lost.signal.aborted;
  }

  /** Runs `fn` with the token while the lock is held; throws the `LockLostError` (or an `InvalidArgumentError` once released) otherwise. */
  ifOwner<T>(fn: (token: number) => T): T {
    if (this.lost.signal.aborted) throw this.lost.signal.reason as Error;
    if (this.released) throw new InvalidArgumentError(`lock ${JSON.stringify(this.name)} (token ${this.token}) was released`);
    return fn(this.token);
  }

  /** Releases the lock (idempotent). A session that expired meanwhile released it already. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.session.holds.delete(this.req);
    if (!this.session.ended) await this.client.releaseRequest(this.session, this.req);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal */
  lose(why: string): void {
    this.session.holds.delete(this.req);
    if (!this.released && !this.lost.signal.aborted) this.lost.abort(new LockLostError(this.name, this.token, why));
  }
}

/**
 * The lock service client: one session kept alive in the background (keepalives every third of the TTL), locks
 * acquired and released through it, grants and losses heard by server push (`lock.events`).
 *
 * It never believes it holds a lock the cluster may have given away: a hold's signal aborts when the cluster
 * pushes that the session expired, and on its own once a TTL has passed since the invocation of the last
 * keepalive the cluster acknowledged (the cluster cannot have expired it sooner, clocks running at the same
 * rate; lock-delay covers the rest).
 */
export class LockClient {
  private readonly channel: LockChannel;
  private readonly ttl: number;
  private readonly keepaliveMs: number;
  private readonly timeoutMs: number;
  private readonly attemptMs: number;
  private readonly owner: string | undefined;
  private readonly clock: Clock;
  private current: ClientSession | undefined;
  private opening: Promise<ClientSession> | undefined;
  private closed = false;

  constructor(options: LockClientOptions) {
    this.channel = options.channel;
    this.ttl = options.ttlMs ?? 10_000;
    this.keepaliveMs = options.keepaliveIntervalMs ?? Math.max(1, Math.floor(this.ttl / 3));
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attemptMs = options.attemptTimeoutMs ?? 3_000;
    this.owner = options.owner;
    this.clock = options.clock ?? systemClock;
    for (const [k, v] of [['ttlMs', this.ttl], ['keepaliveIntervalMs', this.keepaliveMs], ['attemptTimeoutMs', this.attemptMs]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgumentError(`${k} must be a positive integer, got ${String(v)}`);
    }
    if (this.keepaliveMs >= this.ttl) throw new InvalidArgumentError(`keepaliveIntervalMs (${this.keepaliveMs}) must be below ttlMs (${this.ttl})`);
  }

  /** The current session's id (undefined before the first acquire and after a loss). */
  get sessionId(): number | undefined {
    return this.current?.ended === false ? this.current.id : undefined;
  }

  /** Waits for the lock (queued FIFO behind earlier waiters) and returns it held. */
  async acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle> {
    return (await this.take(name, options, true)) as LockHandle;
  }

  /** Takes the lock if it is free and nobody waits for it; undefined otherwise (nothing is queued). */
  async tryAcquire(name: string, options: Omit<AcquireOptions, 'timeoutMs'> = {}): Promise<LockHandle | undefined> {
    return this.take(name, options, false);
  }

  /** Ends the session cleanly (every lock released at once, without lock-delay) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const s = this.current ?? (await this.opening?.catch(() => undefined));
    if (s !== undefined && !s.ended) {
      this.end(s, 'client closed');
      await this.call({ t: 'lock.write', cmd: { op: 'close', session: s.id } }).catch(() => undefined);
    }
  }

  private async take(name: string, options: AcquireOptions, wait: boolean): Promise<LockHandle | undefined> {
    if (this.closed) throw new InvalidArgumentError('the lock client is closed');
    const mode = options.mode ?? 'mutex';
    const cmd = {
      op: 'acquire',
      session: 1,
      name,
      mode,
      req: 1,
      ...(wait ? {} : { wait: false }),
      ...(options.permits !== undefined ? { permits: options.permits } : {}),
      ...(options.count !== undefined ? { count: options.count } : {}),
    } as Extract<LockCommand, { op: 'acquire' }>;
    validateLockCommand(cmd); // bad input fails here, before any session is opened
    const signal = options.signal;
    if (signal?.aborted) throw new AbortedError(signal.reason);
    const s = await this.session();
    const req = s.nextReq++;
    let waiter!: Waiter;
    const granted = new Promise<number>((resolve, reject) => (waiter = { resolve, reject }));
    granted.catch(() => undefined);
    s.waiting.set(req, waiter);
    let r: Extract<LockResult, { op: 'acquire' }>;
    try {
      r = await this.call({ t: 'lock.write', cmd: { ...cmd, session: s.id, req } }, signal);
    } catch (e) {
      s.waiting.delete(req);
      // The cluster no longer has the session (expired unheard: no push reached us yet): it is over here too,
      // so the next acquire opens a new one.
      if (LockSessionExpiredError.is(e)) this.end(s, 'the cluster expired the session');
      // The acquire may have been applied: take the request back (idempotent), so no waiter or hold is left.
      if (!s.ended) await this.releaseRequest(s, req).catch(() => undefined);
      throw e;
    }
    if (r.status === 'granted') {
      s.waiting.delete(req);
      return this.hold(s, req, name, mode, r.token);
    }
    if (r.status !== 'waiting') {
      s.waiting.delete(req);
      if (r.status === 'busy') return undefined;
      throw new InvalidArgumentError(`request ${req} of session ${s.id} was already finished`);
    }
    // Queued: the grant comes by push (or in the sync of a new subscription); give up on abort or timeout.
    let timer: unknown;
    let onAbort: (() => void) | undefined;
    const giveUp = new Promise<never>((_, reject) => {
      if (options.timeoutMs !== undefined) timer = this.clock.setTimeout(() => reject(new TimeoutError(options.timeoutMs as number, `acquiring lock ${JSON.stringify(name)}`)), options.timeoutMs);
      if (signal !== undefined) {
        onAbort = () => reject(new AbortedError(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    giveUp.catch(() => undefined);
    try {
      const token = await Promise.race([granted, giveUp]);
      return this.hold(s, req, name, mode, token);
    } catch (e) {
      s.waiting.delete(req);
      // Every abort path removes the waiter (or releases the grant it raced with).
      if (!s.ended) await this.releaseRequest(s, req).catch(() => undefined);
      throw e;
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  private hold(s: ClientSession, req: number, name: string, mode: LockMode, token: number): LockHandle {
    const h = new LockHandle(this, s, req, name, mode, token);
    if (s.ended) h.lose('session ended');
    else s.holds.set(req, h);
    return h;
  }

  /** @internal Releases request `req` (held or waiting); a session already gone released it. */
  async releaseRequest(s: ClientSession, req: number): Promise<void> {
    try {
      await this.call({ t: 'lock.write', cmd: { op: 'release', session: s.id, req } });
    } catch (e) {
      if (LockSessionExpiredError.is(e)) return;
      throw e;
    }
  }

  // --- the session ---------------------------------------------------------------------------------------

  private session(): Promise<ClientSession> {
    if (this.current !== undefined && !this.current.ended) return Promise.resolve(this.current);
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async open(): Promise<ClientSession> {
    const invoked = this.clock.now();
    const r = await this.call<Extract<LockResult, { op: 'open' }>>({ t: 'lock.write', cmd: { op: 'open', ttl: this.ttl, ...(this.owner !== undefined ? { owner: this.owner } : {}) } });
    const s = new ClientSession(r.session, r.ttl, invoked + r.ttl);
    this.current = s;
    s.keepalive = this.clock.setInterval(() => void this.keepAlive(s), this.keepaliveMs);
    this.arm(s);
    void this.listen(s);
    return s;
  }

  private async keepAlive(s: ClientSession): Promise<void> {
    if (s.ended) return;
    const invoked = this.clock.now();
    try {
      const r = await this.request<Extract<LockResult, { op: 'keepalive' }>>({ t: 'lock.write', cmd: { op: 'keepalive', session: s.id } }, this.keepaliveMs);
      s.deadline = Math.max(s.deadline, invoked + r.ttl);
      this.arm(s);
    } catch (e) {
      if (LockSessionExpiredError.is(e)) this.end(s, 'the cluster expired the session');
      // Anything else: the next keepalive tries again; the watchdog ends the session at its deadline.
    }
  }

  /** (Re)arms the watchdog for the session's deadline. */
  private arm(s: ClientSession): void {
    if (s.watchdog !== undefined) this.clock.clearTimeout(s.watchdog);
    if (s.ended) return;
    s.watchdog = this.clock.setTimeout(
      () => {
        s.watchdog = undefined;
        if (this.clock.now() >= s.deadline) this.end(s, `no acknowledged keepalive for a TTL (${s.ttl} ms)`);
        else this.arm(s);
      },
      Math.max(0, s.deadline - this.clock.now()),
    );
  }

  /** Keeps a `lock.events` subscription open for the session, on any node, until it ends. */
  private async listen(s: ClientSession): Promise<void> {
    while (!s.ended) {
      try {
        await this.channel.subscribe({ t: 'lock.events', session: s.id }, (p) => this.onPush(s, p as LockPush), { signal: s.stop.signal });
      } catch {
        // Lost (connection closed, node stopped): open it again, below.
      }
      if (s.ended) return;
      await new Promise<void>((r) => this.clock.setTimeout(r, 20));
    }
  }

  private onPush(s: ClientSession, p: LockPush): void {
    if (s.ended) return;
    if ('sync' in p) {
      // The node's view: only what it has applied at or past the session's open (and each grant) counts.
      if (p.sync === undefined) {
        if (p.index >= s.id) this.end(s, 'the session is gone');
        return;
      }
      const live = new Map(p.sync.requests.map((r) => [r.req, r]));
      for (const [req, w] of s.waiting) {
        const r = live.get(req);
        if (r?.state === 'held' && r.token !== undefined) w.resolve(r.token);
      }
      for (const [req, h] of s.holds) if (!live.has(req) && p.index >= h.token) h.lose('the cluster no longer lists it');
      return;
    }
    for (const e of p.events) this.onEvent(s, e);
  }

  private onEvent(s: ClientSession, e: LockEvent): void {
    switch (e.type) {
      case 'granted':
        s.waiting.get(e.req)?.resolve(e.token);
        return;
      case 'lost':
        s.holds.get(e.req)?.lose('its session expired in the cluster');
        return;
      case 'failed':
        s.waiting.get(e.req)?.reject(new LockSessionExpiredError(s.id, `lock session ${s.id} expired while request ${e.req} waited for ${JSON.stringify(e.name)}`));
        return;
      case 'expired':
        return this.end(s, 'the cluster expired the session');
      default:
        return;
    }
  }

  /** The session is over: every hold is lost, every waiter fails; the next acquire opens a new session. */
  private end(s: ClientSession, why: string): void {
    if (s.ended) return;
    s.ended = true;
    s.stop.abort();
    if (s.keepalive !== undefined) this.clock.clearInterval(s.keepalive);
    if (s.watchdog !== undefined) this.clock.clearTimeout(s.watchdog);
    for (const h of [...s.holds.values()]) h.lose(why);
    for (const w of s.waiting.values()) w.reject(new LockSessionExpiredError(s.id, `lock session ${s.id} ended: ${why}`));
    s.waiting.clear();
    if (this.current === s) this.current = undefined;
  }

  // --- calls ---------------------------------------------------------------------------------------------

  private request<T>(body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    return this.channel.request<T>(body, { timeoutMs, ...(signal !== undefined ? { signal } : {}) });
  }

  /** Sends `body`, retrying what may be retried until `timeoutMs` passes (acquire and release are idempotent). */
  private async call<T = never>(body: unknown, signal?: AbortSignal): Promise<T> {
    const end = this.clock.now() + this.timeoutMs;
    let attempt = 0;
    for (;;) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      try {
        return await this.request<T>(body, Math.max(1, Math.min(this.attemptMs, end - this.clock.now())), signal);
      } catch (e) {
        if (!isConsensusError(e) || !RETRYABLE.has(e.code) || this.clock.now() >= end) throw e;
      }
      attempt++;
      await new Promise<void>((r) => this.clock.setTimeout(r, Math.min(200, 10 * attempt)));
    }
  }
}
