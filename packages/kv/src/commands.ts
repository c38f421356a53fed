import { InvalidArgumentError, preview } from '@consensus-kit/core';

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
  /** `prevKv` asks for the key as it was before (etcd's prev_kv); without it a put answers only its revision. */
  | { op: 'put'; key: string; value: KvValue; prevKv?: boolean }
  /** `prevKv` asks for the deleted keys with their values in `prevKvs` (etcd's prev_kv); without it, only their number. */
  | { op: 'delete'; key: string; prefix?: boolean; prevKv?: boolean }
  | { op: 'cas'; key: string; compare: KvCompare; value: KvValue | null };

/**
 * A client session stamp (Raft thesis 6.3): a command carrying one is applied at most once; a retry of the
 * same `seq` returns the stored answer. `ack` is the highest seq below which the client has every answer,
 * so the state machine can forget those.
 */
export interface SessionStamp {
  id: string;
  seq: number;
  ack?: number;
}

/** What clients propose: a command, optionally inside a session. */
export interface KvRequest {
  cmd: KvCommand;
  session?: SessionStamp;
}

export type KvQuery =
  | { op: 'get'; key: string }
  /** Keys starting with `prefix`, in key order; `after` starts past that key (paging), `limit` caps the answer. */
  | { op: 'range'; prefix: string; limit?: number; after?: string }
  | { op: 'revision' };

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

export type KvResult = PutResult | DeleteResult | CasResult;

export const MAX_KEY_BYTES = 4096;
export const MAX_VALUE_BYTES = 4 * 1024 * 1024;

/**
 * Whether `s` takes more than `max` bytes in UTF-8. A UTF-16 code unit takes at most 3 UTF-8 bytes, so the
 * bytes are only counted for strings long enough to be in doubt (this runs for every command on every replica).
 */
function utf8Over(s: string, max: number): boolean {
  return s.length > max || (s.length * 3 > max && Buffer.byteLength(s, 'utf8') > max);
}

function checkKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string, got ${preview(key)}`);
  if (utf8Over(key, MAX_KEY_BYTES)) throw new InvalidArgumentError(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
}

function checkValue(value: unknown): asserts value is KvValue {
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
    default:
      throw new InvalidArgumentError(`unknown kv command op ${preview(c.op)}`);
  }
}

export function validateSession(s: unknown): asserts s is SessionStamp {
  if (typeof s !== 'object' || s === null) throw new InvalidArgumentError('session must be { id, seq, ack? }');
  const x = s as Record<string, unknown>;
  if (typeof x.id !== 'string' || x.id.length === 0 || x.id.length > 128) throw new InvalidArgumentError('session.id must be a string of 1-128 characters');
  if (typeof x.seq !== 'number' || !Number.isSafeInteger(x.seq) || x.seq <= 0) throw new InvalidArgumentError('session.seq must be a positive integer');
  if (x.ack !== undefined && (typeof x.ack !== 'number' || !Number.isSafeInteger(x.ack) || x.ack < 0 || x.ack >= x.seq)) {
    throw new InvalidArgumentError('session.ack must be a non-negative integer below seq');
  }
}

export function validateQuery(q: unknown): asserts q is KvQuery {
  if (typeof q !== 'object' || q === null) throw new InvalidArgumentError(`query must be an object, got ${preview(q)}`);
  const x = q as Record<string, unknown>;
  switch (x.op) {
    case 'get':
      checkKey(x.key);
      return;
    case 'range':
      if (typeof x.prefix !== 'string') throw new InvalidArgumentError('range.prefix must be a string');
      if (x.limit !== undefined && (typeof x.limit !== 'number' || !Number.isSafeInteger(x.limit) || x.limit <= 0)) {
        throw new InvalidArgumentError('range.limit must be a positive integer');
      }
      if (x.after !== undefined && typeof x.after !== 'string') throw new InvalidArgumentError('range.after must be a string');
      return;
    case 'revision':
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
  checkText(cmd.key, 'key');
  if (cmd.op === 'delete') return;
  checkText(cmd.value, 'value');
  if (cmd.op !== 'cas') return;
  for (const field of Object.keys(cmd.compare)) {
    if (!COMPARE_FIELDS.has(field)) throw new InvalidArgumentError(`compare has an unknown field ${preview(field)} (known: ${[...COMPARE_FIELDS].join(', ')})`);
  }
  checkText(cmd.compare.value, 'compare.value');
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
