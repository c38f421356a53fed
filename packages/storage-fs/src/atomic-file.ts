import { crc32c } from '@node-rs/crc32';
import { CorruptLogError } from '@consensus-kit/core';
import type { FileSystem, FsFile } from './file-system';

export const TMP_SUFFIX = '.tmp';
export const HARD_STATE_FILE = 'hardstate';
const HARD_STATE_MAGIC = 0x636b6873; // "ckhs"
const HARD_STATE_VERSION = 1;
const HARD_STATE_HEADER = 16;

/**
 * Replaces `dir/name` atomically: writes `name.tmp` through `fill`, fsyncs it, renames it over `name`, fsyncs
 * the directory. A crash at any point leaves either the old file or the new one, never a mix; a leftover
 * `.tmp` is removed on the next open.
 */
export async function writeFileAtomic(
  fsys: FileSystem,
  dir: string,
  name: string,
  fill: (file: FsFile) => Promise<void>,
): Promise<void> {
  const tmp = fsys.join(dir, name + TMP_SUFFIX);
  const file = await fsys.open(tmp, 'create');
  try {
    await fill(file);
    await file.sync();
  } finally {
    await file.close();
  }
  await fsys.rename(tmp, fsys.join(dir, name));
  await fsys.syncDir(dir);
}

/**
 * The durable point: where the WAL ended (segment `seq`, byte `end`) when the hard-state file was last
 * written, and the log's last index and its term there. Every record up to it had been fsynced, so the node
 * may have acknowledged it: recovery refuses a WAL that ends below it (`LostWalError`).
 */
export interface DurablePoint {
  seq: number;
  end: number;
  lastIndex: number;
  lastTerm: number;
}

/** Who a data directory belongs to, recorded in its hard-state file. */
export interface DataDirIdentity {
  clusterId: string;
  nodeId: string;
  /** Random, made when the directory is first given an identity: tells a fresh directory from a restored copy. */
  incarnation: string;
}

/** What a hard-state file holds besides the protocol's bytes (version 2; version 1 files hold neither). */
export interface HardStateFile {
  /** 1: written by a release without durable points (and without a durable-point file); 2: now. */
  version: number;
  data: Uint8Array;
  durable?: DurablePoint;
  identity?: DataDirIdentity;
}

export const NO_DURABLE_POINT: DurablePoint = { seq: 0, end: 0, lastIndex: 0, lastTerm: 0 };

/** Whether position `a` is before position `b` in the WAL. */
export function pointBefore(a: { seq: number; end: number }, b: { seq: number; end: number }): boolean {
  return a.seq < b.seq || (a.seq === b.seq && a.end < b.end);
}

const V2_FIXED = 32 + 4; // durable point (4 x u64), identity length (u32)

/**
 * The hard-state file. Version 2 (written now):
 *
 * ```
 *  0 u32 magic "ckhs"   4 u32 version 2   8 u32 data length   12 u32 CRC-32C of every other byte (4..12, 16..)
 * 16 u64 durable seq   24 u64 durable end   32 u64 durable last index   40 u64 durable last term
 * 48 u32 identity length, identity (UTF-8 JSON, may be empty), then the protocol's data
 * ```
 *
 * Version 1 (read only): magic, version 1, data length, CRC of (version, length, data), data.
 */
export function encodeHardState(data: Uint8Array, durable: DurablePoint = NO_DURABLE_POINT, identity?: Uint8Array): Uint8Array {
  const id = identity ?? new Uint8Array(0);
  const out = new Uint8Array(HARD_STATE_HEADER + V2_FIXED + id.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, HARD_STATE_MAGIC);
  view.setUint32(4, 2);
  view.setUint32(8, data.length);
  let at = HARD_STATE_HEADER;
  for (const n of [durable.seq, durable.end, durable.lastIndex, durable.lastTerm]) {
    view.setUint32(at, Math.floor(n / 0x100000000));
    view.setUint32(at + 4, n >>> 0);
    at += 8;
  }
  view.setUint32(at, id.length);
  out.set(id, at + 4);
  out.set(data, at + 4 + id.length);
  view.setUint32(12, crc32c(out.subarray(HARD_STATE_HEADER), crc32c(out.subarray(4, 12))));
  return out;
}

/** @internal Tests: a hard-state file as the release before durable points wrote it (version 1). */
export function encodeHardStateV1(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HARD_STATE_HEADER + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, HARD_STATE_MAGIC);
  view.setUint32(4, HARD_STATE_VERSION);
  view.setUint32(8, data.length);
  out.set(data, HARD_STATE_HEADER);
  view.setUint32(12, crc32c(data, crc32c(out.subarray(4, 12))));
  return out;
}

/** The identity as the hard-state file stores it. */
export function encodeIdentity(identity: DataDirIdentity): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ clusterId: identity.clusterId, nodeId: identity.nodeId, incarnation: identity.incarnation }));
}

/** Decodes and verifies a hard-state file; damage is a `CorruptLogError` (the file is replaced atomically, so it is never torn). */
export function decodeHardStateFile(bytes: Uint8Array, path: string): HardStateFile {
  const fail = (reason: string): never => {
    throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: 0 }, `hard state: ${reason}`);
  };
  if (bytes.length < HARD_STATE_HEADER) fail(`file has ${bytes.length} bytes, less than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== HARD_STATE_MAGIC) fail('bad magic');
  const version = view.getUint32(4);
  const length = view.getUint32(8);
  if (version === HARD_STATE_VERSION) {
    if (length !== bytes.length - HARD_STATE_HEADER) fail(`length ${length} does not match the file size ${bytes.length}`);
    const data = bytes.subarray(HARD_STATE_HEADER);
    if (crc32c(data, crc32c(bytes.subarray(4, 12))) !== view.getUint32(12)) fail('checksum mismatch');
    return { version: 1, data: data.slice() };
  }
  if (version !== 2) fail(`unknown version ${version}`);
  if (bytes.length < HARD_STATE_HEADER + V2_FIXED) fail(`file has ${bytes.length} bytes, less than its header`);
  if (crc32c(bytes.subarray(HARD_STATE_HEADER), crc32c(bytes.subarray(4, 12))) !== view.getUint32(12)) fail('checksum mismatch');
  const u64 = (at: number) => view.getUint32(at) * 0x100000000 + view.getUint32(at + 4);
  const durable = { seq: u64(16), end: u64(24), lastIndex: u64(32), lastTerm: u64(40) };
  const idLength = view.getUint32(48);
  const idAt = HARD_STATE_HEADER + V2_FIXED;
  if (idAt + idLength + length !== bytes.length) fail(`lengths ${idLength} + ${length} do not match the file size ${bytes.length}`);
  let identity: DataDirIdentity | undefined;
  if (idLength > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(idAt, idAt + idLength)));
    } catch {
      fail('identity is not valid JSON');
    }
    const p = parsed as Partial<DataDirIdentity> | null;
    if (typeof p?.clusterId !== 'string' || typeof p.nodeId !== 'string' || typeof p.incarnation !== 'string') fail('identity lacks its fields');
    identity = { clusterId: (p as DataDirIdentity).clusterId, nodeId: (p as DataDirIdentity).nodeId, incarnation: (p as DataDirIdentity).incarnation };
  }
  const data = bytes.slice(idAt + idLength);
  return { version: 2, data, ...(durable.seq > 0 ? { durable } : {}), ...(identity === undefined ? {} : { identity }) };
}

/** The protocol's bytes of a hard-state file (verified). */
export function decodeHardState(bytes: Uint8Array, path: string): Uint8Array {
  return decodeHardStateFile(bytes, path).data;
}
