import { crc32c } from '@node-rs/crc32';
import type { EntryType } from '@consensus-kit/core';

/**
 * The WAL record format. Every record is
 *
 * ```
 *  0  u32  payload length
 *  4  u8   kind (RecordKind)          5  u8  entry type          6  u16  zero
 *  8  u32  batch start: offset in this segment where the write that carried this record began
 * 12  u32  segment sequence number (low 32 bits): catches misdirected and stale writes
 * 16  u32  CRC-32C of the payload and its padding
 * 20  u32  CRC-32C of bytes 0..20 (the header)
 * 24  payload, then zero padding to an 8-byte boundary
 * ```
 *
 * The header has its own checksum so a damaged length is recognised as damage before it is used: a length is
 * acted on only once its header checksum holds and it fits both `MAX_PAYLOAD` and the file (FAST'18,
 * "Protocol-Aware Recovery": a corrupt length must not be mistaken for a torn tail or drive a huge read).
 * The batch start tells recovery which records belong to the last, possibly torn, write.
 */
export const HEADER_BYTES = 24;
export const RECORD_ALIGN = 8;
/** Largest payload accepted, 1 GiB; a bigger length in a header is damage. */
export const MAX_PAYLOAD = 1 << 30;

export const RecordKind = {
  /** First record of every segment: magic and sequence number. */
  SEGMENT: 1,
  /**
   * One log entry: index, term, data. The writer uses it to append at lastIndex + 1. Replay gives it the
   * meaning WALs written before overwrite-in-place relied on: it also drops every entry after its index.
   */
  ENTRY: 2,
  /** Drop entries after an index. */
  TRUNCATE: 3,
  /**
   * Entries up to an index are compacted; carries its term (the log's new base) and, from writers that know
   * overwrite-in-place, a third number: the log's last index at that moment (older writers omit it).
   */
  COMPACT: 4,
  /** A snapshot was installed: the log is empty and its base is the snapshot's index and term. */
  RESET: 5,
  /** One log entry written over an existing index (DESIGN r2): only that index changes. Same payload as ENTRY. */
  OVERWRITE: 6,
} as const;
/** The highest known record kind. */
export const MAX_RECORD_KIND = RecordKind.OVERWRITE;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const ENTRY_TYPES: readonly EntryType[] = ['command', 'noop', 'config'];
export const SEGMENT_MAGIC = new TextEncoder().encode('ckwal001');

export function entryTypeCode(type: EntryType): number {
  const code = ENTRY_TYPES.indexOf(type);
  return code < 0 ? 0 : code;
}

export function entryTypeOf(code: number): EntryType | undefined {
  return ENTRY_TYPES[code];
}

export function alignUp(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/** Bytes a record with a payload of `payloadBytes` takes on disk. */
export function recordBytes(payloadBytes: number): number {
  return HEADER_BYTES + alignUp(payloadBytes);
}

/** Bytes an entry record takes on disk. */
export function entryRecordBytes(dataBytes: number): number {
  return recordBytes(16 + dataBytes);
}

export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x100000000));
  view.setUint32(at + 4, value >>> 0);
}

export function readU64(view: DataView, at: number): number {
  return view.getUint32(at) * 0x100000000 + view.getUint32(at + 4);
}

/** A record to encode. `payload` is written after `head` (both optional) so entry data is not copied twice. */
export interface RecordSpec {
  kind: RecordKind;
  entryType?: number;
  /** Up to three u64 numbers at the start of the payload. */
  numbers?: readonly number[];
  body?: Uint8Array;
}

export function specPayloadBytes(spec: RecordSpec): number {
  return (spec.numbers?.length ?? 0) * 8 + (spec.body?.length ?? 0);
}

/**
 * Encodes `specs` back to back into `out` starting at `at`; `position` is the file offset of `out[at]`
 * (records are aligned in the file), `batchStart` the file offset where this write begins. Returns the end.
 */
export function encodeRecords(
  out: Uint8Array,
  at: number,
  specs: readonly RecordSpec[],
  seq: number,
  batchStart: number,
): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let p = at;
  for (const spec of specs) {
    const payloadBytes = specPayloadBytes(spec);
    const payloadAt = p + HEADER_BYTES;
    let q = payloadAt;
    for (const n of spec.numbers ?? []) {
      writeU64(view, q, n);
      q += 8;
    }
    if (spec.body !== undefined) {
      out.set(spec.body, q);
      q += spec.body.length;
    }
    const end = p + recordBytes(payloadBytes);
    out.fill(0, q, end);
    view.setUint32(p, payloadBytes);
    view.setUint8(p + 4, spec.kind);
    view.setUint8(p + 5, spec.entryType ?? 0);
    view.setUint16(p + 6, 0);
    view.setUint32(p + 8, batchStart >>> 0);
    view.setUint32(p + 12, seq >>> 0);
    view.setUint32(p + 16, crc32c(out.subarray(payloadAt, end)));
    view.setUint32(p + 20, crc32c(out.subarray(p, p + 20)));
    p = end;
  }
  return p;
}

/** A record read back intact. Payload fields are decoded for the kinds that have them. */
export interface ParsedRecord {
  offset: number;
  /** Total bytes on disk, header and padding included. */
  bytes: number;
  kind: RecordKind;
  entryType: number;
  batchStart: number;
  payloadBytes: number;
  /** ENTRY/OVERWRITE/COMPACT/RESET: index; TRUNCATE: the index kept; SEGMENT: sequence number. */
  index: number;
  /** ENTRY/OVERWRITE/COMPACT/RESET: term. */
  term: number;
  /** COMPACT from a current writer: the log's last index when it was written. */
  lastIndex?: number;
  /** SEGMENT from a current writer: where the records of the previous segment end (0: none). */
  prevEnd?: number;
}

export type RecordCheck =
  | { ok: true; record: ParsedRecord }
  | { ok: false; reason: string; /** The bytes ran out before the record did (a torn write looks like this). */ short: boolean };

/**
 * Checks the record at `offset` of `buf` (the segment's bytes) against everything it promises: header checksum,
 * a length that fits `MAX_PAYLOAD` and the file, the payload checksum, the segment number, a known kind.
 */
export function checkRecord(buf: Uint8Array, offset: number, seq: number): RecordCheck {
  if (offset + HEADER_BYTES > buf.length) {
    return { ok: false, reason: `only ${buf.length - offset} bytes left for a ${HEADER_BYTES}-byte header`, short: true };
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (crc32c(buf.subarray(offset, offset + 20)) !== view.getUint32(offset + 20)) {
    return { ok: false, reason: 'header checksum mismatch', short: false };
  }
  const payloadBytes = view.getUint32(offset);
  const kind = view.getUint8(offset + 4) as RecordKind;
  if (kind < RecordKind.SEGMENT || kind > MAX_RECORD_KIND || view.getUint16(offset + 6) !== 0) {
    return { ok: false, reason: `unknown record kind ${kind}`, short: false };
  }
  if (payloadBytes > MAX_PAYLOAD) return { ok: false, reason: `record length ${payloadBytes} exceeds the maximum`, short: false };
  const bytes = recordBytes(payloadBytes);
  if (offset + bytes > buf.length) {
    return { ok: false, reason: `record of ${payloadBytes} bytes runs past the end of the file`, short: true };
  }
  const recSeq = view.getUint32(offset + 12);
  if (recSeq !== seq >>> 0) return { ok: false, reason: `record belongs to segment ${recSeq}, not ${seq >>> 0}`, short: false };
  const payloadAt = offset + HEADER_BYTES;
  if (crc32c(buf.subarray(payloadAt, offset + bytes)) !== view.getUint32(offset + 16)) {
    return { ok: false, reason: 'payload checksum mismatch', short: false };
  }
  const entryType = view.getUint8(offset + 5);
  let index = 0;
  let term = 0;
  const need = kind === RecordKind.TRUNCATE ? 8 : 16;
  if (payloadBytes < need) return { ok: false, reason: `payload of ${payloadBytes} bytes is too short for its kind`, short: false };
  if (kind === RecordKind.SEGMENT) {
    for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
      if (buf[payloadAt + i] !== SEGMENT_MAGIC[i]) return { ok: false, reason: 'bad segment magic', short: false };
    }
    index = readU64(view, payloadAt + 8);
  } else {
    index = readU64(view, payloadAt);
    if (kind !== RecordKind.TRUNCATE) term = readU64(view, payloadAt + 8);
  }
  if ((kind === RecordKind.ENTRY || kind === RecordKind.OVERWRITE) && (entryTypeOf(entryType) === undefined || index < 1)) {
    return { ok: false, reason: `bad entry header (type ${entryType}, index ${index})`, short: false };
  }
  const record: ParsedRecord = { offset, bytes, kind, entryType, batchStart: view.getUint32(offset + 8), payloadBytes, index, term };
  if (kind === RecordKind.COMPACT && payloadBytes >= 24) record.lastIndex = readU64(view, payloadAt + 16);
  if (kind === RecordKind.SEGMENT && payloadBytes >= 24) record.prevEnd = readU64(view, payloadAt + 16);
  return { ok: true, record };
}

/** The result of reading one segment front to back. */
export interface SegmentScan {
  records: ParsedRecord[];
  /** Offset just past the last intact record. */
  goodEnd: number;
  /** The first record that failed, if any. */
  failure?: { offset: number; reason: string; short: boolean };
  /**
   * Only with a failure: whether an intact record of a LATER write follows the failure. If so the damage
   * cannot be a torn last write (a later write is issued only after the earlier one was synced): it is
   * corruption. If not, the failure lies inside the last write and is a torn tail.
   */
  laterWriteFollows: boolean;
  /**
   * Bytes of zeros after the last record up to the end of the file: space the writer preallocated and has
   * not used yet (`goodEnd + preallocated` is the file's size). Not a failure.
   */
  preallocated: number;
}

/** Whether `buf[from..]` is all zero bytes. */
function zeroFrom(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Reads every record of a segment and classifies a failure as torn tail or corruption. Zeros from a record
 * boundary to the end of the file are preallocated space, not a failure: no record is all zeros (its header
 * checksum is never zero over a zero header), and a write into that space that tore leaves non-zero bytes.
 */
export function scanSegment(buf: Uint8Array, seq: number): SegmentScan {
  const records: ParsedRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const check = checkRecord(buf, offset, seq);
    if (!check.ok) {
      if (zeroFrom(buf, offset)) return { records, goodEnd: offset, laterWriteFollows: false, preallocated: buf.length - offset };
      return {
        records,
        goodEnd: offset,
        failure: { offset, reason: check.reason, short: check.short },
        laterWriteFollows: laterWriteFollows(buf, seq, offset),
        preallocated: 0,
      };
    }
    records.push(check.record);
    offset += check.record.bytes;
  }
  return { records, goodEnd: offset, laterWriteFollows: false, preallocated: 0 };
}

/** Whether any intact record after `failedAt` was written by a write that began after `failedAt`. */
function laterWriteFollows(buf: Uint8Array, seq: number, failedAt: number): boolean {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = failedAt + RECORD_ALIGN; p + HEADER_BYTES <= buf.length; p += RECORD_ALIGN) {
    // Cheap filter before any checksum: the segment number and the kind byte must look right.
    if (view.getUint32(p + 12) !== seq >>> 0) continue;
    const kind = buf[p + 4] as number;
    if (kind < RecordKind.SEGMENT || kind > MAX_RECORD_KIND) continue;
    const check = checkRecord(buf, p, seq);
    if (check.ok && check.record.batchStart > failedAt) return true;
  }
  return false;
}
