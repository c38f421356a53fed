import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from '@consensus-kit/core';
import { MAX_VALUE_BYTES, admitCommand, validateCommand, type KeyValue, type KvValue, type TxnOpResult, type TxnRequest, type TxnResult } from '@consensus-kit/kv';
import { connectKv } from '../connect';
import { DEFAULT_KV_TIMEOUT_MS, withDeadline } from '../deadline';
import { CliError } from '../errors';
import { outputFor } from '../render';
import type { Target } from '../target';

interface KvOptions {
  /** The cluster: a directory of one the CLI started, or endpoints and a cluster id (`--endpoints`). */
  target: Target;
  json?: boolean;
  serializable?: boolean;
  limit?: number;
  prefix?: boolean;
  /** Read at this revision (etcdctl's --rev). */
  rev?: number;
  /** `--timeout`: give up after this many ms (default `DEFAULT_KV_TIMEOUT_MS`). */
  timeout?: number;
  /** `put --file <path>`: the value is the file's content. */
  file?: string;
  /** `put --lease <id>`: attach the key to this lease. */
  lease?: number;
}

const text = (v: KvValue) => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

function printKv(kv: KeyValue, json: boolean): void {
  if (json) console.log(JSON.stringify({ ...kv, value: text(kv.value) }));
  else console.log(text(kv.value));
}

/**
 * Runs `fn` with a kv client for the target cluster, giving up after `o.timeout` (or the default): the
 * client's own deadline is set a little later, so the command's one-line message is what the user sees.
 */
async function withClient<T>(o: KvOptions, what: string, fn: (c: ReturnType<typeof connectKv>, call: { signal?: AbortSignal }) => Promise<T>, note?: string): Promise<T> {
  const timeoutMs = o.timeout ?? DEFAULT_KV_TIMEOUT_MS;
  const c = connectKv(o.target, { timeoutMs: timeoutMs + 1000 });
  try {
    const deadline = { what, byDefault: o.timeout === undefined, ...(note !== undefined ? { note } : {}) };
    return await withDeadline(timeoutMs, deadline, (signal) => fn(c, signal ? { signal } : {}));
  } finally {
    await c.kv.close();
  }
}

const WRITE_NOTE = 'the write may still take effect (no majority answered in time: `consensus-cli status` shows the nodes)';
const READ_NOTE = 'no majority answered in time (`consensus-cli status` shows the nodes)';

/**
 * The value of `put`: the argument, the content of `--file <path>`, or stdin when the argument is `-`. File
 * and stdin content is stored as text when it is valid UTF-8, else as bytes (shown base64 by `get`), byte for
 * byte (a trailing newline stays). A value over the store's limit is refused before anything is sent.
 */
export function putValue(value: string | undefined, file: string | undefined, readStdin: () => Buffer = () => readFileSync(0)): KvValue {
  if (value !== undefined && file !== undefined) throw new CliError('put takes its value once: as an argument, with --file <path>, or - for stdin', 2);
  if (value === undefined && file === undefined) throw new CliError('put needs a value: put <key> <value>, put <key> --file <path>, or put <key> - (stdin)', 2);
  if (value !== undefined && value !== '-') return value;
  const source = file ?? 'stdin';
  const tooBig = (n: number) => new CliError(`the value in ${source} is ${n} bytes, larger than the largest value a key can hold (${MAX_VALUE_BYTES} bytes)`);
  let bytes: Buffer;
  try {
    if (file !== undefined) {
      const size = statSync(file).size;
      if (size > MAX_VALUE_BYTES) throw tooBig(size);
    }
    bytes = file !== undefined ? readFileSync(file) : readStdin();
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read the value from ${source}: ${(e as Error).message}`);
  }
  if (bytes.length > MAX_VALUE_BYTES) throw tooBig(bytes.length);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return new Uint8Array(bytes);
  }
}

export function put(o: KvOptions, key: string, arg: string | undefined): Promise<void> {
  const value = putValue(arg, o.file);
  return withClient(o, `put ${key}`, async ({ kv }, call) => {
    const r = await kv.put(key, value, { prevKv: true, ...(o.lease !== undefined ? { lease: o.lease } : {}), ...call });
    if (o.json) console.log(JSON.stringify(r.prev ? { ...r, prev: { ...r.prev, value: text(r.prev.value) } } : r));
    else console.log(`OK (revision ${r.revision})`);
  }, WRITE_NOTE);
}

const readOptions = (o: KvOptions) => ({
  ...(o.serializable ? { consistency: 'serializable' as const } : {}),
  ...(o.rev !== undefined ? { revision: o.rev } : {}),
});

/**
 * `get <key>`: prints the value (`--json`: the key as one JSON object). A missing key prints nothing and exits 0,
 * in text and JSON alike, as etcdctl: an empty value prints an empty line, so the two can be told apart.
 */
export function get(o: KvOptions, key: string): Promise<void> {
  return withClient(o, `get ${key}`, async ({ kv }, call) => {
    const r = await kv.get(key, { ...readOptions(o), ...call });
    if (r !== undefined) printKv(r, outputFor(o).json);
  }, READ_NOTE);
}

export function del(o: KvOptions, key: string): Promise<void> {
  return withClient(o, `del ${key}`, async ({ kv }, call) => {
    const r = await kv.delete(key, { ...(o.prefix ? { prefix: true } : {}), ...call });
    if (o.json) console.log(JSON.stringify({ revision: r.revision, deleted: r.deleted }));
    else console.log(`deleted ${r.deleted} key${r.deleted === 1 ? '' : 's'} (revision ${r.revision})`);
  }, WRITE_NOTE);
}

export function range(o: KvOptions, prefix: string): Promise<void> {
  return withClient(o, `range ${prefix}`, async ({ kv }, call) => {
    const rows = await kv.range(prefix, { ...(o.limit !== undefined ? { limit: o.limit } : {}), ...readOptions(o), ...call });
    if (o.json) {
      console.log(JSON.stringify(rows.map((r) => ({ ...r, value: text(r.value) }))));
      return;
    }
    for (const r of rows) console.log(`${r.key}\t${text(r.value)}`);
    if (rows.length === 0) console.error(`(no keys with prefix ${JSON.stringify(prefix)})`);
  }, READ_NOTE);
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
  return withClient(o, 'txn', async ({ kv }, call) => {
    const r: TxnResult = await kv.txn(request, call);
    if (o.json) {
      console.log(JSON.stringify({ ...r, responses: r.responses.map(jsonOp) }));
      return;
    }
    console.log(`${r.succeeded ? 'SUCCESS' : 'FAILURE'} (revision ${r.revision})`);
    for (const line of r.responses.flatMap((x) => describeOp(x, ''))) console.log(line);
  }, WRITE_NOTE);
}

/** `consensus-cli compact <revision>`: forgets the history before `revision` on every node. */
export function compact(o: KvOptions, revision: number): Promise<void> {
  return withClient(o, `compact ${revision}`, async ({ kv }, call) => {
    const r = await kv.compact(revision, call);
    if (o.json) console.log(JSON.stringify(r));
    else console.log(`compacted revision ${r.compactRevision} (current revision ${r.revision})`);
  }, WRITE_NOTE);
}
