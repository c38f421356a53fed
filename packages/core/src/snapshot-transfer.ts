import { InvalidArgumentError } from './errors';
import { assertNonNegativeInteger, assertPositiveInteger, preview } from './validate';

/**
 * Chunked snapshot transfer with resume, protocol-neutral and pure (no I/O, no timers: progress is driven by the
 * protocol's own ticks and heartbeats).
 *
 * The model is Raft's InstallSnapshot (Ongaro's thesis, section 5.3 and Figure 5.3): the snapshot is sent in
 * chunks at increasing byte offsets, the receiver writes each chunk at its offset and installs the snapshot once
 * the last one arrives. As in etcd's snapshot streaming, the sender keeps a window of unacknowledged chunks in
 * flight, and after a loss it resumes from the offset the receiver says it holds rather than from zero
 * (a departure from Figure 5.3, which restarts a transfer at offset 0 on any gap).
 *
 * A snapshot is identified by (index, term): the log position it replaces. The protocol wraps each
 * `SnapshotChunk` in its own message (adding whatever metadata it needs, e.g. the configuration) and hands each
 * `SnapshotChunkAck` back to the sender.
 */

/** Which snapshot: the last log position it covers. */
export interface SnapshotTransferId {
  index: number;
  term: number;
}

/** One chunk: bytes [offset, offset + data.length) of a snapshot of `total` bytes. */
export interface SnapshotChunk extends SnapshotTransferId {
  /** The whole snapshot's size in bytes: the receiver allocates it on the first chunk and refuses bytes past it. */
  total: number;
  offset: number;
  data: Uint8Array;
  /**
   * The sender's generation (a leader's term or ballot, 0 when the protocol has none): a transfer from a higher
   * epoch replaces one from a lower epoch at the receiver, and chunks of a lower epoch than the one held are stale.
   */
  epoch: number;
}

/** The receiver's answer: the bytes it holds of snapshot (index, term), from offset 0 on. */
export interface SnapshotChunkAck extends SnapshotTransferId {
  /** Bytes held, all of them in order: the sender resumes here. `total` means the snapshot arrived whole. */
  offset: number;
  /** A chunk past `offset` arrived (an earlier one was lost or reordered): resend from `offset`. */
  gap: boolean;
}

export interface SnapshotSenderOptions {
  /** Bytes per chunk. Default 1 MiB (`DEFAULT_SNAPSHOT_CHUNK_BYTES`). */
  chunkBytes?: number;
  /** Chunks in flight unacknowledged. Default 4. */
  windowChunks?: number;
  /** Ticks without an acknowledgement that advances before resending from the last acknowledged byte. Default 2. */
  stallTicks?: number;
}

export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1 << 20;
const DEFAULT_WINDOW_CHUNKS = 4;
const DEFAULT_STALL_TICKS = 2;

const sameId = (a: SnapshotTransferId, b: SnapshotTransferId) => a.index === b.index && a.term === b.term;

/**
 * The sending side for one peer. `start` names the snapshot to send (calling it again with the same snapshot
 * keeps the progress; with another, the transfer restarts from 0); `pending`, `onAck` and `tick` return the chunks
 * to send now, at most `windowChunks` unacknowledged.
 */
export class SnapshotSender {
  readonly chunkBytes: number;
  readonly windowChunks: number;
  readonly stallTicks: number;
  private snap: (SnapshotTransferId & { data: Uint8Array; epoch: number }) | undefined;
  /** Next byte to send; bytes below `acked` are held by the receiver. acked <= sent <= total. */
  private sent = 0;
  private acked = 0;
  /** The chunk at `total` was sent (it matters for an empty snapshot, whose only chunk is empty). */
  private doneSent = false;
  private complete = false;
  private progressed = false;
  private stall = 0;
  /** The gap offset already rewound to: each chunk after a gap reports it, one rewind per gap is enough. */
  private rewound = -1;

  constructor(options: SnapshotSenderOptions = {}) {
    const chunk = options.chunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    const window = options.windowChunks ?? DEFAULT_WINDOW_CHUNKS;
    const stall = options.stallTicks ?? DEFAULT_STALL_TICKS;
    assertPositiveInteger(chunk, 'snapshot chunkBytes');
    assertPositiveInteger(window, 'snapshot windowChunks');
    assertPositiveInteger(stall, 'snapshot stallTicks');
    this.chunkBytes = chunk;
    this.windowChunks = window;
    this.stallTicks = stall;
  }

  /** The snapshot being sent, if any. */
  get current(): SnapshotTransferId | undefined {
    return this.snap === undefined ? undefined : { index: this.snap.index, term: this.snap.term };
  }

  /** The receiver acknowledged every byte. */
  get done(): boolean {
    return this.complete;
  }

  /** Bytes the receiver acknowledged so far. */
  get acknowledged(): number {
    return this.acked;
  }

  /**
   * Sends snapshot `id` (`data` is held, not copied: it must not change). The same snapshot again keeps the
   * progress (the epoch may rise, e.g. a new leader sending the snapshot its predecessor started); another one
   * restarts the transfer from offset 0. Returns the chunks to send now.
   */
  start(id: SnapshotTransferId, data: Uint8Array, epoch = 0): SnapshotChunk[] {
    assertNonNegativeInteger(id.index, 'snapshot index');
    assertNonNegativeInteger(id.term, 'snapshot term');
    assertNonNegativeInteger(epoch, 'snapshot epoch');
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError(`snapshot data must be a Uint8Array, got ${preview(data)}`);
    if (this.snap !== undefined && sameId(this.snap, id) && this.snap.data.length === data.length) {
      this.snap = { index: id.index, term: id.term, data, epoch: Math.max(epoch, this.snap.epoch) };
      return this.pending();
    }
    this.snap = { index: id.index, term: id.term, data, epoch };
    this.sent = 0;
    this.acked = 0;
    this.doneSent = false;
    this.complete = false;
    this.progressed = false;
    this.stall = 0;
    this.rewound = -1;
    return this.pending();
  }

  /** Forgets the transfer (e.g. the peer caught up some other way). */
  stop(): void {
    this.snap = undefined;
    this.complete = false;
  }

  /** The chunks that fit in the window now. */
  pending(): SnapshotChunk[] {
    const s = this.snap;
    if (s === undefined || this.complete) return [];
    const total = s.data.length;
    const out: SnapshotChunk[] = [];
    const window = this.chunkBytes * this.windowChunks;
    while (!this.doneSent && this.sent - this.acked < window) {
      const end = Math.min(total, this.sent + this.chunkBytes);
      out.push({ index: s.index, term: s.term, total, offset: this.sent, data: s.data.subarray(this.sent, end), epoch: s.epoch });
      this.sent = end;
      if (end === total) this.doneSent = true;
    }
    return out;
  }

  /**
   * The receiver's answer. An offset above what was sent is honoured too: the receiver kept the bytes of an
   * earlier transfer of the same snapshot (this sender restarted), so the transfer resumes there. An answer for
   * another snapshot, or one past the end, is ignored. Returns the chunks to send now.
   */
  onAck(ack: SnapshotChunkAck): SnapshotChunk[] {
    const s = this.snap;
    if (s === undefined || this.complete || !sameId(s, ack) || !Number.isSafeInteger(ack.offset) || ack.offset < 0) return [];
    const total = s.data.length;
    if (ack.offset > total) return [];
    if (ack.offset === total) {
      this.acked = this.sent = total;
      this.complete = true;
      return [];
    }
    if (ack.offset > this.acked) {
      this.acked = ack.offset;
      this.progressed = true;
      this.rewound = -1;
      if (ack.offset > this.sent) {
        this.sent = ack.offset;
        this.doneSent = false;
      }
    }
    if (ack.gap && ack.offset < this.sent && ack.offset !== this.rewound) {
      this.acked = ack.offset;
      this.sent = ack.offset;
      this.doneSent = false;
      this.rewound = ack.offset;
    }
    return this.pending();
  }

  /**
   * One protocol tick (or heartbeat round). After `stallTicks` of them without an acknowledgement that advanced,
   * a chunk or its answer was lost: resend from the last acknowledged byte. Returns the chunks to send now.
   */
  tick(): SnapshotChunk[] {
    if (this.snap === undefined || this.complete) return [];
    if (this.progressed) {
      this.progressed = false;
      this.stall = 0;
    } else if (++this.stall >= this.stallTicks) {
      this.stall = 0;
      this.sent = this.acked;
      this.doneSent = false;
      this.rewound = -1;
    }
    return this.pending();
  }
}

export interface SnapshotReceiverOptions {
  /** The largest snapshot accepted, in bytes; a first chunk declaring more is refused. Default 2^32 - 1. */
  maxBytes?: number;
}

/** What `SnapshotReceiver.receive` made of a chunk. */
export type SnapshotReceiveResult =
  /** The chunk was taken (or was a duplicate, or left a gap): send `ack` back. */
  | { kind: 'ack'; ack: SnapshotChunkAck }
  /** The last byte arrived: `data` is the whole snapshot, handed over once; send `ack` back. */
  | { kind: 'complete'; ack: SnapshotChunkAck; data: Uint8Array }
  /** A chunk of an older transfer than the one held: nothing to answer. */
  | { kind: 'stale' }
  /** A malformed chunk (bytes past its declared size, a size over the limit, ill-typed fields): ignore it. */
  | { kind: 'refused'; reason: string };

interface Incoming extends SnapshotTransferId {
  epoch: number;
  buf: Uint8Array;
  /** Bytes [0, received) are in place. */
  received: number;
}

/** Orders transfers: a higher epoch first, then a later snapshot. */
function newer(a: SnapshotTransferId & { epoch: number }, b: SnapshotTransferId & { epoch: number }): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.index !== b.index) return a.index > b.index;
  return a.term > b.term;
}

const isUint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * The receiving side: assembles one snapshot's chunks in order (Figure 5.3 rules 2-5, written at their offset) and
 * answers every chunk with the offset it holds, so the sender resumes there.
 */
export class SnapshotReceiver {
  readonly maxBytes: number;
  private inc: Incoming | undefined;
  /** The last snapshot handed over: a late duplicate of its chunks is answered "all held", not restarted. */
  private last: (SnapshotTransferId & { total: number }) | undefined;

  constructor(options: SnapshotReceiverOptions = {}) {
    const max = options.maxBytes ?? 0xffffffff;
    assertPositiveInteger(max, 'snapshot maxBytes');
    this.maxBytes = max;
  }

  /** The snapshot being assembled and the bytes held, if any. */
  get holding(): (SnapshotTransferId & { received: number; total: number }) | undefined {
    const i = this.inc;
    return i === undefined ? undefined : { index: i.index, term: i.term, received: i.received, total: i.buf.length };
  }

  /** Drops the partial snapshot and the memory of the last one completed (e.g. it could not be installed). */
  reset(): void {
    this.inc = undefined;
    this.last = undefined;
  }

  receive(c: SnapshotChunk): SnapshotReceiveResult {
    if (typeof c !== 'object' || c === null) return { kind: 'refused', reason: 'not a chunk' };
    if (!isUint(c.index) || !isUint(c.term) || !isUint(c.total) || !isUint(c.offset) || !isUint(c.epoch)) {
      return { kind: 'refused', reason: 'index, term, total, offset and epoch must be non-negative integers' };
    }
    if (!(c.data instanceof Uint8Array)) return { kind: 'refused', reason: 'chunk data must be bytes' };
    if (c.total > this.maxBytes) return { kind: 'refused', reason: `snapshot of ${c.total} bytes over the ${this.maxBytes}-byte limit` };
    if (c.offset + c.data.length > c.total) {
      return { kind: 'refused', reason: `chunk [${c.offset}, ${c.offset + c.data.length}) past the declared size ${c.total}` };
    }
    const id = { index: c.index, term: c.term };
    const l = this.last;
    if (this.inc === undefined && l !== undefined && sameId(l, c) && l.total === c.total) {
      return { kind: 'ack', ack: { ...id, offset: c.total, gap: false } };
    }
    let inc = this.inc;
    if (inc !== undefined && !(sameId(inc, c) && inc.buf.length === c.total)) {
      if (!newer(c, inc)) return { kind: 'stale' };
      // A newer transfer: it replaces ours once its first chunk arrives (until then, ours may still finish).
      if (c.offset !== 0) return { kind: 'ack', ack: { ...id, offset: 0, gap: true } };
      inc = undefined;
    }
    if (inc === undefined) {
      if (c.offset !== 0) return { kind: 'ack', ack: { ...id, offset: 0, gap: true } };
      let buf: Uint8Array;
      try {
        buf = new Uint8Array(c.total);
      } catch {
        return { kind: 'refused', reason: `cannot allocate ${c.total} bytes` };
      }
      inc = { index: c.index, term: c.term, epoch: c.epoch, buf, received: 0 };
      this.inc = inc;
    } else if (c.epoch > inc.epoch) {
      inc.epoch = c.epoch; // the same snapshot from a newer sender: keep the bytes, resume
    }
    if (c.offset > inc.received) return { kind: 'ack', ack: { ...id, offset: inc.received, gap: true } };
    const end = c.offset + c.data.length;
    // A chunk overlapping the held bytes (a resumed sender may cut chunks elsewhere): take only its new tail.
    if (end > inc.received) {
      inc.buf.set(c.data.subarray(inc.received - c.offset), inc.received);
      inc.received = end;
    }
    if (inc.received < inc.buf.length) return { kind: 'ack', ack: { ...id, offset: inc.received, gap: false } };
    this.inc = undefined;
    this.last = { index: inc.index, term: inc.term, total: inc.buf.length };
    return { kind: 'complete', ack: { ...id, offset: inc.buf.length, gap: false }, data: inc.buf };
  }
}
