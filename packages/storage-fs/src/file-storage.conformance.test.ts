import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStorageConformance } from '@consensus-kit/core/testing';
import { openFileStorage } from './file-storage';
import { MemoryFileSystem } from './memory-file-system';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describeStorageConformance('FileStorage on disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStorageConformance('FileStorage on disk, tiny segments and no cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet, segmentBytes: 4096, cacheBytes: 0 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStorageConformance('FileStorage on disk, blocking writes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'storage-fs-conf-'));
  return {
    open: () => openFileStorage(dir, { logger: quiet, segmentBytes: 4096, blockingWrites: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStorageConformance('FileStorage on MemoryFileSystem', () => {
  const fileSystem = new MemoryFileSystem();
  return { open: () => openFileStorage('/data', { logger: quiet, fileSystem, segmentBytes: 4096, cacheBytes: 64 }) };
});
