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

/** The hard-state file: magic, version, length and CRC-32C of (version, length, data), then the data. */
export function encodeHardState(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HARD_STATE_HEADER + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, HARD_STATE_MAGIC);
  view.setUint32(4, HARD_STATE_VERSION);
  view.setUint32(8, data.length);
  out.set(data, HARD_STATE_HEADER);
  view.setUint32(12, crc32c(data, crc32c(out.subarray(4, 12))));
  return out;
}

/** Decodes and verifies a hard-state file; damage is a `CorruptLogError` (the file is replaced atomically, so it is never torn). */
export function decodeHardState(bytes: Uint8Array, path: string): Uint8Array {
  const fail = (reason: string): never => {
    throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: 0 }, `hard state: ${reason}`);
  };
  if (bytes.length < HARD_STATE_HEADER) fail(`file has ${bytes.length} bytes, less than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== HARD_STATE_MAGIC) fail('bad magic');
  if (view.getUint32(4) !== HARD_STATE_VERSION) fail(`unknown version ${view.getUint32(4)}`);
  const length = view.getUint32(8);
  if (length !== bytes.length - HARD_STATE_HEADER) fail(`length ${length} does not match the file size ${bytes.length}`);
  const data = bytes.subarray(HARD_STATE_HEADER);
  if (crc32c(data, crc32c(bytes.subarray(4, 12))) !== view.getUint32(12)) fail('checksum mismatch');
  return data.slice();
}
