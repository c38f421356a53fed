import { AbortedError, ErrorCode, InvalidArgumentError, isConsensusError, type Clock } from '@consensus-kit/core';
import { systemClock } from '@consensus-kit/core/host';
import { kvErrorFromRemote } from './errors';
import type { KvEvent } from './mvcc-store';
import { canSubscribe, validateWireRequest, type KvChannel, type KvSubscribeChannel, type KvWatchRequest, type WatchPush } from './wire';

export interface WatchOptions {
  /** Watch every key starting with `key` (an empty key with `prefix` watches everything). */
  prefix?: boolean;
  /** First revision to deliver; history from there is replayed. Default: the serving node's revision + 1. */
  startRevision?: number;
  /** Events carry the key's previous version (`prev`). */
  prevKv?: boolean;
  /** Yield `{ progress: true, revision }` batches when the node's progress interval finds the watch quiet. */
  progressNotify?: boolean;
  /** Aborting it ends the watch (the iterator finishes without an error). */
  signal?: AbortSignal;
  /**
   * Batches held for a consumer that has not taken them. At this many, the watch closes its subscription (the
   * node stops sending) and reopens it, from the next revision, once the consumer has taken them all: client
   * memory stays bounded and nothing is lost. Default 1,000.
   */
  maxBufferedBatches?: number;
  /** Pauses between reconnect attempts (doubling from 50 ms to 1 s). Default `systemClock`. */
  clock?: Clock;
  /** Told of each reconnect (for logs): the error that ended the last subscription and where the next resumes. */
  onReconnect?: (info: { error: Error; attempt: number; resumeFrom: number | undefined }) => void;
}

/** What a watch yields: the events of one or more whole revisions, in revision order. */
export interface WatchBatch {
  /** Every matching event up to this revision has now been delivered. */
  revision: number;
  events: KvEvent[];
  /** A progress notification (no events): the watch is complete up to `revision`. */
  progress?: true;
}

/** A running watch: iterate it for batches; `cancel()` (or the signal) ends it. */
export interface Watch extends AsyncIterable<WatchBatch> {
  /** Ends the watch: the iterator finishes (after nothing more), the subscription is closed. */
  cancel(): void;
  /** Resolves once a node has accepted the watch; rejects with the error that ended it before that. */
  readonly created: Promise<void>;
  /** The revision every matching event up to which has been received (0 before the watch is created). */
  readonly revision: number;
  /** Subscriptions opened again after a lost connection, a node crash or a slow-subscriber cancel. */
  readonly reconnects: number;
}

/**
 * Errors after which a watch is opened again (from the next revision): a lost connection, a node that is
 * stopping or serves no requests, a subscription the node cancelled because this client read too slowly, a
 * timeout. A refused handshake (wrong cluster or secret) and the watch's own errors (a compacted revision, a
 * bad request) end it.
 */
function retryable(e: unknown): boolean {
  if (!isConsensusError(e)) return false;
  if (e.code === ErrorCode.TRANSPORT) {
    const h = e as { reason?: unknown; remote?: unknown };
    const refused = h.remote === true && typeof h.reason === 'string' && !['timeout', 'closed', 'too-many-connections', 'malformed'].includes(h.reason);
    return !refused;
  }
  // A node that is stopping answers STOPPED (retry elsewhere); a closed local channel does too (give up).
  if (e.code === ErrorCode.STOPPED) return e.message.startsWith('remote: ');
  return e.code === ErrorCode.TIMEOUT || e.code === ErrorCode.NOT_LEADER || e.code === ErrorCode.LEADERSHIP_LOST;
}

class WatchStream implements Watch {
  private readonly queue: WatchBatch[] = [];
  private waiter: { resolve: (r: IteratorResult<WatchBatch>) => void; reject: (e: unknown) => void } | undefined;
  private error: Error | undefined;
  private finished = false;
  /** The next revision owed (undefined until the first node says where "now" is). */
  private next: number | undefined;
  private current: AbortController | undefined;
  /** Fragments of revision `next` received on the current subscription (a revision too large for one push). */
  private partial: KvEvent[] = [];
  /** The consumer is behind: the subscription was closed until it catches up. */
  private paused = false;
  private resumeConsumer: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private readonly max: number;
  private readonly clock: Clock;
  private createdResolve!: () => void;
  private createdReject!: (e: unknown) => void;
  readonly created: Promise<void>;
  reconnects = 0;

  constructor(
    private readonly channel: KvSubscribeChannel,
    private readonly request: Omit<KvWatchRequest, 'startRevision'>,
    private readonly options: WatchOptions,
  ) {
    this.next = options.startRevision;
    this.max = Math.max(1, options.maxBufferedBatches ?? 1000);
    this.clock = options.clock ?? systemClock;
    this.created = new Promise((resolve, reject) => {
      this.createdResolve = resolve;
      this.createdReject = reject;
    });
    this.created.catch(() => undefined); // the iterator reports it too
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.finished = true;
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
    if (!this.finished) void this.run();
  }

  get revision(): number {
    return this.next === undefined ? 0 : this.next - 1;
  }

  cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.current?.abort(new AbortedError('watch cancelled'));
    this.wake?.();
    this.resumeConsumer?.();
    this.createdReject(new AbortedError('watch cancelled before it was created'));
    this.settleWaiter();
  }

  private fail(e: Error): void {
    if (this.finished) return;
    this.error = e;
    this.finished = true;
    this.createdReject(e);
    this.settleWaiter();
  }

  private settleWaiter(): void {
    const w = this.waiter;
    if (w === undefined) return;
    if (this.queue.length > 0) {
      this.waiter = undefined;
      w.resolve({ value: this.queue.shift()!, done: false });
      this.afterTake();
    } else if (this.finished) {
      this.waiter = undefined;
      if (this.error !== undefined) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private afterTake(): void {
    if (this.paused && this.queue.length === 0) {
      this.paused = false;
      const r = this.resumeConsumer;
      this.resumeConsumer = undefined;
      r?.();
    }
  }

  private enqueue(b: WatchBatch): void {
    this.queue.push(b);
    this.settleWaiter();
  }

  private onPush(v: unknown, ac: AbortController, opened: () => void): void {
    if (ac.signal.aborted || this.finished || typeof v !== 'object' || v === null) return;
    const p = v as WatchPush;
    if ('created' in p) {
      if (this.next === undefined) this.next = p.revision + 1;
      opened();
      this.createdResolve();
      return;
    }
    const next = this.next ?? 1;
    if (typeof p.revision !== 'number' || p.revision < next) return; // already delivered (never expected)
    if ('events' in p && p.fragment === true) {
      // Part of one revision: held until its last part comes; lost with the subscription if it ends first
      // (the next one sends the revision again from its start).
      for (const e of p.events) if (e.revision >= next) this.partial.push(e);
      return;
    }
    if ('events' in p) {
      // Each revision once: a push never repeats what an earlier subscription delivered.
      let events = p.events.filter((e) => e.revision >= next);
      if (this.partial.length > 0) {
        events = this.partial.concat(events);
        this.partial = [];
      }
      this.next = p.revision + 1;
      if (events.length > 0) this.enqueue({ revision: p.revision, events });
    } else if ('progress' in p) {
      this.next = p.revision + 1;
      if (this.request.progressNotify === true) this.enqueue({ revision: p.revision, events: [], progress: true });
    }
    if (this.queue.length >= this.max && !this.paused) {
      // The consumer is behind: stop the node sending rather than hold more here.
      this.paused = true;
      ac.abort(new AbortedError('watch paused: the consumer is behind'));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(done, ms);
      this.wake = () => {
        this.clock.clearTimeout(t);
        done();
      };
      function done() {
        resolve();
      }
    });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.finished) {
      if (this.paused) {
        await new Promise<void>((resolve) => {
          this.resumeConsumer = resolve;
          if (!this.paused || this.finished) resolve();
        });
        continue;
      }
      const ac = new AbortController();
      this.current = ac;
      this.partial = [];
      const body: KvWatchRequest = { ...this.request, ...(this.next !== undefined ? { startRevision: this.next } : {}) };
      let error: Error;
      try {
        await this.channel.subscribe(body, (v) => this.onPush(v, ac, () => (attempt = 0)), { signal: ac.signal });
        error = new AbortedError('the node ended the watch');
      } catch (e) {
        if (this.finished) return;
        if (ac.signal.aborted && this.paused) continue;
        const err = kvErrorFromRemote(e) as Error;
        if (!retryable(err)) {
          this.fail(err);
          return;
        }
        error = err;
      }
      if (this.finished) return;
      attempt++;
      this.reconnects++;
      this.options.onReconnect?.({ error, attempt, resumeFrom: this.next });
      await this.sleep(Math.min(1000, 50 * 2 ** Math.min(attempt - 1, 5)));
      this.wake = undefined;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => {
        if (this.queue.length > 0) {
          const value = this.queue.shift()!;
          this.afterTake();
          return Promise.resolve({ value, done: false });
        }
        if (this.finished) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: () => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Watches a key or a prefix (etcd's Watch): an async iterable of event batches, in revision order, each
 * revision exactly once. The watch is served by any node; when its connection is lost or the node crashes
 * it reconnects (to any node, through the channel's endpoints) and resumes from the last revision received
 * + 1, so across a leader change or a reconnect no event is lost or repeated. A start revision that has
 * been compacted ends it with `RevisionCompactedError` (its `compactRevision` says where history begins).
 *
 * ```ts
 * const rpc = createRpcClient({ endpoints, clusterId });
 * const watch = watchKeys(rpc, 'jobs/', { prefix: true, startRevision: 1 });
 * for await (const batch of watch) for (const e of batch.events) console.log(e.type, e.revision);
 * ```
 */
export function watchKeys(channel: KvChannel, key: string, options: WatchOptions = {}): Watch {
  if (!canSubscribe(channel)) throw new InvalidArgumentError('this channel cannot open subscriptions (watch needs server push): use createRpcClient from @consensus-kit/transport-tcp');
  const request: KvWatchRequest = {
    t: 'kv.watch',
    key,
    ...(options.prefix === true ? { prefix: true } : {}),
    ...(options.prevKv === true ? { prevKv: true } : {}),
    ...(options.progressNotify === true ? { progressNotify: true } : {}),
    // A revision too large for one push comes in parts (a large transaction, prefix delete or lease expiry).
    fragment: true,
  };
  // Bad options fail here, at once, rather than as the first error of the iterator.
  validateWireRequest(options.startRevision === undefined ? request : { ...request, startRevision: options.startRevision });
  return new WatchStream(channel, request, options);
}
