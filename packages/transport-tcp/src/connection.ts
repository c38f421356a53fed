import type { Socket } from 'node:net';
import { MalformedMessageError, TransportError } from '@consensus-kit/core';
import { FrameError } from './errors';
import { FrameFlag, FrameParser, FrameType, HEADER_SIZE, allocHeader, encodeFrame, type Frame, type FrameSink } from './frame';
import type { InboundBudget } from './inbound-budget';

/**
 * One framed connection: a socket, a FrameParser for what comes in, and two outbound lanes.
 *
 * - The control lane carries whole frames (handshake, peer messages, requests and responses up to `partSize`).
 * - The bulk lane carries messages larger than `partSize`, split into Part frames of at most `partSize`
 *   bytes. The writer sends every queued control frame before each bulk part, and a bulk part is only written
 *   once the socket has drained, so a heartbeat queued behind a 16 MiB snapshot chunk waits for at most one
 *   part (plus what the kernel already holds), never for the whole chunk.
 *
 * Outbound queues are bounded in bytes (including what the socket itself buffers) and in messages; `send`
 * refuses what does not fit instead of growing the heap. The writer corks the socket, writes everything it
 * may, and uncorks, so many small frames leave in one write; after `write()` returns false nothing more is
 * written until 'drain'.
 */
export interface ConnectionLimits {
  /** Largest frame body accepted or sent (default 1 MiB). */
  maxFrameSize: number;
  /** Largest message (after encoding) accepted or sent; larger ones are split into parts (default 32 MiB). */
  maxMessageSize: number;
  /** Size of the pieces large messages are split into (default 64 KiB). */
  partSize: number;
  /** Outbound bytes queued in this connection, socket buffer included (default 48 MiB). */
  maxQueueBytes: number;
  /** Outbound messages queued in this connection (default 4096). */
  maxQueueMessages: number;
  /**
   * A connection whose socket has not drained for this long while data waits is dead or stuck (a peer that
   * stopped reading, a half-open TCP connection): it is closed so the link can reconnect (default 10 s).
   */
  stallTimeoutMs: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxFrameSize: 1024 * 1024,
  maxMessageSize: 32 * 1024 * 1024,
  partSize: 64 * 1024,
  maxQueueBytes: 48 * 1024 * 1024,
  maxQueueMessages: 4096,
  stallTimeoutMs: 10_000,
};

/** Largest frame accepted before the handshake completes. */
export const HANDSHAKE_FRAME_LIMIT = 4096;

/** Small frames are concatenated into writes of at most this many bytes. */
const COALESCE_BYTES = 64 * 1024;

export type SendResult = 'queued' | 'full' | 'too-large' | 'closed';

export interface ConnectionEvents {
  /** A whole inbound message: a frame, or a reassembled large message (`own` is then true). */
  message(type: FrameType, body: Uint8Array, own: boolean): void;
  /** The connection closed; `error` says why when it was not a clean local close. */
  close(error: Error | undefined): void;
}

interface BulkItem {
  type: FrameType;
  bytes: Uint8Array;
  offset: number;
}

interface Reassembly {
  type: FrameType;
  buf: Buffer;
  fill: number;
}

export class FramedConnection {
  private readonly parser: FrameParser;
  private control: Buffer[] = [];
  private bulk: BulkItem[] = [];
  private queuedBytes = 0;
  private queuedMessages = 0;
  private waitingDrain = false;
  private pumpScheduled = false;
  private reassembly: Reassembly | undefined;
  private closed = false;
  /** The owner asked to stop reading (`pause()`). */
  private paused = false;
  private established = false;
  /**
   * The handshake finished and the connection waits for its new owner (`setEvents`): frames behind the
   * handshake in the same chunk (a request written together with the hello) wait for it instead of being
   * handed to the handshake, which would drop them.
   */
  private holding = false;
  /** Received bytes not parsed yet, because the connection is holding or waits for budget. */
  private stash: Uint8Array | undefined;
  /** A first part whose reassembly waits for budget. */
  private blocked: Frame | undefined;
  /** Set while waiting for budget: cancels the wait. */
  private budgetWait: (() => void) | undefined;
  private budget: InboundBudget | undefined;
  /** Budget bytes held for the frame body being buffered. */
  private frameHeld = 0;
  /** Budget bytes held for the split message being reassembled (its length plus room for one frame). */
  private reassemblyHeld = 0;
  private readonly sink: FrameSink;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Messages delivered to `events.message` since the connection opened. */
  received = 0;
  /** Bytes read from the socket since the connection opened. */
  bytesReceived = 0;
  /**
   * Set by the connection's owner while it has nothing in flight: since when (performance.now()) and
   * `bytesReceived` at that moment (a later byte means the other side is sending again).
   */
  idle: { since: number; bytes: number } | undefined;

  constructor(
    readonly socket: Socket,
    readonly limits: ConnectionLimits,
    private events: ConnectionEvents,
  ) {
    // Until the handshake is done, frames are small and split messages are refused: an unauthenticated
    // connection cannot make this node buffer more than HANDSHAKE_FRAME_LIMIT bytes.
    this.parser = new FrameParser(Math.min(HANDSHAKE_FRAME_LIMIT, limits.maxFrameSize));
    this.sink = {
      frame: (frame) => {
        const held = this.frameHeld;
        this.frameHeld = 0;
        this.dispatch(frame);
        if (held > 0) this.budget?.release(held);
        return !this.closed && !this.holding && this.budgetWait === undefined;
      },
      reserve: (_type, length) => {
        // Unaccounted: no budget (peers, handshakes), or this very body was granted while we waited, or a
        // split message is being reassembled (its reservation has room for one frame beside it).
        if (this.budget === undefined || this.frameHeld > 0 || this.reassembly !== undefined) return true;
        return this.take(length, (n) => (this.frameHeld = n));
      },
    };
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.waitingDrain = false;
      if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
      this.pump();
    });
    socket.on('error', (err) => this.destroy(new TransportError(`socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.destroy(new TransportError('connection closed by the remote side')));
    socket.on('end', () => socket.end());
  }

  /** The handshake succeeded: full-size frames and split messages are accepted from now on. */
  establish(): void {
    this.established = true;
    this.parser.maxFrameSize = this.limits.maxFrameSize;
  }

  /**
   * Stops handing frames on until the next `setEvents` (the connection's new owner), which then gets
   * whatever arrived meanwhile, in order. For a handshake that is done while more frames may follow in the
   * same chunk (a request written together with the hello).
   */
  hold(): void {
    this.holding = true;
  }

  /** Replaces the event sink (a handshake hands the connection over to a session) and resumes a held one. */
  setEvents(events: ConnectionEvents): void {
    this.events = events;
    if (this.holding) {
      this.holding = false;
      this.continueInput();
    }
  }

  /**
   * Counts what this connection buffers of inbound frames against a node-wide budget (client connections);
   * when the budget is spent, the connection stops reading until bytes are released.
   */
  setBudget(budget: InboundBudget): void {
    this.budget = budget;
  }

  /** True while this side holds input back (waiting for budget or for the connection's new owner). */
  get heldBack(): boolean {
    return this.holding || this.stash !== undefined || this.blocked !== undefined || this.budgetWait !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Outbound bytes waiting (ours and the socket's). */
  get pendingBytes(): number {
    return this.queuedBytes + (this.closed ? 0 : this.socket.writableLength);
  }

  get pendingMessages(): number {
    return this.queuedMessages;
  }

  /** Queues an already-encoded message body; large ones go to the bulk lane in parts. */
  send(type: FrameType, body: Uint8Array): SendResult {
    if (this.closed) return 'closed';
    const size = body.byteLength;
    if (size > this.limits.maxMessageSize) return 'too-large';
    if (this.queuedMessages + 1 > this.limits.maxQueueMessages) return 'full';
    if (this.queuedBytes + this.socket.writableLength + size + HEADER_SIZE > this.limits.maxQueueBytes) return 'full';
    if (size <= this.limits.partSize) {
      this.control.push(encodeFrame(type, body));
    } else {
      this.bulk.push({ type, bytes: body, offset: 0 });
    }
    this.queuedBytes += size + HEADER_SIZE;
    this.queuedMessages++;
    this.schedulePump();
    return 'queued';
  }

  /** Sends a small frame right away, ahead of anything queued (handshake and protocol control). */
  sendNow(type: FrameType, body: Uint8Array): void {
    if (this.closed) return;
    this.control.unshift(encodeFrame(type, body));
    this.queuedBytes += body.byteLength + HEADER_SIZE;
    this.queuedMessages++;
    this.pump();
  }

  /**
   * Writes what is queued now instead of at the end of this turn. For a caller that knows it has handed over
   * everything it will send for a while: the frames then leave before whatever work the caller does next.
   */
  flush(): void {
    if (this.control.length > 0 || this.bulk.length > 0) this.pump();
  }

  /** Stops reading (backpressure for a busy consumer) until `resume()`. */
  pause(): void {
    if (this.paused || this.closed) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.updateReading();
  }

  /** Reads from the socket only when nobody (owner, handover, budget) holds input back. */
  private updateReading(): void {
    if (this.closed) return;
    if (this.paused || this.holding || this.budgetWait !== undefined || this.stash !== undefined || this.blocked !== undefined) this.socket.pause();
    else this.socket.resume();
  }

  /**
   * Reserves `bytes` of the budget; false when they must be waited for (reading stops; when they are granted,
   * `assign` records them and parsing continues where it stopped).
   */
  private take(bytes: number, assign: (bytes: number) => void): boolean {
    const r = this.budget!.reserve(bytes, () => {
      this.budgetWait = undefined;
      if (this.closed) {
        this.budget?.release(bytes);
        return;
      }
      assign(bytes);
      // On a later microtask: the grant comes from inside another connection's release.
      queueMicrotask(() => this.continueInput());
    });
    if (r.ok) {
      assign(bytes);
      return true;
    }
    this.budgetWait = r.cancel;
    this.socket.pause();
    return false;
  }

  /** Parses what was held back (a blocked first part, then stashed bytes) once nothing holds it any more. */
  private continueInput(): void {
    if (this.closed || this.holding || this.budgetWait !== undefined) return;
    const blocked = this.blocked;
    if (blocked !== undefined) {
      this.blocked = undefined;
      this.dispatch(blocked);
      if (this.closed || this.holding || this.budgetWait !== undefined) return;
    }
    const stash = this.stash;
    if (stash !== undefined) {
      this.stash = undefined;
      this.parse(stash);
      return;
    }
    this.updateReading();
  }

  /** Flushes what is queued, then closes the socket. */
  end(): void {
    if (this.closed) return;
    this.pump();
    this.closed = true;
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.control = [];
    this.bulk = [];
    this.releaseBudget();
    this.socket.end();
    this.socket.setTimeout(2000, () => this.socket.destroy());
    this.events.close(undefined);
  }

  /** Closes at once, dropping what is queued. `error` is reported to the close handler. */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.control = [];
    this.bulk = [];
    this.queuedBytes = 0;
    this.queuedMessages = 0;
    this.reassembly = undefined;
    this.releaseBudget();
    this.socket.destroy();
    this.events.close(error);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // One flush per turn of the event loop (unless `flush()` comes first): everything sent in this turn
    // leaves in one corked write.
    process.nextTick(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed || this.waitingDrain) return;
    const socket = this.socket;
    socket.cork();
    try {
      while (!this.waitingDrain && !this.closed) {
        if (this.control.length > 0) {
          // Coalesce small frames into writes of up to COALESCE_BYTES: one syscall for many heartbeats.
          const frames = this.control;
          let i = 0;
          while (i < frames.length && !this.waitingDrain) {
            let j = i;
            let bytes = 0;
            while (j < frames.length && (j === i || bytes + frames[j]!.byteLength <= COALESCE_BYTES)) bytes += frames[j++]!.byteLength;
            const chunk = j - i === 1 ? frames[i]! : Buffer.concat(frames.slice(i, j), bytes);
            this.queuedBytes -= bytes;
            this.queuedMessages -= j - i;
            i = j;
            if (!socket.write(chunk)) this.waitingDrain = true;
          }
          this.control = i < frames.length ? frames.slice(i) : [];
          continue;
        }
        const item = this.bulk[0];
        if (item === undefined) break;
        // Control frames queued while this part drains go before the next part.
        if (!this.writePart(item)) this.waitingDrain = true;
      }
    } finally {
      socket.uncork();
    }
    if (this.waitingDrain && this.stallTimer === undefined && !this.closed) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = undefined;
        if (this.waitingDrain) this.destroy(new TransportError(`the other side read nothing for ${this.limits.stallTimeoutMs} ms`));
      }, this.limits.stallTimeoutMs);
      this.stallTimer.unref();
    }
  }

  /** Writes the next part of `item`; returns what `write()` returned. */
  private writePart(item: BulkItem): boolean {
    const partSize = this.limits.partSize;
    const total = item.bytes.byteLength;
    const first = item.offset === 0;
    const n = Math.min(partSize - (first ? 5 : 0), total - item.offset);
    const last = item.offset + n === total;
    const flags = (first ? FrameFlag.First : 0) | (last ? FrameFlag.Last : 0);
    const header = allocHeader(FrameType.Part, flags, n + (first ? 5 : 0), first ? 5 : 0);
    if (first) {
      header.writeUInt8(item.type, HEADER_SIZE);
      header.writeUInt32BE(total, HEADER_SIZE + 1);
    }
    this.socket.write(header);
    const ok = this.socket.write(item.bytes.subarray(item.offset, item.offset + n));
    item.offset += n;
    this.queuedBytes -= n + (first ? HEADER_SIZE : 0);
    if (last) {
      this.bulk.shift();
      this.queuedMessages--;
    }
    return ok;
  }

  private releaseBudget(): void {
    this.budgetWait?.();
    this.budgetWait = undefined;
    this.stash = undefined;
    this.blocked = undefined;
    const held = this.frameHeld + this.reassemblyHeld;
    this.frameHeld = 0;
    this.reassemblyHeld = 0;
    if (held > 0) this.budget?.release(held);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.bytesReceived += chunk.byteLength;
    if (this.stash !== undefined || this.holding || this.budgetWait !== undefined || this.blocked !== undefined) {
      // Read before the pause took effect: kept, in order, behind what is already held back.
      this.stash = this.stash === undefined ? chunk : Buffer.concat([this.stash, chunk]);
      this.socket.pause();
      return;
    }
    this.parse(chunk);
  }

  /** Parses `chunk` frame by frame; keeps what is left when the sink stops (handover, budget). */
  private parse(chunk: Uint8Array): void {
    let off: number;
    try {
      off = this.parser.feed(chunk, this.sink);
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    if (this.closed) return;
    if (off < chunk.byteLength) this.stash = chunk.subarray(off);
    this.updateReading();
  }

  /** Hands one frame on: parts to reassembly, anything else to `events.message`. */
  private dispatch(frame: Frame): void {
    if (this.closed) return;
    try {
      if (frame.type === FrameType.Part) this.onPart(frame);
      else {
        this.received++;
        this.events.message(frame.type, frame.body, false);
      }
    } catch (e) {
      this.destroy(e instanceof Error ? e : new MalformedMessageError(String(e)));
    }
  }

  private onPart(frame: Frame): void {
    let body = frame.body;
    if (!this.established) throw new FrameError('bad-part', 'split messages are not allowed before the handshake');
    if ((frame.flags & FrameFlag.First) !== 0) {
      if (this.reassembly !== undefined) throw new FrameError('bad-part', 'a new split message started before the previous one ended');
      if (body.byteLength < 5) throw new FrameError('bad-part', 'first part is shorter than its prefix');
      const view = new DataView(body.buffer, body.byteOffset, 5);
      const type = view.getUint8(0);
      const total = view.getUint32(1);
      if (type !== FrameType.Message && type !== FrameType.Request && type !== FrameType.Response) {
        throw new FrameError('bad-part', `split message of type ${type} is not allowed`);
      }
      if (total > this.limits.maxMessageSize) throw new FrameError('too-large', `split message of ${total} bytes exceeds maxMessageSize ${this.limits.maxMessageSize}`);
      if (total <= this.limits.partSize) throw new FrameError('bad-part', `split message of ${total} bytes would fit one frame`);
      // The whole message is reserved before anything is allocated for it (an announced length costs the
      // sender nothing), with room for one frame interleaved with its parts, so that this connection never
      // waits for budget while it holds some. Without budget, the part waits and the socket is not read.
      if (this.budget !== undefined && this.reassemblyHeld === 0 && !this.take(total + this.limits.maxFrameSize, (n) => (this.reassemblyHeld = n))) {
        this.blocked = frame;
        return;
      }
      this.reassembly = { type: type as FrameType, buf: Buffer.allocUnsafe(total), fill: 0 };
      body = body.subarray(5);
    }
    const r = this.reassembly;
    if (r === undefined) throw new FrameError('bad-part', 'part without a first part');
    if (r.fill + body.byteLength > r.buf.byteLength) throw new FrameError('bad-part', 'parts exceed the announced length');
    r.buf.set(body, r.fill);
    r.fill += body.byteLength;
    if ((frame.flags & FrameFlag.Last) !== 0) {
      if (r.fill !== r.buf.byteLength) throw new FrameError('bad-part', 'last part arrived before the announced length');
      this.reassembly = undefined;
      this.received++;
      this.events.message(r.type, r.buf, true);
      const held = this.reassemblyHeld;
      this.reassemblyHeld = 0;
      if (held > 0) this.budget?.release(held);
    }
  }
}
