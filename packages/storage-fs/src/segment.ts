import type { FsFile } from './file-system';
import { RecordKind, SEGMENT_MAGIC, recordBytes, type RecordSpec } from './record';

/**
 * One WAL segment file, `wal-<seq as 16 hex digits>.log`: a SEGMENT header record, then the records of the
 * writes placed in it. Sequence numbers of live segments form one unbroken run; older ones are deleted once
 * compaction or a snapshot install leaves nothing live in them.
 */
export interface Segment {
  seq: number;
  name: string;
  path: string;
  /** Open read/write handle; undefined until the segment's first write creates the file. */
  file: FsFile | undefined;
  /**
   * The file's size as far as this process knows: records, then preallocated zeros. A write that ends past
   * it grows the file (and must not race an extension of it).
   */
  allocEnd: number;
  /** A background extension with zeros in flight, if any. */
  extending?: Promise<void>;
}

/** Bytes the SEGMENT header record takes (magic, sequence number, end of the previous segment). */
export const SEGMENT_RECORD_BYTES = recordBytes(24);
/** Record offsets are u32 in the log index. */
export const MAX_SEGMENT_OFFSET = 0xffffffff;

export function segmentFileName(seq: number): string {
  return `wal-${seq.toString(16).padStart(16, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const m = /^wal-([0-9a-f]{16})\.log$/.exec(name);
  return m === null ? undefined : Number.parseInt(m[1] as string, 16);
}

/**
 * The SEGMENT header record. `prevEnd` is where the records of segment `seq - 1` end (0 for the first): the
 * previous segment is sealed, so recovery knows exactly how much of it must be intact (a sealed segment cut or
 * zeroed at a record boundary would otherwise read as a shorter segment followed by preallocated space).
 * Headers written before this carry no `prevEnd` (16-byte payload).
 */
export function segmentHeaderSpec(seq: number, prevEnd = 0): RecordSpec {
  const body = new Uint8Array(24);
  body.set(SEGMENT_MAGIC, 0);
  const view = new DataView(body.buffer);
  view.setUint32(8, Math.floor(seq / 0x100000000));
  view.setUint32(12, seq >>> 0);
  view.setUint32(16, Math.floor(prevEnd / 0x100000000));
  view.setUint32(20, prevEnd >>> 0);
  return { kind: RecordKind.SEGMENT, body };
}
