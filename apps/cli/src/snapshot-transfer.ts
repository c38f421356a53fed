import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, SessionExpiredError, StoppedError, TransportError, type SnapshotJob } from '@consensus-kit/core';
import type { NodeSnapshot } from './backup';

/**
 * `snapshot save` of a store of any size (#22 item 7): the node takes the state-machine snapshot once, holds its
 * bytes under a transfer id and serves them in pieces, as etcd's maintenance Snapshot RPC streams its db file in
 * chunks rather than answering it in one message.
 *
 * ```
 * client                                   node
 * admin.snapshot { pieces: true }    ->    read barrier, snapshot (sliced), sha256 (sliced)
 *                                    <-    { ...metadata, transfer: { id, size, sha256, pieceBytes }, piece (offset 0) }
 * admin.snapshot.read { id, offset } ->    the next piece, at most pieceBytes
 *                                    <-    { id, offset, piece, done }
 * admin.snapshot.cancel { id }       ->    drops the transfer (a client that gave up)
 * ```
 *
 * What a node holds is bounded: at most `maxTransfers` transfers at once (one being taken counts), each dropped
 * once its last piece was served, when cancelled, after `ttlMs` without a read that carried it on (a re-read or a
 * read ahead neither keeps it nor ends it: a transfer lives at most ceil(size / pieceBytes) idle periods), or
 * `orphanMs` after every connection of its client closed; a snapshot whose request was aborted while it was being
 * taken is not taken further. A read of an id the node does not hold is a `SessionExpiredError` (its `session` is the id; the message says unknown, expired or
 * finished); an offset outside the snapshot an `InvalidArgumentError`.
 */

/** Largest piece one `admin.snapshot.read` answers: well under transport-tcp's 32 MiB maxMessageSize. */
export const SNAPSHOT_PIECE_BYTES = 8 * 1024 * 1024;
/** A transfer nobody read for this long is dropped. */
export const SNAPSHOT_TRANSFER_TTL_MS = 60_000;
/** Transfers a node holds at once (taken or being taken): each holds a whole snapshot in memory. */
export const SNAPSHOT_MAX_TRANSFERS = 2;
/** A slice of taking the snapshot (`beginSnapshot`) runs about this long before the event loop gets a turn. */
const SLICE_MS = 0.5;
/** Units (the state machine's own, e.g. keys) asked of one `SnapshotJob.step`, as the host's snapshotter asks. */
const STEP_UNITS = 64;
/** Bytes hashed per turn of the event loop. */
const HASH_SLICE_BYTES = 1024 * 1024;
/**
 * A transfer whose client connections all closed (a `snapshot save` killed with -9, its host gone) is dropped
 * this long after (default; at most `ttlMs`), rather than after the whole idle time: a client that reconnects
 * and reads on within it keeps it.
 */
export const SNAPSHOT_ORPHAN_MS = 5_000;
/** Ended ids remembered, so a late read is told "expired" or "finished" rather than "unknown". */
const REMEMBERED_ENDS = 64;

export interface SnapshotTransferOptions {
  /** Largest piece (default 8 MiB). */
  pieceBytes?: number;
  /** Idle time after which a transfer is dropped (default 60 s). */
  ttlMs?: number;
  /** Transfers held at once (default 2). */
  maxTransfers?: number;
  /** Monotonic ms (default `performance.now`); tests drive expiry with their own. */
  now?: () => number;
  /** How long a transfer whose client connections all closed is kept (default 5 s, at most `ttlMs`). */
  orphanMs?: number;
}

/** The first piece's metadata: what the client checks the whole against. */
export interface SnapshotTransferHead {
  id: string;
  /** Bytes of the state-machine snapshot. */
  size: number;
  /** SHA-256 (hex) of those bytes. */
  sha256: string;
  pieceBytes: number;
}

/** `admin.snapshot { pieces: true }`'s answer: the snapshot's metadata, the transfer, and its first piece. */
export interface StreamedSnapshot extends Omit<NodeSnapshot, 'data'> {
  transfer: SnapshotTransferHead;
  /** Bytes [0, piece.length) of the snapshot. */
  piece: Uint8Array;
}

/** `admin.snapshot.read`'s answer. */
export interface SnapshotPiece {
  id: string;
  offset: number;
  piece: Uint8Array;
  /** The last piece: the node has dropped the transfer. */
  done: boolean;
}

/** What a node takes for a transfer: the metadata, and the state machine's snapshot as bytes or as a job. */
export interface SnapshotCapture {
  meta: Omit<NodeSnapshot, 'data'>;
  /** Bytes, or an incremental job (`StateMachine.beginSnapshot`) the registry runs in slices. */
  data: Uint8Array | SnapshotJob;
}

interface Held {
  head: SnapshotTransferHead;
  data: Uint8Array;
  /** Bytes [0, served) were served, in pieces that followed one another: where the transfer stands. */
  served: number;
  /** When `served` last grew (the first piece: when it was taken). */
  lastRead: number;
  /** The open client connections that began or carried the transfer on (their `connectionSignal`s). */
  conns: Set<AbortSignal>;
  /** When the last of them closed: the transfer is dropped `orphanMs` later unless a read comes meanwhile. */
  orphanedAt?: number;
}

type Ended = 'expired' | 'finished' | 'cancelled' | 'abandoned';

export class SnapshotTransfers {
  readonly pieceBytes: number;
  readonly ttlMs: number;
  readonly maxTransfers: number;
  readonly orphanMs: number;
  private readonly now: () => number;
  private readonly held = new Map<string, Held>();
  /** Snapshots being taken (jobs or hashes in progress), cancelled by `close`. */
  private readonly taking = new Set<{ cancel(): void }>();
  private readonly ended = new Map<string, Ended>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly nodeId: string,
    o: SnapshotTransferOptions = {},
  ) {
    this.pieceBytes = positive(o.pieceBytes, 'pieceBytes', SNAPSHOT_PIECE_BYTES);
    this.ttlMs = positive(o.ttlMs, 'ttlMs', SNAPSHOT_TRANSFER_TTL_MS);
    this.maxTransfers = positive(o.maxTransfers, 'maxTransfers', SNAPSHOT_MAX_TRANSFERS);
    this.orphanMs = Math.min(this.ttlMs, positive(o.orphanMs, 'orphanMs', SNAPSHOT_ORPHAN_MS));
    this.now = o.now ?? (() => performance.now());
  }

  /** Transfers held or being taken now. */
  get count(): number {
    this.sweep();
    return this.held.size + this.taking.size;
  }

  /** Snapshot bytes held now. */
  get heldBytes(): number {
    this.sweep();
    let n = 0;
    for (const h of this.held.values()) n += h.data.length;
    return n;
  }

  /**
   * Takes a snapshot (`capture` runs at once, synchronously: the caller's read barrier has just completed) and
   * answers its first piece. A snapshot that fits one piece is answered whole and not held.
   */
  async begin(capture: () => SnapshotCapture, signal?: AbortSignal, connection?: AbortSignal): Promise<StreamedSnapshot> {
    const { meta, data, sha256 } = await this.take(capture, true, signal);
    const id = `snap-${randomBytes(8).toString('hex')}`;
    const head: SnapshotTransferHead = { id, size: data.length, sha256, pieceBytes: this.pieceBytes };
    const piece = data.subarray(0, this.pieceBytes);
    if (piece.length < data.length) {
      const h: Held = { head, data, served: piece.length, lastRead: this.now(), conns: new Set() };
      this.held.set(id, h);
      this.watch(id, h, connection);
      this.startSweeper();
    } else this.remember(id, 'finished');
    return { ...meta, transfer: head, piece };
  }

  /**
   * Takes a snapshot whole, for `admin.snapshot` without pieces (a client of a release before #22 item 7): as
   * `begin` takes one (incrementally, in slices, counted among `maxTransfers` while it is taken), so that
   * request neither holds the event loop for the whole of a large store nor runs unbounded at once.
   */
  async whole(capture: () => SnapshotCapture, signal?: AbortSignal): Promise<{ meta: SnapshotCapture['meta']; data: Uint8Array }> {
    const { meta, data } = await this.take(capture, false, signal);
    return { meta, data };
  }

  /**
   * Takes the snapshot in slices, counted while it is taken. `signal`: the request's (transport-tcp aborts it
   * when the client cancels, times out or its connection closes, e.g. a `snapshot save` killed with -9 while the
   * node takes a large store): taking stops at once and nothing is held, rather than the whole taken and then
   * held for the idle time with nobody to read it.
   */
  private async take(
    capture: () => SnapshotCapture,
    hash: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ meta: SnapshotCapture['meta']; data: Uint8Array; sha256: string }> {
    this.checkRoom();
    let cancelled = false;
    let job: SnapshotJob | undefined;
    const token = {
      cancel: () => {
        cancelled = true;
        job?.cancel();
      },
    };
    this.taking.add(token);
    const abandoned = (): StoppedError =>
      signal?.aborted === true
        ? new StoppedError(`the client gave up on the snapshot node ${this.nodeId} was taking: it is dropped`)
        : new StoppedError(`node ${this.nodeId} is stopping: the snapshot being taken was abandoned`);
    signal?.addEventListener('abort', token.cancel, { once: true });
    if (signal?.aborted === true) cancelled = true;
    let meta: SnapshotCapture['meta'];
    let data: Uint8Array;
    let sha256: string;
    try {
      if (cancelled) throw abandoned();
      const c = capture();
      meta = c.meta;
      if (c.data instanceof Uint8Array) data = c.data;
      else {
        job = c.data;
        data = await runJob(job, () => cancelled);
      }
      sha256 = hash ? await hashInSlices(data, () => cancelled) : '';
    } catch (e) {
      throw cancelled ? abandoned() : e;
    } finally {
      this.taking.delete(token);
      signal?.removeEventListener('abort', token.cancel);
    }
    if (cancelled || this.closed) throw abandoned();
    return { meta, data, sha256 };
  }

  /**
   * Throws unless another transfer may begin now (a `TransportError` when `maxTransfers` are held or being
   * taken, a `StoppedError` once closed): the node calls it before its read barrier too, to refuse at once.
   */
  checkRoom(): void {
    if (this.closed) throw new StoppedError(`node ${this.nodeId} is stopping`);
    if (this.count >= this.maxTransfers) {
      throw new TransportError(
        `node ${this.nodeId} is serving ${this.maxTransfers} snapshot transfer${this.maxTransfers === 1 ? '' : 's'} already (at most ${this.maxTransfers} at once): ` +
          `try again once one ends (an idle one is dropped after ${Math.round(this.ttlMs / 1000)} s)`,
      );
    }
  }

  /**
   * The piece at `offset` of transfer `id`. Only a read that carries the transfer on (at or before the bytes
   * served so far, reaching past them) counts as one: it keeps the transfer from expiring, and the one that
   * reaches the end drops it. A reader re-reading a piece, or reading ahead, is answered but holds the transfer
   * no longer (at most ceil(size / pieceBytes) idle periods in all) and does not end it under the client still
   * fetching it.
   */
  read(id: unknown, offset: unknown, connection?: AbortSignal): SnapshotPiece {
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new InvalidArgumentError('admin.snapshot.read needs the transfer id that admin.snapshot answered');
    const h = this.lookup(id);
    const size = h.data.length;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset >= size) {
      throw new InvalidArgumentError(
        `snapshot transfer ${id}: offset ${typeof offset === 'number' ? offset : JSON.stringify(offset)} is not within the snapshot's ${size} bytes ` +
          `(0..${size - 1})`,
      );
    }
    const piece = h.data.subarray(offset, offset + this.pieceBytes);
    const end = offset + piece.length;
    if (offset <= h.served && end > h.served) {
      h.served = end;
      h.lastRead = this.now();
      this.watch(id, h, connection);
    }
    const done = h.served === size;
    if (done) this.drop(id, 'finished');
    return { id, offset, piece, done };
  }

  /** Drops transfer `id` (a client that gave up); an id not held is ignored. */
  cancel(id: unknown): { cancelled: boolean } {
    if (typeof id !== 'string' || !this.held.has(id)) return { cancelled: false };
    this.drop(id, 'cancelled');
    return { cancelled: true };
  }

  /** Drops everything held and stops taking: the node is stopping. */
  close(): void {
    this.closed = true;
    for (const t of [...this.taking]) t.cancel();
    for (const id of [...this.held.keys()]) this.drop(id, 'cancelled');
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private lookup(id: string): Held {
    this.sweep();
    const h = this.held.get(id);
    if (h !== undefined) return h;
    const why = this.ended.get(id);
    const text =
      why === 'expired'
        ? `expired: nobody read it for ${Math.round(this.ttlMs / 1000)} s`
        : why === 'finished'
          ? 'is finished: its last piece was served'
          : why === 'cancelled'
            ? 'was cancelled'
            : why === 'abandoned'
              ? `was dropped: every connection of the client reading it closed ${Math.round(this.orphanMs / 1000)} s before`
            : `is unknown to node ${this.nodeId} (never begun here, or long gone)`;
    throw new SessionExpiredError(id, `snapshot transfer ${id} ${text}; run snapshot save again`);
  }

  private drop(id: string, why: Ended): void {
    this.held.delete(id);
    this.remember(id, why);
    if (this.held.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private remember(id: string, why: Ended): void {
    this.ended.set(id, why);
    if (this.ended.size > REMEMBERED_ENDS) this.ended.delete(this.ended.keys().next().value as string);
  }

  /**
   * Notes `connection` (the request's `connectionSignal`) as one of the transfer's client connections: once every
   * one noted has closed, the transfer is dropped `orphanMs` later unless a read carries it on meanwhile.
   */
  private watch(id: string, h: Held, connection: AbortSignal | undefined): void {
    h.orphanedAt = undefined;
    if (connection === undefined || h.conns.has(connection)) return;
    if (connection.aborted) {
      if (h.conns.size === 0) this.orphan(id, h);
      return;
    }
    h.conns.add(connection);
    connection.addEventListener(
      'abort',
      () => {
        h.conns.delete(connection);
        if (h.conns.size === 0 && this.held.get(id) === h) this.orphan(id, h);
      },
      { once: true },
    );
  }

  private orphan(id: string, h: Held): void {
    h.orphanedAt = this.now();
    setTimeout(() => {
      if (this.held.get(id) === h) this.sweep();
    }, this.orphanMs).unref();
  }

  /** Drops every transfer idle for `ttlMs`, or whose client connections closed `orphanMs` ago. */
  private sweep(): void {
    const now = this.now();
    for (const [id, h] of this.held) {
      if (now - h.lastRead >= this.ttlMs) this.drop(id, 'expired');
      else if (h.orphanedAt !== undefined && now - h.orphanedAt >= this.orphanMs) this.drop(id, 'abandoned');
    }
  }

  /** Frees the memory of an abandoned transfer even when no request comes to sweep it. */
  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(this.ttlMs / 2, 5000)));
    this.sweeper.unref();
  }
}

function positive(v: number | undefined, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgumentError(`snapshot transfers: ${what} must be a positive integer, got ${String(v)}`);
  return v;
}

/**
 * Runs an incremental snapshot in slices of about SLICE_MS, yielding the event loop between them (as core's
 * snapshotter does): a large store does not stall heartbeats and client requests while a backup is taken.
 */
function runJob(job: SnapshotJob, cancelled: () => boolean): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const slice = (): void => {
      if (cancelled()) {
        job.cancel();
        reject(new StoppedError('the snapshot being taken was abandoned: the node is stopping'));
        return;
      }
      try {
        const until = performance.now() + SLICE_MS;
        let data: Uint8Array | undefined;
        do data = job.step(STEP_UNITS);
        while (data === undefined && performance.now() < until);
        if (data === undefined) setImmediate(slice);
        else resolve(data);
      } catch (e) {
        job.cancel();
        reject(e);
      }
    };
    setImmediate(slice);
  });
}

/** SHA-256 (hex) of `data`, a slice per turn of the event loop. */
function hashInSlices(data: Uint8Array, cancelled: () => boolean): Promise<string> {
  const hash = createHash('sha256');
  return new Promise<string>((resolve, reject) => {
    let at = 0;
    const slice = (): void => {
      if (cancelled()) {
        reject(new StoppedError('the snapshot being hashed was abandoned: the node is stopping'));
        return;
      }
      const end = Math.min(data.length, at + HASH_SLICE_BYTES);
      hash.update(data.subarray(at, end));
      at = end;
      if (at < data.length) setImmediate(slice);
      else resolve(hash.digest('hex'));
    };
    slice();
  });
}
