import { Unpackr, pack } from 'msgpackr';
import { InvariantError, MalformedMessageError } from '@consensus-kit/core';
import type { KeyValue } from './commands';
import type { KeyRecord } from './mvcc-store';

/**
 * What a restore reads from a snapshot's msgpack (the header, the odd keys and values, the history) is unpacked
 * with its byte values copied: msgpackr's default hands them over as views of the snapshot, so one kept past byte
 * value held the whole snapshot (157 MB for bench:large's store) until its history was compacted, and a snapshot
 * in shared memory counted against `MAX_SHARED_ALIVE` all that time. Otherwise as msgpackr's own `unpack`.
 */
const restoreUnpackr = new Unpackr({ useRecords: false, copyBuffers: true });
const unpack = (bytes: Uint8Array): unknown => restoreUnpackr.unpack(bytes);
const unpackMultiple = (bytes: Uint8Array): unknown[] => restoreUnpackr.unpackMultiple(bytes) as unknown[];

/**
 * Snapshot format 4 of the kv state machine: columnar, so that a store of a million keys is written and read
 * without a million msgpack records. Layout (integers little-endian; n = live keys; every section starts at a
 * multiple of 8 bytes):
 *
 * ```
 * c1 6b 76 04            magic: 0xc1 (a byte msgpack never uses, so a reader of formats 1-3 refuses it as "not
 *                        msgpack" instead of misreading it), "kv", format version 4
 * u32 0, f64 n           reserved, the number of live keys
 * keyLen    u32[n]       each key's length in UTF-16 code units (0: the key is in the header's `oddKeys`)
 * valKind   u8[n]        0 a string (in the text), 1 bytes (in valBytes), 2 a string in the header's `oddValues`
 * valLen    u32[n]       a string value's length in UTF-16 code units, a byte value's length in bytes
 * createRevision, modRevision, version, lease   f64[n] each
 * text                   UTF-8 of key 0, its value if a string, key 1, its value..., in key order, concatenated
 * valBytes               every byte value, concatenated
 * past                   msgpack array: every key with retained history, `[key, records]`, in key order
 * header                 msgpack map: the rest (revision, compaction revision, change log, sessions, leases,
 *                        replicated time)
 * odd                    msgpack map: { oddKeys, oddValues } (see below)
 * f64 sizes of text, valBytes, past, header and odd     (the last 40 bytes)
 * ```
 *
 * The sizes of the fixed columns follow from n, so the writer encodes the text straight into the one buffer
 * the snapshot ends up in (no copy of a large store's hundreds of MB, no allocation per slice). Strings that are
 * not well-formed UTF-16 (a lone surrogate: the client refuses them, but the log could hold one) cannot go
 * through UTF-8 (nor msgpack, which writes U+FFFD for it); they travel in the header's `oddKeys` and
 * `oddValues` as `[index, UTF-16 code units (u16 LE bytes)]`.
 */
export const COLUMNAR_FORMAT = 4;
const MAGIC = [0xc1, 0x6b, 0x76] as const;
const PRELUDE = 16;
const TRAILER = 40;

/** Room left past the projected size for the sections written at the end (odd strings, trailer, padding). */
const SPARE = 65_536;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const encoder = new TextEncoder();

const isWellFormed = (s: string): boolean => (s as { isWellFormed?: () => boolean }).isWellFormed?.() ?? !/\p{Cs}/u.test(s);
/** Rounds up to a multiple of 8 (arithmetic, not bitwise: sizes may pass 2^31). */
const pad8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Byte offsets of the fixed columns for n keys, and where the text starts. */
function layout(n: number) {
  const keyLen = PRELUDE;
  const valKind = pad8(keyLen + 4 * n);
  const valLen = pad8(valKind + n);
  const createRevision = pad8(valLen + 4 * n);
  const modRevision = createRevision + 8 * n;
  const version = modRevision + 8 * n;
  const lease = version + 8 * n;
  return { keyLen, valKind, valLen, createRevision, modRevision, version, lease, text: lease + 8 * n };
}

/** Whether `bytes` start like a columnar snapshot (format 4 or later). */
export function isColumnar(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1] && bytes[2] === MAGIC[2];
}

/** The fixed columns as typed views over one buffer. */
interface Views {
  keyLen: Uint32Array;
  valKind: Uint8Array;
  valLen: Uint32Array;
  createRevision: Float64Array;
  modRevision: Float64Array;
  version: Float64Array;
  lease: Float64Array;
}

function views(buf: ArrayBufferLike, byteOffset: number, n: number): Views {
  const l = layout(n);
  return {
    keyLen: new Uint32Array(buf, byteOffset + l.keyLen, n),
    valKind: new Uint8Array(buf, byteOffset + l.valKind, n),
    valLen: new Uint32Array(buf, byteOffset + l.valLen, n),
    createRevision: new Float64Array(buf, byteOffset + l.createRevision, n),
    modRevision: new Float64Array(buf, byteOffset + l.modRevision, n),
    version: new Float64Array(buf, byteOffset + l.version, n),
    lease: new Float64Array(buf, byteOffset + l.lease, n),
  };
}

/**
 * Writes a format-4 snapshot, key by key in key order, into one buffer, sized up front by `textBytesHint` (or
 * after the first slice by the text per key seen so far) and grown if the text runs longer. Where Node's
 * `Buffer` exists, each key and string value is encoded straight into place as it is added: a snapshot of a
 * large store allocates nothing per key (a joined string of every slice's text was 116 MB of garbage for
 * 1,000,000 keys, and that allocation paced the main thread's share of the garbage collector's marking while
 * puts waited). Elsewhere the strings added since the last `flush` are joined and encoded then. The bytes are the
 * same either way, however the keys were sliced.
 */
export class ColumnarWriter {
  private n = 0;
  private out: Uint8Array;
  private v: Views;
  /** Where the next text byte goes. */
  private pos: number;
  /** `out` as a Node Buffer (the same memory), to encode strings into; undefined where Buffer does not exist. */
  private buf: Utf8Target | undefined;
  /** Strings added since the last flush, when there is no `buf` to encode them into at once, and their code units. */
  private parts: string[] = [];
  private partsUnits = 0;
  /** Whether the buffer was checked against the size the first slice projects. */
  private sized = false;
  /** UTF-16 code units of the text encoded so far, and bytes of the byte values added so far. */
  private unitsEncoded = 0;
  private binAdded = 0;
  /** The hints the buffer was sized by (see the constructor). */
  private readonly textHint: number;
  private readonly pastHint: number;
  private readonly binChunks: Uint8Array[] = [];
  /** The history walked so far, packed a batch at a time: the elements of one msgpack array. */
  private readonly pastChunks: Uint8Array[] = [];
  private pastCount = 0;
  /** History queued to pack (`queuePast`): entries [pastHead..], the first one's records from `pastRec` (-1: its head first). */
  private readonly pastQueue: [string, KeyRecord[]][] = [];
  private pastHead = 0;
  private pastRec = -1;
  /** Bytes of the history packed so far (the chunks' lengths). */
  private pastPacked = 0;
  private readonly oddKeys: [number, Uint8Array][] = [];
  private readonly oddValues: [number, Uint8Array][] = [];

  /** The header, packed when the writer is made (it is captured then). */
  private readonly head: Uint8Array;

  /**
   * `header`: msgpack-encodable, everything but the live keys and the history (packed now). `textBytesHint`
   * (the UTF-16 code units of every key and string value plus the bytes of every byte value: exact for ASCII
   * text, which takes a byte per code unit) and `pastBytesHint` size the buffer: a buffer too small is grown,
   * which copies what it holds. `direct`: encode each string as it is added (where Buffer exists; false joins
   * them at each flush, as without Buffer).
   */
  constructor(
    readonly capacity: number,
    header: Record<string, unknown>,
    textBytesHint = 0,
    pastBytesHint = 0,
    direct = true,
  ) {
    if (!littleEndian) throw new InvariantError('kv snapshot format 4 is written on little-endian hosts only');
    this.head = pack(header);
    this.pos = layout(capacity).text;
    this.textHint = Math.max(0, Math.ceil(textBytesHint));
    this.pastHint = Math.max(0, Math.ceil(pastBytesHint));
    // The history takes 5 bytes when empty (its array header): `projected` counts it so.
    this.out = snapshotBuffer(pad8(this.pos + this.textHint + Math.max(this.pastHint, 5) + this.head.length + SPARE));
    this.v = views(this.out.buffer, 0, capacity);
    this.buf = direct ? utf8Target?.(this.out) : undefined;
  }

  get count(): number {
    return this.n;
  }

  /** Bytes of text written so far (what the next snapshot's `textBytesHint` can start from). */
  get textBytes(): number {
    return this.pos - layout(this.capacity).text;
  }

  /** About how much text was added so far: `textBytes`, plus the code units of strings not encoded yet. */
  get textAdded(): number {
    return this.textBytes + this.partsUnits;
  }

  add(kv: KeyValue): void {
    const i = this.n;
    if (i >= this.capacity) throw new InvariantError(`kv snapshot: more than the ${this.capacity} live keys counted when it began`);
    this.n++;
    if (isWellFormed(kv.key)) {
      this.text(kv.key);
      this.v.keyLen[i] = kv.key.length;
    } else this.oddKeys.push([i, codeUnits(kv.key)]);
    const value = kv.value;
    if (typeof value === 'string') {
      if (isWellFormed(value)) {
        this.text(value);
        this.v.valLen[i] = value.length;
      } else {
        this.v.valKind[i] = 2;
        this.oddValues.push([i, codeUnits(value)]);
      }
    } else {
      this.v.valKind[i] = 1;
      this.v.valLen[i] = value.length;
      this.binChunks.push(value);
      this.binAdded += value.length;
    }
    this.v.createRevision[i] = kv.createRevision;
    this.v.modRevision[i] = kv.modRevision;
    this.v.version[i] = kv.version;
    this.v.lease[i] = kv.lease;
  }

  /** Adds keys with history, in key order after the previous ones, packed now (see `queuePast` for a slice at a time). */
  addPast(entries: [key: string, recs: KeyRecord[]][]): void {
    this.queuePast(entries);
    this.packPast(Number.POSITIVE_INFINITY);
  }

  /** Adds keys with history, in key order after the previous ones, to be packed by `packPast`. */
  queuePast(entries: [key: string, recs: KeyRecord[]][]): void {
    for (const e of entries) this.pastQueue.push(e);
  }

  /**
   * Packs the history queued, until about `maxBytes` were packed (at least one record): a key's records one at a
   * time, so one key with a long history of large values is packed over many steps. The bytes are what packing
   * each `[key, records]` whole gives (msgpack writes an array as its header, then its elements).
   * True once nothing is left queued.
   */
  packPast(maxBytes: number): boolean {
    let packed = 0;
    const queue = this.pastQueue;
    while (this.pastHead < queue.length) {
      const [key, recs] = queue[this.pastHead] as [string, KeyRecord[]];
      if (this.pastRec < 0 && isSmallEntry(key, recs)) {
        // A small history (most keys'): packed whole, one call (the same bytes).
        const whole = pack([key, recs]);
        this.pastChunks.push(whole);
        this.pastPacked += whole.length;
        this.pastCount++;
        packed += whole.length;
        queue[this.pastHead] = undefined as unknown as [string, KeyRecord[]]; // let it go
        this.pastHead++;
        if (packed >= maxBytes && this.pastHead < queue.length) return false;
        continue;
      }
      if (this.pastRec < 0) {
        // The entry's head: a 2-element array, the key, the records' array header.
        const k = pack(key);
        const h = arrayHeader(recs.length);
        const head = new Uint8Array(1 + k.length + h.length);
        head[0] = 0x92;
        head.set(k, 1);
        head.set(h, 1 + k.length);
        this.pastChunks.push(head);
        this.pastPacked += head.length;
        this.pastCount++;
        this.pastRec = 0;
      }
      while (this.pastRec < recs.length) {
        if (packed >= maxBytes) return false;
        const r = pack(recs[this.pastRec]);
        this.pastChunks.push(r);
        this.pastPacked += r.length;
        packed += r.length;
        this.pastRec++;
      }
      this.pastRec = -1;
      queue[this.pastHead] = undefined as unknown as [string, KeyRecord[]]; // let it go
      this.pastHead++;
      if (packed >= maxBytes && this.pastHead < queue.length) return false;
    }
    queue.length = 0;
    this.pastHead = 0;
    return true;
  }

  /** A well-formed string's UTF-8, next in the text: encoded into place now, or at the next flush. */
  private text(s: string): void {
    const buf = this.buf;
    if (buf === undefined) {
      this.parts.push(s);
      this.partsUnits += s.length;
      return;
    }
    // At most 3 bytes per UTF-16 code unit; the exact length is counted only when that might not fit.
    if (this.pos + 3 * s.length > this.out.length) {
      const need = utf8Length(s);
      if (this.pos + need > this.out.length) this.grow(Math.max(this.projected(1.05), this.pos + need + SPARE));
    }
    this.pos += (this.buf as Utf8Target).write(s, this.pos, 'utf8');
    this.unitsEncoded += s.length;
  }

  /**
   * Ends a slice: encodes the strings added since the last flush into place (when they were not encoded at once),
   * and after the first slice sizes the buffer for the whole walk while it is still cheap to copy.
   */
  flush(): void {
    if (this.parts.length > 0) {
      let s = this.parts.join('');
      this.parts = [];
      this.partsUnits = 0;
      for (;;) {
        const r = encoder.encodeInto(s, this.out.subarray(this.pos));
        this.pos += r.written;
        this.unitsEncoded += r.read;
        if (r.read === s.length) break;
        // Out of room: grow to what the keys so far predict for all of them (or to what the rest can need),
        // then encode the rest. encodeInto stops at a character boundary: `read` never splits a surrogate pair.
        s = s.slice(r.read);
        this.grow(Math.max(this.projected(1.05), this.pos + 3 * s.length + SPARE));
      }
    }
    if (!this.sized && this.n > 0) {
      this.sized = true;
      if (this.projected() > this.out.length) this.grow(this.projected(1.05));
    }
  }

  /**
   * The buffer the snapshot will need (the projections to come times `spare`). With a text hint: what the hint
   * leaves, plus the UTF-8 bytes beyond one per code unit seen so far, per key (none for ASCII text, however its
   * keys and values vary in length: a first slice of long values no longer makes a store of ASCII text grow and
   * copy its buffer), and the history hint or what the history took so far if more. Without: the text and
   * history per key so far.
   */
  private projected(spare = 1): number {
    if (this.n === 0) return this.out.length;
    const left = this.capacity - this.n;
    if (this.textHint > 0) {
      // Text not encoded yet (the rest of the hint, pending strings included) and the byte values added so far
      // (copied in at the end).
      const hintLeft = Math.max(0, this.textHint - this.unitsEncoded - this.binAdded);
      const extraPerKey = Math.max(0, this.textBytes - this.unitsEncoded) / this.n;
      return pad8(this.pos + hintLeft + this.binAdded + extraPerKey * left * spare + Math.max(this.pastHint, this.pastBytes) + this.head.length + SPARE);
    }
    const perKey = (this.textBytes + this.pastBytes) / this.n;
    return pad8(this.pos + this.pastBytes + perKey * left * spare + this.head.length + SPARE);
  }

  private get pastBytes(): number {
    return 5 + this.pastPacked;
  }

  private grow(size: number): void {
    const bigger = snapshotBuffer(pad8(Math.ceil(size)));
    bigger.set(this.out.subarray(0, this.pos));
    this.out = bigger;
    this.v = views(bigger.buffer, 0, this.capacity);
    if (this.buf !== undefined) this.buf = utf8Target?.(bigger);
  }

  /** The whole snapshot at once: `finishing()` run to the end. */
  finish(): Uint8Array {
    const f = this.finishing();
    for (;;) {
      const out = f.copy(Number.POSITIVE_INFINITY);
      if (out !== undefined) return out;
    }
  }

  /**
   * Ends the text and returns the copier of what follows it: each `copy(maxBytes)` copies about that many bytes into
   * place (the byte values, the history packed while walking, and, when the buffer must grow or is far too large,
   * the columns and text into one of the right size) and returns the snapshot once done. Nothing of a size that
   * grows with the store is copied at once: a snapshot of 64 KiB values whose history took 156 MB copied the
   * history into place in its last step (150-390 ms).
   */
  finishing(): { copy(maxBytes: number): Uint8Array | undefined } {
    if (this.n !== this.capacity) throw new InvariantError(`kv snapshot: ${this.n} live keys walked, ${this.capacity} counted when it began`);
    this.packPast(Number.POSITIVE_INFINITY);
    this.flush();
    const textStart = layout(this.capacity).text;
    const textBytes = this.pos - textStart;
    const binStart = pad8(this.pos);
    const binBytes = this.binChunks.reduce((s, c) => s + c.length, 0);
    const pastStart = pad8(binStart + binBytes);
    const pastBytes = this.pastBytes;
    const head = this.head;
    const odd = pack({ oddKeys: this.oddKeys, oddValues: this.oddValues });
    const headStart = pad8(pastStart + pastBytes);
    const oddStart = pad8(headStart + head.length);
    const total = pad8(oddStart + odd.length) + TRAILER;
    const old = this.out;
    {
      const dv = new DataView(old.buffer, old.byteOffset, old.byteLength);
      old.set(MAGIC, 0);
      old[3] = COLUMNAR_FORMAT;
      dv.setUint32(4, 0, true);
      dv.setFloat64(8, this.capacity, true);
    }
    // What is copied a slice at a time: [bytes, where they go].
    const pieces: [Uint8Array, number][] = [];
    // Too small, or the size hints so far off that the spare room is more than half the snapshot: the columns and
    // text move to a buffer of the snapshot's size (a view of a larger one would keep its spare memory).
    const move = total > old.length || old.length - total > total / 2;
    const out = move ? snapshotBuffer(total) : old;
    if (move) pieces.push([old.subarray(0, this.pos), 0]);
    let at = binStart;
    for (const c of this.binChunks) {
      pieces.push([c, at]);
      at += c.length;
    }
    at = pastStart + 5;
    for (const c of this.pastChunks) {
      pieces.push([c, at]);
      at += c.length;
    }
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    out.fill(0, this.pos, binStart);
    out[pastStart] = 0xdd; // array32 of pastCount elements
    dv.setUint32(pastStart + 1, this.pastCount, false);
    out.fill(0, pastStart + pastBytes, headStart);
    out.set(head, headStart);
    out.fill(0, headStart + head.length, oddStart);
    out.set(odd, oddStart);
    out.fill(0, oddStart + odd.length, total - TRAILER);
    dv.setFloat64(total - 40, textBytes, true);
    dv.setFloat64(total - 32, binBytes, true);
    dv.setFloat64(total - 24, pastBytes, true);
    dv.setFloat64(total - 16, head.length, true);
    dv.setFloat64(total - 8, odd.length, true);
    let next = 0;
    let partial = 0;
    return {
      copy: (maxBytes: number) => {
        let left = maxBytes;
        while (next < pieces.length && left > 0) {
          const [c, to] = pieces[next] as [Uint8Array, number];
          const k = Math.min(c.length - partial, left);
          out.set(partial === 0 && k === c.length ? c : c.subarray(partial, partial + k), to + partial);
          partial += k;
          left -= k;
          if (partial === c.length) {
            next++;
            partial = 0;
          }
        }
        if (next < pieces.length) return undefined;
        return out.length === total ? out : out.subarray(0, total);
      },
    };
  }
}

/** A format-4 snapshot read back: its header, and the live keys in key order. */
export interface ColumnarSnapshot {
  header: Record<string, unknown>;
  kvs: KeyValue[];
}

/** Reads a format-4 snapshot. Anything malformed (truncated, a newer version, keys out of order): `MalformedMessageError`. */
export function readColumnar(bytes: Uint8Array): ColumnarSnapshot {
  const r = new ColumnarReader(bytes);
  const kvs = new Array<KeyValue>(r.count);
  r.read(Number.POSITIVE_INFINITY, kvs);
  const past: [string, unknown[]][] = [];
  r.history().read(Number.POSITIVE_INFINITY, {
    key: (key) => past.push([key, []]),
    record: (rec) => (past[past.length - 1] as [string, unknown[]])[1].push(rec),
    endKey: () => undefined,
  });
  return { header: { ...r.header, past }, kvs };
}

const bad = (what: string, cause?: unknown) => new MalformedMessageError(`kv snapshot (format 4): ${what}`, cause === undefined ? undefined : { cause });

/**
 * Reads a format-4 snapshot a slice of keys at a time (`read`), for a restore that must not hold the event loop:
 * the constructor checks the layout and unpacks the header (not the history: `history()` reads it a slice at a
 * time) and copies nothing; each `read` decodes only the text its keys need, `textChunkBytes` at a time (UTF-8
 * decoded as a stream, so a character split between two chunks is whole), and builds their `KeyValue`s.
 * Anything malformed: `MalformedMessageError`, from the constructor or from the `read` that meets it.
 *
 * Nothing is done for the whole snapshot at once: a follower installing a snapshot of 200 MB (64 KiB values and
 * their history) spent 200 ms unpacking the history and 125 ms copying the snapshot (sitting at an odd offset of
 * the message it came in) in the constructor, before its first slice.
 */
export class ColumnarReader {
  /** The msgpack header, with the history (`past`) unpacked into it. */
  readonly header: Record<string, unknown>;
  /** The number of live keys. */
  readonly count: number;
  /** UTF-16 code units of the keys and string values read so far, plus the bytes of byte values (`MvccStore.liveChars`). */
  chars = 0;
  /** The fixed columns over the snapshot's own bytes, when they start at a multiple of 8 (else see `columns`). */
  private readonly v: Views | undefined;
  private readonly bytes: Uint8Array;
  private readonly layoutStart: number;
  private readonly pastStart: number;
  private readonly pastEnd: number;
  private readonly oddKeys: Map<number, string>;
  private readonly oddValues: Map<number, string>;
  private readonly valBytes: Uint8Array;
  // ignoreBOM: a value or key may start with U+FEFF, which a decoder otherwise drops.
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** The text region: bytes [textPos, textEnd) are not decoded yet. */
  private textPos: number;
  private readonly textEnd: number;
  /** Decoded text not yet consumed: text[t..]. */
  private text = '';
  private t = 0;
  /**
   * When `text` is the decoding of ASCII bytes alone (one byte per code unit), the byte offset of text[0] in the
   * snapshot; else -1. Keys are then copied from the bytes (`latin1Key`) instead of sliced from the text.
   */
  private asciiBase = -1;
  private i = 0;
  private bin = 0;
  private prev: string | undefined;

  constructor(
    bytes: Uint8Array,
    private readonly textChunkBytes = Number.POSITIVE_INFINITY,
  ) {
    if (!isColumnar(bytes)) throw bad('bad magic');
    if (bytes[3] !== COLUMNAR_FORMAT) throw new MalformedMessageError(`kv snapshot has format ${String(bytes[3])}; this code reads formats 1 to ${COLUMNAR_FORMAT} (written by a newer release?)`);
    if (!littleEndian) throw new InvariantError('kv snapshot format 4 is read on little-endian hosts only');
    if (bytes.length < PRELUDE + TRAILER) throw bad('truncated');
    const b = bytes;
    this.bytes = b;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = dv.getFloat64(8, true);
    const textBytes = dv.getFloat64(b.length - 40, true);
    const binBytes = dv.getFloat64(b.length - 32, true);
    const pastBytes = dv.getFloat64(b.length - 24, true);
    const headBytes = dv.getFloat64(b.length - 16, true);
    const oddBytes = dv.getFloat64(b.length - 8, true);
    const count = (x: number) => Number.isSafeInteger(x) && x >= 0;
    if (![n, textBytes, binBytes, pastBytes, headBytes, oddBytes].every(count)) throw bad('bad sizes');
    const textStart = layout(n).text;
    const binStart = pad8(textStart + textBytes);
    const pastStart = pad8(binStart + binBytes);
    const headStart = pad8(pastStart + pastBytes);
    const oddStart = pad8(headStart + headBytes);
    if (pad8(oddStart + oddBytes) + TRAILER !== b.length) throw bad(`sizes do not add up to its ${b.length} bytes`);
    let header: Record<string, unknown>;
    let odds: { oddKeys?: unknown; oddValues?: unknown };
    try {
      header = unpack(b.subarray(headStart, headStart + headBytes)) as Record<string, unknown>;
      odds = unpack(b.subarray(oddStart, oddStart + oddBytes)) as typeof odds;
    } catch (cause) {
      throw bad('header is not valid msgpack', cause);
    }
    if (typeof header !== 'object' || header === null || typeof odds !== 'object' || odds === null || !Array.isArray(odds.oddKeys) || !Array.isArray(odds.oddValues)) {
      throw bad('malformed header');
    }
    this.header = header;
    this.count = n;
    this.pastStart = pastStart;
    this.pastEnd = pastStart + pastBytes;
    // Typed views need an aligned start: a snapshot unpacked from a message may sit anywhere in its buffer; then
    // each `read` copies the few column entries it reads (`columns`), never the whole snapshot.
    this.layoutStart = b.byteOffset;
    this.v = (b.byteOffset & 7) === 0 ? views(b.buffer, b.byteOffset, n) : undefined;
    this.textPos = textStart;
    this.textEnd = textStart + textBytes;
    this.valBytes = b.subarray(binStart, binStart + binBytes);
    const odd = (table: unknown[], what: string): Map<number, string> => {
      const m = new Map<number, string>();
      for (const e of table) {
        if (!Array.isArray(e) || typeof e[0] !== 'number' || !(e[1] instanceof Uint8Array) || e[1].length % 2 !== 0) throw bad(`bad ${what} entry`);
        m.set(e[0], fromCodeUnits(e[1]));
      }
      return m;
    };
    this.oddKeys = odd(odds.oddKeys, 'oddKeys');
    this.oddValues = odd(odds.oddValues, 'oddValues');
  }

  /** Whether every key was read. */
  get done(): boolean {
    return this.i >= this.count;
  }

  /** How many keys were read. */
  get position(): number {
    return this.i;
  }

  /** The history section's reader (see `HistoryReader`). */
  history(): HistoryReader {
    return new HistoryReader(this.bytes, this.pastStart, this.pastEnd);
  }

  /**
   * The fixed columns of keys [from, to), indexed from `base`: views of the snapshot when it is aligned (base 0),
   * else aligned copies of just those entries (base `from`).
   */
  private columns(from: number, to: number): { base: number; v: Views } {
    if (this.v !== undefined) return { base: 0, v: this.v };
    const l = layout(this.count);
    const at = this.layoutStart;
    const buf = this.bytes.buffer;
    const copy = (offset: number, width: number) => new Uint8Array(buf, at + offset + from * width, (to - from) * width).slice().buffer;
    return {
      base: from,
      v: {
        keyLen: new Uint32Array(copy(l.keyLen, 4)),
        valKind: new Uint8Array(buf, at + l.valKind + from, to - from),
        valLen: new Uint32Array(copy(l.valLen, 4)),
        createRevision: new Float64Array(copy(l.createRevision, 8)),
        modRevision: new Float64Array(copy(l.modRevision, 8)),
        version: new Float64Array(copy(l.version, 8)),
        lease: new Float64Array(copy(l.lease, 8)),
      },
    };
  }

  /**
   * Reads up to `budget` more keys, in key order, stopping early once the keys and values read in this call hold
   * `maxChars` UTF-16 code units (string) or bytes (byte values) (at least one key is read): the i-th key's
   * version goes to `kvs[i]` (and the key to `keys[i]` when given; arrays of `count` made up front are never
   * grown); true once every key was read and the columns were checked to hold nothing more.
   */
  read(budget: number, kvs: KeyValue[], keys?: string[], maxChars = Number.POSITIVE_INFINITY): boolean {
    const { count } = this;
    const end = Math.min(count, this.i + budget);
    const { base, v } = this.columns(this.i, end);
    const until = this.chars + maxChars;
    let i = this.i;
    for (; i < end && this.chars < until; i++) {
      const kl = v.keyLen[i - base] as number;
      let key: string;
      if (kl === 0) {
        const o = this.oddKeys.get(i);
        if (o === undefined) throw bad(`key ${i} is empty`);
        key = o;
      } else key = this.asciiBase >= 0 && this.text.length - this.t >= kl ? this.latin1Key(kl) : this.take(kl);
      if (this.prev !== undefined && !(this.prev < key)) throw bad(`keys out of order at ${i}`);
      this.prev = key;
      const j = i - base;
      const vl = v.valLen[j] as number;
      let value: KeyValue['value'];
      switch (v.valKind[j]) {
        case 0:
          value = this.take(vl);
          break;
        case 1:
          if (this.bin + vl > this.valBytes.length) throw bad('lengths overrun the byte values');
          // A copy, a plain Uint8Array (a Buffer's `slice` would be a view): the snapshot's buffer is not kept.
          value = new Uint8Array(vl);
          value.set(this.valBytes.subarray(this.bin, this.bin + vl));
          this.bin += vl;
          break;
        case 2: {
          const o = this.oddValues.get(i);
          if (o === undefined) throw bad(`value ${i} is missing`);
          value = o;
          break;
        }
        default:
          throw bad(`value ${i} has an unknown kind ${String(v.valKind[j])}`);
      }
      this.chars += key.length + value.length;
      kvs[i] = { key, value, createRevision: v.createRevision[j] as number, modRevision: v.modRevision[j] as number, version: v.version[j] as number, lease: v.lease[j] as number };
      if (keys !== undefined) keys[i] = key;
    }
    this.i = i;
    if (i < count) return false;
    if (this.t !== this.text.length || this.textPos !== this.textEnd || this.bin !== this.valBytes.length) throw bad('the columns hold more than their lengths say');
    return true;
  }

  /**
   * The next key, of `units` code units, as a string of its own: a slice of the text would point into it, and a
   * key index of a million such slices is searched about three times slower than one of flat strings (each
   * comparison goes through the slice to its parent). The text is ASCII here, so its bytes are the code units.
   */
  private latin1Key(units: number): string {
    const at = this.asciiBase + this.t;
    this.t += units;
    return (latin1 as Latin1)(this.bytes, at, at + units);
  }

  /** The next `units` UTF-16 code units of the text, decoding more of it as needed. */
  private take(units: number): string {
    while (this.text.length - this.t < units && this.textPos < this.textEnd) {
      const size = Math.min(this.textEnd - this.textPos, Math.max(this.textChunkBytes, 3 * units));
      const last = this.textPos + size >= this.textEnd;
      let more: string;
      try {
        more = this.decoder.decode(this.bytes.subarray(this.textPos, this.textPos + size), { stream: !last });
      } catch (cause) {
        throw bad('text is not valid UTF-8', cause);
      }
      const whole = this.t === this.text.length;
      this.asciiBase = whole && latin1 !== undefined && more.length === size ? this.textPos : -1;
      this.textPos += size;
      this.text = whole ? more : this.text.slice(this.t) + more;
      this.t = 0;
    }
    if (this.text.length - this.t < units) throw bad('lengths overrun the text');
    const s = this.text.slice(this.t, this.t + units);
    this.t += units;
    return s;
  }
}

/** Whether a key's history packs into at most about SMALL_ENTRY bytes (its keys and values, 48 bytes of fields a record). */
function isSmallEntry(key: string, recs: KeyRecord[]): boolean {
  let bytes = key.length;
  for (const r of recs) {
    bytes += key.length + ((r as Partial<KeyValue>).value?.length ?? 0) * 3 + 48;
    if (bytes > SMALL_ENTRY) return false;
  }
  return true;
}

/** A msgpack array header for `n` elements, as msgpack writes it (the shortest form). */
function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 + n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >>> 8, n & 0xff);
  return Uint8Array.of(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** What a `HistoryReader` hands over, in order: a key, its records, the end of its records; key after key. */
export interface HistoryVisitor {
  key(key: string): void;
  record(record: unknown): void;
  endKey(): void;
}

/**
 * Reads a format-4 snapshot's history (msgpack: an array of `[key, records]`) a few records at a time: the array
 * headers are read here and each key and record is unpacked on its own, so a history of hundreds of MB (or one
 * key with thousands of large records) is never unpacked in one piece. The values are what unpacking the whole
 * section gives. Anything malformed (not arrays where the layout has them, bytes left over or missing):
 * `MalformedMessageError` from the `read` that meets it.
 */
/** Bytes up to which a history entry is unpacked whole, and up to which several are together (see `smallEntries`). */
const SMALL_ENTRY = 16 * 1024;
const SMALL_BATCH = 256 * 1024;

export class HistoryReader {
  private pos: number;
  /** Entries (keys) the section holds, once its header was read; -1 before. */
  private entries = -1;
  private entriesRead = 0;
  /** Records of the current key still to read; -1 between keys. */
  private recsLeft = -1;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  /**
   * Reads on until about `maxBytes` more bytes of the section were read (at least one key or record), handing
   * each key and record to `visit`; true once the whole section was read and held nothing more.
   */
  read(maxBytes: number, visit: HistoryVisitor): boolean {
    const stop = this.pos + maxBytes;
    if (this.entries < 0) this.entries = this.arrayHeader('history');
    for (;;) {
      if (this.recsLeft < 0) {
        if (this.entriesRead === this.entries) {
          if (this.pos !== this.end) throw bad('history holds more than its entries');
          return true;
        }
        if (this.pos >= stop) return false;
        // Small entries (most keys' histories) are unpacked whole, several in one call: a call per record cost
        // about 7.5 us for records of 100-byte values, against 1.4 us unpacking the history whole.
        if (this.smallEntries(stop, visit)) continue;
        if (this.arrayHeader('a history entry') !== 2) throw bad('a history entry is not [key, records]');
        const key = this.value();
        if (typeof key !== 'string') throw bad('a history entry has no key');
        this.recsLeft = this.arrayHeader('a history entry');
        visit.key(key);
      }
      while (this.recsLeft > 0) {
        if (this.pos >= stop) return false;
        const record = this.value();
        this.recsLeft--;
        visit.record(record);
      }
      visit.endKey();
      this.recsLeft = -1;
      this.entriesRead++;
    }
  }

  /**
   * Unpacks the entries from the position on that are each at most SMALL_ENTRY bytes, together in one call, up to
   * about SMALL_BATCH bytes in all, the step's `stop`, or the last entry; false if the next entry is larger (it is
   * then read a record at a time). Finding where an entry ends reads its headers, never more than SMALL_ENTRY bytes.
   */
  private smallEntries(stop: number, visit: HistoryVisitor): boolean {
    const from = this.pos;
    let to = from;
    let count = 0;
    const limit = Math.min(this.end, Math.max(stop, from + 1), from + SMALL_BATCH);
    while (this.entriesRead + count < this.entries && to < limit) {
      const e = msgpackEnd(this.bytes, to, this.end, SMALL_ENTRY);
      if (e < 0) break;
      to = e;
      count++;
    }
    if (count === 0) return false;
    let entries: unknown[];
    try {
      entries = unpackMultiple(this.bytes.subarray(from, to)) as unknown[];
    } catch (cause) {
      throw bad('history is not valid msgpack', cause);
    }
    if (entries.length !== count) throw bad('history is not valid msgpack');
    for (const e of entries) {
      if (!Array.isArray(e) || e.length !== 2) throw bad('a history entry is not [key, records]');
      const [key, recs] = e as [unknown, unknown];
      if (typeof key !== 'string') throw bad('a history entry has no key');
      if (!Array.isArray(recs)) throw bad('a history entry is not an array');
      visit.key(key);
      for (const r of recs) visit.record(r);
      visit.endKey();
      this.entriesRead++;
    }
    this.pos = to;
    return true;
  }

  /** A msgpack array header at the position (fixarray, array16, array32): its length. */
  private arrayHeader(what: string): number {
    const b = this.bytes;
    const p = this.pos;
    const first = p < this.end ? (b[p] as number) : -1;
    let size: number;
    let length: number;
    if (first >= 0x90 && first <= 0x9f) {
      size = 1;
      length = first - 0x90;
    } else if (first === 0xdc && p + 3 <= this.end) {
      size = 3;
      length = ((b[p + 1] as number) << 8) | (b[p + 2] as number);
    } else if (first === 0xdd && p + 5 <= this.end) {
      size = 5;
      length = (b[p + 1] as number) * 2 ** 24 + (((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 8) | (b[p + 4] as number));
    } else throw bad(`${what} is not an array`);
    this.pos = p + size;
    return length;
  }

  /**
   * The one msgpack value at the position, unpacked from exactly its bytes (`msgpackEnd`): msgpackr's native
   * string extraction scans from the value to the end of what it is given, so unpacking from the whole rest of a
   * history of 150 MB cost about 2.4 ms a record (each scanned the rest again).
   */
  private value(): unknown {
    const to = msgpackEnd(this.bytes, this.pos, this.end);
    let value: unknown;
    try {
      value = unpack(this.bytes.subarray(this.pos, to));
    } catch (cause) {
      throw bad('history is not valid msgpack', cause);
    }
    this.pos = to;
    return value;
  }
}

/**
 * Where the msgpack value at `pos` ends (its headers read, its strings and byte strings skipped): work in the
 * number of its parts, not its bytes; -1 once it is known to take more than `limit` bytes (read no further). A
 * value cut by `end`, or a byte msgpack does not use: `MalformedMessageError`.
 */
export function msgpackEnd(b: Uint8Array, pos: number, end: number, limit = Number.POSITIVE_INFINITY): number {
  let p = pos;
  let left = 1; // values still to skip
  const uint = (at: number, size: number): number => {
    if (at + size > end) throw bad('history is cut short');
    let x = 0;
    for (let i = 0; i < size; i++) x = x * 256 + (b[at + i] as number);
    return x;
  };
  while (left > 0) {
    if (p - pos > limit) return -1;
    if (p >= end) throw bad('history is cut short');
    left--;
    const t = b[p] as number;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) p += 1;
    else if (t <= 0x8f) {
      left += 2 * (t - 0x80);
      p += 1;
    } else if (t <= 0x9f) {
      left += t - 0x90;
      p += 1;
    } else if (t <= 0xbf) p += 1 + (t - 0xa0);
    else if (t === 0xc4 || t === 0xd9) p += 2 + uint(p + 1, 1);
    else if (t === 0xc5 || t === 0xda) p += 3 + uint(p + 1, 2);
    else if (t === 0xc6 || t === 0xdb) p += 5 + uint(p + 1, 4);
    else if (t === 0xc7) p += 3 + uint(p + 1, 1);
    else if (t === 0xc8) p += 4 + uint(p + 1, 2);
    else if (t === 0xc9) p += 6 + uint(p + 1, 4);
    else if (t === 0xca) p += 5;
    else if (t === 0xcb) p += 9;
    else if (t >= 0xcc && t <= 0xd3) p += 1 + 2 ** (t & 3);
    else if (t >= 0xd4 && t <= 0xd8) p += 2 + 2 ** (t - 0xd4);
    else if (t === 0xdc) {
      left += uint(p + 1, 2);
      p += 3;
    } else if (t === 0xdd) {
      left += uint(p + 1, 4);
      p += 5;
    } else if (t === 0xde) {
      left += 2 * uint(p + 1, 2);
      p += 3;
    } else if (t === 0xdf) {
      left += 2 * uint(p + 1, 4);
      p += 5;
    } else throw bad(`history holds a byte msgpack does not use (0x${t.toString(16)})`);
  }
  if (p - pos > limit) return -1;
  if (p > end) throw bad('history is cut short');
  return p;
}

/** What the writer needs of a Node Buffer: `write` encodes a string's UTF-8 at an offset, returning its bytes. */
interface Utf8Target {
  write(s: string, offset: number, encoding: 'utf8'): number;
}
interface BufferStatics {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Utf8Target;
  byteLength(s: string, encoding: 'utf8'): number;
}
const NodeBuffer = (globalThis as { Buffer?: BufferStatics }).Buffer;
/** A Buffer over the same memory as `bytes` (no copy), where Buffer exists. */
const utf8Target: ((bytes: Uint8Array) => Utf8Target) | undefined = NodeBuffer === undefined ? undefined : (bytes) => NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
/** A string's UTF-8 length in bytes (only called where Buffer exists). */
const utf8Length = (s: string): number => (NodeBuffer as BufferStatics).byteLength(s, 'utf8');

/**
 * The memory a snapshot is written into: shared memory (a SharedArrayBuffer) where it exists, unless
 * `MAX_SHARED_ALIVE` earlier such buffers are not yet collected. V8 counts an ArrayBuffer's memory as external
 * memory, and answers 64 MB more of it since its last major collection by starting one: a snapshot of 1,000,000
 * keys (157 MB) began a major collection of the whole heap every time, whose marking (steps forced on the thread
 * by every buffer the puts allocated meanwhile) and final pause fell within the snapshot (bench:large: a major
 * pause of 9 to 75 ms and stalls over 20 ms in every snapshot window). Shared memory is not counted so. The
 * bound keeps what is not counted small: with that many uncollected, the next snapshot takes counted memory,
 * and the collection its size starts frees them.
 *
 * Three: a node's storage keeps its latest snapshot while the next one is taken, and the one that snapshot
 * replaced stays uncollected until a major collection. With two, a snapshot took counted memory whenever no
 * major collection came between it and the one before (bench:large at 2,000 puts/s, three snapshots 5 s apart:
 * the third one's puts had a p99 of about 97 ms, 47 times the p99 without a snapshot, the first two 1.6 and 1.4
 * times); with three, only when none came in two snapshots' time (the same runs: 0.9 to 1.5 times for each).
 */
const MAX_SHARED_ALIVE = 3;
const SharedBuffer = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
const sharedAlive: WeakRef<SharedArrayBuffer>[] = [];
function snapshotBuffer(size: number): Uint8Array {
  if (SharedBuffer !== undefined && typeof WeakRef === 'function') {
    for (let i = sharedAlive.length - 1; i >= 0; i--) if ((sharedAlive[i] as WeakRef<SharedArrayBuffer>).deref() === undefined) sharedAlive.splice(i, 1);
    if (sharedAlive.length < MAX_SHARED_ALIVE) {
      const shared = new SharedBuffer(size);
      sharedAlive.push(new WeakRef(shared));
      return new Uint8Array(shared);
    }
  }
  return new Uint8Array(size);
}

type Latin1 = (bytes: Uint8Array, start: number, end: number) => string;
/**
 * Node's Buffer latin1 decoding of a byte range into a new flat string (as fast as a slice), where Buffer exists;
 * elsewhere keys are slices of the text.
 */
const latin1: Latin1 | undefined = (() => {
  const B = (globalThis as { Buffer?: { prototype: { latin1Slice?: (this: Uint8Array, start: number, end: number) => string } } }).Buffer;
  const slice = B?.prototype.latin1Slice;
  return typeof slice === 'function' ? (bytes, start, end) => slice.call(bytes, start, end) : undefined;
})();

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
