import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SessionExpiredError } from '@consensus-kit/core';
import { BACKUP_FORMAT, BACKUP_STATE_MACHINES, checkNodeSnapshot, encodeBackupHeader, type BackupMeta } from './backup';
import { CliError, describeError } from './errors';
import type { SnapshotPiece, SnapshotTransferHead, StreamedSnapshot } from './snapshot-transfer';

/**
 * The client half of `snapshot save` (#22 item 7): fetches a node's snapshot piece by piece (snapshot-transfer.ts
 * serves them) and writes each to `<file>.part` as it arrives, never holding the whole in memory; checks the
 * size and the node's SHA-256 of the data, fsyncs, renames the `.part` to `<file>` and fsyncs the directory.
 * On any failure the `.part` is removed (and the node told to drop the transfer): `<file>` is then either the
 * file it was before or absent.
 */

/** How the fetcher reaches the node (`snapshot save` wraps an RPC channel with its deadlines; tests wrap more). */
export interface SnapshotSource {
  /** `admin.snapshot { pieces: true }`: the metadata and the first piece (or, from an older node, everything). */
  begin(): Promise<unknown>;
  /** `admin.snapshot.read { id, offset }`: the node that answered `begin`, always. */
  read(id: string, offset: number): Promise<unknown>;
  /** `admin.snapshot.cancel { id }`, best effort. */
  cancel(id: string): Promise<unknown>;
}

/** Why `snapshot save` failed after the node began answering. */
/** `busy`: `<file>.part` exists (another save of the file runs, or a killed one left it); it is left as it is. */
export type SnapshotSaveProblem = 'not-a-snapshot' | 'bad-piece' | 'size' | 'checksum' | 'expired' | 'interrupted' | 'write' | 'busy';

/** `snapshot save` could not complete: nothing is left at `<file>.part`, and `<file>` is as it was. Exit code 1. */
export class SnapshotSaveError extends CliError {
  constructor(
    readonly file: string,
    readonly problem: SnapshotSaveProblem,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`snapshot save ${file}: ${detail}; nothing was written`, 1);
    this.name = 'SnapshotSaveError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export interface SavedSnapshot {
  file: string;
  meta: BackupMeta;
  /** Size of the file. */
  bytes: number;
  /** SHA-256 (hex) of the file's contents before its trailing checksum: what the file records. */
  sha256: string;
  /** Pieces received (1 from a node that answers whole). */
  pieces: number;
}

export interface FetchOptions {
  /** When the file is written (ISO 8601); default now. */
  createdAt?: string;
  /** Called after each piece is written: bytes of the data so far, and in all. */
  onProgress?(received: number, total: number): void;
}

/** The `.part` file `snapshot save <file>` writes before renaming it. */
export function partFileOf(file: string): string {
  return `${file}.part`;
}

export async function fetchSnapshotToFile(source: SnapshotSource, file: string, o: FetchOptions = {}): Promise<SavedSnapshot> {
  const part = partFileOf(file);
  // The `.part` is made first, exclusively (O_EXCL), before the node is asked for anything: a target that cannot
  // be written fails at once instead of after the node took (and the client fetched) the whole snapshot, and two
  // saves of one file never write into the same `.part` (the second truncating the first's, the first renaming a
  // file the second goes on writing: a backup reported saved whose bytes were not the ones checked).
  const fd = openPart(file, part);
  try {
    return await fetchInto(source, file, part, fd, o);
  } catch (e) {
    if (fd.fd !== undefined) closeSync(fd.fd);
    rmSync(part, { force: true });
    throw e;
  }
}

/** The `.part` file, open for writing (`fd` is cleared once it is closed). */
interface PartFile {
  fd: number | undefined;
}

function openPart(file: string, part: string): PartFile {
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    // absent (or unreadable: the rename will say)
  }
  if (isDir) throw new SnapshotSaveError(file, 'write', `${file} is a directory: name the backup file to write`);
  try {
    return { fd: openSync(part, 'wx') };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      // Not ours: never removed here.
      throw new SnapshotSaveError(
        file,
        'busy',
        `${part} exists: another snapshot save of ${file} is running, or one was killed and left it; remove ${part} if none is running, and save again`,
        { cause: e },
      );
    }
    throw writeError(file, part, e);
  }
}

async function fetchInto(source: SnapshotSource, file: string, part: string, f: PartFile, o: FetchOptions): Promise<SavedSnapshot> {
  const first = await source.begin();
  const createdAt = o.createdAt ?? new Date().toISOString();
  // A node of an older release answers the whole snapshot as `data` (up to 32 MiB): written the same way.
  const legacy = typeof first === 'object' && first !== null && 'data' in first;
  let head: SnapshotTransferHead;
  let meta: Omit<BackupMeta, 'format' | 'dataBytes'>;
  let firstPiece: Uint8Array;
  if (legacy) {
    const { data, stateMachine, ...rest } = checkNodeSnapshot(first);
    meta = { stateMachine: stateMachine ?? 'kv', createdAt, ...rest };
    firstPiece = data;
    head = { id: '', size: data.length, sha256: createHash('sha256').update(data).digest('hex'), pieceBytes: data.length };
  } else {
    const s = checkStreamedSnapshot(first, file);
    const { transfer, piece, stateMachine, ...rest } = s;
    meta = { stateMachine: stateMachine ?? 'kv', createdAt, ...rest };
    head = transfer;
    firstPiece = piece;
  }
  let received = 0;
  let pieces = 0;
  const fileHash = createHash('sha256');
  const dataHash = createHash('sha256');
  let fileBytes = 0;
  const write = (bytes: Uint8Array, ...hashes: Hash[]): void => {
    for (let at = 0; at < bytes.length; ) at += writeSync(f.fd as number, bytes, at, bytes.length - at);
    for (const h of hashes) h.update(bytes);
    fileBytes += bytes.length;
  };
  try {
    try {
      write(encodeBackupHeader(meta, head.size), fileHash);
    } catch (e) {
      throw writeError(file, part, e);
    }
    const take = (piece: Uint8Array): void => {
      if (received + piece.length > head.size) {
        throw new SnapshotSaveError(file, 'size', `the node sent ${received + piece.length} bytes of a snapshot it said is ${head.size}`);
      }
      try {
        write(piece, fileHash, dataHash);
      } catch (e) {
        throw writeError(file, part, e);
      }
      received += piece.length;
      pieces++;
      o.onProgress?.(received, head.size);
    };
    take(firstPiece);
    while (received < head.size) {
      let answer: unknown;
      try {
        answer = await source.read(head.id, received);
      } catch (e) {
        if (SessionExpiredError.is(e)) throw new SnapshotSaveError(file, 'expired', `${e.message} [${e.code}]`, { cause: e });
        // The node stopped answering (it went down, the connection broke, the deadline passed...).
        throw new SnapshotSaveError(file, 'interrupted', `the transfer broke off after ${received} of ${head.size} bytes: ${describeError(e)}`, { cause: e });
      }
      const p = checkPiece(answer, head, received, file);
      take(p.piece);
      if (p.done !== (received === head.size)) {
        throw new SnapshotSaveError(file, 'size', `the node ${p.done ? 'ended' : 'went on with'} the transfer at ${received} of ${head.size} bytes`);
      }
    }
    const digest = dataHash.digest('hex');
    if (digest !== head.sha256) {
      throw new SnapshotSaveError(file, 'checksum', `the SHA-256 of the ${received} bytes received is ${digest}, the node's is ${head.sha256}: the transfer was damaged`);
    }
    const sha = fileHash.digest();
    try {
      write(sha);
      fsyncSync(f.fd as number);
      closeSync(f.fd as number);
      f.fd = undefined;
      renameSync(part, file);
      const dir = openSync(dirname(file), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (e) {
      throw writeError(file, part, e);
    }
    return { file, meta: { format: BACKUP_FORMAT, ...meta, dataBytes: head.size }, bytes: fileBytes, sha256: sha.toString('hex'), pieces };
  } catch (e) {
    // Frees what the node holds for us now rather than after its idle TTL.
    if (head.id !== '' && received < head.size) await source.cancel(head.id).catch(() => undefined);
    throw e;
  }
}

function writeError(file: string, part: string, e: unknown): SnapshotSaveError {
  const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new SnapshotSaveError(file, 'write', `cannot write ${part} (${why})`, { cause: e });
}

const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;

/** Checks `admin.snapshot { pieces: true }`'s answer (it crossed the network). */
function checkStreamedSnapshot(a: unknown, file: string): StreamedSnapshot {
  const x = a as Partial<StreamedSnapshot> | null;
  const t = x?.transfer as Partial<SnapshotTransferHead> | undefined;
  const ok =
    typeof x === 'object' &&
    x !== null &&
    typeof t === 'object' &&
    t !== null &&
    typeof t.id === 'string' &&
    t.id.length > 0 &&
    count(t.size) &&
    typeof t.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(t.sha256) &&
    x.piece instanceof Uint8Array &&
    (x.piece.length > 0 || t.size === 0) &&
    typeof x.clusterId === 'string' &&
    typeof x.nodeId === 'string' &&
    typeof x.protocol === 'string' &&
    (x.stateMachine === undefined || (BACKUP_STATE_MACHINES as readonly unknown[]).includes(x.stateMachine)) &&
    [x.appliedIndex, x.term, x.revision, x.compactRevision, x.keys].every(count);
  if (!ok) throw new SnapshotSaveError(file, 'not-a-snapshot', 'the node answered admin.snapshot with something that is not a snapshot (a node of another release?)');
  return x as StreamedSnapshot;
}

/** Checks one `admin.snapshot.read` answer: the piece asked for, of this transfer, non-empty. */
function checkPiece(a: unknown, head: SnapshotTransferHead, offset: number, file: string): SnapshotPiece {
  const x = a as Partial<SnapshotPiece> | null;
  if (typeof x !== 'object' || x === null || x.id !== head.id || x.offset !== offset || !(x.piece instanceof Uint8Array) || x.piece.length === 0 || typeof x.done !== 'boolean') {
    throw new SnapshotSaveError(file, 'bad-piece', `the node answered the piece at offset ${offset} of transfer ${head.id} with something else`);
  }
  return x as SnapshotPiece;
}
