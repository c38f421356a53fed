import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStorageConformance, type StorageHarness } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { openFileStorage, type FileStorageOptions } from './file-storage';
import { MemoryFileSystem, type CrashMode } from './memory-file-system';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const api = { describe, it, expect };

describeStorageConformance(api, 'FileStorage on disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStorageConformance(api, 'FileStorage on disk, tiny segments and no cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet, segmentBytes: 4096, cacheBytes: 0 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStorageConformance(api, 'FileStorage on disk, blocking writes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet, segmentBytes: 4096, blockingWrites: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

/**
 * On a MemoryFileSystem that can lose power: a crash in the middle of a save is a power loss after `point`
 * mutating file operations of the save, and the reboot finds a crash image (the modes take turns: only what
 * was synced, everything written, torn unsynced tails, torn tails with lost sectors).
 */
function memoryHarness(options: FileStorageOptions): () => StorageHarness {
  const modes: CrashMode[] = ['synced', 'all', 'torn', 'torn-sectors'];
  return () => {
    const fileSystem = new MemoryFileSystem();
    return {
      open: () => openFileStorage('/data', { ...options, logger: quiet, fileSystem }),
      async crashDuringSave(setup, save, point) {
        const s = await openFileStorage('/data', { ...options, logger: quiet, fileSystem });
        await setup(s);
        fileSystem.crashAfter(point);
        try {
          if (save.snapshot !== undefined) await s.installSnapshot(save.snapshot);
          const { truncateAfter, entries, hardState } = save;
          await s.save({ entries, ...(truncateAfter === undefined ? {} : { truncateAfter }), ...(hardState === undefined ? {} : { hardState }) });
        } catch {
          // the power went
        }
        const completed = !fileSystem.crashed;
        await s.close().catch(() => undefined);
        const image = fileSystem.crashImage(modes[point % modes.length] as CrashMode, point + 1);
        return { storage: await openFileStorage('/data', { ...options, logger: quiet, fileSystem: image }), completed };
      },
    };
  };
}

describeStorageConformance(api, 'FileStorage on MemoryFileSystem', memoryHarness({ segmentBytes: 4096, cacheBytes: 64 }), { crashes: true });

describeStorageConformance(api, 'FileStorage on MemoryFileSystem, preallocated', memoryHarness({ segmentBytes: 4096, cacheBytes: 0, preallocateBytes: 4096 }), {
  crashes: true,
});
