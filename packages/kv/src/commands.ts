import { InvalidArgumentError, preview, type SessionStamp } from '@consensus-kit/core';
import { MAX_KEEPALIVE_IDS, MAX_LEASE_TTL_MS, checkLeaseId } from './lease';
import { validateTxn } from './txn';

/** A stored value: text or bytes, kept exactly as written. */
export type KvValue = string | Uint8Array;

/** A key with its value and etcd-style revision metadata. */
export interface KeyValue {
  key: string;
  value: KvValue;
  /** Cluster revision at which the key was created (since its last deletion). */
  createRevision: number;
  /** Cluster revision of the key's last modification. */
  modRevision: number;
  /** Number of writes since creation, 1 for a new key. */
  version: number;
  /** The lease the key is attached to; 0 (no lease) until leases exist. */
  lease: number;
}

/**
 * The condition of a compare-and-set. Every field given must hold; `exists: false` (or `version: 0`)
 * means the key must be absent.
 */
export interface KvCompare {
  exists?: boolean;
  value?: KvValue;
  version?: number;
  modRevision?: number;
  createRevision?: number;
}

export type KvCommand =
  /**
   * `prevKv` asks for the key as it was before (etcd's prev_kv); without it a put answers only its revision.
   * `lease` attaches the key to that lease (moved from the one it had, if any): the key is deleted when the
   * lease expires or is revoked. A put without `lease` (or with 0) detaches the key. A lease that does not
   * exist: `LeaseNotFoundError`, and nothing is written.
   */
  | { op: 'put'; key: string; value: KvValue; prevKv?: boolean; lease?: number }
  /** `prevKv` asks for the deleted keys with their values in `prevKvs` (etcd's prev_kv); without it, only their number. */
  | { op: 'delete'; key: string; prefix?: boolean; prevKv?: boolean }
  /** Compare-and-set: applied as a one-compare transaction (see `TxnRequest`); kept for its callers and for logs that hold it. */
  | { op: 'cas'; key: string; compare: KvCompare; value: KvValue | null }
  /** An etcd v3 transaction: `if` every compare holds, run `then`, else run `else`; atomic, one revision. */
  | ({ op: 'txn' } & TxnRequest)
  /**
   * Forget the history before `revision` (etcd's compact): reads at an older revision fail with
   * `RevisionCompactedError` from then on. Moves no revision.
   */
  | { op: 'compact'; revision: number }
  /**
   * etcd's LeaseGrant: a lease of `ttl` ms (raised to the state machine's minimum TTL), with `id` or the next
   * id of a counter. It expires when replicated time passes its expiry (see `KvStateMachine`).
   */
  | { op: 'leaseGrant'; ttl: number; id?: number }
  /** etcd's LeaseRevoke: the lease goes and its keys are deleted, in one revision, with delete events. */
  | { op: 'leaseRevoke'; id: number }
  /**
   * etcd's LeaseKeepAlive, for a batch: every lease of `ids` that exists expires at (replicated time when this
   * command is applied) + its TTL. The ids not found are reported, not thrown: one lost lease does not fail the
   * others' renewal. One command renews all of a client's leases (at most `MAX_KEEPALIVE_IDS`).
   */
  | { op: 'leaseKeepAlive'; ids: number[] }
  /**
   * A time entry (DESIGN r2): proposed only by the leader's host (`KvStateMachine.timeCommand`), carrying its
   * term and clock reading. Never taken from a client: `admitCommand` refuses it, so a client cannot forge time.
   */
  | { op: 'time'; term: number; ms: number };

/** What a transaction compares: etcd's compare targets. A missing key has version, revisions and lease 0. */
export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One condition of a transaction: `<target of key> <cmp> <value>`, e.g.
 * `{ key: 'leader', target: 'version', cmp: '=', value: 0 }` (the key does not exist). `value` is a number for
 * every target but `'value'`, where it is the value compared (bytes order; a missing key fails every value compare).
 */
export interface TxnCompare {
  key: string;
  target: CompareTarget;
  cmp: CompareOp;
  value: KvValue | number;
}

/** An operation inside a transaction. Reads see the writes made before them in the same transaction. */
export type TxnOp =
  /** `lease` as in the `put` command: every lease a transaction names must exist, or none of it runs. */
  | { op: 'put'; key: string; value: KvValue; prevKv?: boolean; lease?: number }
  | { op: 'delete'; key: string; prefix?: boolean; prevKv?: boolean }
  | { op: 'get'; key: string }
  | { op: 'range'; prefix: string; limit?: number; after?: string }
  /** A nested transaction: its compares are evaluated with the outer ones, before anything runs (as etcd). */
  | ({ op: 'txn' } & TxnRequest);

/**
 * A transaction (etcd v3 Txn). At most `MAX_TXN_OPS` ops (every branch and nested transaction counted) and
 * `MAX_TXN_OPS` compares; a key may be written at most once per branch (a put inside a deleted range counts).
 */
export interface TxnRequest {
  if?: TxnCompare[];
  then?: TxnOp[];
  else?: TxnOp[];
}

/** A client session stamp (Raft thesis 6.3): core's, shared by every state machine (DESIGN r2). */
export type { SessionStamp } from '@consensus-kit/core';

/** What clients propose: a command, optionally inside a session. */
export interface KvRequest {
  cmd: KvCommand;
  session?: SessionStamp;
}

/**
 * Reads. `revision` reads the store as it was at that revision (etcd's `--rev`); absent or 0 reads the current
 * state. A revision older than the compaction point fails with `RevisionCompactedError`, one not reached yet
 * with `FutureRevisionError`.
 */
export type KvQuery =
  | { op: 'get'; key: string; revision?: number }
  /** Keys starting with `prefix`, in key order; `after` starts past that key (paging), `limit` caps the answer. */
  | { op: 'range'; prefix: string; limit?: number; after?: string; revision?: number }
  | { op: 'revision' }
  /** The current and the compaction revision. */
  | { op: 'status' }
  /** etcd's LeaseTimeToLive: the lease's granted TTL and remaining ms, with its keys when asked. Absent: `LeaseNotFoundError`. */
  | { op: 'leaseTimeToLive'; id: number; keys?: boolean }
  /** etcd's LeaseLeases: every live lease, in id order. */
  | { op: 'leases' };

/** The answer to `leaseTimeToLive`, and each lease of `leases` (without keys). */
export interface LeaseInfo {
  id: number;
  /** The TTL granted, in ms. */
  ttl: number;
  /** Ms of replicated time left before it expires (0: it expires at the next time entry). */
  remaining: number;
  /** The keys attached, in key order (only when asked for). */
  keys?: string[];
}

/** The answer to `{ op: 'status' }`. */
export interface KvStatus {
  revision: number;
  /** The oldest revision still readable. */
  compactRevision: number;
}

export interface PutResult {
  op: 'put';
  revision: number;
  /** The key before this put, when the put asked for it (`prevKv`) and the key existed. */
  prev?: KeyValue;
}

export interface DeleteResult {
  op: 'delete';
  revision: number;
  /** How many keys were deleted. */
  deleted: number;
  /** The deleted keys as they were, when the delete asked for them (`prevKv`). */
  prevKvs?: KeyValue[];
}

export interface CasResult {
  op: 'cas';
  succeeded: boolean;
  revision: number;
  /** The key as it was when compared (absent when it did not exist). */
  current?: KeyValue;
}

/** The answer to one op of a transaction. */
export type TxnOpResult =
  | PutResult
  | DeleteResult
  /** `kv` is absent when the key does not exist. */
  | { op: 'get'; kv?: KeyValue }
  | { op: 'range'; kvs: KeyValue[] }
  | { op: 'txn'; succeeded: boolean; responses: TxnOpResult[] };

export interface TxnResult {
  op: 'txn';
  /** Whether every compare held (so `then` ran; else `else` ran). */
  succeeded: boolean;
  /** The store revision after the transaction: its writes' revision, or the unchanged one if it wrote nothing. */
  revision: number;
  /** One answer per op of the branch that ran, in order. */
  responses: TxnOpResult[];
}

export interface CompactResult {
  op: 'compact';
  /** The store revision (a compaction moves none). */
  revision: number;
  compactRevision: number;
}

export interface LeaseGrantResult {
  op: 'leaseGrant';
  id: number;
  /** The TTL granted (the one asked for, or the minimum TTL if that was shorter). */
  ttl: number;
  /** The store revision (a grant moves none), as every answer carries it (etcd's response header). */
  revision: number;
}

export interface LeaseRevokeResult {
  op: 'leaseRevoke';
  /** The revision of the deletion of its keys, or the unchanged revision if it had none. */
  revision: number;
  /** How many keys were deleted with it. */
  deleted: number;
}

export interface LeaseKeepAliveResult {
  op: 'leaseKeepAlive';
  /** The leases renewed, with their TTL: each expires at least that long after this answer's entry was applied. */
  kept: [id: number, ttl: number][];
  /** The ids not found: expired, revoked or never granted. */
  missing: number[];
  /** The store revision (a keepalive moves none). */
  revision: number;
}

/** What a time entry did: replicated time after it, and how many leases expired (their keys deleted at `revision`). */
export interface TimeResult {
  op: 'time';
  now: number;
  expired: number;
  revision: number;
}

export type KvResult =
  | PutResult
  | DeleteResult
  | CasResult
  | TxnResult
  | CompactResult
  | LeaseGrantResult
  | LeaseRevokeResult
  | LeaseKeepAliveResult
  | TimeResult;

export const MAX_KEY_BYTES = 4096;
export const MAX_VALUE_BYTES = 4 * 1024 * 1024;
/** Most ops in one transaction, every branch and nested transaction counted; also the most compares (etcd's --max-txn-ops default). */
export const MAX_TXN_OPS = 128;

/**
 * Whether `s` takes more than `max` bytes in UTF-8. A UTF-16 code unit takes at most 3 UTF-8 bytes, so the
 * bytes are only counted for strings long enough to be in doubt (this runs for every command on every replica).
 */
function utf8Over(s: string, max: number): boolean {
  return s.length > max || (s.length * 3 > max && Buffer.byteLength(s, 'utf8') > max);
}

export function checkKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string, got ${preview(key)}`);
  if (utf8Over(key, MAX_KEY_BYTES)) throw new InvalidArgumentError(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
}

export function checkValue(value: unknown): asserts value is KvValue {
  if (typeof value === 'string') {
    if (utf8Over(value, MAX_VALUE_BYTES)) throw new InvalidArgumentError(`value is larger than ${MAX_VALUE_BYTES} bytes`);
    return;
  }
  if (value instanceof Uint8Array) {
    if (value.length > MAX_VALUE_BYTES) throw new InvalidArgumentError(`value is larger than ${MAX_VALUE_BYTES} bytes`);
    return;
  }
  throw new InvalidArgumentError(`value must be a string or a Uint8Array, got ${preview(value)}`);
}

function checkRevision(v: unknown, what: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
    throw new InvalidArgumentError(`compare.${what} must be a non-negative integer, got ${preview(v)}`);
  }
}

/**
 * Validates a command as it arrives (from a client, or from the log: it is the same check on every replica,
 * so a bad command fails identically everywhere). Throws `InvalidArgumentError` naming what is wrong.
 */
export function validateCommand(cmd: unknown): asserts cmd is KvCommand {
  if (typeof cmd !== 'object' || cmd === null) throw new InvalidArgumentError(`command must be an object, got ${preview(cmd)}`);
  const c = cmd as Record<string, unknown>;
  switch (c.op) {
    case 'put':
      checkKey(c.key);
      checkValue(c.value);
      if (c.prevKv !== undefined && typeof c.prevKv !== 'boolean') throw new InvalidArgumentError('put.prevKv must be a boolean');
      checkPutLease(c.lease);
      return;
    case 'delete':
      if (c.prefix === true && c.key === '') return; // delete everything: explicit prefix ''
      checkKey(c.key);
      if (c.prefix !== undefined && typeof c.prefix !== 'boolean') throw new InvalidArgumentError('delete.prefix must be a boolean');
      if (c.prevKv !== undefined && typeof c.prevKv !== 'boolean') throw new InvalidArgumentError('delete.prevKv must be a boolean');
      return;
    case 'cas': {
      checkKey(c.key);
      if (c.value !== null) checkValue(c.value);
      const cmp = c.compare as Record<string, unknown> | undefined;
      if (typeof cmp !== 'object' || cmp === null) throw new InvalidArgumentError('cas.compare must be an object');
      if (cmp.exists !== undefined && typeof cmp.exists !== 'boolean') throw new InvalidArgumentError('compare.exists must be a boolean');
      if (cmp.value !== undefined) checkValue(cmp.value);
      checkRevision(cmp.version, 'version');
      checkRevision(cmp.modRevision, 'modRevision');
      checkRevision(cmp.createRevision, 'createRevision');
      return;
    }
    case 'txn':
      validateTxn(c);
      return;
    case 'compact':
      if (typeof c.revision !== 'number' || !Number.isSafeInteger(c.revision) || c.revision <= 0) {
        throw new InvalidArgumentError(`compact.revision must be a positive integer, got ${preview(c.revision)}`);
      }
      return;
    case 'leaseGrant':
      if (typeof c.ttl !== 'number' || !Number.isSafeInteger(c.ttl) || c.ttl <= 0 || c.ttl > MAX_LEASE_TTL_MS) {
        throw new InvalidArgumentError(`leaseGrant.ttl must be a positive integer of ms up to ${MAX_LEASE_TTL_MS}, got ${preview(c.ttl)}`);
      }
      if (c.id !== undefined) checkLeaseId(c.id);
      return;
    case 'leaseRevoke':
      checkLeaseId(c.id);
      return;
    case 'leaseKeepAlive':
      if (!Array.isArray(c.ids) || c.ids.length === 0 || c.ids.length > MAX_KEEPALIVE_IDS) {
        throw new InvalidArgumentError(`leaseKeepAlive.ids must be an array of 1 to ${MAX_KEEPALIVE_IDS} lease ids`);
      }
      for (const id of c.ids) checkLeaseId(id);
      return;
    case 'time':
      if (typeof c.term !== 'number' || !Number.isSafeInteger(c.term) || c.term < 0 || typeof c.ms !== 'number' || !Number.isFinite(c.ms)) {
        throw new InvalidArgumentError('a time entry must be { op: "time", term: non-negative integer, ms: finite number }');
      }
      return;
    default:
      throw new InvalidArgumentError(`unknown kv command op ${preview(c.op)}`);
  }
}

/** `put.lease`: absent, 0 (no lease) or a lease id. */
export function checkPutLease(lease: unknown): void {
  if (lease !== undefined && lease !== 0) checkLeaseId(lease, 'put.lease');
}

export { validateSession } from '@consensus-kit/core';

function checkReadRevision(v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
    throw new InvalidArgumentError(`revision must be a non-negative integer (0: the current one), got ${preview(v)}`);
  }
}

export function validateQuery(q: unknown): asserts q is KvQuery {
  if (typeof q !== 'object' || q === null) throw new InvalidArgumentError(`query must be an object, got ${preview(q)}`);
  const x = q as Record<string, unknown>;
  switch (x.op) {
    case 'get':
      checkKey(x.key);
      checkReadRevision(x.revision);
      return;
    case 'range':
      checkReadRevision(x.revision);
      if (typeof x.prefix !== 'string') throw new InvalidArgumentError('range.prefix must be a string');
      if (x.limit !== undefined && (typeof x.limit !== 'number' || !Number.isSafeInteger(x.limit) || x.limit <= 0)) {
        throw new InvalidArgumentError('range.limit must be a positive integer');
      }
      if (x.after !== undefined && typeof x.after !== 'string') throw new InvalidArgumentError('range.after must be a string');
      return;
    case 'revision':
    case 'status':
    case 'leases':
      return;
    case 'leaseTimeToLive':
      checkLeaseId(x.id);
      if (x.keys !== undefined && typeof x.keys !== 'boolean') throw new InvalidArgumentError('leaseTimeToLive.keys must be a boolean');
      return;
    default:
      throw new InvalidArgumentError(`unknown kv query op ${preview(x.op)}`);
  }
}

const COMPARE_FIELDS: ReadonlySet<string> = new Set(['exists', 'value', 'version', 'modRevision', 'createRevision']);

/**
 * A JS string with a lone surrogate has no UTF-8 form: msgpack would send U+FFFD in its place, so two
 * different keys would become one. `isWellFormed` is in Node 20 but not yet in TypeScript's lib.
 */
const wellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(s: unknown, what: string): void {
  if (typeof s !== 'string') return;
  if (wellFormed !== undefined ? !wellFormed.call(s) : LONE_SURROGATE.test(s)) {
    throw new InvalidArgumentError(`${what} has a lone UTF-16 surrogate, which cannot be stored as text (use a Uint8Array for binary data)`);
  }
}

/**
 * Checks made where a command enters the cluster (the client, and the node's kv service before it proposes),
 * on top of `validateCommand`. They are not made when a command is applied: entries already in a log were
 * accepted under the rules of their day and must apply the same way on every replica, whatever version runs it.
 * Refuses text that has no exact UTF-8 form and compare fields that do not exist (a misspelt field would
 * otherwise turn a compare-and-set into an unconditional write).
 */
export function admitCommand(cmd: KvCommand): void {
  // Time comes only from the leader's host (DESIGN r2): a client that could send it could expire every lease.
  if (cmd.op === 'time') throw new InvalidArgumentError('time entries are proposed by the leader itself, never taken from a client');
  if (cmd.op === 'compact' || cmd.op === 'leaseGrant' || cmd.op === 'leaseRevoke' || cmd.op === 'leaseKeepAlive') return;
  if (cmd.op === 'txn') {
    admitTxn(cmd);
    return;
  }
  checkText(cmd.key, 'key');
  if (cmd.op === 'delete') return;
  checkText(cmd.value, 'value');
  if (cmd.op !== 'cas') return;
  for (const field of Object.keys(cmd.compare)) {
    if (!COMPARE_FIELDS.has(field)) throw new InvalidArgumentError(`compare has an unknown field ${preview(field)} (known: ${[...COMPARE_FIELDS].join(', ')})`);
  }
  checkText(cmd.compare.value, 'compare.value');
}

const TXN_FIELDS: ReadonlySet<string> = new Set(['op', 'if', 'then', 'else']);
const TXN_COMPARE_FIELDS: ReadonlySet<string> = new Set(['key', 'target', 'cmp', 'value']);

function unknownField(fields: object, known: ReadonlySet<string>, what: string): void {
  for (const f of Object.keys(fields)) {
    if (!known.has(f)) throw new InvalidArgumentError(`${what} has an unknown field ${preview(f)} (known: ${[...known].join(', ')})`);
  }
}

/** `admitCommand` for a transaction: well-formed text everywhere, and no unknown field in it or in a compare. */
function admitTxn(t: TxnRequest & { op?: string }): void {
  unknownField(t, TXN_FIELDS, 'txn');
  for (const c of t.if ?? []) {
    unknownField(c, TXN_COMPARE_FIELDS, 'txn compare');
    checkText(c.key, 'compare key');
    checkText(c.value, 'compare value');
  }
  for (const op of [...(t.then ?? []), ...(t.else ?? [])]) {
    if (op.op === 'txn') admitTxn(op);
    else if (op.op === 'range') {
      checkText(op.prefix, 'range prefix');
      checkText(op.after, 'range.after');
    } else {
      checkText(op.key, 'key');
      if (op.op === 'put') checkText(op.value, 'value');
    }
  }
}

/** Like `admitCommand`, for reads: the key, prefix or `after` must be text with an exact UTF-8 form. */
export function admitQuery(q: KvQuery): void {
  if (q.op === 'get') checkText(q.key, 'key');
  else if (q.op === 'range') {
    checkText(q.prefix, 'range prefix');
    checkText(q.after, 'range.after');
  }
}

/** Whether two stored values are equal (text to text, bytes to bytes). */
export function valuesEqual(a: KvValue, b: KvValue): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
