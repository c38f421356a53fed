import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@consensus-kit/core';
import { admitCommand, validateCommand, type KeyValue, type KvValue, type TxnOpResult, type TxnRequest, type TxnResult } from '@consensus-kit/kv';
import { connectKv } from '../connect';
import { CliError } from '../errors';
import { outputFor } from '../render';

interface KvOptions {
  dir: string;
  json?: boolean;
  serializable?: boolean;
  limit?: number;
  prefix?: boolean;
  /** Read at this revision (etcdctl's --rev). */
  rev?: number;
}

const text = (v: KvValue) => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

function printKv(kv: KeyValue, json: boolean): void {
  if (json) console.log(JSON.stringify({ ...kv, value: text(kv.value) }));
  else console.log(text(kv.value));
}

async function withClient<T>(o: KvOptions, fn: (c: ReturnType<typeof connectKv>) => Promise<T>): Promise<T> {
  const c = connectKv(o.dir);
  try {
    return await fn(c);
  } finally {
    await c.kv.close();
  }
}

export function put(o: KvOptions, key: string, value: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.put(key, value, { prevKv: true });
    if (o.json) console.log(JSON.stringify(r.prev ? { ...r, prev: { ...r.prev, value: text(r.prev.value) } } : r));
    else console.log(`OK (revision ${r.revision})`);
  });
}

const readOptions = (o: KvOptions) => ({
  ...(o.serializable ? { consistency: 'serializable' as const } : {}),
  ...(o.rev !== undefined ? { revision: o.rev } : {}),
});

export function get(o: KvOptions, key: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.get(key, readOptions(o));
    if (r === undefined) {
      if (o.json) console.log('null');
      else console.error(`(not found: ${key})`);
      process.exitCode = 1;
      return;
    }
    printKv(r, outputFor(o).json);
  });
}

export function del(o: KvOptions, key: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.delete(key, o.prefix ? { prefix: true } : {});
    if (o.json) console.log(JSON.stringify({ revision: r.revision, deleted: r.deleted }));
    else console.log(`deleted ${r.deleted} key${r.deleted === 1 ? '' : 's'} (revision ${r.revision})`);
  });
}

export function range(o: KvOptions, prefix: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const rows = await kv.range(prefix, { ...(o.limit !== undefined ? { limit: o.limit } : {}), ...readOptions(o) });
    if (o.json) {
      console.log(JSON.stringify(rows.map((r) => ({ ...r, value: text(r.value) }))));
      return;
    }
    for (const r of rows) console.log(`${r.key}\t${text(r.value)}`);
    if (rows.length === 0) console.error(`(no keys with prefix ${JSON.stringify(prefix)})`);
  });
}

/** Reads a txn's JSON from `file`, or from stdin when `file` is absent or '-'. */
function readTxnJson(file: string | undefined): string {
  try {
    return readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the txn from ${file === undefined || file === '-' ? 'stdin' : file}: ${(e as Error).message}`);
  }
}

/**
 * Parses a txn document: `{ "if": [compare...], "then": [op...], "else": [op...] }` (the shape of the kv
 * client's `txn`, documented in the README). Checked here, so a mistake is reported before anything is sent.
 */
export function parseTxn(textJson: string, source: string): TxnRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(textJson);
  } catch (e) {
    throw new CliError(`${source} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CliError(`${source} must be a JSON object { "if": [...], "then": [...], "else": [...] }`);
  const unknown = Object.keys(doc).filter((k) => k !== 'if' && k !== 'then' && k !== 'else');
  if (unknown.length > 0) throw new CliError(`${source} has unknown field ${JSON.stringify(unknown[0])} (known: if, then, else)`);
  try {
    const cmd = { ...doc, op: 'txn' };
    validateCommand(cmd);
    admitCommand(cmd);
  } catch (e) {
    if (InvalidArgumentError.is(e)) throw new CliError(`${source}: ${e.message}`);
    throw e;
  }
  return doc as TxnRequest;
}

function describeOp(r: TxnOpResult, indent: string): string[] {
  switch (r.op) {
    case 'put':
      return [`${indent}put OK (revision ${r.revision})`];
    case 'delete':
      return [`${indent}deleted ${r.deleted} key${r.deleted === 1 ? '' : 's'}`];
    case 'get':
      return [r.kv === undefined ? `${indent}get: (not found)` : `${indent}get ${r.kv.key}\t${text(r.kv.value)}`];
    case 'range':
      return [`${indent}range: ${r.kvs.length} key${r.kvs.length === 1 ? '' : 's'}`, ...r.kvs.map((kv) => `${indent}  ${kv.key}\t${text(kv.value)}`)];
    case 'txn':
      return [`${indent}txn ${r.succeeded ? 'SUCCESS' : 'FAILURE'}`, ...r.responses.flatMap((x) => describeOp(x, `${indent}  `))];
  }
}

/** Values as text in JSON output (bytes as base64), as `get --json` prints them. */
function jsonOp(r: TxnOpResult): unknown {
  const kvText = (kv: KeyValue) => ({ ...kv, value: text(kv.value) });
  switch (r.op) {
    case 'put':
      return r.prev ? { ...r, prev: kvText(r.prev) } : r;
    case 'delete':
      return r.prevKvs ? { ...r, prevKvs: r.prevKvs.map(kvText) } : r;
    case 'get':
      return r.kv ? { ...r, kv: kvText(r.kv) } : r;
    case 'range':
      return { ...r, kvs: r.kvs.map(kvText) };
    case 'txn':
      return { ...r, responses: r.responses.map(jsonOp) };
  }
}

/**
 * `consensus-cli txn [file]`: runs a transaction read as JSON from `file` or stdin. Prints SUCCESS or FAILURE
 * (which branch ran) with the revision, then one line per op; exit code 0 either way, as etcdctl.
 */
export function txn(o: KvOptions, file: string | undefined): Promise<void> {
  const source = file === undefined || file === '-' ? 'the txn on stdin' : file;
  const request = parseTxn(readTxnJson(file), source);
  return withClient(o, async ({ kv }) => {
    const r: TxnResult = await kv.txn(request);
    if (o.json) {
      console.log(JSON.stringify({ ...r, responses: r.responses.map(jsonOp) }));
      return;
    }
    console.log(`${r.succeeded ? 'SUCCESS' : 'FAILURE'} (revision ${r.revision})`);
    for (const line of r.responses.flatMap((x) => describeOp(x, ''))) console.log(line);
  });
}

/** `consensus-cli compact <revision>`: forgets the history before `revision` on every node. */
export function compact(o: KvOptions, revision: number): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.compact(revision);
    if (o.json) console.log(JSON.stringify(r));
    else console.log(`compacted revision ${r.compactRevision} (current revision ${r.revision})`);
  });
}
