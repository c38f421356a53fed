import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';

/**
 * The small file layer every byte of storage-fs goes through. Production uses `nodeFileSystem()`; tests inject
 * `MemoryFileSystem`, which records writes and can simulate a crash that loses whatever was not synced.
 *
 * Errors must carry Node's `code` property (`ENOENT`, `EEXIST`, ...), which callers test.
 */
export interface FileSystem {
  /**
   * Opens a file. `read`: read-only, must exist. `append`: read/write, must exist. `create`: read/write,
   * created empty or truncated. `exclusive`: read/write, created, fails with `EEXIST` if it exists.
   */
  open(path: string, mode: 'read' | 'append' | 'create' | 'exclusive'): Promise<FsFile>;
  /** Names in a directory (not paths), any order. */
  readdir(dir: string): Promise<string[]>;
  /** Creates a directory and its parents; no error when it exists. */
  mkdir(dir: string): Promise<void>;
  /** Atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, unlinks) durable: fsync on the directory. */
  syncDir(dir: string): Promise<void>;
  /** Joins path parts; the memory implementation uses '/'. */
  join(...parts: string[]): string;
}

/** An open file. Reads are synchronous (the protocol reads storage synchronously); writes are not. */
export interface FsFile {
  /** Reads up to `length` bytes at `position` into `buffer` from `offset`; returns the count read. */
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** `write` on the calling thread (a small write to the page cache, no flush); optional. */
  writeSync?(data: Uint8Array, position: number): void;
  /** fdatasync: the file's data (and the size) are durable. */
  datasync(): Promise<void>;
  /**
   * `write` then `datasync` in one call: resolves once `data` is durable at `position`. Data written before by
   * `write` and not yet synced is not covered. The node implementation writes through an O_DSYNC descriptor,
   * so the write and its flush are one system call and one trip through libuv's thread pool, not two.
   * With `blocking`, that system call is made on the calling thread instead (the event loop waits for the
   * flush): no thread pool hand-off at all.
   */
  writeDurable(data: Uint8Array, position: number, options?: { blocking?: boolean }): Promise<void>;
  /** fsync: data and metadata are durable. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Current size in bytes. */
  size(): number;
  close(): Promise<void>;
}

class NodeFile implements FsFile {
  /** A second descriptor on the same file, opened O_DSYNC on first use by `writeDurable`. */
  private dsync: Promise<fsp.FileHandle> | undefined;

  constructor(
    private readonly handle: fsp.FileHandle,
    private readonly path: string,
  ) {}

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return fs.readSync(this.handle.fd, buffer, offset, length, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return writeAll(this.handle, data, position);
  }

  writeSync(data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.length) {
      const n = fs.writeSync(this.handle.fd, data, done, data.length - done, position + done);
      if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      done += n;
    }
  }

  async writeDurable(data: Uint8Array, position: number, options?: { blocking?: boolean }): Promise<void> {
    // Not O_APPEND, not O_TRUNC: positioned writes into the file as it is.
    this.dsync ??= fsp.open(this.path, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
    const handle = await this.dsync;
    if (options?.blocking !== true) return writeAll(handle, data, position);
    // Before the thread blocks, let what this turn of the event loop queued with process.nextTick run first:
    // socket writes are flushed that way, and a Raft leader's AppendEntries must leave before its own flush
    // starts, not after it (thesis 10.2.1: leader and followers write in parallel).
    await new Promise<void>((resolve) => process.nextTick(resolve));
    let done = 0;
    while (done < data.length) {
      const n = fs.writeSync(handle.fd, data, done, data.length - done, position + done);
      if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      done += n;
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  size(): number {
    return fs.fstatSync(this.handle.fd).size;
  }

  async close(): Promise<void> {
    const dsync = this.dsync;
    this.dsync = undefined;
    try {
      if (dsync !== undefined) await (await dsync).close();
    } finally {
      await this.handle.close();
    }
  }
}

async function writeAll(handle: fsp.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += bytesWritten;
  }
}

const FLAGS = { read: 'r', append: 'r+', create: 'w+', exclusive: 'wx+' } as const;

/** The real file system (node:fs). One shared instance, so the lock registry sees every open of a directory. */
export function nodeFileSystem(): FileSystem {
  return NODE_FS;
}

const NODE_FS: FileSystem = {
  async open(path, mode) {
    return new NodeFile(await fsp.open(path, FLAGS[mode]), path);
  },
  readdir: (dir) => fsp.readdir(dir),
  async mkdir(dir) {
    await fsp.mkdir(dir, { recursive: true });
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  async syncDir(dir) {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  // Absolute paths, so one directory has one lock-registry key however it was spelled.
  join: (...parts) => nodePath.resolve(...parts),
};

/** The `code` of a Node-style error, if any. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** Reads a whole file, or `undefined` when it does not exist. */
export async function readWholeFile(fsys: FileSystem, path: string): Promise<Uint8Array | undefined> {
  let file: FsFile;
  try {
    file = await fsys.open(path, 'read');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return readAllSync(file);
  } finally {
    await file.close();
  }
}

/** Reads all of an open file synchronously. */
export function readAllSync(file: FsFile): Uint8Array {
  const size = file.size();
  const buf = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const n = file.readSync(buf, done, size - done, done);
    if (n <= 0) break;
    done += n;
  }
  return done === size ? buf : buf.subarray(0, done);
}

/** Removes a file; a file that is already gone is fine (deletion is idempotent). */
export async function unlinkIfExists(fsys: FileSystem, path: string): Promise<boolean> {
  try {
    await fsys.unlink(path);
    return true;
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/** A file system whose syncs do nothing (`fsync: false`, tests only): nothing written through it is durable. */
export function withoutSync(fsys: FileSystem): FileSystem {
  return {
    async open(path, mode) {
      const f = await fsys.open(path, mode);
      return {
        readSync: (b, o, l, p) => f.readSync(b, o, l, p),
        write: (d, p) => f.write(d, p),
        ...(f.writeSync === undefined ? {} : { writeSync: (d: Uint8Array, p: number) => (f.writeSync as (d: Uint8Array, p: number) => void)(d, p) }),
        writeDurable: (d, p) => f.write(d, p),
        datasync: async () => {},
        sync: async () => {},
        truncate: (l) => f.truncate(l),
        size: () => f.size(),
        close: () => f.close(),
      };
    },
    readdir: (d) => fsys.readdir(d),
    mkdir: (d) => fsys.mkdir(d),
    rename: (a, b) => fsys.rename(a, b),
    unlink: (p) => fsys.unlink(p),
    syncDir: async () => {},
    join: (...p) => fsys.join(...p),
  };
}
