import {
  ConfigError,
  InvalidArgumentError,
  MalformedMessageError,
  NotLeaderError,
  TransportError,
  assertNodeId,
  errorToWire,
  isConsensusError,
  type Logger,
  type NodeId,
  type WireError,
} from '@consensus-kit/core';
import { silentLogger } from '@consensus-kit/core/host';
import { createCodec, isRecord } from './codec';
import type { FramedConnection } from './connection';
import { FrameError } from './errors';
import { FrameType } from './frame';
import { PROTOCOL_VERSION } from './handshake';
import { Listener } from './listener';
import { DEFAULT_PUSH_LIMITS, OpenSubscription, PushBuffer, type PushLimits, type Subscription } from './subscription';
import { formatAddress, positiveOption, resolveLimits, resolveServerLimits, type LimitOptions, type ServerLimitOptions, type TlsOptions } from './options';

/** What a request handler learns about the request besides its body. */
export interface RequestContext {
  /** The id the client gave in its handshake. */
  clientId: string;
  /**
   * Aborted when the client cancels this request (timeout, AbortSignal) or disconnects. Created on first
   * access: a handler that never reads it costs no AbortController.
   */
  readonly signal: AbortSignal;
  /**
   * Aborted when the client's connection closes; one signal shared by every request of the connection, so
   * it is cheaper than `signal` for handlers that need not stop early when one request is cancelled (the
   * answer to a cancelled request is dropped either way).
   */
  readonly connectionSignal: AbortSignal;
  readonly remoteAddress: string;
  /**
   * Present when the client opened this request as a subscription (`RpcClient.subscribe`): the handler may
   * push values to the client until its promise settles (the final answer) or `subscription.signal` aborts
   * (client cancel, disconnect, or a slow subscriber cancelled by the server's bounds). See subscription.ts.
   */
  readonly subscription?: Subscription;
}

/** One request being handled: its cancellation, and the AbortController behind `signal` once asked for. */
interface Inflight {
  controller: AbortController | undefined;
  cancelled: Error | undefined;
}

const REDIRECT = Symbol.for('@consensus-kit/transport-tcp/redirect');

/** "Not the leader; ask there instead": the answer a follower gives, followed by clients. */
export interface Redirect {
  readonly [REDIRECT]: true;
  /** The leader's client address ('host:port'), when known. */
  readonly address: string | undefined;
  /** The leader's node id, when known. */
  readonly leader: NodeId | undefined;
}

/** Builds a redirect answer. Without an address the client tries its other endpoints. */
export function redirect(address?: string, leader?: NodeId): Redirect {
  return { [REDIRECT]: true, address, leader };
}

export function isRedirect(v: unknown): v is Redirect {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[REDIRECT] === true;
}

/**
 * Answers one request: a value (sent back as is), `redirect(...)`, or a thrown error. A thrown
 * `NotLeaderError` whose hint names a known peer becomes a redirect to that peer's address; any other
 * consensus-kit error travels back with its code; other errors are logged and answered as internal errors.
 */
export type RequestHandler = (body: unknown, ctx: RequestContext) => unknown;

export interface ClientSessionOptions {
  handler: () => RequestHandler | undefined;
  /** Where a leader hint points clients, when known. */
  resolveLeader: (id: NodeId) => string | undefined;
  maxConcurrentRequests: number;
  /** Close the connection when it has had no request in flight and sent nothing for this long. */
  idleTimeoutMs: number;
  logger: Logger;
  /** Bounds on server push (subscriptions); default `DEFAULT_PUSH_LIMITS`. */
  push?: PushLimits;
}

/** The context of one request; `signal` makes its AbortController on first access. */
class Context implements RequestContext {
  constructor(
    private readonly entry: Inflight,
    readonly clientId: string,
    readonly remoteAddress: string,
    readonly connectionSignal: AbortSignal,
    readonly subscription?: Subscription,
  ) {}

  get signal(): AbortSignal {
    const entry = this.entry;
    if (entry.controller === undefined) {
      entry.controller = new AbortController();
      if (entry.cancelled !== undefined) entry.controller.abort(entry.cancelled);
    }
    return entry.controller.signal;
  }
}

/** Wire shape of responses. */
export type ResponseBody =
  | { id: number; ok: unknown }
  | { id: number; redirect: { address?: string; leader?: string } }
  | { id: number; error: WireError };

/**
 * One client connection on the server side: decodes requests, runs the handler with at most
 * `maxConcurrentRequests` in flight (further requests wait and the socket stops being read, so a client
 * that floods is slowed by TCP instead of growing the server's heap) and writes responses.
 */
export function serveClient(conn: FramedConnection, clientId: string, options: ClientSessionOptions): void {
  const codec = createCodec();
  const inflight = new Map<number, Inflight>();
  const connection = new AbortController();
  const waiting: Array<{ id: number; body: unknown; sub: boolean }> = [];
  const remoteAddress = `${conn.socket.remoteAddress}:${conn.socket.remotePort}`;
  const { logger } = options;
  /** Open subscriptions (also in `inflight` until their handler settles, but not counted as requests). */
  const subs = new Map<number, OpenSubscription>();
  /**
   * Subscriptions the client cancelled whose handler has not settled yet (it settles on the signal, a turn or
   * more later): they do not count against `maxSubscriptions`, so a client that cancels one and opens another
   * at once is not refused; at most as many again may linger this way.
   */
  const cancelling = new Set<number>();
  let pushes: PushBuffer | undefined;
  /** Requests in flight, subscriptions not included. */
  const running = () => inflight.size - subs.size;
  const pushLimits = options.push ?? DEFAULT_PUSH_LIMITS;

  // Idle check: one timer per connection, firing every idleTimeoutMs rather than reset per message. It closes
  // the connection when, over a whole period, nothing was received and nothing was in flight, waiting, or held
  // back by this side (budget); so an idle connection goes after one to two periods. A client that stopped in
  // the middle of a request counts as idle too: it would otherwise keep its share of the request budget.
  /** Marks the connection idle (for the listener's choice of a client to close when slots run out) or busy. */
  const noteIdle = () => {
    conn.idle = inflight.size === 0 && waiting.length === 0 ? (conn.idle ?? { since: performance.now(), bytes: conn.bytesReceived }) : undefined;
  };
  let seen = conn.bytesReceived;
  const idleTimer = setInterval(() => {
    const busy = inflight.size > 0 || waiting.length > 0 || conn.heldBack;
    if (busy || conn.bytesReceived !== seen) {
      seen = conn.bytesReceived;
      return;
    }
    logger.info('closing idle client connection', { clientId, remote: remoteAddress, idleTimeoutMs: options.idleTimeoutMs });
    conn.end();
  }, options.idleTimeoutMs);
  idleTimer.unref();

  const respond = (res: ResponseBody) => {
    if (conn.isClosed) return;
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(res);
    } catch (e) {
      logger.error('response cannot be encoded', { clientId, reason: (e as Error).message });
      bytes = codec.encode({ id: res.id, error: errorToWire(new MalformedMessageError('the response could not be encoded')) });
    }
    const r = conn.send(FrameType.Response, bytes);
    if (r === 'too-large') {
      // Not a transport fault that a retry could cure: the same request would get the same answer. The
      // request was carried out (a write applied); only its answer cannot be sent.
      const message = `the answer (${bytes.byteLength} bytes) exceeds maxMessageSize (${conn.limits.maxMessageSize} bytes): the request was carried out, but its answer cannot be sent; ask for less (a range limit, for example)`;
      conn.send(FrameType.Response, codec.encode({ id: res.id, error: errorToWire(new InvalidArgumentError(message)) }));
    } else if (r === 'full') {
      logger.warn('client is not reading its responses; closing its connection', { clientId, remote: remoteAddress });
      conn.destroy(new TransportError('client response queue overflow'));
    }
  };

  const answer = (id: number, out: unknown): ResponseBody => {
    if (isRedirect(out)) return redirectBody(id, out.address, out.leader);
    return { id, ok: out };
  };

  const failure = (id: number, e: unknown): ResponseBody => {
    if (NotLeaderError.is(e)) {
      const hint = e.leaderHint;
      return redirectBody(id, hint === undefined ? undefined : options.resolveLeader(hint), hint);
    }
    if (!isConsensusError(e)) logger.error('request handler failed', { clientId, reason: (e as Error)?.message ?? String(e) });
    return { id, error: errorToWire(e) };
  };

  const finish = (id: number, entry: Inflight, res: ResponseBody) => {
    inflight.delete(id);
    const sub = subs.get(id);
    if (sub !== undefined) {
      subs.delete(id);
      cancelling.delete(id);
      // The answer ends the stream: it goes after the pushes the subscription still holds. One the server
      // cancelled sends its own final answer once its held pushes are written.
      if (sub.cancelledByServer) return next();
      if (entry.cancelled === undefined) sub.settle(() => respond(res));
      else sub.abort(entry.cancelled);
    } else if (entry.cancelled === undefined) respond(res);
    next();
  };

  const start = (id: number, body: unknown, subscribe = false) => {
    const entry: Inflight = { controller: undefined, cancelled: undefined };
    inflight.set(id, entry);
    let sub: OpenSubscription | undefined;
    if (subscribe) {
      pushes ??= new PushBuffer(conn, codec, pushLimits, logger);
      sub = new OpenSubscription(id, pushes, {
        cancelled: (error) => cancel(entry, error),
        final: (error) => respond({ id, error: errorToWire(error) }),
      });
      subs.set(id, sub);
    }
    const handler = options.handler();
    if (handler === undefined) {
      // Answered on a later turn, like every other answer, so a burst of requests still leaves in one write.
      void Promise.resolve().then(() => finish(id, entry, { id, error: errorToWire(new TransportError('this node serves no requests')) }));
      return;
    }
    // The handler's promise is followed directly (no async wrapper): one continuation per request.
    let out: unknown;
    try {
      out = handler(body, new Context(entry, clientId, remoteAddress, connection.signal, sub));
    } catch (e) {
      out = Promise.reject(e);
    }
    Promise.resolve(out).then(
      (v) => finish(id, entry, answer(id, v)),
      (e: unknown) => finish(id, entry, failure(id, e)),
    );
  };

  const cancel = (entry: Inflight, reason: Error) => {
    if (entry.cancelled !== undefined) return;
    entry.cancelled = reason;
    entry.controller?.abort(reason);
  };

  const next = () => {
    while (waiting.length > 0 && running() < options.maxConcurrentRequests) {
      const w = waiting.shift()!;
      start(w.id, w.body, w.sub);
    }
    if (running() < options.maxConcurrentRequests) conn.resume();
    noteIdle();
  };

  noteIdle();
  conn.setEvents({
    message(type, body, own) {
      // A message that throws closes the connection: no need to mark it idle again then.
      conn.idle = undefined;
      onMessage(type, body, own);
      noteIdle();
    },
    close(error) {
      clearInterval(idleTimer);
      if (error !== undefined && !TransportError.is(error)) {
        logger.warn('client connection closed on bad input', { clientId, remote: remoteAddress, reason: error.message });
      }
      const reason = new TransportError('client disconnected');
      for (const sub of subs.values()) sub.abort(reason);
      pushes?.stop();
      for (const entry of inflight.values()) cancel(entry, reason);
      connection.abort(reason);
      waiting.length = 0;
    },
  });

  function onMessage(type: FrameType, body: Uint8Array, own: boolean): void {
    if (type === FrameType.Cancel) {
      const v = codec.decode(body, own);
      if (isRecord(v) && typeof v.id === 'number') {
        const entry = inflight.get(v.id);
        const reason = new TransportError('request cancelled by the client');
        const sub = subs.get(v.id);
        if (sub !== undefined) {
          cancelling.add(v.id);
          sub.abort(reason);
        }
        if (entry !== undefined) cancel(entry, reason);
        const i = waiting.findIndex((w) => w.id === v.id);
        if (i >= 0) waiting.splice(i, 1);
      }
      return;
    }
    if (type !== FrameType.Request) throw new FrameError('unknown-type', `frame type ${type} is not allowed on a client connection`);
    const v = codec.decode(body, own);
    if (!isRecord(v) || typeof v.id !== 'number' || !Number.isSafeInteger(v.id)) throw new FrameError('bad-part', 'request without a valid id');
    const id = v.id;
    if (inflight.has(id) || (waiting.length > 0 && waiting.some((w) => w.id === id))) {
      respond({ id, error: errorToWire(new InvalidArgumentError(`request id ${id} is already in flight`)) });
      return;
    }
    const subscribe = v.sub === 1;
    if (subscribe && (subs.size - cancelling.size >= pushLimits.maxSubscriptions || subs.size >= 2 * pushLimits.maxSubscriptions)) {
      respond({ id, error: errorToWire(new TransportError(`too many subscriptions on one connection (at most ${pushLimits.maxSubscriptions})`)) });
      return;
    }
    if (running() < options.maxConcurrentRequests) start(id, v.body, subscribe);
    else {
      waiting.push({ id, body: v.body, sub: subscribe });
      conn.pause();
    }
  }
}

function redirectBody(id: number, address: string | undefined, leader: string | undefined): ResponseBody {
  const r: { address?: string; leader?: string } = {};
  if (address !== undefined) r.address = address;
  if (leader !== undefined) r.leader = leader;
  return { id, redirect: r };
}

export interface RequestServerOptions extends LimitOptions, ServerLimitOptions {
  clusterId: string;
  /** The id this server presents in handshakes (default 'server'). */
  id?: NodeId;
  listen: { host?: string; port: number };
  secret?: string | Uint8Array;
  tls?: TlsOptions;
  logger?: Logger;
  /** Requests a connection may have in flight (default 128). */
  maxConcurrentRequests?: number;
  /** Handshake deadline: a connection that has not completed its handshake by then is closed (default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** Bounds on server push (subscriptions); defaults in `DEFAULT_PUSH_LIMITS`. */
  push?: Partial<PushLimits>;
}

export interface RequestServer {
  onRequest(handler: RequestHandler): void;
  start(): Promise<void>;
  address(): { host: string; port: number };
  /** 'host:port' for clients. */
  endpoint(): string;
  stop(): Promise<void>;
}

/** A standalone request/response server (the same client channel a tcpTransport serves). */
export function createRequestServer(options: RequestServerOptions): RequestServer {
  if (typeof options !== 'object' || options === null) throw new ConfigError('request server options must be an object');
  if (typeof options.clusterId !== 'string' || options.clusterId.length === 0) throw new ConfigError('clusterId must be a non-empty string');
  const id = options.id ?? 'server';
  assertNodeId(id, 'id');
  const logger = options.logger ?? silentLogger;
  const limits = resolveLimits(options);
  const server = resolveServerLimits(options, limits);
  const maxConcurrentRequests = positiveOption(options.maxConcurrentRequests, 'maxConcurrentRequests', 128);
  const push = resolvePushLimits(options.push);
  let handler: RequestHandler | undefined;
  const listener = new Listener({
    host: options.listen.host ?? '127.0.0.1',
    port: options.listen.port,
    tls: options.tls,
    limits,
    logger,
    server,
    handshake: {
      clusterId: options.clusterId,
      id,
      secret: options.secret,
      timeoutMs: positiveOption(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 5000),
      protocolVersion: PROTOCOL_VERSION,
      isKnownPeer: () => false,
      acceptClients: true,
    },
    onPeer: (conn) => conn.destroy(),
    onClient: (conn, clientId) =>
      serveClient(conn, clientId, { handler: () => handler, resolveLeader: () => undefined, maxConcurrentRequests, idleTimeoutMs: server.clientIdleTimeoutMs, logger, push }),
  });
  return {
    onRequest(h) {
      handler = h;
    },
    start: () => listener.listen(),
    address: () => listener.address(),
    endpoint() {
      const a = listener.address();
      return formatAddress(a.host, a.port);
    },
    stop: () => listener.close(),
  };
}


/** Push bounds with defaults, each checked to be a positive integer. */
export function resolvePushLimits(o: Partial<PushLimits> | undefined): PushLimits {
  if (o !== undefined && (typeof o !== 'object' || o === null)) throw new ConfigError('push must be an object');
  const d = DEFAULT_PUSH_LIMITS;
  return {
    pushHighWaterBytes: positiveOption(o?.pushHighWaterBytes, 'push.pushHighWaterBytes', d.pushHighWaterBytes),
    maxSubscriptionBufferBytes: positiveOption(o?.maxSubscriptionBufferBytes, 'push.maxSubscriptionBufferBytes', d.maxSubscriptionBufferBytes),
    maxConnectionPushBytes: positiveOption(o?.maxConnectionPushBytes, 'push.maxConnectionPushBytes', d.maxConnectionPushBytes),
    maxSubscriptions: positiveOption(o?.maxSubscriptions, 'push.maxSubscriptions', d.maxSubscriptions),
  };
}
