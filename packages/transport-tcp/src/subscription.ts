import { InvalidArgumentError, TransportError, type Logger } from '@consensus-kit/core';
import type { Codec } from './codec';
import type { FramedConnection } from './connection';
import { FrameType } from './frame';

/**
 * Server push (DESIGN r2, "server-pushed events on a subscription, with flow control").
 *
 * Wire: the client opens a subscription with an ordinary Request frame that carries `sub: 1`
 * (`{ id, body, sub: 1 }`). The server answers with any number of Response frames `{ id, push }`, then one
 * final Response (`{ id, ok }` or `{ id, error }`) when the handler's promise settles, or nothing when the
 * client cancelled (Cancel frame `{ id }`, as for a request) or the connection closed. Pushes reuse the
 * Response frame type, so the frame layer is unchanged; a server that predates subscriptions ignores `sub` and
 * hands the body to its handler, which refuses a request type it does not know with its usual typed error.
 *
 * Flow control is server-side bounding, not client credits: a push is written into the connection only while
 * the connection's outbound bytes (its queue plus the socket's buffer) are under `pushHighWaterBytes`; above
 * that, pushes are held in the subscription, in order, and written as the connection drains. A subscription
 * whose held bytes would pass `maxSubscriptionBufferBytes`, or a push that would take the connection's held
 * bytes (all its subscriptions) past `maxConnectionPushBytes`, cancels that subscription with a
 * `SlowSubscriberError` (its final answer, sent after whatever the subscription had already queued). So a node
 * holds at most pushHighWaterBytes + maxConnectionPushBytes of pushes per client connection, however slowly
 * the client reads, the way etcd cancels (or blocks) a slow watcher rather than buffering without limit.
 */
export interface PushLimits {
  /** Above this many outbound bytes in the connection, pushes are held instead of written (default 1 MiB). */
  pushHighWaterBytes: number;
  /** Bytes one subscription may hold before it is cancelled as a slow subscriber (default 4 MiB). */
  maxSubscriptionBufferBytes: number;
  /** Bytes all subscriptions of one connection may hold together (default 16 MiB). */
  maxConnectionPushBytes: number;
  /** Subscriptions one connection may have open (default 4096). They do not count as requests in flight. */
  maxSubscriptions: number;
}

export const DEFAULT_PUSH_LIMITS: PushLimits = {
  pushHighWaterBytes: 1024 * 1024,
  maxSubscriptionBufferBytes: 4 * 1024 * 1024,
  maxConnectionPushBytes: 16 * 1024 * 1024,
  maxSubscriptions: 4096,
};

/** Marks the error a slow subscriber's subscription ends with (a TransportError: a client may resubscribe). */
const SLOW = Symbol.for('@consensus-kit/transport-tcp/slow-subscriber');

/**
 * A subscription was cancelled by the server because its client did not read its pushes fast enough. Code
 * `TRANSPORT`; the client can open it again (a watch resumes from the last revision it saw).
 */
export class SlowSubscriberError extends TransportError {
  readonly [SLOW] = true;
  constructor(message: string) {
    super(message);
  }
  static override is(e: unknown): e is SlowSubscriberError {
    return e instanceof SlowSubscriberError || (TransportError.is(e) && /^(remote: )?slow subscriber/.test((e as Error).message));
  }
}

/** What a request handler gets, in `RequestContext.subscription`, when the request was opened as a subscription. */
export interface Subscription {
  /**
   * Pushes one value to the client, in order after every earlier push. Returns false when the subscription is
   * over (cancelled by the client, closed, or cancelled as a slow subscriber just now): stop pushing then.
   */
  push(value: unknown): boolean;
  /** Aborted when the subscription ends for any reason other than the handler settling. */
  readonly signal: AbortSignal;
  /** True while pushes are being held for this subscription, or would be (its client, or its connection, is behind). */
  readonly congested: boolean;
}

/**
 * The last value pushed and its encoding: a hub that fans one value out to many subscriptions (a watch event
 * to every watcher of a prefix) has it encoded once, not once per subscription. Values must not be changed
 * after they are pushed.
 */
let lastValue: unknown;
let lastBytes: Uint8Array | undefined;

const ID_KEY = [0xa2, 0x69, 0x64]; // fixstr "id"
const PUSH_KEY = [0xa4, 0x70, 0x75, 0x73, 0x68]; // fixstr "push"

/** The frame body `{ id, push: value }` in msgpack, reusing the encoding of a value pushed just before. */
export function encodePush(codec: Codec, id: number, value: unknown): Uint8Array {
  if (!(Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff)) return codec.encode({ id, push: value });
  let payload = lastBytes;
  if (value !== lastValue || payload === undefined) {
    payload = codec.encode(value);
    lastValue = value;
    lastBytes = payload;
  }
  // A msgpack map of two entries: "id" -> uint, "push" -> the value's own encoding.
  const idLen = id < 0x80 ? 1 : id <= 0xff ? 2 : id <= 0xffff ? 3 : 5;
  const out = new Uint8Array(1 + ID_KEY.length + idLen + PUSH_KEY.length + payload.byteLength);
  let o = 0;
  out[o++] = 0x82;
  out.set(ID_KEY, o);
  o += ID_KEY.length;
  if (idLen === 1) out[o++] = id;
  else if (idLen === 2) {
    out[o++] = 0xcc;
    out[o++] = id;
  } else if (idLen === 3) {
    out[o++] = 0xcd;
    out[o++] = id >>> 8;
    out[o++] = id & 0xff;
  } else {
    out[o++] = 0xce;
    new DataView(out.buffer).setUint32(o, id);
    o += 4;
  }
  out.set(PUSH_KEY, o);
  o += PUSH_KEY.length;
  out.set(payload, o);
  return out;
}

/** One held push: its encoded frame body. */
type Held = Uint8Array;

/**
 * The subscriptions of one client connection and the bytes they hold back. One per connection, made by
 * `serveClient` on the first subscription.
 */
export class PushBuffer {
  private held = 0;
  private readonly waiting = new Set<OpenSubscription>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private onDrain: (() => void) | undefined;

  constructor(
    readonly conn: FramedConnection,
    readonly codec: Codec,
    readonly limits: PushLimits,
    readonly logger: Logger,
  ) {}

  /** Bytes held by every subscription of the connection. */
  get heldBytes(): number {
    return this.held;
  }

  get congested(): boolean {
    return this.conn.pendingBytes >= this.limits.pushHighWaterBytes;
  }

  /** Adds held bytes; false when the connection bound would be passed. */
  reserve(n: number): boolean {
    if (this.held + n > this.limits.maxConnectionPushBytes) return false;
    this.held += n;
    return true;
  }

  release(n: number): void {
    this.held -= n;
  }

  /** Asks to be told when the connection has room for `sub`'s held pushes. */
  wait(sub: OpenSubscription): void {
    this.waiting.add(sub);
    if (this.onDrain === undefined && !this.conn.isClosed) {
      this.onDrain = () => this.schedule(0);
      this.conn.socket.on('drain', this.onDrain);
    }
    // 'drain' fires once the socket's buffer empties; the connection's own queue may still hold frames then,
    // so a short poll backs it up while anything is held.
    this.schedule(5);
  }

  forget(sub: OpenSubscription): void {
    this.waiting.delete(sub);
    if (this.waiting.size === 0) this.stop();
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, ms);
    this.timer.unref?.();
  }

  private flush(): void {
    for (const sub of [...this.waiting]) {
      if (this.congested) break;
      if (sub.flushHeld()) this.waiting.delete(sub);
    }
    if (this.waiting.size > 0 && !this.conn.isClosed) this.schedule(5);
    else this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onDrain !== undefined) this.conn.socket.off('drain', this.onDrain);
    this.onDrain = undefined;
  }
}

/** One open subscription, on the server. */
export class OpenSubscription implements Subscription {
  private readonly queue: Held[] = [];
  private queued = 0;
  private readonly controller = new AbortController();
  /** Set once nothing more may be pushed (cancelled, closed, or its handler settled). */
  ended = false;
  /** The server cancelled it: it finishes on its own (held pushes, then its final error). */
  cancelledByServer = false;
  /** Runs once the held pushes are written: the final answer goes after them. */
  private afterHeld: (() => void) | undefined;

  constructor(
    readonly id: number,
    private readonly buffer: PushBuffer,
    /**
     * The server ends it (slow subscriber, a push too large): `cancelled` runs at once, `final` (the client's
     * final error answer) once the pushes already accepted are written.
     */
    private readonly hooks: { cancelled(error: Error): void; final(error: Error): void },
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Pushes would be held now: this subscription holds some, or the connection is over its high-water mark
   * (a push written now would be held by the next one). A hub pacing a replay or a large revision waits then,
   * rather than hand over more than one push at a time.
   */
  get congested(): boolean {
    return this.queue.length > 0 || this.buffer.congested;
  }

  push(value: unknown): boolean {
    if (this.ended) return false;
    const bytes = encodePush(this.buffer.codec, this.id, value);
    if (this.queue.length === 0 && !this.buffer.congested) {
      const r = this.buffer.conn.send(FrameType.Response, bytes);
      if (r === 'queued') return true;
      if (r === 'too-large') {
        this.cancel(this.tooLarge(bytes.byteLength));
        return false;
      }
      if (r === 'closed') {
        this.abort(new TransportError('client disconnected'));
        return false;
      }
      // 'full': held below like any other push while the connection is behind.
    }
    const limits = this.buffer.limits;
    const overOwn = this.queued + bytes.byteLength > limits.maxSubscriptionBufferBytes;
    if (overOwn || !this.buffer.reserve(bytes.byteLength)) {
      const which = overOwn ? `one subscription (${limits.maxSubscriptionBufferBytes} bytes)` : `one connection (${limits.maxConnectionPushBytes} bytes)`;
      this.buffer.logger.warn('cancelling a slow subscriber', { id: this.id, heldBytes: this.queued, connectionHeldBytes: this.buffer.heldBytes });
      this.cancel(new SlowSubscriberError(`slow subscriber: the client is not reading its pushes, and holding the next one would pass the bound of ${which}; subscribe again to resume`));
      return false;
    }
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    this.buffer.wait(this);
    return true;
  }

  /** Writes held pushes while the connection has room; true once none is left. */
  flushHeld(): boolean {
    while (this.queue.length > 0) {
      if (this.buffer.congested) return false;
      const bytes = this.queue[0]!;
      const r = this.buffer.conn.send(FrameType.Response, bytes);
      if (r === 'full') return false;
      if (r === 'too-large') {
        // Nothing after it may go either (the client would miss one push): drop the rest, then the final error.
        this.buffer.release(this.queued);
        this.queue.length = 0;
        this.queued = 0;
        if (this.ended) this.afterHeld = () => this.hooks.final(this.tooLarge(bytes.byteLength));
        else this.cancel(this.tooLarge(bytes.byteLength));
        break;
      }
      this.queue.shift();
      this.queued -= bytes.byteLength;
      this.buffer.release(bytes.byteLength);
      if (r !== 'queued') {
        this.abort(new TransportError('client disconnected'));
        return true;
      }
    }
    const after = this.afterHeld;
    this.afterHeld = undefined;
    after?.();
    return true;
  }

  /**
   * A push the connection refuses for its size, which it would refuse at every attempt: a non-retryable typed
   * error (a TransportError would have the client subscribe again and get the same push, forever).
   */
  private tooLarge(n: number): Error {
    return new InvalidArgumentError(
      `a push of ${n} bytes exceeds maxMessageSize (${this.buffer.conn.limits.maxMessageSize} bytes): the subscription cannot go on past it; ask for less (a watch without prevKv, or one that takes fragments)`,
    );
  }

  /**
   * The server ends it: the handler's signal aborts now; the pushes already accepted are still written (the
   * bound that was hit caps them), then the final error answer.
   */
  cancel(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.cancelledByServer = true;
    this.controller.abort(error);
    this.hooks.cancelled(error);
    this.then(() => this.hooks.final(error));
  }

  /** The handler settled: nothing more is pushed; `fn` (its answer) runs once the held pushes are written. */
  settle(fn: () => void): void {
    this.ended = true;
    this.then(fn);
  }

  private then(fn: () => void): void {
    if (this.queue.length === 0) {
      fn();
      this.buffer.forget(this);
      return;
    }
    this.afterHeld = () => {
      fn();
      this.buffer.forget(this);
    };
    this.buffer.wait(this);
  }

  /** Ends it without an answer (client cancel, connection closed): held pushes are dropped. */
  abort(reason: Error): void {
    if (!this.ended) {
      this.ended = true;
      this.controller.abort(reason);
    }
    this.buffer.release(this.queued);
    this.queue.length = 0;
    this.queued = 0;
    this.afterHeld = undefined;
    this.buffer.forget(this);
  }
}
