import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  AbortedError,
  ConfigError,
  ErrorCode,
  InvalidArgumentError,
  StoppedError,
  TimeoutError,
  isConsensusError,
  preview,
  type Clock,
  type ErrorCode as Code,
} from '@consensus-kit/core';
import { systemClock } from '@consensus-kit/core/host';
import {
  type CasResult,
  type CompactResult,
  type DeleteResult,
  type KeyValue,
  type KvCommand,
  type KvCompare,
  type KvQuery,
  type KvStatus,
  type KvValue,
  type LeaseGrantResult,
  type LeaseInfo,
  type LeaseKeepAliveResult,
  type LeaseRevokeResult,
  type PutResult,
  type TxnRequest,
  type TxnResult,
  admitCommand,
  admitQuery,
  validateCommand,
  validateQuery,
} from './commands';
import { kvErrorFromRemote } from './errors';
import { LeaseKeeper, type KeepAliveOptions, type LeaseKeepAlive } from './lease-keeper';
import { watchKeys, type Watch, type WatchOptions } from './watch-client';
import type { Consistency, KvChannel, KvWireRequest } from './wire';

export interface KvClientOptions {
  channel: KvChannel;
  /** Overall deadline of one call, retries included. Default 10,000 ms; `Infinity` retries until aborted or closed. */
  timeoutMs?: number;
  /** Deadline of one attempt. Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /** Session id for exactly-once writes, 1 to 128 characters. Default: random. */
  sessionId?: string;
  /** Time for call deadlines and the pauses between retries (default `systemClock`; a `ManualClock` in tests). */
  clock?: Clock;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PutOptions extends CallOptions {
  /** Return the key as it was before the put (etcd's prev_kv). */
  prevKv?: boolean;
  /**
   * Attach the key to this lease (`kv.leases.grant`): it is deleted when the lease expires or is revoked. A put
   * without it detaches the key from any lease. A lease that does not exist: `LeaseNotFoundError`.
   */
  lease?: number;
}

export interface GrantOptions extends CallOptions {
  /** Ask for this lease id (a positive integer not in use); default: the cluster's next id. */
  id?: number;
}

export interface TimeToLiveOptions extends ReadOptions {
  /** Also list the keys attached to the lease. */
  keys?: boolean;
}

export interface ReadOptions extends CallOptions {
  /** 'linearizable' (default) reads through the leader; 'serializable' reads one node's local state. */
  consistency?: Consistency;
}

export interface GetOptions extends ReadOptions {
  /**
   * Read the store as it was at this revision (etcd's `--rev`); absent or 0: now. Older than the compaction
   * point: `RevisionCompactedError`; not reached yet: `FutureRevisionError` (a serializable read on a lagging
   * node can get it for a revision the leader has).
   */
  revision?: number;
}

export interface RangeOptions extends GetOptions {
  /** At most this many keys. */
  limit?: number;
  /** Start past this key: pass the last key of the previous page to read a large prefix page by page. */
  after?: string;
}

export interface DeleteOptions extends CallOptions {
  /** Delete every key that starts with `key`. */
  prefix?: boolean;
  /** Return the deleted keys with their values in `prevKvs` (etcd's prev_kv). */
  prevKv?: boolean;
}

/** Errors after which the same request may be sent again: with a session stamp, a write still applies once. */
const RETRYABLE = new Set<Code>([
  ErrorCode.NOT_LEADER,
  ErrorCode.LEADERSHIP_LOST,
  ErrorCode.TRANSPORT,
  ErrorCode.STOPPED,
  ErrorCode.TIMEOUT,
  ErrorCode.PROPOSAL_DROPPED,
]);

/** Handshake refusals that a retry cannot cure: the endpoint belongs to another cluster, or the secret is wrong. */
const PERMANENT_REFUSALS: ReadonlySet<unknown> = new Set(['cluster-mismatch', 'version-mismatch', 'bad-secret', 'secret-required']);

function retryable(e: unknown): boolean {
  if (!isConsensusError(e) || !RETRYABLE.has(e.code)) return false;
  return !PERMANENT_REFUSALS.has((e as { reason?: unknown }).reason);
}

function checkTimeout(ms: unknown, what: string, make: (message: string) => Error, infinite: boolean): void {
  if (ms === undefined) return;
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms <= 0 || (!infinite && !Number.isFinite(ms))) {
    throw make(`${what} must be a positive number of milliseconds${infinite ? ' (or Infinity)' : ''}, got ${preview(ms)}`);
  }
}

/**
 * A key-value client. Every write carries a session stamp (id, seq), so a write retried after a leader
 * crash, a lost connection or a timeout is applied exactly once: the cluster answers a duplicate from its
 * dedup table. Reads are retried freely. Calls reject with a typed error once their deadline passes.
 */
export class KvClient {
  private readonly channel: KvChannel;
  private readonly timeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly clock: Clock;
  readonly sessionId: string;
  private seq = 0;
  /** Seqs sent and not yet answered; the lowest bounds what the cluster may forget (`ack`). */
  private readonly inflight = new Set<number>();
  private closed = false;
  /** Aborted by `close()`: wakes every call that is waiting to retry. */
  private readonly closing = new AbortController();
  /** Leases (etcd's Lease API): grant, revoke, keepAlive in the background, timeToLive, list. */
  readonly leases: KvLeases;

  constructor(options: KvClientOptions) {
    if (typeof options?.channel?.request !== 'function') throw new ConfigError('KvClient needs a channel');
    const config = (message: string) => new ConfigError(message);
    checkTimeout(options.timeoutMs, 'timeoutMs', config, true);
    checkTimeout(options.attemptTimeoutMs, 'attemptTimeoutMs', config, false);
    const id = options.sessionId;
    if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 128)) {
      throw new ConfigError(`sessionId must be a string of 1 to 128 characters, got ${preview(id)}`);
    }
    this.channel = options.channel;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 3000;
    this.clock = options.clock ?? systemClock;
    // Every call waiting out a retry pause listens here: many at once is normal, not a leak.
    setMaxListeners(0, this.closing.signal);
    this.sessionId = options.sessionId ?? `s-${randomBytes(8).toString('hex')}`;
    this.leases = new KvLeases(this.clock, {
      write: (cmd, o, stamped) => this.write(cmd, o, stamped),
      read: (q, o) => this.read(q, o),
    });
  }

  /** Writes `value`; with `prevKv: true` the answer carries the key as it was before (`prev`). */
  put(key: string, value: KvValue, options?: PutOptions): Promise<PutResult> {
    const cmd: KvCommand = { op: 'put', key, value, ...(options?.prevKv === true ? { prevKv: true } : {}), ...(options?.lease ? { lease: options.lease } : {}) };
    return this.write(cmd, options) as Promise<PutResult>;
  }

  /**
   * Deletes `key`, or every key starting with it when `prefix` is set. Answers how many keys went (`deleted`),
   * and with `prevKv: true` the keys themselves (`prevKvs`).
   */
  delete(key: string, options?: DeleteOptions): Promise<DeleteResult> {
    const cmd: KvCommand = { op: 'delete', key, ...(options?.prefix ? { prefix: true } : {}), ...(options?.prevKv ? { prevKv: true } : {}) };
    return this.write(cmd, options) as Promise<DeleteResult>;
  }

  /**
   * Writes `value` (or deletes, for `null`) only if `compare` holds: a one-compare transaction on the node
   * (sent as a `cas` command, which every version of the node understands).
   */
  cas(key: string, compare: KvCompare, value: KvValue | null, options?: CallOptions): Promise<CasResult> {
    return this.write({ op: 'cas', key, compare, value }, options) as Promise<CasResult>;
  }

  /**
   * An etcd v3 transaction: if every compare in `if` holds, the ops of `then` run, else those of `else`;
   * atomically, all writes at one revision, exactly once (it is a write with a session stamp).
   *
   * ```ts
   * const r = await kv.txn({
   *   if: [{ key: 'leader', target: 'version', cmp: '=', value: 0 }],
   *   then: [{ op: 'put', key: 'leader', value: 'n1' }],
   *   else: [{ op: 'get', key: 'leader' }],
   * });
   * ```
   * A malformed transaction (more than `MAX_TXN_OPS` ops, a key written twice, a bad compare) is refused with
   * `InvalidTxnError` before it is sent.
   */
  txn(request: TxnRequest, options?: CallOptions): Promise<TxnResult> {
    if (typeof request !== 'object' || request === null) return Promise.reject(new InvalidArgumentError(`txn needs { if?, then?, else? }, got ${preview(request)}`));
    return this.write({ ...request, op: 'txn' }, options) as Promise<TxnResult>;
  }

  /**
   * Forgets the history before `revision` on every replica (a replicated command, etcd's compact). Reads below
   * it fail with `RevisionCompactedError` afterwards; `revision` at or below the compaction point fails with
   * `RevisionCompactedError`, above the current revision with `FutureRevisionError`.
   */
  compact(revision: number, options?: CallOptions): Promise<CompactResult> {
    return this.write({ op: 'compact', revision }, options) as Promise<CompactResult>;
  }

  async get(key: string, options?: GetOptions): Promise<KeyValue | undefined> {
    return (await this.read({ op: 'get', key, ...(options?.revision ? { revision: options.revision } : {}) }, options)) as KeyValue | undefined;
  }

  /** The store's current and compaction revisions (etcd's response header revision and compact revision). */
  async status(options?: ReadOptions): Promise<KvStatus> {
    return (await this.read({ op: 'status' }, options)) as KvStatus;
  }

  /**
   * Keys starting with `prefix`, in key order (UTF-16 code units, as JavaScript compares strings). An answer
   * must fit in one message (32 MiB by default): page through a large prefix with `limit` and `after`.
   */
  async range(prefix: string, options?: RangeOptions): Promise<KeyValue[]> {
    const q: KvQuery = {
      op: 'range',
      prefix,
      ...(options?.limit !== undefined ? { limit: options.limit } : {}),
      ...(options?.after !== undefined ? { after: options.after } : {}),
      ...(options?.revision ? { revision: options.revision } : {}),
    };
    return (await this.read(q, options)) as KeyValue[];
  }

  /**
   * Watches a key or, with `prefix`, every key under it (etcd's Watch) over this client's connections: event
   * batches in revision order, each revision once, resumed from the next revision on another node after a
   * lost connection or a crash (see `watchKeys`). `close()` ends it, as `cancel()` or `options.signal` do.
   *
   * ```ts
   * for await (const batch of kv.watch('jobs/', { prefix: true })) for (const e of batch.events) console.log(e.type, e.revision);
   * ```
   */
  watch(key: string, options: WatchOptions = {}): Watch {
    const signal = options.signal === undefined ? this.closing.signal : AbortSignal.any([this.closing.signal, options.signal]);
    return watchKeys(this.channel, key, { ...options, signal });
  }

  /** Closes the connections and ends every watch. Calls still in flight reject with `StoppedError` at once. */
  async close(): Promise<void> {
    this.closed = true;
    this.leases.stopAll();
    this.closing.abort();
    await this.channel.close();
  }

  /**
   * Sends a write. `stamped` (the default) puts it in the client's session, so a retry applies once; a
   * keepalive goes without one: renewing twice is the same as once, and its answer need not be kept.
   */
  private write(cmd: KvCommand, options: CallOptions = {}, stamped = true): Promise<unknown> {
    try {
      validateCommand(cmd);
      admitCommand(cmd);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!stamped) return this.call({ t: 'kv.write', req: { cmd } }, options);
    const seq = ++this.seq;
    this.inflight.add(seq);
    // Seqs go in increasing, and a Set iterates in insertion order: its first is the lowest unanswered.
    const ack = (this.inflight.values().next().value as number) - 1;
    const body: KvWireRequest = { t: 'kv.write', req: { cmd, session: ack > 0 ? { id: this.sessionId, seq, ack } : { id: this.sessionId, seq } } };
    return this.call(body, options).then(
      (answer) => {
        this.inflight.delete(seq);
        return answer;
      },
      (e: unknown) => {
        this.inflight.delete(seq);
        throw e;
      },
    );
  }

  private read(q: KvQuery, options: ReadOptions = {}): Promise<unknown> {
    try {
      validateQuery(q);
      admitQuery(q);
      const c = options.consistency;
      if (c !== undefined && c !== 'linearizable' && c !== 'serializable') {
        throw new InvalidArgumentError(`consistency must be 'linearizable' or 'serializable', got ${preview(c)}`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const body: KvWireRequest = { t: 'kv.read', q, ...(options.consistency ? { consistency: options.consistency } : {}) };
    return this.call(body, options);
  }

  /**
   * Sends `body` until it is answered, a non-retryable error comes back, or the deadline passes. The first
   * attempt is made here, without the retry loop's own promise: most calls are answered by it.
   */
  private call(body: KvWireRequest, options: CallOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new StoppedError('the kv client is closed'));
    if (options.signal?.aborted) return Promise.reject(new AbortedError(options.signal.reason, 'operation aborted by its signal before it was sent'));
    try {
      checkTimeout(options.timeoutMs, 'timeoutMs', (m) => new InvalidArgumentError(m), true);
    } catch (e) {
      return Promise.reject(e);
    }
    const total = options.timeoutMs ?? this.timeoutMs;
    const deadline = this.clock.now() + total;
    return this.channel.request(body, this.attempt(total, options.signal)).catch((e: unknown) => this.retry(body, options, total, deadline, e));
  }

  private attempt(remaining: number, signal: AbortSignal | undefined): { timeoutMs: number; signal?: AbortSignal } {
    const timeoutMs = Math.min(remaining, this.attemptTimeoutMs);
    return signal ? { timeoutMs, signal } : { timeoutMs };
  }

  /**
   * After a failed attempt: backs off and tries again while the error is retryable and time remains. The
   * node's kv errors travel as core's classes: the one that ends the call gets its kv class back
   * (`RevisionCompactedError`, `FutureRevisionError`).
   */
  private async retry(body: KvWireRequest, options: CallOptions, total: number, deadline: number, first: unknown): Promise<unknown> {
    try {
      return await this.retryLoop(body, options, total, deadline, first);
    } catch (e) {
      throw kvErrorFromRemote(e);
    }
  }

  private async retryLoop(body: KvWireRequest, options: CallOptions, total: number, deadline: number, first: unknown): Promise<unknown> {
    if (this.closed) throw new StoppedError('the kv client was closed while the call was in flight; its outcome is unknown');
    if (!retryable(first)) throw first;
    let last: unknown = first;
    let delay = 25;
    for (;;) {
      await sleep(this.clock, Math.min(delay, Math.max(0, deadline - this.clock.now())), options.signal, this.closing.signal);
      delay = Math.min(delay * 2, 500);
      if (this.closed) throw new StoppedError('the kv client was closed while the call was in flight; its outcome is unknown');
      if (options.signal?.aborted) throw new AbortedError(options.signal.reason);
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) throw last !== undefined && !isConsensusError(last, ErrorCode.TIMEOUT) ? last : new TimeoutError(total, 'kv request');
      try {
        return await this.channel.request(body, this.attempt(remaining, options.signal));
      } catch (e) {
        if (this.closed) throw new StoppedError('the kv client was closed while the call was in flight; its outcome is unknown');
        if (!retryable(e)) throw e;
        last = e;
      }
    }
  }
}

interface LeaseTransport {
  write(cmd: KvCommand, options: CallOptions | undefined, stamped?: boolean): Promise<unknown>;
  read(q: KvQuery, options: ReadOptions | undefined): Promise<unknown>;
}

/**
 * A client's leases (etcd clientv3's Lease): replicated commands and queries, and background keepalives that
 * renew every lease this client keeps in one command per round.
 *
 * ```ts
 * const { id } = await kv.leases.grant(10_000);
 * await kv.put('services/api/n1', '10.0.0.1:8080', { lease: id }); // gone 10 s after this client stops
 * const keeper = kv.leases.keepAlive(id, { onLost: ({ reason }) => console.error('lease lost:', reason) });
 * // ... later
 * keeper.stop();
 * await kv.leases.revoke(id); // deletes the key now
 * ```
 */
export class KvLeases {
  private readonly keeper: LeaseKeeper;

  constructor(
    clock: Clock,
    private readonly t: LeaseTransport,
  ) {
    this.keeper = new LeaseKeeper(clock, (ids, timeoutMs) => this.t.write({ op: 'leaseKeepAlive', ids }, { timeoutMs }, false) as Promise<LeaseKeepAliveResult>);
  }

  /** A lease of `ttlMs` (raised to the cluster's minimum TTL, 1.5 s by default: the answer says what was granted). */
  grant(ttlMs: number, options?: GrantOptions): Promise<LeaseGrantResult> {
    return this.t.write({ op: 'leaseGrant', ttl: ttlMs, ...(options?.id !== undefined ? { id: options.id } : {}) }, options) as Promise<LeaseGrantResult>;
  }

  /** Revokes the lease and deletes its keys (one revision). Not found: `LeaseNotFoundError`. */
  revoke(id: number, options?: CallOptions): Promise<LeaseRevokeResult> {
    return this.t.write({ op: 'leaseRevoke', id }, options) as Promise<LeaseRevokeResult>;
  }

  /** One keepalive for these leases now (what `keepAlive` sends every round); the ids not found are in `missing`. */
  keepAliveOnce(ids: number | number[], options?: CallOptions): Promise<LeaseKeepAliveResult> {
    return this.t.write({ op: 'leaseKeepAlive', ids: Array.isArray(ids) ? ids : [ids] }, options, false) as Promise<LeaseKeepAliveResult>;
  }

  /**
   * Keeps the lease alive in the background until `stop()` or `close()`: every TTL/3 one command renews every
   * lease this client keeps. `lost` settles (and `onLost` is called) when the cluster reports it missing or no
   * keepalive was acknowledged for a whole TTL.
   */
  keepAlive(id: number, options?: KeepAliveOptions): LeaseKeepAlive {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`lease id must be a positive integer, got ${preview(id)}`);
    return this.keeper.keep(id, options);
  }

  /** The lease's granted TTL, remaining ms and (with `keys`) its keys. Not found: `LeaseNotFoundError`. */
  async timeToLive(id: number, options?: TimeToLiveOptions): Promise<LeaseInfo> {
    return (await this.t.read({ op: 'leaseTimeToLive', id, ...(options?.keys ? { keys: true } : {}) }, options)) as LeaseInfo;
  }

  /** Every live lease, in id order. */
  async list(options?: ReadOptions): Promise<LeaseInfo[]> {
    return (await this.t.read({ op: 'leases' }, options)) as LeaseInfo[];
  }

  /** How many leases this client keeps alive. */
  get keptAlive(): number {
    return this.keeper.size;
  }

  /** Stops every keepalive (the client is closing). */
  stopAll(): void {
    this.keeper.close();
  }
}

/** Waits `ms` on `clock`, or less if either signal aborts. */
function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined, closing: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.setTimeout(done, ms);
    function done() {
      clock.clearTimeout(t);
      signal?.removeEventListener('abort', done);
      closing.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
    closing.addEventListener('abort', done, { once: true });
  });
}
