import { crc32c } from '@node-rs/crc32';
import type { DurablePoint } from './atomic-file';
import type { FsFile } from './file-system';
import { readU64, writeU64 } from './record';

/** The durable-point file of a data directory. */
export const DURABLE_FILE = 'durable';
/** Two slots, each in its own 512-byte sector, written in turn: a torn update leaves the other one intact. */
const SLOT_SPACING = 512;
export const DURABLE_FILE_BYTES = 2 * SLOT_SPACING;
const SLOT_BYTES = 52;
const MAGIC = 0x636b6470; // "ckdp"
const VERSION = 1;

/**
 * One slot:
 *
 * ```
 *  0 u32 magic "ckdp"   4 u32 version   8 u64 counter (which slot is newer)
 * 16 u64 seq   24 u64 end   32 u64 last index   40 u64 last term   48 u32 CRC-32C of bytes 0..48
 * ```
 */
function encodeSlot(counter: number, p: DurablePoint): Uint8Array {
  const out = new Uint8Array(SLOT_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, VERSION);
  writeU64(view, 8, counter);
  writeU64(view, 16, p.seq);
  writeU64(view, 24, p.end);
  writeU64(view, 32, p.lastIndex);
  writeU64(view, 40, p.lastTerm);
  view.setUint32(48, crc32c(out.subarray(0, 48)));
  return out;
}

/** The bytes of a new durable-point file: `point` in its first slot (counter 1), the second slot empty. */
export function initialDurableFile(point: DurablePoint): Uint8Array {
  const out = new Uint8Array(DURABLE_FILE_BYTES);
  out.set(encodeSlot(1, point), SLOT_SPACING);
  return out;
}

/** What the durable-point file holds: the newest intact slot, and how many slots were damaged. */
export interface DurableFileContent {
  point: DurablePoint | undefined;
  counter: number;
  /** Slots that hold bytes but fail their checksum (a torn update, or damage). */
  damagedSlots: number;
  /** Why the file is suspect, if it is: a damaged slot, or no intact slot at all (it always holds one). */
  problem?: string;
}

export function decodeDurableFile(bytes: Uint8Array): DurableFileContent {
  let best: { counter: number; point: DurablePoint } | undefined;
  let damaged = 0;
  for (let at = 0; at + SLOT_BYTES <= bytes.length && at < DURABLE_FILE_BYTES; at += SLOT_SPACING) {
    // The rest of a slot's sector is always zero: anything else there is damage too.
    if (!bytes.subarray(at + SLOT_BYTES, at + SLOT_SPACING).every((b) => b === 0)) damaged++;
    const slot = bytes.subarray(at, at + SLOT_BYTES);
    if (slot.every((b) => b === 0)) continue; // never written
    const view = new DataView(slot.buffer, slot.byteOffset, SLOT_BYTES);
    if (view.getUint32(0) !== MAGIC || view.getUint32(4) !== VERSION || crc32c(slot.subarray(0, 48)) !== view.getUint32(48)) {
      damaged++;
      continue;
    }
    const counter = readU64(view, 8);
    const point = { seq: readU64(view, 16), end: readU64(view, 24), lastIndex: readU64(view, 32), lastTerm: readU64(view, 40) };
    if (best === undefined || counter > best.counter) best = { counter, point };
  }
  const problem =
    bytes.length !== DURABLE_FILE_BYTES
      ? `the file has ${bytes.length} bytes, not ${DURABLE_FILE_BYTES}`
      : best === undefined
        ? 'no intact slot'
        : damaged > 0
          ? 'a slot is damaged (a torn update after a power cut, or damage)'
          : undefined;
  return { point: best?.point, counter: best?.counter ?? 0, damagedSlots: damaged, ...(problem === undefined ? {} : { problem }) };
}

/**
 * The durable-point file: after every WAL group is durable, the new durable point is written here in place,
 * without an fsync of its own (so it adds a small write to a group, not a device flush). It survives any crash
 * of the process (the page cache keeps it); after a power cut it may hold an older point, never a newer one,
 * since a point is written only once its records are durable. The hard-state file carries the point too, synced,
 * each time it is written and on close. Recovery takes the later of the two.
 */
export class DurableFile {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private syncing: Promise<void> | undefined;
  private closed = false;

  /**
   * `syncMs`: how soon after a point is written it is also synced, in the background (so a power cut loses at
   * most that much of it); `0` syncs it before `record` returns, in every group (an fdatasync more per group).
   * `onSyncError` is told when a background sync fails.
   */
  constructor(
    private readonly file: FsFile,
    private counter: number,
    private readonly syncMs: number,
    private readonly onSyncError: (e: unknown) => void,
  ) {}

  /** Writes `point` to the older slot. Synchronous where the file layer allows (a write to the page cache). */
  async record(point: DurablePoint): Promise<void> {
    this.counter++;
    const bytes = encodeSlot(this.counter, point);
    const at = (this.counter % 2) * SLOT_SPACING;
    if (this.file.writeSync !== undefined) this.file.writeSync(bytes, at);
    else await this.file.write(bytes, at);
    if (this.syncMs === 0) {
      await this.file.datasync();
      return;
    }
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.syncing = this.file.datasync().catch(this.onSyncError);
      }, this.syncMs);
      this.timer.unref?.();
    }
  }

  /** Waits for a background sync in flight (tests, and before `close`). */
  async settled(): Promise<void> {
    await this.syncing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.syncing;
    await this.file.close();
  }
}
