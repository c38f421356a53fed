import { seededRandom } from '@consensus-kit/core';
import type { FileSystem, FsFile } from './file-system';

/** How a simulated power loss treats data that was written but not synced. */
export type CrashMode =
  /** Only what was fsynced survives; directory changes survive only after a directory fsync. */
  | 'synced'
  /** Everything that was written survives (the disk happened to flush it all). */
  | 'all'
  /** Synced data plus a random prefix of each file's unsynced appended bytes. */
  | 'torn'
  /** Like `torn`, and random 512-byte sectors of the unsynced part are lost (written out of order). */
  | 'torn-sectors';

interface Inode {
  data: Uint8Array;
  size: number;
  /** The content as of the last fsync/fdatasync. */
  durable: Uint8Array;
}

function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return `/${parts.join('/')}`;
}


/**
 * An in-memory `FileSystem` with a durability model, for crash-consistency tests (ALICE style): it counts
 * mutating operations, can "lose power" after the n-th one (every later call fails with `ECRASH`), and
 * `crashImage()` builds the disk a reboot would find: what was fsynced, optionally plus torn parts of
 * what was not.
 */
export class MemoryFileSystem implements FileSystem {
  private readonly dirs = new Set<string>(['/']);
  /** The live namespace: path -> inode. */
  private readonly files = new Map<string, Inode>();
  /** The namespace as of each directory's last fsync. */
  private readonly durableDirs = new Map<string, Map<string, Inode>>();
  private opCount = 0;
  private crashAt = Number.POSITIVE_INFINITY;
  /** One line per mutating operation, for debugging a failing crash point. */
  readonly log: string[] = [];

  /** Mutating operations performed so far. */
  get operations(): number {
    return this.opCount;
  }

  /** After `n` more mutating operations succeed, every later operation fails with `ECRASH`. */
  crashAfter(n: number): void {
    this.crashAt = this.opCount + n;
  }

  get crashed(): boolean {
    return this.opCount >= this.crashAt;
  }

  private mutate(what: string): void {
    if (this.opCount >= this.crashAt) throw fsError('ECRASH', `simulated power loss before ${what}`);
    this.opCount++;
    this.log.push(what);
  }

  private checkAlive(): void {
    if (this.opCount >= this.crashAt) throw fsError('ECRASH', 'simulated power loss');
  }

  join(...parts: string[]): string {
    return normalize(parts.join('/'));
  }

  async mkdir(dir: string): Promise<void> {
    const d = normalize(dir);
    if (this.dirs.has(d)) return;
    this.mutate(`mkdir ${d}`);
    // Directories are modelled as durable once created (their own parent entry is not the subject here).
    let cur = '';
    for (const part of d.split('/').filter(Boolean)) {
      cur += `/${part}`;
      this.dirs.add(cur);
      if (!this.durableDirs.has(cur)) this.durableDirs.set(cur, new Map());
    }
  }

  async readdir(dir: string): Promise<string[]> {
    this.checkAlive();
    const d = normalize(dir);
    if (!this.dirs.has(d)) throw fsError('ENOENT', `no such directory ${d}`);
    const out: string[] = [];
    for (const p of this.files.keys()) if (dirOf(p) === d) out.push(baseOf(p));
    return out;
  }

  async open(path: string, mode: 'read' | 'append' | 'create' | 'exclusive'): Promise<FsFile> {
    const p = normalize(path);
    if (!this.dirs.has(dirOf(p))) throw fsError('ENOENT', `no such directory ${dirOf(p)}`);
    let inode = this.files.get(p);
    if (mode === 'read' || mode === 'append') {
      this.checkAlive();
      if (inode === undefined) throw fsError('ENOENT', `no such file ${p}`);
    } else {
      if (mode === 'exclusive' && inode !== undefined) {
        this.checkAlive();
        throw fsError('EEXIST', `file exists ${p}`);
      }
      this.mutate(`open ${mode} ${p}`);
      if (inode === undefined) {
        inode = { data: new Uint8Array(0), size: 0, durable: new Uint8Array(0) };
        this.files.set(p, inode);
      } else {
        inode.size = 0;
      }
    }
    return new MemoryFile(this, inode, p, mode === 'read');
  }

  async rename(from: string, to: string): Promise<void> {
    const f = normalize(from);
    const t = normalize(to);
    const inode = this.files.get(f);
    if (inode === undefined) {
      this.checkAlive();
      throw fsError('ENOENT', `no such file ${f}`);
    }
    this.mutate(`rename ${f} -> ${t}`);
    this.files.delete(f);
    this.files.set(t, inode);
  }

  async unlink(path: string): Promise<void> {
    const p = normalize(path);
    if (!this.files.has(p)) {
      this.checkAlive();
      throw fsError('ENOENT', `no such file ${p}`);
    }
    this.mutate(`unlink ${p}`);
    this.files.delete(p);
  }

  async syncDir(dir: string): Promise<void> {
    const d = normalize(dir);
    if (!this.dirs.has(d)) throw fsError('ENOENT', `no such directory ${d}`);
    this.mutate(`fsync dir ${d}`);
    const entries = new Map<string, Inode>();
    for (const [p, inode] of this.files) if (dirOf(p) === d) entries.set(baseOf(p), inode);
    this.durableDirs.set(d, entries);
  }

  /** @internal */
  mutateFile(what: string): void {
    this.mutate(what);
  }

  /** @internal */
  checkFileAlive(): void {
    this.checkAlive();
  }

  /** The bytes of a file as written (volatile view), for tests that damage files on purpose. */
  readFileRaw(path: string): Uint8Array | undefined {
    const inode = this.files.get(normalize(path));
    return inode === undefined ? undefined : inode.data.slice(0, inode.size);
  }

  /** Replaces a file's bytes in place, durably (a test's bit rot), bypassing crash accounting. */
  writeFileRaw(path: string, data: Uint8Array): void {
    const p = normalize(path);
    const bytes = data.slice();
    const inode = this.files.get(p);
    if (inode === undefined) {
      const fresh = { data: bytes, size: bytes.length, durable: bytes.slice() };
      this.files.set(p, fresh);
      this.durableDirs.get(dirOf(p))?.set(baseOf(p), fresh);
    } else {
      inode.data = bytes;
      inode.size = bytes.length;
      inode.durable = bytes.slice();
    }
  }

  /** Paths of all files in the live namespace. */
  listFiles(): string[] {
    return [...this.files.keys()].sort();
  }

  /**
   * The disk a reboot would find after a power loss now: a new, independent `MemoryFileSystem`.
   * `seed` drives the random choices of the torn modes.
   */
  crashImage(mode: CrashMode, seed = 1): MemoryFileSystem {
    const rnd = seededRandom(seed);
    const image = new MemoryFileSystem();
    for (const d of this.dirs) {
      image.dirs.add(d);
      image.durableDirs.set(d, new Map());
    }
    const namespace = new Map<string, Inode>();
    if (mode === 'all') {
      for (const [p, inode] of this.files) namespace.set(p, inode);
    } else {
      for (const [d, entries] of this.durableDirs) {
        for (const [name, inode] of entries) namespace.set(d === '/' ? `/${name}` : `${d}/${name}`, inode);
      }
    }
    // One content per inode, so hard links created by rename stay consistent.
    const contents = new Map<Inode, Uint8Array>();
    for (const inode of namespace.values()) {
      if (contents.has(inode)) continue;
      const written = inode.data.slice(0, inode.size);
      let bytes: Uint8Array;
      if (mode === 'all') {
        bytes = written;
      } else if (mode === 'synced') {
        bytes = inode.durable.slice();
      } else {
        bytes = tornContent(inode.durable, written, rnd, mode === 'torn-sectors');
      }
      contents.set(inode, bytes);
    }
    for (const [p, inode] of namespace) {
      const bytes = contents.get(inode) as Uint8Array;
      const fresh: Inode = { data: bytes, size: bytes.length, durable: bytes };
      image.files.set(p, fresh);
      image.durableDirs.get(dirOf(p))?.set(baseOf(p), fresh);
    }
    // Reuse the same Inode object for paths that shared one.
    return image;
  }
}

/**
 * What a file holds after a power loss when `durable` was synced and `written` was written since: the
 * durable bytes with a random prefix of the unsynced changes applied (from the first byte that differs), and,
 * with `loseSectors`, some 512-byte sectors of that prefix still holding their old bytes (zeros past the old
 * end), as if the device wrote them out of order. The changes may extend the file (appends) or overwrite it in
 * place (writes into space preallocated with zeros); a file that shrank falls back to its synced content.
 */
function tornContent(durable: Uint8Array, written: Uint8Array, rnd: () => number, loseSectors: boolean): Uint8Array {
  if (written.length < durable.length) return durable.slice();
  let common = 0;
  while (common < durable.length && durable[common] === written[common]) common++;
  // The changed span ends at the last byte that differs (an append ends with the file).
  let last = written.length;
  if (written.length === durable.length) while (last > common && durable[last - 1] === written[last - 1]) last--;
  const changed = last - common;
  if (changed <= 0) return durable.slice();
  const keep = Math.floor(rnd() * (changed + 1));
  const end = common + keep;
  const out = new Uint8Array(Math.max(durable.length, end));
  out.set(written.subarray(0, end));
  if (end < durable.length) out.set(durable.subarray(end), end);
  if (loseSectors) {
    for (let s = Math.floor(common / 512) * 512; s < end; s += 512) {
      if (rnd() >= 0.3) continue;
      const from = Math.max(s, common);
      const to = Math.min(s + 512, end);
      out.fill(0, from, to);
      if (from < durable.length) out.set(durable.subarray(from, Math.min(to, durable.length)), from);
    }
  }
  return out;
}

class MemoryFile implements FsFile {
  private closed = false;

  constructor(
    private readonly owner: MemoryFileSystem,
    private readonly inode: Inode,
    private readonly path: string,
    private readonly readOnly: boolean,
  ) {}

  private check(): void {
    if (this.closed) throw fsError('EBADF', `file ${this.path} is closed`);
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.check();
    const n = Math.max(0, Math.min(length, this.inode.size - position));
    buffer.set(this.inode.data.subarray(position, position + n), offset);
    return n;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.writeSync(data, position);
  }

  writeSync(data: Uint8Array, position: number): void {
    this.check();
    if (this.readOnly) throw fsError('EBADF', `file ${this.path} is read-only`);
    this.owner.mutateFile(`write ${this.path} @${position} +${data.length}`);
    const end = position + data.length;
    if (end > this.inode.data.length) {
      const grown = new Uint8Array(Math.max(end, this.inode.data.length * 2));
      grown.set(this.inode.data.subarray(0, this.inode.size));
      this.inode.data = grown;
    }
    if (position > this.inode.size) this.inode.data.fill(0, this.inode.size, position);
    this.inode.data.set(data, position);
    this.inode.size = Math.max(this.inode.size, end);
  }

  async datasync(): Promise<void> {
    this.check();
    this.owner.mutateFile(`fdatasync ${this.path}`);
    this.inode.durable = this.inode.data.slice(0, this.inode.size);
  }

  /** A write and an fdatasync; a crash between the two keeps what the write model allows (a torn write). */
  async writeDurable(data: Uint8Array, position: number): Promise<void> {
    await this.write(data, position);
    await this.datasync();
  }

  async sync(): Promise<void> {
    this.check();
    this.owner.mutateFile(`fsync ${this.path}`);
    this.inode.durable = this.inode.data.slice(0, this.inode.size);
  }

  async truncate(length: number): Promise<void> {
    this.check();
    this.owner.mutateFile(`truncate ${this.path} to ${length}`);
    if (length < this.inode.size) this.inode.size = length;
    else if (length > this.inode.size) await this.write(new Uint8Array(length - this.inode.size), this.inode.size);
  }

  size(): number {
    this.check();
    return this.inode.size;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
