import { unpack } from 'msgpackr';
import { InvalidArgumentError, MalformedMessageError, ReplicatedTime, StoppedError, type LogEntry, type ReplicatedTimeState, type RestoreJob, type SnapshotJob, type StateMachine } from '@consensus-kit/core';
import {
  type CasResult,
  type CompactResult,
  type DeleteResult,
  type KeyValue,
  type KvCommand,
  type KvCompare,
  type KvQuery,
  type KvRequest,
  type KvResult,
  type KvStatus,
  type LeaseGrantResult,
  type LeaseInfo,
  type LeaseKeepAliveResult,
  type LeaseRevokeResult,
  type PutResult,
  type TimeResult,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  validateCommand,
  validateQuery,
  validateSession,
} from './commands';
import { FutureRevisionError, RevisionCompactedError, errorFromStored, storeError, type StoredError } from './errors';
import { DEFAULT_MAX_LEASES, DEFAULT_MIN_LEASE_TTL_MS, Lessor, type LeaseSnapshot } from './lease';
import { HistoryBuilder, KeyIndexBuilder, MvccStore, type KeyRecord, type KvEvent, type MvccSnapshot } from './mvcc-store';
import { ColumnarReader, ColumnarWriter, isColumnar } from './snapshot-format';
import { SessionTable, type SessionSnapshot, type SessionTableOptions, type StoredAnswer } from '@consensus-kit/core';
import { compareHolds } from './txn';

export type KvQueryResult = KeyValue | undefined | KeyValue[] | number | KvStatus | LeaseInfo | LeaseInfo[];

/** Revisions of history kept by default: reads at the last 10,000 revisions work, older ones are compacted. */
export const DEFAULT_HISTORY_REVISIONS = 10_000;

export interface KvStateMachineOptions extends SessionTableOptions {
  /**
   * Automatic compaction by retention: after every write the history older than this many revisions is
   * compacted (etcd's `--auto-compaction-mode=revision`), so memory is bounded by what this many revisions
   * wrote. `Infinity` keeps everything until a `compact` command. Default `DEFAULT_HISTORY_REVISIONS`.
   * Counted in revisions of the replicated log, never in time: every replica must be given the same value.
   */
  historyRevisions?: number;
  /**
   * The shortest lease TTL: a grant asking for less gets this (etcd's minLeaseTTL, 1.5 election timeouts).
   * Default `DEFAULT_MIN_LEASE_TTL_MS` (1,500 ms: nodes with the default 100 ms tick and 10 election ticks).
   * Every replica must be given the same value.
   */
  minLeaseTtlMs?: number;
  /** Live leases at most (a grant beyond is refused). Default `DEFAULT_MAX_LEASES`. The same on every replica. */
  maxLeases?: number;
  /** The largest step one time entry moves replicated time by (`ReplicatedTime`'s maxStepMs). Default 5,000 ms. */
  maxTimeStepMs?: number;
}

/** The snapshot written before MVCC history (format 1): live keys without a lease field, no history. */
interface SnapshotV1 {
  v: 1;
  revision: number;
  kvs: Omit<KeyValue, 'lease'>[];
  sessions: SessionSnapshot<KvResult, StoredError>;
  sweep: number;
}

/** Format 2: the MVCC store (live keys, retained history, compaction revision) and the session table. */
interface SnapshotV2 extends MvccSnapshot {
  v: 2;
  sessions: SessionSnapshot<KvResult, StoredError>;
  sweep: number;
}

/** Format 3: format 2 plus leases and replicated time. A key's lease is its `lease` field in the store. */
interface SnapshotV3 extends MvccSnapshot {
  v: 3;
  sessions: SessionSnapshot<KvResult, StoredError>;
  sweep: number;
  /** Every live lease, `[id, ttl, expiry]`, in id order. */
  leases: LeaseSnapshot;
  /** The lease id counter (the last id a grant without id handed out). */
  lastLeaseId: number;
  /** `ReplicatedTime` as `[term, leaderMs, now]`. */
  time: ReplicatedTimeState;
}

/**
 * Format 4 (`snapshot-format.ts`): format 3's content, the live keys in columns. This is its msgpack header:
 * everything but the live keys.
 */
interface SnapshotV4Header {
  revision: number;
  compactRevision: number;
  past: [key: string, recs: KeyRecord[]][];
  changeRevisions: number[];
  changeKeys: string[];
  sessions: SessionSnapshot<KvResult, StoredError>;
  sweep: number;
  leases: LeaseSnapshot;
  lastLeaseId: number;
  time: ReplicatedTimeState;
}

/** Keys a synchronous `snapshot()` walks per slice (the slicing does not change the bytes). */
const SNAPSHOT_SLICE_KEYS = 65_536;
/**
 * A unit of a snapshot step's budget is a key, or this many bytes of text (keys and string values), or
 * `STEP_RECORDS_PER_KEY` records of history, or this many bytes of history (about), whichever runs out first: a
 * step over keys with large values (up to 4 MB each) or long histories stops early instead of running far past
 * the slice the host gave it. Keys of about 100 bytes never reach it.
 */
const STEP_TEXT_BYTES_PER_KEY = 1024;
const STEP_RECORDS_PER_KEY = 8;
/** Once the keys are walked, a step of budget `b` copies `b * COPY_BYTES_PER_KEY` bytes into the snapshot. */
const COPY_BYTES_PER_KEY = 4096;

/**
 * Bytes of a format-4 snapshot's text an incremental restore decodes at a time (`beginRestore`): a fraction of a
 * millisecond of UTF-8 decoding, so a slice of the host's restore stays about as short as it asks.
 */
const RESTORE_TEXT_CHUNK = 64 * 1024;
/**
 * A unit of a restore step's budget is a key, or this many code units (bytes for byte values) of keys and values
 * read, or this many bytes of history unpacked, whichever runs out first (at least one key or history record a
 * step): the host's steps of 64 units read 64 small keys, or one 64 KiB value. A step of 64 keys of 64 KiB each
 * decoded 4 MB.
 */
const RESTORE_BYTES_PER_UNIT = 1024;

/** The state a restore replaces, built aside and swapped in at once. */
interface KvParts {
  store: MvccStore;
  sessions: SessionTable<KvResult, StoredError>;
  time: ReplicatedTime;
  lessor: Lessor;
}

/** A restore being prepared: each `next` does about `budget` keys of it; the parts once they are built. */
interface RestoreBuilder {
  next(budget: number): KvParts | undefined;
}

/** Which branch each transaction of a tree takes, decided before any of its ops runs. */
interface TxnPath {
  succeeded: boolean;
  /** The paths of the nested transactions of the branch taken, in op order. */
  nested: TxnPath[];
}

/** One write command or transaction in progress: the revision its writes share, and whether it wrote. */
interface WriteContext {
  revision: number;
  wrote: boolean;
}

/**
 * A replicated key-value store modelled on etcd v3: put, get, delete (by key or prefix), range by prefix,
 * transactions (compare, then / else) and compare-and-set on top of them, every write command bumping one
 * cluster-wide revision (etcd's `createRevision`/`modRevision`/`version` on every key), reads at a past
 * revision, compaction (by command and by retention), and exactly-once client sessions. Deterministic: the
 * same log gives the same store on every replica (no clock, no randomness; retention counts revisions).
 *
 * `apply` returns the command's result, or throws the same typed error on every replica for a bad command.
 * Commands inside a session return their stored answer when retried (and rethrow a stored error).
 */
export class KvStateMachine implements StateMachine<KvRequest, KvResult, KvQuery, KvQueryResult> {
  private store = new MvccStore();
  private sessions: SessionTable<KvResult, StoredError>;
  private readonly historyRevisions: number;
  /** Replicated time, moved only by time entries (DESIGN r2). */
  private time: ReplicatedTime;
  private lessor: Lessor;
  private readonly options: KvStateMachineOptions;
  /** Bumped by every restore: an incremental restore begun before a later one must not swap its state in after it. */
  private restores = 0;
  /** Incremental snapshots in progress: a restore cancels them (they walk the store it replaces). */
  private readonly jobs = new Set<SnapshotJob>();
  /** Told each write's events, before automatic compaction can drop them (watch hubs). Not state: never in a snapshot. */
  private readonly changeListeners = new Set<(events: KvEvent[]) => void>();

  constructor(options: KvStateMachineOptions = {}) {
    this.options = { ...options };
    const parts = this.newParts();
    this.sessions = parts.sessions;
    this.time = parts.time;
    this.lessor = parts.lessor;
    const h = options.historyRevisions ?? DEFAULT_HISTORY_REVISIONS;
    if (h !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(h) || h < 0)) {
      throw new InvalidArgumentError(`historyRevisions must be a non-negative integer or Infinity, got ${String(h)}`);
    }
    this.historyRevisions = h;
  }

  /** Empty parts of the state, made with this machine's options (a restore fills them aside). */
  private newParts(): KvParts {
    const o = this.options;
    return {
      store: new MvccStore(),
      sessions: new SessionTable<KvResult, StoredError>({ ...o, storeError }),
      time: new ReplicatedTime(o.maxTimeStepMs === undefined ? {} : { maxStepMs: o.maxTimeStepMs }),
      lessor: new Lessor(o.minLeaseTtlMs ?? DEFAULT_MIN_LEASE_TTL_MS, o.maxLeases ?? DEFAULT_MAX_LEASES),
    };
  }

  /** The cluster revision: the number of write commands that changed the store. */
  get currentRevision(): number {
    return this.store.revision;
  }

  /** The same as `currentRevision` (what a watch source reads). */
  get revision(): number {
    return this.store.revision;
  }

  /** The oldest revision still readable (0 before the first compaction). */
  get compactRevision(): number {
    return this.store.compactRevision;
  }

  get size(): number {
    return this.store.size;
  }

  /**
   * The changes at revision `from` and after, in the order they were applied, at most `limit` (what a watch
   * from a past revision replays). `from` must be above the compaction revision, else `RevisionCompactedError`.
   */
  changes(from: number, limit?: number): KvEvent[] {
    return this.store.changes(from, limit);
  }

  /**
   * Calls `listener` with the events of every write as it is applied, before automatic compaction by retention
   * (which, with `historyRevisions: 0`, drops them at once) and before the next write. Returns the unsubscribe.
   * What a watch hub follows, so a watcher gets every event whatever the retention.
   */
  onChanges(listener: (events: KvEvent[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** How many keys have history retained (superseded versions or deletions newer than the compaction). */
  get historyKeys(): number {
    return this.store.historyKeys;
  }

  /** Replicated time in ms (the sum of the time entries' same-term steps): what lease expiry is measured in. */
  get now(): number {
    return this.time.now;
  }

  /** How many leases are live. */
  get leaseCount(): number {
    return this.lessor.size;
  }

  /** The time entry the leader's host proposes (DESIGN r2): its term and clock, never a client's. */
  timeCommand(term: number, clockMs: number): KvRequest {
    return { cmd: { op: 'time', term, ms: clockMs } };
  }

  apply(entry: LogEntry, request: KvRequest): KvResult {
    if (typeof request !== 'object' || request === null) throw new InvalidArgumentError('kv request must be { cmd, session? }');
    validateCommand(request.cmd);
    if (request.cmd.op === 'time') {
      if (request.session !== undefined) throw new InvalidArgumentError('a time entry is never part of a client session');
      return this.tick(request.cmd.term, request.cmd.ms);
    }
    if (request.session === undefined) return this.execute(request.cmd);
    validateSession(request.session);
    const answer: StoredAnswer<KvResult, StoredError> = this.sessions.run(request.session, entry.index, () => this.execute(request.cmd));
    if ('ok' in answer) return answer.ok;
    throw errorFromStored(answer.error, request.session.id);
  }

  query(q: KvQuery): KvQueryResult {
    validateQuery(q);
    switch (q.op) {
      case 'get':
        if (q.revision) this.store.checkReadable(q.revision);
        return this.store.get(q.key, q.revision);
      case 'range':
        if (q.revision) this.store.checkReadable(q.revision);
        return this.store.range(q.prefix, q.limit, q.after, q.revision);
      case 'revision':
        return this.store.revision;
      case 'status':
        return { revision: this.store.revision, compactRevision: this.store.compactRevision };
      case 'leaseTimeToLive':
        return this.leaseInfo(q.id, q.keys === true);
      case 'leases':
        return this.lessor.list().map((l) => ({ id: l.id, ttl: l.ttl, remaining: Math.max(0, l.expiry - this.time.now) }));
    }
  }

  /** etcd's TimeToLive: granted TTL, remaining ms of replicated time, and the keys when asked. */
  private leaseInfo(id: number, keys: boolean): LeaseInfo {
    const l = this.lessor.require(id);
    const info: LeaseInfo = { id, ttl: l.ttl, remaining: Math.max(0, l.expiry - this.time.now) };
    if (keys) info.keys = [...l.keys].sort();
    return info;
  }

  /**
   * Keys starting with `prefix`, in key order (UTF-16 code units, as JavaScript compares strings), at most
   * `limit` of them, starting past `after` when it is given (to page through a large prefix); at `revision`
   * when given (it must be readable).
   */
  range(prefix: string, limit = Number.POSITIVE_INFINITY, after?: string, revision?: number): KeyValue[] {
    if (revision) this.store.checkReadable(revision);
    return this.store.range(prefix, limit, after, revision);
  }

  private execute(cmd: KvCommand): KvResult {
    switch (cmd.op) {
      case 'put': {
        const lease = cmd.lease ?? 0;
        if (lease !== 0) this.lessor.require(lease);
        return this.write((ctx) => this.put(cmd.key, cmd.value, cmd.prevKv === true, ctx, lease));
      }
      case 'delete':
        return this.write((ctx) => this.delete(cmd.key, cmd.prefix === true, cmd.prevKv === true, ctx));
      case 'cas':
        return this.cas(cmd.key, cmd.compare, cmd.value);
      case 'txn':
        return this.txn(cmd);
      case 'compact':
        return this.compact(cmd.revision);
      case 'leaseGrant': {
        const l = this.lessor.grant(this.time.now, cmd.ttl, cmd.id);
        return { op: 'leaseGrant', id: l.id, ttl: l.ttl, revision: this.store.revision } satisfies LeaseGrantResult;
      }
      case 'leaseRevoke': {
        const l = this.lessor.revoke(cmd.id);
        return this.write((ctx): LeaseRevokeResult => {
          const deleted = this.deleteKeys([...l.keys].sort(), ctx);
          return { op: 'leaseRevoke', revision: this.store.revision, deleted };
        });
      }
      case 'leaseKeepAlive':
        return { op: 'leaseKeepAlive', ...this.lessor.renew(this.time.now, cmd.ids), revision: this.store.revision } satisfies LeaseKeepAliveResult;
      case 'time':
        throw new InvalidArgumentError('a time entry is never part of a client session');
    }
  }

  /**
   * A time entry (DESIGN r2): replicated time moves by the leader's same-term clock delta (clamped), and only
   * here is lease expiry decided. A newer term first extends every live lease to now + TTL (etcd's lessor
   * Promote). Then every lease with expiry <= now goes and all their keys are deleted in ONE revision (delete
   * events in `changes()`, so watches see them), leases in id order, keys in key order within each.
   */
  private tick(term: number, ms: number): TimeResult {
    const step = this.time.observe(term, ms);
    if (step.newTerm) this.lessor.extendAll(this.time.now);
    const expired = this.lessor.expire(this.time.now);
    if (expired.length === 0) return { op: 'time', now: this.time.now, expired: 0, revision: this.store.revision };
    return this.write((ctx) => {
      for (const l of expired) this.deleteKeys([...l.keys].sort(), ctx);
      return { op: 'time', now: this.time.now, expired: expired.length, revision: this.store.revision };
    });
  }

  /** Deletes the live keys of `keys` at the context's revision; returns how many went. */
  private deleteKeys(keys: readonly string[], ctx: WriteContext): number {
    let n = 0;
    for (const key of keys) {
      const prev = this.store.delete(key, ctx.revision);
      if (prev === undefined) continue;
      this.lessor.attach(key, prev.lease, 0);
      ctx.wrote = true;
      n++;
    }
    return n;
  }

  /** Runs one write command at the next revision, then compacts by retention if it wrote. */
  private write<T>(run: (ctx: WriteContext) => T): T {
    const ctx: WriteContext = { revision: this.store.revision + 1, wrote: false };
    const out = run(ctx);
    if (ctx.wrote) {
      if (this.changeListeners.size > 0) {
        const events = this.store.changes(ctx.revision);
        for (const l of this.changeListeners) l(events);
      }
      this.retain();
    }
    return out;
  }

  /** Automatic compaction (etcd's revision mode): keep `historyRevisions` revisions readable behind the current one. */
  private retain(): void {
    const target = this.store.revision - this.historyRevisions;
    if (target > this.store.compactRevision) this.store.compact(target);
  }

  /** Writes `key`, attached to `lease` (0: none; the caller checked it exists), moved off its previous lease. */
  private put(key: string, value: KeyValue['value'], prevKv: boolean, ctx: WriteContext, lease = 0): PutResult {
    const prev = this.store.put(key, value, ctx.revision, lease);
    this.lessor.attach(key, prev?.lease ?? 0, lease);
    ctx.wrote = true;
    // The previous key only when asked for (etcd's prev_kv): it would otherwise double every answer's size,
    // and the session table keeps each answer until the client acknowledges it.
    return prevKv && prev !== undefined ? { op: 'put', revision: ctx.revision, prev } : { op: 'put', revision: ctx.revision };
  }

  private delete(key: string, prefix: boolean, prevKv: boolean, ctx: WriteContext): DeleteResult {
    const victims = prefix ? this.store.range(key) : [this.store.get(key)].filter((kv): kv is KeyValue => kv !== undefined);
    // Deleting nothing is not a change: the revision only moves when the store changes (as in etcd).
    if (victims.length === 0) return prevKv ? { op: 'delete', revision: this.store.revision, deleted: 0, prevKvs: [] } : { op: 'delete', revision: this.store.revision, deleted: 0 };
    for (const kv of victims) {
      this.store.delete(kv.key, ctx.revision);
      this.lessor.attach(kv.key, kv.lease, 0);
    }
    ctx.wrote = true;
    // The deleted values only when asked for (etcd's prev_kv): a prefix can hold gigabytes, and the session
    // table keeps each answer until the client acknowledges it.
    return prevKv ? { op: 'delete', revision: ctx.revision, deleted: victims.length, prevKvs: victims } : { op: 'delete', revision: ctx.revision, deleted: victims.length };
  }

  /**
   * An etcd v3 transaction. Every compare of the tree (the outer ones, then those of each nested transaction
   * in the branch taken) is evaluated against the store as it was before the transaction, as etcd does; then
   * the ops of the branches taken run in order, reads seeing earlier writes. All writes share one revision,
   * and a transaction that changes nothing moves no revision. Validation (sizes, a key written twice) was done
   * by `validateCommand`, so nothing here can fail half-way: the transaction is atomic.
   */
  private txn(t: TxnRequest): TxnResult {
    const path = this.decide(t);
    // Every lease a put of the branches taken names must exist before anything runs: atomic, as etcd checks.
    this.checkLeases((path.succeeded ? t.then : t.else) ?? [], path);
    return this.write((ctx) => {
      const responses = this.runOps((path.succeeded ? t.then : t.else) ?? [], path, ctx);
      return { op: 'txn', succeeded: path.succeeded, revision: this.store.revision, responses };
    });
  }

  private decide(t: TxnRequest): TxnPath {
    const succeeded = (t.if ?? []).every((c: TxnCompare) => compareHolds(c, this.store.get(c.key)));
    const nested: TxnPath[] = [];
    for (const op of (succeeded ? t.then : t.else) ?? []) if (op.op === 'txn') nested.push(this.decide(op));
    return { succeeded, nested };
  }

  private checkLeases(ops: TxnOp[], path: TxnPath): void {
    let n = 0;
    for (const op of ops) {
      if (op.op === 'put' && op.lease !== undefined && op.lease !== 0) this.lessor.require(op.lease);
      else if (op.op === 'txn') {
        const inner = path.nested[n++] as TxnPath;
        this.checkLeases((inner.succeeded ? op.then : op.else) ?? [], inner);
      }
    }
  }

  private runOps(ops: TxnOp[], path: TxnPath, ctx: WriteContext): TxnOpResult[] {
    let n = 0;
    return ops.map((op): TxnOpResult => {
      switch (op.op) {
        case 'put':
          return this.put(op.key, op.value, op.prevKv === true, ctx, op.lease ?? 0);
        case 'delete':
          return this.delete(op.key, op.prefix === true, op.prevKv === true, ctx);
        case 'get': {
          const kv = this.store.get(op.key);
          return kv === undefined ? { op: 'get' } : { op: 'get', kv };
        }
        case 'range':
          return { op: 'range', kvs: this.store.range(op.prefix, op.limit, op.after) };
        case 'txn': {
          const inner = path.nested[n++] as TxnPath;
          return { op: 'txn', succeeded: inner.succeeded, responses: this.runOps((inner.succeeded ? op.then : op.else) ?? [], inner, ctx) };
        }
      }
    });
  }

  /** Compare-and-set, as the one-compare transaction it is: `if <compare> then put (or delete) else get`. */
  private cas(key: string, compare: KvCompare, value: KeyValue['value'] | null): CasResult {
    const write: TxnOp = value === null ? { op: 'delete', key, prevKv: true } : { op: 'put', key, value, prevKv: true };
    const r = this.txn({ if: casCompares(key, compare), then: [write], else: [{ op: 'get', key }] });
    const first = r.responses[0];
    let current: KeyValue | undefined;
    if (first?.op === 'put') current = first.prev;
    else if (first?.op === 'delete') current = first.prevKvs?.[0];
    else if (first?.op === 'get') current = first.kv;
    return current === undefined ? { op: 'cas', succeeded: r.succeeded, revision: r.revision } : { op: 'cas', succeeded: r.succeeded, revision: r.revision, current };
  }

  /** etcd's compact: `revision` must be above the compaction point (else ErrCompacted) and reached (else ErrFutureRev). */
  private compact(revision: number): CompactResult {
    if (revision > this.store.revision) throw new FutureRevisionError(revision, this.store.revision);
    if (revision <= this.store.compactRevision) throw new RevisionCompactedError(revision, this.store.compactRevision);
    this.store.compact(revision);
    return { op: 'compact', revision: this.store.revision, compactRevision: revision };
  }

  /**
   * Prepares this store to seed a NEW cluster (a backup restored with new members, whose terms start again at
   * 1): replicated time and every lease are kept, but the old cluster's term is forgotten. Without this, the
   * new cluster's time entries (terms 1, 2, ...) would count as an old leader's late ones and be ignored until
   * its terms passed the old cluster's, and no lease would expire until then. With it, the new leader's first
   * time entry is a newer term: it extends every lease to now + TTL (etcd's lessor does the same when the
   * restored cluster's leader is promoted) and time moves from there.
   */
  forgetTimeTerm(): void {
    this.time.restore([0, 0, this.time.now]);
  }

  /** `snapshot` bytes made ready to seed a new cluster (see `forgetTimeTerm`): restore, forget the term, snapshot. */
  static snapshotForNewCluster(bytes: Uint8Array, options: KvStateMachineOptions = {}): Uint8Array {
    const sm = new KvStateMachine(options);
    sm.restore(bytes);
    sm.forgetTimeTerm();
    return sm.snapshot();
  }

  /** The whole state, in format 4 (columnar; see `snapshot-format.ts`): the bytes `beginSnapshot` gives too. */
  snapshot(): Uint8Array {
    const job = this.beginSnapshot();
    for (;;) {
      const bytes = job.step(SNAPSHOT_SLICE_KEYS);
      if (bytes !== undefined) return bytes;
    }
  }

  /**
   * An incremental snapshot (core's optional `StateMachine.beginSnapshot`): the state as of this call, written
   * a slice of `budget` keys per `step` while entries keep being applied in between. Sessions, leases and time
   * are copied now (they are small next to the keys); the store is walked at this revision (MVCC: a read at a
   * past revision), and the freeing of history is held until the walk ends (`MvccStore.hold`), so the walk
   * sees every key as it was. The bytes equal what `snapshot()` returns now, whatever the slicing.
   */
  beginSnapshot(): SnapshotJob {
    const release = this.store.hold();
    const cursor = this.store.openCursor();
    const lessor = this.lessor.toSnapshot();
    const header: Omit<SnapshotV4Header, 'past'> = {
      revision: cursor.revision,
      compactRevision: cursor.compactRevision,
      changeRevisions: cursor.changeRevisions,
      changeKeys: cursor.changeKeys,
      sessions: this.sessions.toSnapshot(),
      sweep: this.sessions.sweepIndex,
      leases: lessor.leases,
      lastLeaseId: lessor.lastLeaseId,
      time: this.time.state(),
    };
    // Sized for the text of an ASCII store, and for its history at twice the average key and value plus 64
    // bytes of fields per key with history: it grows (a copy) only if the store holds more.
    const perKey = cursor.liveCount === 0 ? 0 : this.store.liveChars / cursor.liveCount;
    const writer = new ColumnarWriter(cursor.liveCount, header as unknown as Record<string, unknown>, this.store.liveChars, this.store.historyKeys * 2 * (perKey + 64));
    let past: [string, KeyRecord[]][] = [];
    // What the current step may still write (see STEP_TEXT_BYTES_PER_KEY); the callbacks are made once per job.
    let textUntil = 0;
    let recordsLeft = 0;
    let historyBytesLeft = 0;
    const onLive = (kv: KeyValue) => writer.add(kv);
    const onPast = (key: string, recs: KeyRecord[]) => {
      past.push([key, recs]);
      recordsLeft -= recs.length;
      // About the bytes the records pack into (a step over history of 64 KiB values packed 8 records a unit).
      for (const r of recs) historyBytesLeft -= key.length + ((r as Partial<KeyValue>).value?.length ?? 0) + 48;
    };
    const full = () => writer.textAdded >= textUntil || recordsLeft <= 0 || historyBytesLeft <= 0;
    let state: 'walking' | 'cancelled' | Uint8Array = 'walking';
    let copier: { copy(maxBytes: number): Uint8Array | undefined } | undefined;
    let walkedAll = false;
    const job: SnapshotJob = {
      step: (budget: number): Uint8Array | undefined => {
        if (state instanceof Uint8Array) return state;
        if (state === 'cancelled') throw new StoppedError('kv snapshot job was cancelled');
        if (!Number.isSafeInteger(budget) || budget <= 0) throw new InvalidArgumentError(`snapshot step budget must be a positive integer, got ${String(budget)}`);
        try {
          // History queued by an earlier walk is packed first (a key's records a few at a time).
          if (copier === undefined && !writer.packPast(budget * STEP_TEXT_BYTES_PER_KEY)) return undefined;
          if (copier === undefined && walkedAll) copier = writer.finishing();
          if (copier === undefined) {
            textUntil = writer.textAdded + budget * STEP_TEXT_BYTES_PER_KEY;
            recordsLeft = budget * STEP_RECORDS_PER_KEY;
            historyBytesLeft = budget * STEP_TEXT_BYTES_PER_KEY;
            const walked = cursor.next(budget, onLive, onPast, full);
            writer.flush();
            writer.queuePast(past);
            past = [];
            if (!walked) return undefined;
            // The walk is over: history may be freed again (the records walked are held here). What is left is
            // packing the history queued and laying the bytes out.
            release();
            walkedAll = true;
            return undefined;
          }
          // Copying the columns into place: about COPY_BYTES_PER_KEY bytes per unit of budget.
          const out = copier.copy(budget * COPY_BYTES_PER_KEY);
          if (out === undefined) return undefined;
          state = out;
          this.jobs.delete(job);
          return out;
        } catch (e) {
          job.cancel();
          throw e;
        }
      },
      cancel: () => {
        if (!(state instanceof Uint8Array)) state = 'cancelled';
        release();
        this.jobs.delete(job);
      },
    };
    this.jobs.add(job);
    return job;
  }

  /**
   * Restores a snapshot of format 4 (columnar), 3, 2 (before leases: no lease, replicated time 0) or 1 (before
   * history: no history either). The state is built aside and swapped in at the end: a malformed snapshot
   * (`MalformedMessageError`) leaves the machine as it was.
   */
  restore(bytes: Uint8Array): void {
    const builder = this.prepareRestore(bytes, Number.POSITIVE_INFINITY, false);
    let parts: KvParts | undefined;
    do parts = builder.next(Number.POSITIVE_INFINITY);
    while (parts === undefined);
    this.install(parts);
  }

  /**
   * An incremental restore (core's optional `StateMachine.beginRestore`, what the host uses for a snapshot from
   * the leader): each `step(budget)` reads about `budget` more keys of a format-4 snapshot into a new store built
   * aside (older formats are read whole in the first step); the machine keeps its state, answering queries and
   * applying entries from it, until the last step swaps the new state in at once. The result is what
   * `restore(bytes)` gives. A malformed snapshot throws `MalformedMessageError` here or from a step (the job then
   * cancelled, the machine as it was); a step after `cancel` throws `StoppedError`, as does the last step of a
   * job overtaken by a later restore.
   */
  beginRestore(bytes: Uint8Array): RestoreJob {
    const builder = this.prepareRestore(bytes, RESTORE_TEXT_CHUNK, true);
    const epoch = ++this.restores;
    let state: 'running' | 'cancelled' | 'done' = 'running';
    const job: RestoreJob = {
      step: (budget: number): boolean => {
        if (state === 'done') return true;
        if (state === 'cancelled') throw new StoppedError('kv restore job was cancelled');
        if (!Number.isSafeInteger(budget) || budget <= 0) throw new InvalidArgumentError(`restore step budget must be a positive integer, got ${String(budget)}`);
        try {
          const parts = builder.next(budget);
          if (parts === undefined) return false;
          if (epoch !== this.restores) throw new StoppedError('kv restore job was overtaken by a later restore');
          this.install(parts);
          state = 'done';
          return true;
        } catch (e) {
          job.cancel();
          throw e;
        }
      },
      cancel: () => {
        if (state === 'running') state = 'cancelled';
      },
    };
    return job;
  }

  /** Swaps a restored state in; snapshots in progress walked the state it replaces: they are cancelled. */
  private install(parts: KvParts): void {
    for (const job of [...this.jobs]) job.cancel();
    this.restores++;
    this.store = parts.store;
    this.sessions = parts.sessions;
    this.time = parts.time;
    this.lessor = parts.lessor;
  }

  /**
   * Reads a snapshot into new parts, `budget` keys per `next` (format 4; older formats at once), decoding text
   * `textChunkBytes` at a time. Checks the header now: a snapshot that is not one throws before any work.
   * `withMap`: format 4 also builds the store's map of versions by key, a slice at a time. Without it (`restore()`,
   * which must be quick) the key index holds the versions and the map fills as keys are written; but a lookup in
   * the tree costs more than one in the map (a restored key's first write, 1M keys: about 9 us of CPU against 6),
   * so a restore in slices, which has the time, builds it.
   */
  private prepareRestore(bytes: Uint8Array, textChunkBytes: number, withMap: boolean): RestoreBuilder {
    if (isColumnar(bytes)) return this.prepareColumnar(bytes, textChunkBytes, withMap);
    let snap: SnapshotV1 | SnapshotV2 | SnapshotV3;
    try {
      snap = unpack(bytes) as SnapshotV1 | SnapshotV2 | SnapshotV3;
    } catch (cause) {
      throw new MalformedMessageError('kv snapshot is not valid msgpack', { cause });
    }
    if (typeof snap !== 'object' || snap === null || !Array.isArray(snap.kvs) || typeof snap.revision !== 'number') {
      throw new MalformedMessageError('kv snapshot has an unknown format');
    }
    const legacy = snap;
    const valid =
      legacy.v === 1 ||
      ((legacy.v === 2 || legacy.v === 3) &&
        Array.isArray(legacy.past) &&
        typeof legacy.compactRevision === 'number' &&
        Array.isArray(legacy.changeRevisions) &&
        Array.isArray(legacy.changeKeys) &&
        legacy.changeRevisions.length === legacy.changeKeys.length);
    if (!valid) throw new MalformedMessageError(`kv snapshot has an unknown format (version ${String((legacy as { v?: unknown }).v)})`);
    if (legacy.v === 3 && (!Array.isArray(legacy.leases) || typeof legacy.lastLeaseId !== 'number')) throw new MalformedMessageError('kv snapshot (format 3) has no lease table');
    checkLegacy(legacy);
    return {
      next: () => {
        const parts = this.newParts();
        if (legacy.v === 1) {
          // No history came with it: the snapshot's revision is the oldest one that can be read.
          parts.store.restore({
            revision: legacy.revision,
            compactRevision: legacy.revision,
            kvs: legacy.kvs.map((kv) => ({ ...kv, lease: 0 })),
            past: [],
            changeRevisions: [],
            changeKeys: [],
          });
        } else parts.store.restore(legacy);
        if (legacy.v === 3) {
          parts.time.restore(legacy.time);
          parts.lessor.restore(legacy.leases, legacy.lastLeaseId, legacy.kvs.filter((kv) => kv.lease !== 0).map((kv) => [kv.key, kv.lease] as [string, number]));
        } else {
          parts.time.restore([0, 0, 0]);
          parts.lessor.restore([], 0, []);
        }
        parts.sessions.restore(legacy.sessions, legacy.sweep);
        return parts;
      },
    };
  }

  private prepareColumnar(bytes: Uint8Array, textChunkBytes: number, withMap: boolean): RestoreBuilder {
    const reader = new ColumnarReader(bytes, textChunkBytes);
    const h = reader.header as unknown as Omit<SnapshotV4Header, 'past'>;
    if (
      typeof h.revision !== 'number' ||
      typeof h.compactRevision !== 'number' ||
      !Array.isArray(h.changeRevisions) ||
      !Array.isArray(h.changeKeys) ||
      h.changeRevisions.length !== h.changeKeys.length ||
      !Array.isArray(h.sessions) ||
      typeof h.sweep !== 'number' ||
      !Array.isArray(h.leases) ||
      typeof h.lastLeaseId !== 'number' ||
      !Array.isArray(h.time)
    ) {
      throw new MalformedMessageError('kv snapshot (format 4) has a malformed header');
    }
    checkHeader(h, 4);
    const kvs = new Array<KeyValue>(reader.count);
    const keys = new Array<string>(reader.count);
    const leased: [string, number][] = [];
    // The key index is built as the keys arrive, a leaf at a time (no second pass over the keys to check their
    // order: the reader did).
    const live = withMap ? new Map<string, KeyValue>() : undefined;
    const index = new KeyIndexBuilder(keys, withMap ? undefined : kvs);
    // The live keys first, then the history (checked against them), then the parts: each step does one of these,
    // bounded by its budget (see RESTORE_BYTES_PER_UNIT).
    let liveDone = false;
    const built = new HistoryBuilder();
    const history = reader.history();
    let check: HistoryCheck | undefined;
    let recs: KeyRecord[] = [];
    const visit = {
      key: (key: string) => {
        (check as HistoryCheck).key(key);
        recs = [];
      },
      record: (r: unknown) => {
        (check as HistoryCheck).record(r);
        recs.push(r as KeyRecord);
      },
      endKey: () => built.add((check as HistoryCheck).current, recs, (check as HistoryCheck).endKey()),
    };
    return {
      next: (budget) => {
        const maxBytes = budget * RESTORE_BYTES_PER_UNIT;
        if (!liveDone) {
          const from = reader.position;
          const done = reader.read(budget, kvs, keys, maxBytes);
          const read = reader.position;
          for (let i = from; i < read; i++) {
            const kv = kvs[i] as KeyValue;
            checkVersion(kv, h.revision, `key ${i}`, 4);
            if (kv.lease !== 0) leased.push([kv.key, kv.lease]);
            live?.set(kv.key, kv);
          }
          index.advance(read);
          if (!done) return undefined;
          liveDone = true;
          check = new HistoryCheck(keys, kvs, h.revision, 4);
          return undefined;
        }
        if (!history.read(maxBytes, visit)) return undefined;
        const parts = this.newParts();
        // The reader refused keys out of order: the store need not check again.
        parts.store.restore({ revision: h.revision, compactRevision: h.compactRevision, kvs, past: [], changeRevisions: h.changeRevisions, changeKeys: h.changeKeys }, true, keys, reader.chars, index.finish(), live, built);
        parts.time.restore(h.time);
        parts.lessor.restore(h.leases, h.lastLeaseId, leased);
        parts.sessions.restore(h.sessions, h.sweep);
        return parts;
      },
    };
  }
}

/** The compares of a compare-and-set's `KvCompare`: every field given must hold (`exists` is version > 0 or = 0). */
function casCompares(key: string, c: KvCompare): TxnCompare[] {
  const out: TxnCompare[] = [];
  if (c.exists !== undefined) out.push({ key, target: 'version', cmp: c.exists ? '>' : '=', value: 0 });
  if (c.version !== undefined) out.push({ key, target: 'version', cmp: '=', value: c.version });
  if (c.modRevision !== undefined) out.push({ key, target: 'modRevision', cmp: '=', value: c.modRevision });
  if (c.createRevision !== undefined) out.push({ key, target: 'createRevision', cmp: '=', value: c.createRevision });
  if (c.value !== undefined) out.push({ key, target: 'value', cmp: '=', value: c.value });
  return out;
}

const malformed = (what: string, format: number) => new MalformedMessageError(`kv snapshot (format ${format}) is malformed: ${what}`);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isKvValue = (x: unknown): boolean => typeof x === 'string' || x instanceof Uint8Array;

/**
 * A live version or a history record as a snapshot must hold it: revisions 1 <= createRevision <= modRevision <=
 * `below` (the store's revision, or the key's live version for its history), version >= 1, lease >= 0, integers.
 * A snapshot that broke these (damaged or hostile bytes) was restored without a word, and the node failed later:
 * on its next snapshot (InvariantError: the keys walked and counted disagree) or a read of the key.
 */
function checkVersion(kv: KeyValue, below: number, what: string, format: number): void {
  const { createRevision: c, modRevision: m, version: v, lease: l } = kv;
  if (!(isCount(c) && isCount(m) && isCount(v) && isCount(l) && c >= 1 && c <= m && m <= below && v >= 1)) {
    throw malformed(`${what} has revisions ${String(c)}..${String(m)} (at most ${below}), version ${String(v)}, lease ${String(l)}`, format);
  }
}

/** The header's fields, of the types and within the bounds the store, lessor and sessions rely on (format 2 up). */
function checkHeader(h: Partial<SnapshotV4Header>, format: number): void {
  const revision = h.revision as number;
  if (!isCount(h.revision) || !isCount(h.compactRevision) || h.compactRevision > h.revision) throw malformed('bad revision or compaction revision', format);
  const revs = h.changeRevisions as unknown[];
  const keys = h.changeKeys as unknown[];
  let prev = 0;
  for (let i = 0; i < revs.length; i++) {
    const r = revs[i];
    if (!isCount(r) || r < prev || r > revision || typeof keys[i] !== 'string') throw malformed(`change ${i}`, format);
    prev = r;
  }
  if (format >= 3) {
    if (!isCount(h.lastLeaseId)) throw malformed('lease table', format);
    for (const l of h.leases as unknown[]) {
      if (!Array.isArray(l) || l.length !== 3 || !isCount(l[0]) || l[0] === 0 || !l.slice(1).every((x) => typeof x === 'number' && Number.isFinite(x))) throw malformed('a lease', format);
    }
  }
  {
    if (!Array.isArray(h.sessions) || !isCount(h.sweep)) throw malformed('sessions', format);
    for (const e of h.sessions as unknown[]) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !isCount(e[1]) || !isCount(e[2]) || !Array.isArray(e[3]) || !e[3].every((a) => Array.isArray(a) && isCount(a[0]))) {
        throw malformed('a session', format);
      }
    }
  }
}

/** A snapshot of format 1 to 3, before anything is built from it: its keys, history and header. */
function checkLegacy(s: { v: number; revision: number; kvs: unknown[]; past?: unknown; sessions?: unknown }): void {
  const format = s.v;
  if (!isCount(s.revision)) throw malformed('bad revision', format);
  for (const [i, kv] of s.kvs.entries()) {
    const k = kv as Partial<KeyValue> | null;
    if (typeof k !== 'object' || k === null || typeof k.key !== 'string' || !isKvValue(k.value)) throw malformed(`key ${i}`, format);
    // Formats before 3 had no leases: their keys carry none.
    checkVersion({ ...(k as KeyValue), lease: format >= 3 ? (k.lease as number) : 0 }, s.revision, `key ${i}`, format);
  }
  if (format === 1) {
    checkHeader({ ...(s as object), compactRevision: s.revision, changeRevisions: [], changeKeys: [] } as Partial<SnapshotV4Header>, format);
    return;
  }
  checkHeader(s as Partial<SnapshotV4Header>, format);
  const sorted = [...(s.kvs as KeyValue[])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  checkHistory(s.past as SnapshotV4Header['past'], sorted.map((kv) => kv.key), sorted, s.revision, format);
}

/**
 * The history, against the live keys (`keys` sorted, `kvs` beside them): keys in ascending order, each with
 * records of that key in ascending modRevision up to the store's `revision`, every one below the key's live
 * version if it has one, and a
 * key that is not live ending in its deletion (else a walk of the store finds it live).
 */
function checkHistory(past: SnapshotV4Header['past'], keys: string[], kvs: KeyValue[], revision: number, format: number): void {
  if (!Array.isArray(past)) throw malformed('history', format);
  const check = new HistoryCheck(keys, kvs, revision, format);
  for (const e of past as unknown[]) {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || !Array.isArray(e[1])) throw malformed('a history entry', format);
    const [key, recs] = e as [string, unknown[]];
    check.key(key);
    for (const r of recs) check.record(r);
    check.endKey();
  }
}

/**
 * `checkHistory` a key and a record at a time (an incremental restore reads the history so): `key`, then each of
 * its `record`s, then `endKey` (which says whether the key is live), key after key.
 */
class HistoryCheck {
  private prevKey: string | undefined;
  /** keys[at..] are >= the history key being checked (both ascend). */
  private at = 0;
  /** The key being checked, its live version if it has one, its last record's revision and whether it was a deletion. */
  current = '';
  private live: KeyValue | undefined;
  private top = 0;
  private lastTombstone: boolean | undefined;

  constructor(
    private readonly keys: string[],
    private readonly kvs: KeyValue[],
    private readonly revision: number,
    private readonly format: number,
  ) {}

  key(key: string): void {
    if (this.prevKey !== undefined && !(this.prevKey < key)) throw malformed('history keys out of order', this.format);
    this.prevKey = key;
    const { keys } = this;
    while (this.at < keys.length && (keys[this.at] as string) < key) this.at++;
    this.live = keys[this.at] === key ? (this.kvs[this.at] as KeyValue) : undefined;
    this.current = key;
    this.top = 0;
    this.lastTombstone = undefined;
  }

  record(r: unknown): void {
    const { current: key, format, revision, live } = this;
    const of = `the history of ${JSON.stringify(key)}`;
    const t = r as { key?: unknown; tombstone?: unknown; modRevision?: unknown; value?: unknown } | null;
    if (typeof t !== 'object' || t === null || t.key !== key) throw malformed(`${of} holds a record of another key`, format);
    if (t.tombstone === true) {
      if (!isCount(t.modRevision) || t.modRevision < 1 || t.modRevision > revision) throw malformed(`${of} has a bad deletion`, format);
    } else {
      if (!isKvValue(t.value)) throw malformed(`${of} has a bad value`, format);
      checkVersion({ ...(t as KeyValue), lease: (t as Partial<KeyValue>).lease ?? 0 }, revision, of, format);
    }
    const m = t.modRevision as number;
    if (m <= this.top || (live !== undefined && m >= live.modRevision)) throw malformed(`${of} is out of order`, format);
    this.top = m;
    this.lastTombstone = t.tombstone === true;
  }

  /** Whether the key is live. */
  endKey(): boolean {
    if (this.live === undefined && this.lastTombstone === false) throw malformed(`the history of ${JSON.stringify(this.current)}: the key is not live, its last record is not its deletion`, this.format);
    return this.live !== undefined;
  }
}
