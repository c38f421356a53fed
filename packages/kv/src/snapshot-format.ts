import { pack, unpack } from 'msgpackr';
import { InvariantError, MalformedMessageError } from '@consensus-kit/core';
import type { KeyValue } from './commands';

/**
 * Snapshot format 4 of the kv state machine: columnar, so that a store of a million keys is written and read
 * without a million msgpack records. Layout (all integers little-endian):
 *
 * ```
 * c1 6b 76 04          magic: 0xc1 (a byte msgpack never uses, so a reader of formats 1-3 refuses it as "not
 *                      msgpack" instead of misreading it), "kv", format version 4
 * u32 headerBytes      then the header, msgpack: everything but the live keys (revision, compaction revision,
 *                      history, change log, sessions, leases, replicated time) and `columns`, the byte length of
 *                      each column below
 * columns              in COLUMN order, each starting at a multiple of 8 bytes from the magic:
 *   keyText            UTF-8 of every live key, in key order, concatenated
 *   keyLen   u32[n]    each key's length in UTF-16 code units (0: the key is in the header's `oddKeys`)
 *   valKind  u8[n]     0 string (in valText), 1 bytes (in valBytes), 2 a string in the header's `oddValues`
 *   valLen   u32[n]    a string value's length in UTF-16 code units, a byte value's length in bytes
 *   valText            UTF-8 of every string value, concatenated
 *   valBytes           every byte value, concatenated
 *   createRevision, modRevision, version, lease   f64[n] each
 * ```
 *
 * Strings that are not well-formed UTF-16 (a lone surrogate: the client refuses them, but the log could hold
 * one) cannot go through UTF-8 (nor msgpack, which writes U+FFFD for it); they travel in the header's `oddKeys`
 * and `oddValues` as `[index, UTF-16 code units (u16 LE bytes)]`.
 */
export const COLUMNAR_FORMAT = 4;
const MAGIC = [0xc1, 0x6b, 0x76] as const;
const COLUMNS = ['keyText', 'keyLen', 'valKind', 'valLen', 'valText', 'valBytes', 'createRevision', 'modRevision', 'version', 'lease'] as const;
const PRELUDE = 8; // magic (4) + header length (4)

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const encoder = new TextEncoder();
// ignoreBOM: a value or key may start with U+FEFF, which a decoder otherwise drops.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const isWellFormed = (s: string): boolean => (s as { isWellFormed?: () => boolean }).isWellFormed?.() ?? !/\p{Cs}/u.test(s);
const pad8 = (n: number): number => (n + 7) & ~7;

/** Whether `bytes` start like a columnar snapshot (format 4 or later). */
export function isColumnar(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1] && bytes[2] === MAGIC[2];
}

/**
 * Builds the live-key columns of a format-4 snapshot, key by key, in key order. `flush` encodes the text added
 * since the last flush, so a snapshot written in slices spreads its UTF-8 encoding over them; the bytes are
 * the same however the keys were sliced.
 */
export class ColumnarWriter {
  private n = 0;
  private readonly keyLen: Uint32Array;
  private readonly valKind: Uint8Array;
  private readonly valLen: Uint32Array;
  private readonly createRevision: Float64Array;
  private readonly modRevision: Float64Array;
  private readonly version: Float64Array;
  private readonly lease: Float64Array;
  private keyParts: string[] = [];
  private valParts: string[] = [];
  private readonly keyChunks: Uint8Array[] = [];
  private readonly valChunks: Uint8Array[] = [];
  private readonly binChunks: Uint8Array[] = [];
  private readonly oddKeys: [number, Uint8Array][] = [];
  private readonly oddValues: [number, Uint8Array][] = [];

  constructor(readonly capacity: number) {
    if (!littleEndian) throw new InvariantError('kv snapshot format 4 is written on little-endian hosts only');
    this.keyLen = new Uint32Array(capacity);
    this.valKind = new Uint8Array(capacity);
    this.valLen = new Uint32Array(capacity);
    this.createRevision = new Float64Array(capacity);
    this.modRevision = new Float64Array(capacity);
    this.version = new Float64Array(capacity);
    this.lease = new Float64Array(capacity);
  }

  get count(): number {
    return this.n;
  }

  add(kv: KeyValue): void {
    const i = this.n;
    if (i >= this.capacity) throw new InvariantError(`kv snapshot: more than the ${this.capacity} live keys counted when it began`);
    this.n++;
    if (isWellFormed(kv.key)) {
      this.keyParts.push(kv.key);
      this.keyLen[i] = kv.key.length;
    } else this.oddKeys.push([i, codeUnits(kv.key)]);
    const v = kv.value;
    if (typeof v === 'string') {
      if (isWellFormed(v)) {
        this.valParts.push(v);
        this.valLen[i] = v.length;
      } else {
        this.valKind[i] = 2;
        this.oddValues.push([i, codeUnits(v)]);
      }
    } else {
      this.valKind[i] = 1;
      this.valLen[i] = v.length;
      this.binChunks.push(v);
    }
    this.createRevision[i] = kv.createRevision;
    this.modRevision[i] = kv.modRevision;
    this.version[i] = kv.version;
    this.lease[i] = kv.lease;
  }

  /** Encodes the text added since the last flush. */
  flush(): void {
    if (this.keyParts.length > 0) this.keyChunks.push(encoder.encode(this.keyParts.join('')));
    if (this.valParts.length > 0) this.valChunks.push(encoder.encode(this.valParts.join('')));
    this.keyParts = [];
    this.valParts = [];
  }

  /** The whole snapshot: `header` (msgpack-encodable, without `columns`, `count`, `oddKeys`, `oddValues`) and the columns. */
  finish(header: Record<string, unknown>): Uint8Array {
    if (this.n !== this.capacity) throw new InvariantError(`kv snapshot: ${this.n} live keys walked, ${this.capacity} counted when it began`);
    this.flush();
    const n = this.n;
    const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const columns: Uint8Array[][] = [
      this.keyChunks,
      [bytesOf(this.keyLen)],
      [this.valKind],
      [bytesOf(this.valLen)],
      this.valChunks,
      this.binChunks,
      [bytesOf(this.createRevision)],
      [bytesOf(this.modRevision)],
      [bytesOf(this.version)],
      [bytesOf(this.lease)],
    ];
    const lengths = columns.map((chunks) => chunks.reduce((s, c) => s + c.length, 0));
    const head = pack({ ...header, count: n, oddKeys: this.oddKeys, oddValues: this.oddValues, columns: lengths });
    let total = pad8(PRELUDE + head.length);
    for (const len of lengths) total = pad8(total + len);
    const out = new Uint8Array(total);
    out.set(MAGIC, 0);
    out[3] = COLUMNAR_FORMAT;
    new DataView(out.buffer).setUint32(4, head.length, true);
    out.set(head, PRELUDE);
    let at = pad8(PRELUDE + head.length);
    for (const chunks of columns) {
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      at = pad8(at);
    }
    return out;
  }
}

/** A format-4 snapshot read back: its header, and the live keys in key order. */
export interface ColumnarSnapshot {
  header: Record<string, unknown>;
  kvs: KeyValue[];
}

/** Reads a format-4 snapshot. Anything malformed (truncated, a newer version, keys out of order): `MalformedMessageError`. */
export function readColumnar(bytes: Uint8Array): ColumnarSnapshot {
  const bad = (what: string, cause?: unknown) => new MalformedMessageError(`kv snapshot (format 4): ${what}`, cause === undefined ? undefined : { cause });
  if (!isColumnar(bytes) || bytes.length < PRELUDE) throw bad('bad magic');
  if (bytes[3] !== COLUMNAR_FORMAT) throw new MalformedMessageError(`kv snapshot has format ${String(bytes[3])}; this code reads formats 1 to ${COLUMNAR_FORMAT} (written by a newer release?)`);
  if (!littleEndian) throw new InvariantError('kv snapshot format 4 is read on little-endian hosts only');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headBytes = view.getUint32(4, true);
  if (PRELUDE + headBytes > bytes.length) throw bad('truncated header');
  let header: Record<string, unknown>;
  try {
    header = unpack(bytes.subarray(PRELUDE, PRELUDE + headBytes)) as Record<string, unknown>;
  } catch (cause) {
    throw bad('header is not valid msgpack', cause);
  }
  if (typeof header !== 'object' || header === null) throw bad('header is not a map');
  const n = header.count;
  const lengths = header.columns;
  const oddKeys = header.oddKeys;
  const oddValues = header.oddValues;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad('bad key count');
  if (!Array.isArray(lengths) || lengths.length !== COLUMNS.length || !lengths.every((l) => Number.isSafeInteger(l) && (l as number) >= 0)) throw bad('bad column lengths');
  if (!Array.isArray(oddKeys) || !Array.isArray(oddValues)) throw bad('no odd-string tables');
  const fixed: Partial<Record<(typeof COLUMNS)[number], number>> = { keyLen: 4 * n, valKind: n, valLen: 4 * n, createRevision: 8 * n, modRevision: 8 * n, version: 8 * n, lease: 8 * n };
  const col: Uint8Array[] = [];
  let at = pad8(PRELUDE + headBytes);
  for (let c = 0; c < COLUMNS.length; c++) {
    const len = lengths[c] as number;
    const want = fixed[COLUMNS[c] as (typeof COLUMNS)[number]];
    if (want !== undefined && len !== want) throw bad(`column ${COLUMNS[c]} has ${len} bytes, not ${want}`);
    if (at + len > bytes.length) throw bad(`truncated at column ${COLUMNS[c]}`);
    col.push(bytes.subarray(at, at + len));
    at = pad8(at + len);
  }
  const [keyText, keyLenB, valKind, valLenB, valText, valBytes, createB, modB, versionB, leaseB] = col as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const keyLen = u32(keyLenB);
  const valLen = u32(valLenB);
  const createRevision = f64(createB);
  const modRevision = f64(modB);
  const version = f64(versionB);
  const lease = f64(leaseB);
  let keys: string;
  let texts: string;
  try {
    keys = decoder.decode(keyText);
    texts = decoder.decode(valText);
  } catch (cause) {
    throw bad('text is not valid UTF-8', cause);
  }
  const odd = (table: unknown[], what: string): Map<number, string> => {
    const m = new Map<number, string>();
    for (const e of table) {
      if (!Array.isArray(e) || typeof e[0] !== 'number' || !(e[1] instanceof Uint8Array) || e[1].length % 2 !== 0) throw bad(`bad ${what} entry`);
      m.set(e[0], fromCodeUnits(e[1]));
    }
    return m;
  };
  const odds = odd(oddKeys, 'oddKeys');
  const oddVals = odd(oddValues, 'oddValues');
  const kvs = new Array<KeyValue>(n);
  let k = 0;
  let t = 0;
  let b = 0;
  let prev: string | undefined;
  for (let i = 0; i < n; i++) {
    const kl = keyLen[i] as number;
    let key: string;
    if (kl === 0) {
      const o = odds.get(i);
      if (o === undefined) throw bad(`key ${i} is empty`);
      key = o;
    } else {
      if (k + kl > keys.length) throw bad('key lengths overrun the key text');
      key = keys.slice(k, k + kl);
      k += kl;
    }
    if (prev !== undefined && !(prev < key)) throw bad(`keys out of order at ${i}`);
    prev = key;
    const vl = valLen[i] as number;
    let value: KeyValue['value'];
    switch (valKind[i]) {
      case 0:
        if (t + vl > texts.length) throw bad('value lengths overrun the value text');
        value = texts.slice(t, t + vl);
        t += vl;
        break;
      case 1:
        if (b + vl > valBytes.length) throw bad('value lengths overrun the value bytes');
        value = new Uint8Array(valBytes.subarray(b, b + vl)); // a copy: a Buffer's slice would be a view
        b += vl;
        break;
      case 2: {
        const o = oddVals.get(i);
        if (o === undefined) throw bad(`value ${i} is missing`);
        value = o;
        break;
      }
      default:
        throw bad(`value ${i} has an unknown kind ${String(valKind[i])}`);
    }
    kvs[i] = { key, value, createRevision: createRevision[i] as number, modRevision: modRevision[i] as number, version: version[i] as number, lease: lease[i] as number };
  }
  if (k !== keys.length || t !== texts.length || b !== valBytes.length) throw bad('columns hold more than their lengths say');
  return { header, kvs };
}

/** A string's UTF-16 code units as bytes (u16 LE), lone surrogates included. */
function codeUnits(s: string): Uint8Array {
  const u = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return new Uint8Array(u.buffer);
}

function fromCodeUnits(b: Uint8Array): string {
  const u = new Uint16Array(new Uint8Array(b).buffer);
  let out = '';
  for (let i = 0; i < u.length; i += 4096) out += String.fromCharCode(...u.subarray(i, i + 4096));
  return out;
}

/** A column as u32s: a view when aligned, else a copy (`new Uint8Array(b)`: a Buffer's `slice` is a view). */
function u32(b: Uint8Array): Uint32Array {
  return (b.byteOffset & 3) === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2) : new Uint32Array(new Uint8Array(b).buffer);
}

function f64(b: Uint8Array): Float64Array {
  return (b.byteOffset & 7) === 0 ? new Float64Array(b.buffer, b.byteOffset, b.length >>> 3) : new Float64Array(new Uint8Array(b).buffer);
}
