import { crc32c } from '@node-rs/crc32';
import { CorruptLogError, type ClusterConfig, type SnapshotMeta } from '@consensus-kit/core';
import type { FsFile } from './file-system';

/**
 * The snapshot file format, written and read as a stream of chunks so a large snapshot is never held twice:
 *
 * ```
 * "cksnap01" (8) | u32 meta length | u32 CRC-32C of meta | meta (JSON: index, term, config, dataBytes)
 * chunk*: u32 length (> 0) | u32 CRC-32C of the chunk | chunk bytes
 * end:    u32 0            | u32 CRC-32C of all the data
 * ```
 */
const MAGIC = new TextEncoder().encode('cksnap01');
const FIXED = 16;
/** Chunks are at most this long; bigger inputs are framed in pieces (views, no copy). */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;
const MAX_META_BYTES = 1 << 20;

export interface SnapshotFileMeta extends SnapshotMeta {
  dataBytes: number;
  /**
   * Whether the snapshot was installed from a leader (it replaces the whole log) rather than taken locally.
   * Recovery completes an install that stopped before its RESET record reached the WAL; a local snapshot
   * never changes the log.
   */
  installed: boolean;
}

export function snapshotFileName(index: number, term: number): string {
  return `snap-${index.toString(16).padStart(16, '0')}-${term.toString(16).padStart(16, '0')}.snap`;
}

/** Parses a snapshot file name into index and term, or `undefined` when it is not one. */
export function parseSnapshotFileName(name: string): { index: number; term: number } | undefined {
  const m = /^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(name);
  if (m === null) return undefined;
  return { index: Number.parseInt(m[1] as string, 16), term: Number.parseInt(m[2] as string, 16) };
}

/** Writes a snapshot to `file` from a stream of chunks whose total length is `meta.dataBytes`. */
export async function writeSnapshotStream(
  file: FsFile,
  meta: SnapshotFileMeta,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<void> {
  const metaBytes = new TextEncoder().encode(
    JSON.stringify({ index: meta.index, term: meta.term, config: meta.config, dataBytes: meta.dataBytes, installed: meta.installed }),
  );
  const head = new Uint8Array(FIXED + metaBytes.length);
  head.set(MAGIC, 0);
  const hv = new DataView(head.buffer);
  hv.setUint32(8, metaBytes.length);
  hv.setUint32(12, crc32c(metaBytes));
  head.set(metaBytes, FIXED);
  let pos = 0;
  await file.write(head, pos);
  pos += head.length;
  let total = 0;
  let running = 0;
  const frame = new Uint8Array(8);
  const fv = new DataView(frame.buffer);
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += SNAPSHOT_CHUNK_BYTES) {
      const piece = chunk.subarray(at, Math.min(chunk.length, at + SNAPSHOT_CHUNK_BYTES));
      fv.setUint32(0, piece.length);
      fv.setUint32(4, crc32c(piece));
      await file.write(frame, pos);
      await file.write(piece, pos + 8);
      pos += 8 + piece.length;
      running = crc32c(piece, running);
      total += piece.length;
    }
  }
  if (total !== meta.dataBytes) throw new Error(`snapshot stream gave ${total} bytes, expected ${meta.dataBytes}`);
  fv.setUint32(0, 0);
  fv.setUint32(4, running);
  await file.write(frame, pos);
}

function corrupt(path: string, offset: number, reason: string): CorruptLogError {
  return new CorruptLogError({ file: path, offset, lastGoodIndex: 0 }, `snapshot: ${reason}`);
}

function readExact(file: FsFile, buf: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = file.readSync(buf, done, buf.length - done, position + done);
    if (n <= 0) throw corrupt(path, position + done, 'file ends early');
    done += n;
  }
}

/** Reads and verifies a snapshot file's header. Returns the meta and where the chunks begin. */
export function readSnapshotMeta(file: FsFile, path: string): { meta: SnapshotFileMeta; dataAt: number } {
  const size = file.size();
  if (size < FIXED) throw corrupt(path, 0, `file has ${size} bytes, less than its header`);
  const fixed = new Uint8Array(FIXED);
  readExact(file, fixed, 0, path);
  for (let i = 0; i < MAGIC.length; i++) if (fixed[i] !== MAGIC[i]) throw corrupt(path, 0, 'bad magic');
  const view = new DataView(fixed.buffer);
  const metaLength = view.getUint32(8);
  if (metaLength > MAX_META_BYTES || FIXED + metaLength + 8 > size) throw corrupt(path, 8, `bad meta length ${metaLength}`);
  const metaBytes = new Uint8Array(metaLength);
  readExact(file, metaBytes, FIXED, path);
  if (crc32c(metaBytes) !== view.getUint32(12)) throw corrupt(path, FIXED, 'meta checksum mismatch');
  let parsed: { index?: unknown; term?: unknown; config?: unknown; dataBytes?: unknown; installed?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(metaBytes)) as typeof parsed;
  } catch (e) {
    throw corrupt(path, FIXED, `meta is not JSON (${String(e)})`);
  }
  const { index, term, config, dataBytes, installed } = parsed;
  if (
    !Number.isSafeInteger(index) ||
    !Number.isSafeInteger(term) ||
    !Number.isSafeInteger(dataBytes) ||
    typeof config !== 'object' ||
    config === null ||
    !Array.isArray((config as ClusterConfig).voters) ||
    typeof installed !== 'boolean'
  ) {
    throw corrupt(path, FIXED, 'meta has the wrong shape');
  }
  if ((dataBytes as number) > size) throw corrupt(path, FIXED, `data length ${String(dataBytes)} exceeds the file size`);
  return {
    meta: {
      index: index as number,
      term: term as number,
      config: config as ClusterConfig,
      dataBytes: dataBytes as number,
      installed,
    },
    dataAt: FIXED + metaLength,
  };
}

/**
 * Reads a snapshot's data chunk by chunk, verifying each chunk and the whole. With `into` the chunks are read
 * straight into that buffer (of `meta.dataBytes`), and the yielded values are views of it; without, each
 * chunk is a fresh buffer, so only one chunk is in memory at a time.
 */
export function* readSnapshotChunks(file: FsFile, path: string, into?: Uint8Array): Generator<Uint8Array, void, void> {
  const { meta, dataAt } = readSnapshotMeta(file, path);
  const size = file.size();
  const frame = new Uint8Array(8);
  const fv = new DataView(frame.buffer);
  let pos = dataAt;
  let total = 0;
  let running = 0;
  for (;;) {
    if (pos + 8 > size) throw corrupt(path, pos, 'file ends before the end marker');
    readExact(file, frame, pos, path);
    const length = fv.getUint32(0);
    const crc = fv.getUint32(4);
    if (length === 0) {
      if (total !== meta.dataBytes) throw corrupt(path, pos, `data has ${total} bytes, meta says ${meta.dataBytes}`);
      if (crc !== running) throw corrupt(path, pos, 'whole-data checksum mismatch');
      if (pos + 8 !== size) throw corrupt(path, pos + 8, 'bytes after the end marker');
      return;
    }
    if (length > SNAPSHOT_CHUNK_BYTES || total + length > meta.dataBytes || pos + 8 + length > size) {
      throw corrupt(path, pos, `bad chunk length ${length}`);
    }
    const chunk = into === undefined ? new Uint8Array(length) : into.subarray(total, total + length);
    readExact(file, chunk, pos + 8, path);
    if (crc32c(chunk) !== crc) throw corrupt(path, pos, 'chunk checksum mismatch');
    running = crc32c(chunk, running);
    total += length;
    pos += 8 + length;
    yield chunk;
  }
}

/** Reads a whole snapshot's data into one buffer (allocated once) and verifies it. */
export function readSnapshotData(file: FsFile, path: string): { meta: SnapshotFileMeta; data: Uint8Array } {
  const { meta } = readSnapshotMeta(file, path);
  const data = new Uint8Array(meta.dataBytes);
  for (const _ of readSnapshotChunks(file, path, data)) {
    // chunks land in `data`
  }
  return { meta, data };
}
