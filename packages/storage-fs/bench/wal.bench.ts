/**
 * storage-fs benchmark: group-commit append throughput for 256-byte entries on the real file system (fsync
 * on), fdatasyncs per entry, and recovery (open) time of a 100k-entry log. Prints figures; asserts nothing.
 *
 *   pnpm bench            # in packages/storage-fs
 *   BENCH_DIR=/path pnpm bench   # measure another disk
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LogEntry } from '@consensus-kit/core';
import { openFileStorage } from '../src/index';

const ENTRY_BYTES = 256;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const payload = new Uint8Array(ENTRY_BYTES).fill(0x5a);

function entry(index: number): LogEntry {
  return { index, term: 1, type: 'command', data: payload };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'storage-fs-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A Raft-sized hard state (term, vote, commit) that changes with every save. */
function hardStateFor(commit: number): Uint8Array {
  const out = new Uint8Array(24);
  new DataView(out.buffer).setFloat64(16, commit);
  return out;
}

interface AppendResult {
  label: string;
  entries: number;
  seconds: number;
  syncs: number;
  walBytes: number;
}

/** `writers` concurrent loops, each saving `perSave` entries at a time and awaiting durability before the next. */
async function appendRun(
  label: string,
  writers: number,
  perSave: number,
  total: number,
  blockingWrites = false,
  withHardState = false,
  fsync = true,
): Promise<AppendResult> {
  return withDir(async (dir) => {
    const s = await openFileStorage(dir, { logger: quiet, blockingWrites, fsync });
    let next = 1;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next <= total) {
          const batch: LogEntry[] = [];
          for (let k = 0; k < perSave && next <= total; k++) batch.push(entry(next++));
          // Like a Raft follower's Ready: new entries and the commit index (the hard state) of earlier ones.
          await s.save(withHardState ? { entries: batch, hardState: hardStateFor(next) } : { entries: batch });
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const stats = s.stats();
    await s.close();
    return { label, entries: total, seconds, syncs: stats.walSyncs, walBytes: stats.bytesWritten };
  });
}

function report(r: AppendResult): void {
  const eps = r.entries / r.seconds;
  console.log(
    `${r.label.padEnd(34)} ${Math.round(eps).toString().padStart(9)} entries/s  ` +
      `${((eps * ENTRY_BYTES) / 1e6).toFixed(2).padStart(7)} MB/s payload  ` +
      `${(r.walBytes / r.seconds / 1e6).toFixed(2).padStart(7)} MB/s WAL  ` +
      `${(r.syncs / r.entries).toFixed(4)} fdatasyncs/entry  (${r.syncs} syncs, ${r.seconds.toFixed(2)} s)`,
  );
}

async function recoveryRun(entries: number): Promise<void> {
  await withDir(async (dir) => {
    const s = await openFileStorage(dir, { logger: quiet });
    for (let i = 1; i <= entries; i += 1000) {
      const batch: LogEntry[] = [];
      for (let k = i; k < i + 1000 && k <= entries; k++) batch.push(entry(k));
      await s.save({ entries: batch });
    }
    await s.close();
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      const r = await openFileStorage(dir, { logger: quiet });
      times.push(performance.now() - start);
      if (r.lastIndex() !== entries) throw new Error(`recovered ${r.lastIndex()} entries, expected ${entries}`);
      // A read from the far end of the log comes from disk.
      if (r.entries(1, 2)[0]?.data.length !== ENTRY_BYTES) throw new Error('bad read after recovery');
      await r.close();
    }
    times.sort((a, b) => a - b);
    const median = times[1] as number;
    console.log(
      `recovery (open) of a ${entries}-entry log:  median ${median.toFixed(1)} ms of 3 ` +
        `(${Math.round(entries / (median / 1000))} entries/s; runs ${times.map((t) => t.toFixed(1)).join(', ')} ms)`,
    );
  });
}

async function main(): Promise<void> {
  console.log(`storage-fs bench: ${ENTRY_BYTES}-byte entries, fsync on, dir ${process.env.BENCH_DIR ?? tmpdir()}`);
  report(await appendRun('1 writer x save(1 entry)', 1, 1, 1_000));
  report(await appendRun('1 writer x save(1 entry), blocking', 1, 1, 1_000, true));
  report(await appendRun('1 writer x save(1 entry + hard state), blocking', 1, 1, 1_000, true, true));
  // Without fsync the disk's (and the neighbours') flush times drop out: what is left is the CPU and system-call
  // cost of a save, where bookkeeping such as the durable point shows.
  report(await appendRun('1 writer x save(1 entry), fsync off', 1, 1, 20_000, true, false, false));
  report(await appendRun('1 writer x save(1 entry + hard state), fsync off', 1, 1, 5_000, true, true, false));
  report(await appendRun('64 writers x save(1 entry)', 64, 1, 20_000));
  report(await appendRun('64 writers x save(1 entry), blocking', 64, 1, 20_000, true));
  report(await appendRun('256 writers x save(1 entry)', 256, 1, 40_000));
  report(await appendRun('1 writer x save(64 entries)', 1, 64, 64_000));
  report(await appendRun('16 writers x save(64 entries)', 16, 64, 200_000));
  await recoveryRun(100_000);
}

await main();
