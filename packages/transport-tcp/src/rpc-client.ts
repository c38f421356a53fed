import { randomBytes } from 'node:crypto';
import {
  AbortedError,
  ConfigError,
  NotLeaderError,
  StoppedError,
  TimeoutError,
  TransportError,
  assertNodeId,
  errorFromWire,
  type Clock,
  type Logger,
} from '@consensus-kit/core';
import { silentLogger, systemClock } from '@consensus-kit/core/host';
import { MAX_WIRE_TEXT, isNodeId } from '@consensus-kit/core';
import { createCodec, isRecord } from './codec';
import type { FramedConnection } from './connection';
import { dial } from './dial';
import { FrameType } from './frame';
import { parseAddress, positiveOption, resolveLimits, type LimitOptions, type TlsOptions } from './options';

export interface RpcClientOptions extends LimitOptions {
  /** Node client addresses, 'host:port'. Redirects may add more. */
  endpoints: string[];
  clusterId: string;
  /** The id this client presents (default: a random 'client-...' id). */
  clientId?: string;
  secret?: string | Uint8Array;
  tls?: TlsOptions;
  logger?: Logger;
  /** Give up on an endpoint's TCP connect after this long and try the next (default 500 ms). */
  connectTimeoutMs?: number;
  /** Give up on an endpoint that accepted TCP but does not complete the handshake (default 1000 ms). */
  handshakeTimeoutMs?: number;
  /** Default per-request timeout (default 5000 ms). */
  timeoutMs?: number;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  /**
   * Time for request deadlines and the pauses between retries (default `systemClock`); a `ManualClock` drives
   * them in tests. TCP connect and handshake timeouts are the socket's own and stay on Node's timers.
   */
  clock?: Clock;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface SubscribeOptions {
  /** Ends the subscription (a Cancel goes to the server); the promise rejects with AbortedError. */
  signal?: AbortSignal;
}

export interface RpcClient {
  /**
   * Sends `body` to the cluster and resolves with the answer. Follows redirects to the leader, skips dead
   * endpoints, and rejects with TimeoutError, AbortedError, NotLeaderError (no leader found in time),
   * TransportError (connection lost after sending: the outcome is unknown) or the error the server raised.
   */
  request<T = unknown>(body: unknown, options?: RequestOptions): Promise<T>;
  /**
   * Opens a subscription (server push, see subscription.ts): sends `body` as a subscription request to one
   * node (not redirected to the leader: any node may serve it), calls `onPush` with each value the server
   * pushes, in order, and settles with the server's final answer. Rejects with AbortedError when `signal`
   * aborts, TransportError when the connection is lost (the client may subscribe again; the next attempt
   * starts at another endpoint), `SlowSubscriberError` (a TransportError) when the server cancelled it because
   * this client read too slowly, or the error the handler raised. Endpoints that cannot be reached are skipped.
   */
  subscribe<T = unknown>(body: unknown, onPush: (value: unknown) => void, options?: SubscribeOptions): Promise<T>;
  /** The endpoint the next subscription tries first. */
  readonly subscribeEndpoint: string;
  /** The endpoint the client currently prefers (the last one that answered). */
  readonly preferred: string;
  close(): Promise<void>;
}

/**
 * One request waiting for its answer. A class rather than a handful of closures: a client with many requests
 * in flight makes one of these per request, and its channel's deadline sweep and its abort listener call
 * back into it.
 */
class Call {
  /** When it times out, on the client's clock. */
  deadline = 0;
  constructor(
    readonly channel: Channel,
    readonly id: number,
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (v: Record<string, unknown>) => void,
    readonly reject: (e: Error) => void,
    /** A subscription's push handler. */
    readonly onPush?: (value: unknown) => void,
  ) {}

  /** The abort listener (EventTarget calls `handleEvent` on a listener object): no closure per call. */
  handleEvent(): void {
    this.giveUp(new AbortedError(this.signal?.reason));
  }

  settle(v: Record<string, unknown> | undefined, e?: Error): void {
    if (this.signal !== undefined) this.signal.removeEventListener('abort', this);
    if (e !== undefined) this.reject(e);
    else this.resolve(v as Record<string, unknown>);
  }

  /** Timeout or abort: forget the call and tell the server, which may still be working on it. */
  giveUp(e: Error): void {
    this.channel.forget(this.id);
    this.settle(undefined, e);
  }
}

/** setTimeout's longest delay; a longer wait is re-armed when it fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** One open connection to one endpoint, multiplexing requests by id. */
class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Call>();
  private readonly codec = createCodec();
  closed = false;
  /**
   * One timer for the deadlines of every call in flight, armed for the earliest, instead of a timer per call
   * (a client with many requests in flight would create and cancel one per request).
   */
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    readonly conn: FramedConnection,
    private readonly clock: Clock,
    onClose: () => void,
  ) {
    conn.setEvents({
      message: (type, body, own) => {
        if (type !== FrameType.Response) throw new TransportError(`unexpected frame type ${type} from the server`);
        const v = this.codec.decode(body, own);
        if (!isRecord(v) || typeof v.id !== 'number') throw new TransportError('response without an id');
        const call = this.pending.get(v.id);
        if (call === undefined) return; // answered after we gave up on it
        if (call.onPush !== undefined && 'push' in v) {
          // A push on a subscription: the call stays open for more, and for its final answer.
          call.onPush(v.push);
          return;
        }
        this.pending.delete(v.id);
        if (this.pending.size === 0) this.disarm();
        call.settle(v);
      },
      close: (error) => {
        this.closed = true;
        this.disarm();
        onClose();
        const err = new TransportError(`connection lost before the answer arrived; the outcome is unknown${error ? ` (${error.message})` : ''}`, { cause: error });
        const ended = new TransportError(`connection lost: the subscription ended${error ? ` (${error.message})` : ''}`, { cause: error });
        const calls = [...this.pending.values()];
        this.pending.clear();
        for (const call of calls) call.settle(undefined, call.onPush === undefined ? err : ended);
      },
    });
  }

  call(body: unknown, timeoutMs: number, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode({ id, body });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const call = new Call(this, id, timeoutMs, signal, resolve, reject);
      const r = this.conn.send(FrameType.Request, bytes);
      if (r !== 'queued') {
        reject(new TransportError(r === 'too-large' ? 'request exceeds maxMessageSize' : `request not sent: ${r}`));
        return;
      }
      this.pending.set(id, call);
      call.deadline = this.clock.now() + Math.max(0, timeoutMs);
      if (call.deadline < this.timerAt) this.arm(call.deadline);
      if (signal !== undefined) signal.addEventListener('abort', call, { once: true });
    });
  }

  /** Opens a subscription: like `call`, with pushes handed to `onPush` and no deadline (only `signal`). */
  subscribe(body: unknown, onPush: (value: unknown) => void, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode({ id, body, sub: 1 });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortedError(signal.reason));
        return;
      }
      const call = new Call(this, id, Number.POSITIVE_INFINITY, signal, resolve, reject, onPush);
      const r = this.conn.send(FrameType.Request, bytes);
      if (r !== 'queued') {
        reject(new TransportError(r === 'too-large' ? 'request exceeds maxMessageSize' : `subscription not sent: ${r}`));
        return;
      }
      // No deadline: a subscription lasts until either side ends it.
      call.deadline = Number.POSITIVE_INFINITY;
      this.pending.set(id, call);
      if (signal !== undefined) signal.addEventListener('abort', call, { once: true });
    });
  }

  /** Drops a call the client gave up on and sends the server a cancel for it. */
  forget(id: number): void {
    if (!this.pending.delete(id)) return;
    if (this.pending.size === 0) this.disarm();
    if (!this.closed) this.conn.send(FrameType.Cancel, this.codec.encode({ id }));
  }

  private arm(at: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.expire(), Math.min(MAX_DELAY_MS, Math.max(0, Math.ceil(at - this.clock.now()))));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Times out every call past its deadline and re-arms for the earliest one left. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const call of [...this.pending.values()]) {
      if (call.deadline <= now) call.giveUp(new TimeoutError(call.timeoutMs, 'request'));
      else if (call.deadline < next) next = call.deadline;
    }
    if (next < this.timerAt && !this.closed) this.arm(next);
  }

  close(): void {
    this.conn.end();
  }
}

/** A failure to reach an endpoint (nothing was sent): safe to try elsewhere. */
class Unreached extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

export function createRpcClient(options: RpcClientOptions): RpcClient {
  if (typeof options !== 'object' || options === null) throw new ConfigError('rpc client options must be an object');
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) throw new ConfigError('endpoints must list at least one "host:port"');
  for (const e of options.endpoints) parseAddress(e);
  if (typeof options.clusterId !== 'string' || options.clusterId.length === 0) throw new ConfigError('clusterId must be a non-empty string');
  const clientId = options.clientId ?? `client-${randomBytes(6).toString('hex')}`;
  assertNodeId(clientId, 'clientId');
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const limits = resolveLimits(options);
  const connectTimeoutMs = positiveOption(options.connectTimeoutMs, 'connectTimeoutMs', 500);
  const handshakeTimeoutMs = positiveOption(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 1000);
  const defaultTimeout = positiveOption(options.timeoutMs, 'timeoutMs', 5000);
  const maxRedirects = options.maxRedirects ?? 5;
  const tls: TlsOptions | undefined = options.tls;
  const endpoints = [...new Set(options.endpoints)];
  let preferred = 0;
  const channels = new Map<string, Promise<Channel>>();
  /** Channels whose dial finished: a request to one of them skips the dial's deadline race. */
  const connected = new Map<string, Channel>();
  let closed = false;

  // Dials are shared by every request to that endpoint, so no single request's signal may abort one.
  const channel = (address: string): Promise<Channel> => {
    let p = channels.get(address);
    if (p === undefined) {
      p = dial({
        address,
        tls,
        connectTimeoutMs,
        limits,
        handshake: { clusterId: options.clusterId, id: clientId, secret: options.secret, logger, timeoutMs: handshakeTimeoutMs, kind: 'client' },
      }).then(
        ({ conn }) => {
          const ch: Channel = new Channel(conn, clock, () => {
            if (channels.get(address) === p) channels.delete(address);
            if (connected.get(address) === ch) connected.delete(address);
          });
          if (closed) ch.close();
          else connected.set(address, ch);
          return ch;
        },
        (e: Error) => {
          channels.delete(address);
          throw new Unreached(e);
        },
      );
      channels.set(address, p);
    }
    return p;
  };

  const endpointIndex = (address: string): number => {
    let i = endpoints.indexOf(address);
    if (i < 0) {
      parseAddress(address);
      endpoints.push(address);
      i = endpoints.length - 1;
    }
    return i;
  };

  const sleep = (ms: number, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve) => {
      const t = clock.setTimeout(done, ms);
      function done() {
        clock.clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });

  /**
   * A request that timed out on a connected endpoint got no answer from it in time. A node that is frozen (SIGSTOP,
   * a stalled VM, a long pause) keeps its connection open and answers nothing, so the client's next request starts
   * at the next endpoint (a follower redirects to the leader) instead of waiting on the same node again, as etcd's
   * client moves off an endpoint that failed a request. A slow but healthy leader costs one redirect.
   */
  function passOver(index: number, e: unknown): never {
    if (TimeoutError.is(e) && preferred % endpoints.length === index % endpoints.length) preferred = (index + 1) % endpoints.length;
    throw e;
  }

  /**
   * The common case, kept free of the retry loop's state: the preferred endpoint is connected and answers.
   * Anything else (no connection yet, a redirect, an error) continues in `requestLoop`.
   */
  function request<T>(body: unknown, ro: RequestOptions = {}): Promise<T> {
    if (closed) return Promise.reject(new StoppedError('the rpc client is closed'));
    const current = preferred;
    const ch = connected.get(endpoints[current % endpoints.length]!);
    if (ch === undefined || ro.signal?.aborted) return requestLoop<T>(body, ro, undefined);
    const timeoutMs = ro.timeoutMs ?? defaultTimeout;
    const deadline = clock.now() + timeoutMs;
    return ch.call(body, timeoutMs, ro.signal).then(
      (res) => ('ok' in res ? (res.ok as T) : requestLoop<T>(body, ro, { res, current, deadline })),
      (e: unknown) => passOver(current, e),
    );
  }

  async function requestLoop<T>(body: unknown, ro: RequestOptions, first: { res: Record<string, unknown>; current: number; deadline: number } | undefined): Promise<T> {
    const timeoutMs = ro.timeoutMs ?? defaultTimeout;
    const deadline = first?.deadline ?? clock.now() + timeoutMs;
    const signal = ro.signal;
    let current = first?.current ?? preferred;
    let answered = first?.res;
    let redirects = 0;
    let failedInRound = 0;
    let lastError: Error | undefined;
    let leaderHint: string | undefined;
    let idleRounds = 0;
    for (;;) {
      const address = endpoints[current % endpoints.length]!;
      let res: Record<string, unknown>;
      if (answered !== undefined) {
        // The fast path's answer (not ok): handled below as if this loop had asked.
        res = answered;
        answered = undefined;
      } else {
        if (signal?.aborted) throw new AbortedError(signal.reason);
        const remaining = deadline - clock.now();
        if (remaining <= 0) {
          if (lastError !== undefined && NotLeaderError.is(lastError)) throw lastError;
          throw new TimeoutError(timeoutMs, 'request');
        }
        try {
          const ch = connected.get(address) ?? (await withDeadline(clock, channel(address), remaining, timeoutMs, signal));
          res = await ch.call(body, deadline - clock.now(), signal);
        } catch (e) {
          if (!(e instanceof Unreached)) passOver(current, e);
          logger.debug('endpoint unreachable; trying the next', { address, reason: e.error.message });
          lastError = e.error;
          failedInRound++;
          if (failedInRound >= endpoints.length) throw lastError;
          current++;
          continue;
        }
      }
      failedInRound = 0;
      if ('ok' in res) {
        preferred = current % endpoints.length;
        return res.ok as T;
      }
      if (isRecord(res.redirect)) {
        // Remote input: an address or a leader id that cannot be one (megabytes of text from a hostile or
        // broken node) is ignored rather than carried into errors and logs.
        const addr = typeof res.redirect.address === 'string' && res.redirect.address.length <= MAX_WIRE_TEXT ? res.redirect.address : undefined;
        leaderHint = isNodeId(res.redirect.leader) ? res.redirect.leader : undefined;
        lastError = new NotLeaderError(leaderHint);
        if (addr !== undefined && redirects < maxRedirects) {
          redirects++;
          try {
            current = endpointIndex(addr);
          } catch {
            current++;
          }
          logger.debug('following redirect', { from: address, to: addr });
          continue;
        }
        if (addr !== undefined) throw lastError;
        // No leader known there: try the others, pausing a little once all of them said so (an election).
        current++;
        if (current % endpoints.length === preferred % endpoints.length) {
          idleRounds++;
          await sleep(Math.min(25 * 2 ** Math.min(idleRounds, 4), Math.max(0, deadline - clock.now())), signal);
        }
        continue;
      }
      if (isRecord(res.error)) throw errorFromWire(res.error, { prefix: 'remote: ' });
      throw new TransportError('malformed response from the server');
    }
  }

  /** Where the next subscription starts looking: moves on past an endpoint whose connection failed. */
  let subPreferred = 0;

  async function subscribe<T>(body: unknown, onPush: (value: unknown) => void, so: SubscribeOptions = {}): Promise<T> {
    if (closed) throw new StoppedError('the rpc client is closed');
    const signal = so.signal;
    let unreached = 0;
    let redirects = 0;
    for (;;) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      const address = endpoints[subPreferred % endpoints.length]!;
      let ch: Channel;
      try {
        ch = connected.get(address) ?? (await withDeadline(clock, channel(address), connectTimeoutMs + handshakeTimeoutMs, connectTimeoutMs + handshakeTimeoutMs, signal));
      } catch (e) {
        if (!(e instanceof Unreached) && !TimeoutError.is(e)) throw e;
        const err = e instanceof Unreached ? e.error : (e as Error);
        logger.debug('endpoint unreachable for a subscription; trying the next', { address, reason: err.message });
        subPreferred++;
        if (++unreached >= endpoints.length) throw err;
        continue;
      }
      let res: Record<string, unknown>;
      try {
        res = await ch.subscribe(body, onPush, signal);
      } catch (e) {
        // A lost connection: the next subscription tries another node first.
        if (TransportError.is(e)) subPreferred++;
        throw e;
      }
      if ('ok' in res) return res.ok as T;
      if (isRecord(res.redirect)) {
        const addr = typeof res.redirect.address === 'string' && res.redirect.address.length <= MAX_WIRE_TEXT ? res.redirect.address : undefined;
        const hint = isNodeId(res.redirect.leader) ? res.redirect.leader : undefined;
        if (addr === undefined || redirects >= maxRedirects) throw new NotLeaderError(hint);
        redirects++;
        try {
          subPreferred = endpointIndex(addr);
        } catch {
          throw new NotLeaderError(hint);
        }
        continue;
      }
      if (isRecord(res.error)) {
        const err = errorFromWire(res.error, { prefix: 'remote: ' });
        if (TransportError.is(err)) subPreferred++;
        throw err;
      }
      throw new TransportError('malformed response from the server');
    }
  }

  return {
    request,
    subscribe,
    get subscribeEndpoint() {
      return endpoints[subPreferred % endpoints.length]!;
    },
    get preferred() {
      return endpoints[preferred % endpoints.length]!;
    },
    async close() {
      closed = true;
      const all = [...channels.values()];
      channels.clear();
      connected.clear();
      for (const p of all) {
        try {
          (await p).close();
        } catch {
          // never connected
        }
      }
    },
  };
}

async function withDeadline<T>(clock: Clock, p: Promise<T>, ms: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<T> {
  let timer: unknown;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = clock.setTimeout(() => reject(new TimeoutError(timeoutMs, 'request')), ms);
        onAbort = () => reject(new AbortedError(signal?.reason));
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
