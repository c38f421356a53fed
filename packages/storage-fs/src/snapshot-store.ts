import { StorageError, isConsensusError, type Snapshot, type SnapshotMeta } from '@consensus-kit/core';
import { TMP_SUFFIX, writeFileAtomic } from './atomic-file';
import { unlinkIfExists, type FileSystem, type FsFile } from './file-system';
import {
  parseSnapshotFileName,
  readSnapshotChunks,
  readSnapshotData,
  snapshotFileName,
  writeSnapshotStream,
  type SnapshotFileMeta,
} from './snapshot-file';

/** The newest snapshot recovery found, handed to the store. */
export interface RecoveredSnapshot {
  meta: SnapshotFileMeta | undefined;
  file: FsFile | undefined;
  path: string | undefined;
}

/** A snapshot received as a stream, durable under a temporary name, ready to be renamed into place. */
export interface IncomingSnapshot {
  meta: SnapshotFileMeta;
  file: FsFile;
  tmp: string;
  path: string;
  name: string;
}

/**
 * The snapshot files of a data directory (`snap-<index>-<term>`, written atomically, checksummed chunks):
 * which snapshot is current, its data (loaded lazily after a reopen, or streamed), the newest one whose file
 * is durable (the limit of what compaction may drop), writing new files and deleting the others. The facade
 * runs every file change on the WAL writer's background chain, so they never race each other.
 */
export class SnapshotStore {
  private meta: SnapshotFileMeta | undefined;
  private data: Snapshot | undefined;
  private file: FsFile | undefined;
  private path: string | undefined;
  /** Index of the newest snapshot whose file is durable. */
  durableIndex: number;
  /** The local snapshot file being written, if any (`compact` waits for it). */
  pendingWrite: Promise<void> | undefined;

  constructor(
    private readonly fsys: FileSystem,
    private readonly dir: string,
    recovered: RecoveredSnapshot,
  ) {
    this.meta = recovered.meta;
    this.file = recovered.file;
    this.path = recovered.path;
    this.durableIndex = recovered.meta?.index ?? 0;
  }

  /** The current snapshot's metadata (index, term, config, size), if any. */
  get current(): SnapshotFileMeta | undefined {
    return this.meta;
  }

  isCurrent(snapshot: SnapshotMeta): boolean {
    return this.meta?.index === snapshot.index && this.meta.term === snapshot.term;
  }

  /** The current snapshot; after a reopen its data is read once, straight into one buffer, verifying every chunk. */
  read(): Snapshot | undefined {
    if (this.data !== undefined || this.meta === undefined) return this.data;
    const { meta, data } = readSnapshotData(this.file as FsFile, this.path as string);
    this.data = { index: meta.index, term: meta.term, config: meta.config, data };
    return this.data;
  }

  /** The current snapshot's data as verified chunks, one in memory at a time. */
  *chunks(): Generator<Uint8Array, void, void> {
    if (this.meta === undefined) return;
    if (this.file === undefined) {
      const snap = this.data as Snapshot;
      for (let at = 0; at < snap.data.length; at += 1 << 20) yield snap.data.subarray(at, at + (1 << 20));
      return;
    }
    yield* readSnapshotChunks(this.file, this.path as string);
  }

  /** Makes `snapshot` current in memory (its file is written separately). */
  set(snapshot: Snapshot, installed: boolean): void {
    this.meta = { index: snapshot.index, term: snapshot.term, config: snapshot.config, dataBytes: snapshot.data.length, installed };
    this.data = snapshot;
  }

  /** Writes `snapshot`'s file atomically; reads are served from it while it stays current. */
  async writeFile(snapshot: Snapshot, installed: boolean): Promise<void> {
    const name = snapshotFileName(snapshot.index, snapshot.term);
    const meta: SnapshotFileMeta = { index: snapshot.index, term: snapshot.term, config: snapshot.config, dataBytes: snapshot.data.length, installed };
    await writeFileAtomic(this.fsys, this.dir, name, (f) => writeSnapshotStream(f, meta, [snapshot.data]));
    this.durableIndex = Math.max(this.durableIndex, snapshot.index);
    // Serve reads from the file only while it is still the current snapshot (an install may have replaced it).
    if (!this.isCurrent(snapshot)) return;
    const old = this.file;
    const path = this.fsys.join(this.dir, name);
    this.file = await this.fsys.open(path, 'read');
    this.path = path;
    await old?.close();
  }

  /**
   * Writes a snapshot arriving as chunks to a temporary file and syncs it (nothing current changes). `check`
   * runs once the data is durable and may throw to abandon it (the storage failed, a newer snapshot arrived);
   * on any failure the temporary file is removed.
   */
  async receive(
    snapshot: SnapshotMeta,
    dataBytes: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    check: () => void,
  ): Promise<IncomingSnapshot> {
    const name = snapshotFileName(snapshot.index, snapshot.term);
    const path = this.fsys.join(this.dir, name);
    const tmp = this.fsys.join(this.dir, `${name}.incoming${TMP_SUFFIX}`);
    const meta: SnapshotFileMeta = { index: snapshot.index, term: snapshot.term, config: snapshot.config, dataBytes, installed: true };
    const file = await this.fsys.open(tmp, 'create');
    try {
      await writeSnapshotStream(file, meta, chunks);
      await file.sync();
      check();
    } catch (e) {
      await file.close().catch(() => undefined);
      await unlinkIfExists(this.fsys, tmp).catch(() => undefined);
      throw isConsensusError(e) ? e : new StorageError(`installSnapshotStream: ${String(e)}`, { cause: e });
    }
    return { meta, file, tmp, path, name };
  }

  /**
   * Makes a received snapshot current at once (its open handle serves reads across the rename); returns the
   * background step that renames it into place durably.
   */
  adopt(incoming: IncomingSnapshot): () => Promise<void> {
    const old = this.file;
    this.meta = incoming.meta;
    this.data = undefined;
    this.file = incoming.file;
    this.path = incoming.path;
    return async () => {
      await this.fsys.rename(incoming.tmp, incoming.path);
      await this.fsys.syncDir(this.dir);
      this.durableIndex = Math.max(this.durableIndex, incoming.meta.index);
      await old?.close();
    };
  }

  /** Deletes every snapshot file but `keepName`. */
  async deleteOthers(keepName: string): Promise<void> {
    let removed = false;
    for (const name of await this.fsys.readdir(this.dir)) {
      if (name !== keepName && parseSnapshotFileName(name) !== undefined) {
        removed = (await unlinkIfExists(this.fsys, this.fsys.join(this.dir, name))) || removed;
      }
    }
    if (removed) await this.fsys.syncDir(this.dir);
  }

  async close(): Promise<void> {
    await this.file?.close().catch(() => undefined);
  }
}
