import { preview } from '@consensus-kit/core';
import { MAX_TXN_OPS, checkKey, checkPutLease, checkValue, valuesEqual, type KeyValue, type KvValue, type TxnCompare, type TxnOp, type TxnRequest } from './commands';
import { InvalidTxnError } from './errors';

const TARGETS: ReadonlySet<unknown> = new Set(['value', 'version', 'createRevision', 'modRevision', 'lease']);
const CMPS: ReadonlySet<unknown> = new Set(['=', '!=', '<', '>']);

/** Counts of one transaction tree, checked against `MAX_TXN_OPS` as they grow. */
interface Budget {
  ops: number;
  compares: number;
}

/** The keys written by one branch: put keys, and deleted keys or prefixes. */
interface Writes {
  puts: Set<string>;
  deletes: { key: string; prefix: boolean }[];
}

const covers = (d: { key: string; prefix: boolean }, key: string) => (d.prefix ? key.startsWith(d.key) : key === d.key);

/**
 * Validates a transaction: shape, sizes (`MAX_TXN_OPS` ops and as many compares, nested transactions
 * included) and, per branch, no key written twice (two puts, or a put inside a deleted key or prefix: etcd
 * refuses both, since the outcome would depend on op order within one revision). Deletes may overlap. Runs
 * where commands enter and again at apply, so a bad transaction fails the same way on every replica.
 */
export function validateTxn(t: Record<string, unknown>): void {
  validateLevel(t, { ops: 0, compares: 0 });
}

function validateLevel(t: Record<string, unknown>, budget: Budget): Writes[] {
  const compares = t.if;
  if (compares !== undefined && !Array.isArray(compares)) throw new InvalidTxnError('bad-compare', `\`if\` must be an array of compares, got ${preview(compares)}`);
  for (const c of (compares ?? []) as unknown[]) {
    if (++budget.compares > MAX_TXN_OPS) throw new InvalidTxnError('too-many-compares', `more than ${MAX_TXN_OPS} compares`);
    validateCompare(c);
  }
  const out: Writes[] = [];
  for (const branch of ['then', 'else'] as const) {
    const ops = t[branch];
    if (ops !== undefined && !Array.isArray(ops)) throw new InvalidTxnError('bad-op', `\`${branch}\` must be an array of ops, got ${preview(ops)}`);
    const writes: Writes = { puts: new Set(), deletes: [] };
    for (const op of (ops ?? []) as unknown[]) {
      if (++budget.ops > MAX_TXN_OPS) throw new InvalidTxnError('too-many-ops', `more than ${MAX_TXN_OPS} ops (every branch and nested txn counted)`);
      validateOp(op, branch, writes, budget);
    }
    out.push(writes);
  }
  return out;
}

function addPut(w: Writes, key: string, branch: string): void {
  if (w.puts.has(key) || w.deletes.some((d) => covers(d, key))) throw new InvalidTxnError('duplicate-key', `key ${preview(key)} is written twice in \`${branch}\``);
  w.puts.add(key);
}

function addDelete(w: Writes, d: { key: string; prefix: boolean }, branch: string): void {
  for (const k of w.puts) if (covers(d, k)) throw new InvalidTxnError('duplicate-key', `key ${preview(k)} is written twice in \`${branch}\` (put and deleted)`);
  w.deletes.push(d);
}

function validateOp(raw: unknown, branch: string, writes: Writes, budget: Budget): void {
  if (typeof raw !== 'object' || raw === null) throw new InvalidTxnError('bad-op', `an op must be an object, got ${preview(raw)}`);
  const op = raw as Record<string, unknown>;
  try {
    switch (op.op) {
      case 'put':
        checkKey(op.key);
        checkValue(op.value);
        checkFlag(op.prevKv, 'put.prevKv');
        checkPutLease(op.lease);
        addPut(writes, op.key, branch);
        return;
      case 'delete':
        checkFlag(op.prefix, 'delete.prefix');
        checkFlag(op.prevKv, 'delete.prevKv');
        if (!(op.prefix === true && op.key === '')) checkKey(op.key);
        addDelete(writes, { key: op.key as string, prefix: op.prefix === true }, branch);
        return;
      case 'get':
        checkKey(op.key);
        return;
      case 'range':
        if (typeof op.prefix !== 'string') throw new InvalidTxnError('bad-op', 'range.prefix must be a string');
        if (op.limit !== undefined && (typeof op.limit !== 'number' || !Number.isSafeInteger(op.limit) || op.limit <= 0)) {
          throw new InvalidTxnError('bad-op', 'range.limit must be a positive integer');
        }
        if (op.after !== undefined && typeof op.after !== 'string') throw new InvalidTxnError('bad-op', 'range.after must be a string');
        return;
      case 'txn': {
        // Only one branch of a nested txn runs: each is checked on its own, then both count against the outer branch.
        for (const inner of validateLevel(op, budget)) {
          for (const k of inner.puts) addPut(writes, k, branch);
          for (const d of inner.deletes) addDelete(writes, d, branch);
        }
        return;
      }
      default:
        throw new InvalidTxnError('bad-op', `unknown op ${preview(op.op)} (known: put, delete, get, range, txn)`);
    }
  } catch (e) {
    if (e instanceof InvalidTxnError) throw e;
    throw new InvalidTxnError('bad-op', (e as Error).message);
  }
}

function checkFlag(v: unknown, what: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new InvalidTxnError('bad-op', `${what} must be a boolean`);
}

function validateCompare(raw: unknown): void {
  if (typeof raw !== 'object' || raw === null) throw new InvalidTxnError('bad-compare', `a compare must be { key, target, cmp, value }, got ${preview(raw)}`);
  const c = raw as Record<string, unknown>;
  try {
    checkKey(c.key, 'compare key');
  } catch (e) {
    throw new InvalidTxnError('bad-compare', (e as Error).message);
  }
  if (!TARGETS.has(c.target)) throw new InvalidTxnError('bad-compare', `unknown compare target ${preview(c.target)} (known: ${[...TARGETS].join(', ')})`);
  if (!CMPS.has(c.cmp)) throw new InvalidTxnError('bad-compare', `unknown compare operator ${preview(c.cmp)} (known: =, !=, <, >)`);
  if (c.target === 'value') {
    try {
      checkValue(c.value);
    } catch (e) {
      throw new InvalidTxnError('bad-compare', `compare value: ${(e as Error).message}`);
    }
  } else if (typeof c.value !== 'number' || !Number.isSafeInteger(c.value) || c.value < 0) {
    throw new InvalidTxnError('bad-compare', `compare on ${String(c.target)} needs a non-negative integer value, got ${preview(c.value)}`);
  }
}

const encoder = new TextEncoder();
const bytesOf = (v: KvValue): Uint8Array => (typeof v === 'string' ? encoder.encode(v) : v);

/** Byte order of two values (etcd compares values as bytes; text is taken as its UTF-8). */
function compareBytes(a: KvValue, b: KvValue): number {
  const x = bytesOf(a);
  const y = bytesOf(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/**
 * Whether `c` holds for `kv` (undefined: the key is absent), as etcd's compare: an absent key has version,
 * createRevision, modRevision and lease 0, and fails every compare on its value. Text and bytes are never
 * equal (as `valuesEqual`), and order by their bytes.
 */
export function compareHolds(c: TxnCompare, kv: KeyValue | undefined): boolean {
  let order: number;
  if (c.target === 'value') {
    if (kv === undefined) return false;
    const v = c.value as KvValue;
    if (c.cmp === '=') return valuesEqual(kv.value, v);
    if (c.cmp === '!=') return !valuesEqual(kv.value, v);
    order = compareBytes(kv.value, v);
  } else {
    const have = kv === undefined ? 0 : kv[c.target];
    order = have - (c.value as number);
  }
  switch (c.cmp) {
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '>':
      return order > 0;
  }
}

export type { TxnOp, TxnRequest };
