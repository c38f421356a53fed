import { constants as bufferConstants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isConsensusError } from '@consensus-kit/core';
import { KvStateMachine } from '@consensus-kit/kv';
import { LockStateMachine } from '@consensus-kit/lock';
import { CliError } from './errors';
import { nodeStateMachine } from './node-runner';

/**
 * The backup file `consensus-cli snapshot save` writes and `snapshot status` / `snapshot restore` read (after
 * etcd's `etcdctl snapshot save`, whose file carries a SHA-256 of its contents):
 *
 * ```
 * 0..7      "CKBACKUP"                       magic
 * 8..11     u32 big-endian format version    1
 * 12..15    u32 big-endian metadata length M (at most 64 KiB)
 * 16..16+M  metadata, JSON (BackupMeta)      protocol-neutral: applied index, kv revision, node, cluster...
 * ..        the state machine's snapshot     `dataBytes` bytes, exactly what `StateMachine.snapshot()` gave
 * last 32   SHA-256 of every byte before it
 * ```
 *
 * The format version comes before anything else so a later reader can tell a file it knows from one it does
 * not before trusting the rest. The state-machine bytes carry their own version (the kv snapshot's `v`, the
 * combined envelope's `combined`): `stateMachine` says what they are. `kv`: a bare kv snapshot, written by
 * nodes that ran kv alone; `kv+lock`: the `{ kv, lock }` envelope of `combineStateMachines` that nodes run
 * now. Both restore, through the node's own state machine (kv primary), which reads either.
 */
export const BACKUP_MAGIC = 'CKBACKUP';
export const BACKUP_FORMAT = 1;
const FIXED = 16;
const HASH_BYTES = 32;
const MAX_META_BYTES = 64 * 1024;

/**
 * What a backup's state-machine bytes are: a bare kv snapshot (`kv`, from a node that ran kv alone) or the
 * `{ kv, lock }` combined envelope (`kv+lock`).
 */
export type BackupStateMachine = 'kv' | 'kv+lock';
export const BACKUP_STATE_MACHINES: readonly BackupStateMachine[] = ['kv', 'kv+lock'];

/** What a node answers to `admin.snapshot`: its state machine's snapshot and where it stands. */
export interface NodeSnapshot {
  /** What the node runs (and `data` holds); absent from a node of a release that ran kv alone: `kv`. */
  stateMachine?: BackupStateMachine;
  clusterId: string;
  nodeId: string;
  protocol: string;
  /** The log index the snapshot reflects (the node's applied index when it was taken). */
  appliedIndex: number;
  /** The node's term then (protocol metadata, printed only). */
  term: number;
  /** The kv store's revision and compaction revision, and how many live keys it holds. */
  revision: number;
  compactRevision: number;
  keys: number;
  data: Uint8Array;
}

/** The metadata of a backup file (format 1): what the node said of its snapshot, and the file's own fields. */
export interface BackupMeta extends Omit<NodeSnapshot, 'data'> {
  format: number;
  /** The state machine the data belongs to. */
  stateMachine: BackupStateMachine;
  /** When `snapshot save` wrote it (ISO 8601, UTC). */
  createdAt: string;
  dataBytes: number;
}

/** A backup file read and verified: its metadata, its state-machine bytes, its SHA-256 (hex) and size. */
export interface Backup {
  meta: BackupMeta;
  data: Uint8Array;
  sha256: string;
  bytes: number;
}

/** Why a backup file was refused (`size`: longer than its header announces). */
export type BackupFileProblem = 'unreadable' | 'bad-magic' | 'unknown-format' | 'truncated' | 'size' | 'checksum' | 'bad-metadata' | 'bad-data';

/** A backup file that cannot be used: damaged, truncated, not a backup, or of a format this CLI does not read. */
export class BackupFileError extends CliError {
  constructor(
    readonly file: string,
    readonly problem: BackupFileProblem,
    detail: string,
  ) {
    super(`${file}: ${detail}`, 1);
    this.name = 'BackupFileError';
  }
}

/**
 * The bytes a backup file holding `dataBytes` bytes of state-machine snapshot with `meta` starts with (magic,
 * format, metadata length, metadata; its `format` and `dataBytes` are set here). The data follows, then the
 * SHA-256 of everything before it: `snapshot save` writes the data piece by piece as it arrives.
 */
export function encodeBackupHeader(meta: Omit<BackupMeta, 'format' | 'dataBytes'>, dataBytes: number): Uint8Array {
  const full: BackupMeta = { format: BACKUP_FORMAT, ...meta, dataBytes };
  const metaBytes = new TextEncoder().encode(JSON.stringify(full));
  if (metaBytes.length > MAX_META_BYTES) throw new CliError(`backup metadata of ${metaBytes.length} bytes exceeds ${MAX_META_BYTES}`);
  const out = new Uint8Array(FIXED + metaBytes.length);
  out.set(new TextEncoder().encode(BACKUP_MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, BACKUP_FORMAT);
  view.setUint32(12, metaBytes.length);
  out.set(metaBytes, FIXED);
  return out;
}

/** The bytes of a backup file holding `data` with `meta` (its `format` and `dataBytes` are set here). */
export function encodeBackup(meta: Omit<BackupMeta, 'format' | 'dataBytes'>, data: Uint8Array): Uint8Array {
  const header = encodeBackupHeader(meta, data.length);
  const out = new Uint8Array(header.length + data.length + HASH_BYTES);
  out.set(header, 0);
  out.set(data, header.length);
  const body = out.subarray(0, out.length - HASH_BYTES);
  out.set(createHash('sha256').update(body).digest(), body.length);
  return out;
}

/**
 * Reads and verifies a backup file: magic, format version, SHA-256 over the whole, then the metadata's shape
 * and that the data length agrees. Any problem is a `BackupFileError` saying which.
 */
export function decodeBackup(bytes: Uint8Array, file: string, bodyDigest?: Buffer): Backup {
  const fail = (problem: BackupFileProblem, detail: string) => new BackupFileError(file, problem, detail);
  const metaLength = checkHead(bytes, bytes.length, file);
  const body = bytes.subarray(0, bytes.length - HASH_BYTES);
  const sha = bodyDigest ?? createHash('sha256').update(body).digest();
  const stored = bytes.subarray(bytes.length - HASH_BYTES);
  if (!sha.equals(stored)) {
    // Say "truncated" when the header, readable as it stands, wants more bytes than the file has.
    const expected = expectedSize(bytes, metaLength);
    if (expected !== undefined && expected > bytes.length) {
      throw fail('truncated', `truncated: ${bytes.length} bytes, its header says ${expected}; the file is incomplete (checksum does not match)`);
    }
    throw fail('checksum', `checksum mismatch: the SHA-256 of the contents is ${sha.toString('hex')}, the file records ${Buffer.from(stored).toString('hex')}; the file is damaged`);
  }
  if (metaLength > MAX_META_BYTES || FIXED + metaLength > body.length) throw fail('bad-metadata', `metadata length ${metaLength} does not fit the file`);
  let meta: BackupMeta;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED, FIXED + metaLength))) as BackupMeta;
  } catch (e) {
    throw fail('bad-metadata', `metadata is not JSON (${(e as Error).message})`);
  }
  const problem = metaProblem(meta);
  if (problem !== undefined) throw fail('bad-metadata', `metadata: ${problem}`);
  const data = bytes.subarray(FIXED + metaLength, body.length);
  if (data.length !== meta.dataBytes) throw fail('bad-metadata', `metadata says ${meta.dataBytes} data bytes, the file holds ${data.length}`);
  return { meta, data, sha256: sha.toString('hex'), bytes: bytes.length };
}

/**
 * Checks what the first bytes of a backup file of `size` bytes say before anything else is trusted: the magic,
 * the length, the format version. `head` is the file's start (at least its first 16 bytes when it has them).
 * Returns the metadata length the header gives.
 */
function checkHead(head: Uint8Array, size: number, file: string): number {
  const fail = (problem: BackupFileProblem, detail: string) => new BackupFileError(file, problem, detail);
  const magic = new TextEncoder().encode(BACKUP_MAGIC);
  const start = head.subarray(0, magic.length);
  if (start.length < magic.length || start.some((b, i) => b !== magic[i])) {
    // A file cut inside the magic itself is still recognisably ours.
    if (start.length < magic.length && start.every((b, i) => b === magic[i])) throw fail('truncated', `truncated: ${size} bytes, shorter than a backup's header`);
    throw fail('bad-magic', `not a consensus-kit backup file (it does not start with "${BACKUP_MAGIC}"; \`consensus-cli snapshot save\` writes them)`);
  }
  if (size < FIXED + HASH_BYTES) throw fail('truncated', `truncated: ${size} bytes, shorter than a backup's header and checksum`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const format = view.getUint32(8);
  if (format !== BACKUP_FORMAT) {
    throw fail('unknown-format', `backup format ${format} is not one this consensus-cli reads (format ${BACKUP_FORMAT}): restore it with the release that wrote it, or a newer one`);
  }
  return view.getUint32(12);
}

/** The size the header of `bytes` announces, if its metadata can be read from what is there. */
function expectedSize(bytes: Uint8Array, metaLength: number): number | undefined {
  if (metaLength > MAX_META_BYTES || FIXED + metaLength > bytes.length) return metaLength <= MAX_META_BYTES ? FIXED + metaLength + HASH_BYTES : undefined;
  try {
    const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(FIXED, FIXED + metaLength))) as Partial<BackupMeta>;
    return Number.isSafeInteger(meta.dataBytes) ? FIXED + metaLength + (meta.dataBytes as number) + HASH_BYTES : undefined;
  } catch {
    return undefined;
  }
}

function metaProblem(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  const x = m as Record<string, unknown>;
  if (x.format !== BACKUP_FORMAT) return `format ${String(x.format)} disagrees with the header's ${BACKUP_FORMAT}`;
  if (!(BACKUP_STATE_MACHINES as readonly unknown[]).includes(x.stateMachine)) return `state machine ${JSON.stringify(x.stateMachine)} is not one of ${BACKUP_STATE_MACHINES.join(', ')}`;
  for (const k of ['createdAt', 'clusterId', 'nodeId', 'protocol'] as const) if (typeof x[k] !== 'string') return `${k} must be a string`;
  for (const k of ['appliedIndex', 'term', 'revision', 'compactRevision', 'keys', 'dataBytes'] as const) {
    if (!Number.isSafeInteger(x[k]) || (x[k] as number) < 0) return `${k} must be a non-negative integer`;
  }
  return undefined;
}

/** Bytes read (and hashed) at a time by `readBackup`. */
const READ_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Reads and verifies the backup file at `file`: one pass, a chunk at a time, hashing as it reads (no second
 * pass over a large file, and no limit but memory on its size: `readFileSync` stops at 2 GiB).
 */
export function readBackup(file: string): Backup {
  const unreadable = (e: unknown) => new BackupFileError(file, 'unreadable', `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw unreadable(e);
  }
  try {
    const size = fstatSync(fd).size;
    // The header first: a file that is not a backup, of a format this release does not read, or of another size
    // than its header announces is refused from its first bytes, without reading (and holding) the rest (a 3 GB
    // file that was not a backup took 16 s and 3 GB of memory to be found foreign by its first 8 bytes).
    const head = Buffer.alloc(Math.min(size, FIXED + MAX_META_BYTES));
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n === 0) break;
      got += n;
    }
    const metaLength = checkHead(head.subarray(0, got), size, file);
    const expected = expectedSize(head.subarray(0, got), metaLength);
    if (expected !== undefined && expected < size) {
      throw new BackupFileError(file, 'size', `${size} bytes, its header says ${expected}: bytes follow the backup's end, or its header is damaged`);
    }
    if (expected !== undefined && expected > size) {
      throw new BackupFileError(file, 'truncated', `truncated: ${size} bytes, its header says ${expected}; the file is incomplete`);
    }
    if (size > bufferConstants.MAX_LENGTH) {
      throw new BackupFileError(file, 'unreadable', `${size} bytes: larger than the ${bufferConstants.MAX_LENGTH} bytes this consensus-cli can hold at once`);
    }
    const bytes = Buffer.allocUnsafe(size);
    const hash = createHash('sha256');
    const bodyEnd = Math.max(0, size - HASH_BYTES);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, bytes, at, Math.min(READ_CHUNK_BYTES, size - at), at);
      if (n === 0) break; // shrank while being read: decodeBackup finds it short
      if (at < bodyEnd) hash.update(bytes.subarray(at, Math.min(at + n, bodyEnd)));
      at += n;
    }
    return decodeBackup(at === size ? bytes : bytes.subarray(0, at), file, at === size ? hash.digest() : undefined);
  } catch (e) {
    if (e instanceof BackupFileError) throw e;
    throw unreadable(e);
  } finally {
    closeSync(fd);
  }
}

/**
 * The state-machine bytes of a verified backup, restored into a fresh node state machine (`{ kv, lock }`, kv
 * primary: it reads a bare kv snapshot as well as the envelope) to prove they load and agree with the
 * metadata's revision before anything is written from them. (The key count is not compared: it is what the
 * writing release counted, for people to read.)
 */
export function checkBackupData(b: Backup, file: string): void {
  loadBackupData(b, file);
}

/** The backup's data restored into a fresh `{ kv, lock }` (checked as `checkBackupData` says). */
function loadBackupData(b: Backup, file: string): KvStateMachine {
  const kv = new KvStateMachine();
  try {
    restoreBackupData(b, { kv, lock: new LockStateMachine() });
  } catch (e) {
    throw new BackupFileError(file, 'bad-data', `its ${b.meta.stateMachine} snapshot does not load: ${isConsensusError(e) ? `${e.message} [${e.code}]` : String(e)}`);
  }
  if (kv.currentRevision !== b.meta.revision) {
    throw new BackupFileError(file, 'bad-data', `its kv snapshot is at revision ${kv.currentRevision}, its metadata says ${b.meta.revision}`);
  }
  return kv;
}

function restoreBackupData(b: Backup, machines: { kv: KvStateMachine; lock: LockStateMachine }): void {
  // A `kv` backup must be kv's own bytes: the envelope restores only as what the metadata says it is.
  if (b.meta.stateMachine === 'kv') machines.kv.restore(b.data);
  else nodeStateMachine(machines).restore(b.data);
}

/**
 * A backup's state made ready to seed a NEW cluster (`snapshot restore`): the node state machine's snapshot
 * (the `{ kv, lock }` envelope) with kv's replicated time freed of the old cluster's term (see
 * `KvStateMachine.forgetTimeTerm`) and an empty lock table. No client of the old cluster holds a session in
 * the new one (its cluster id is new), so the old sessions and their holds are not carried over; fencing
 * tokens stay above every old one, since the new log continues after the backup's applied index, and a token
 * is the log index of its grant.
 */
export function snapshotForNewCluster(b: Backup): Uint8Array {
  const kv = new KvStateMachine();
  restoreBackupData(b, { kv, lock: new LockStateMachine() });
  return seedOf(kv);
}

/**
 * `checkBackupData` and `snapshotForNewCluster` in one restore of the data (a large store is restored once,
 * not once to check it and once per member seeded): what `snapshot restore` writes into every new member.
 */
export function checkedSeedOf(b: Backup, file: string): Uint8Array {
  return seedOf(loadBackupData(b, file));
}

function seedOf(kv: KvStateMachine): Uint8Array {
  kv.forgetTimeTerm();
  return nodeStateMachine({ kv, lock: new LockStateMachine() }).snapshot();
}

/** Checks a node's `admin.snapshot` answer (it crossed the network). */
export function checkNodeSnapshot(a: unknown): NodeSnapshot {
  const x = a as Partial<NodeSnapshot> | null;
  const ok =
    typeof x === 'object' &&
    x !== null &&
    x.data instanceof Uint8Array &&
    typeof x.clusterId === 'string' &&
    typeof x.nodeId === 'string' &&
    typeof x.protocol === 'string' &&
    (x.stateMachine === undefined || (BACKUP_STATE_MACHINES as readonly unknown[]).includes(x.stateMachine)) &&
    [x.appliedIndex, x.term, x.revision, x.compactRevision, x.keys].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
  if (!ok) throw new CliError('the node answered admin.snapshot with something that is not a snapshot (a node of another release?)');
  return x as NodeSnapshot;
}
