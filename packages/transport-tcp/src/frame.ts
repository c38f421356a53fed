import { crc32 } from 'node:zlib';
import { FrameError } from './errors';

/**
 * Wire framing. Every frame is a 12-byte header followed by `length` body bytes:
 *
 *   0      magic 0xC5
 *   1      framing version (FRAME_VERSION)
 *   2      type (FrameType)
 *   3      flags (FrameFlag)
 *   4..7   body length, uint32 big-endian, at most maxFrameSize
 *   8..11  CRC-32 of bytes 0..7, so a corrupt or foreign length is caught before anything is buffered
 *
 * The body's meaning depends on the type; most bodies are msgpackr (codec.ts). This file knows nothing about
 * connections: `FrameParser` is fed chunks and returns whole frames.
 */
export const FRAME_MAGIC = 0xc5;
export const FRAME_VERSION = 1;
export const HEADER_SIZE = 12;
/** Hard ceiling on maxFrameSize: a uint32 length, minus headroom. */
export const MAX_FRAME_SIZE_LIMIT = 0x7fff_0000;

export const FrameType = {
  /** Handshake: dialer -> acceptor. */
  Hello: 1,
  /** Handshake: acceptor's HMAC challenge (and its own proof). */
  Challenge: 2,
  /** Handshake: dialer's HMAC proof. */
  Auth: 3,
  /** Handshake accepted. */
  Welcome: 4,
  /** Handshake refused; the body says why, then the connection closes. */
  Reject: 5,
  /** One peer message (the envelope's `msg`; from/to are implied by the connection). */
  Message: 16,
  /** A piece of a message too large for one frame (bulk lane). See FrameFlag.First/Last. */
  Part: 17,
  /** Client request: { id, body }. */
  Request: 32,
  /** Answer to a request: { id, ok | redirect | error }. */
  Response: 33,
  /** The client gave up on a request: { id }. */
  Cancel: 34,
  /**
   * Round-trip probe on a peer connection, dialer -> acceptor: 8 opaque bytes the acceptor echoes in a Pong on
   * the same connection. Sent only to an acceptor whose welcome listed the 'rtt' capability: an older node
   * closes a connection on a frame type it does not know.
   */
  Ping: 18,
  /** The acceptor's echo of a Ping's body. */
  Pong: 19,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export const FrameFlag = {
  /** First piece of a split message; its body starts with [inner type u8][total length u32]. */
  First: 1,
  /** Last piece of a split message. */
  Last: 2,
} as const;

export interface Frame {
  type: FrameType;
  flags: number;
  body: Uint8Array;
}

/** Writes a header for a body of `length` bytes into `target` at `offset`. */
export function writeHeader(target: Uint8Array, offset: number, type: number, flags: number, length: number): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, HEADER_SIZE);
  view.setUint8(0, FRAME_MAGIC);
  view.setUint8(1, FRAME_VERSION);
  view.setUint8(2, type);
  view.setUint8(3, flags);
  view.setUint32(4, length);
  view.setUint32(8, crc32(target.subarray(offset, offset + 8)));
}

/** A fresh buffer holding the header for a body of `length` bytes followed by `extra` spare bytes. */
export function allocHeader(type: number, flags: number, length: number, extra = 0): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + extra);
  writeHeader(buf, 0, type, flags, length);
  return buf;
}

/** One whole frame (header + body) in one buffer; for small bodies. */
export function encodeFrame(type: number, body: Uint8Array, flags = 0): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + body.byteLength);
  writeHeader(buf, 0, type, flags, body.byteLength);
  buf.set(body, HEADER_SIZE);
  return buf;
}

/**
 * Where `FrameParser.feed` hands frames, one at a time, so that what a frame changes (a handshake raising the
 * frame limit, a connection handed to a new owner) applies to the frames behind it in the same chunk.
 */
export interface FrameSink {
  /** A whole frame. Return false to stop parsing after it (the caller keeps the rest of the chunk). */
  frame(frame: Frame): boolean;
  /**
   * A frame body of `length` bytes is about to be buffered (it did not arrive whole in one chunk). Return
   * false to stop before buffering it; the next `feed` asks again.
   */
  reserve?(type: FrameType, length: number): boolean;
}

/**
 * Turns a byte stream into frames. Every byte is looked at once: a header is validated (magic, version,
 * checksum, type, length <= maxFrameSize) before its body is buffered, a body that arrived whole is returned
 * as a view of the chunk, and a body split across chunks is copied once into a buffer of exactly its length.
 * So the partial-frame buffer never exceeds HEADER_SIZE + maxFrameSize and decoding is linear in the input.
 * After a FrameError the stream is unusable (the caller closes the connection).
 */
export class FrameParser {
  private readonly header = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  /** A header was read and its body is not buffered yet (waiting for the whole body, or for `reserve`). */
  private awaiting: number | undefined;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private type: FrameType = FrameType.Message;
  private flags = 0;
  private failed = false;

  /** Raised once a connection is established (handshake frames are small). */
  constructor(public maxFrameSize: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  /** Feeds one chunk; returns the frames it completed, in order. Throws FrameError on bad input. */
  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    this.feed(chunk, {
      frame(f) {
        out.push(f);
        return true;
      },
    });
    return out;
  }

  /**
   * Feeds one chunk, handing each frame to `sink` as soon as it is whole; returns how many bytes of `chunk`
   * were consumed (less than its length only when the sink stopped). Throws FrameError on bad input.
   */
  feed(chunk: Uint8Array, sink: FrameSink): number {
    if (this.failed) throw new FrameError('bad-magic', 'stream already failed');
    let off = 0;
    const end = chunk.byteLength;
    while (off < end) {
      if (this.body !== undefined) {
        const n = Math.min(end - off, this.body.byteLength - this.bodyFill);
        this.body.set(chunk.subarray(off, off + n), this.bodyFill);
        this.bodyFill += n;
        off += n;
        if (this.bodyFill === this.body.byteLength) {
          const frame = { type: this.type, flags: this.flags, body: this.body };
          this.body = undefined;
          this.bodyFill = 0;
          if (!sink.frame(frame)) return off;
        }
        continue;
      }
      const length = this.awaiting;
      if (length !== undefined) {
        if (end - off >= length) {
          this.awaiting = undefined;
          const frame = { type: this.type, flags: this.flags, body: chunk.subarray(off, off + length) };
          off += length;
          if (!sink.frame(frame)) return off;
          continue;
        }
        if (sink.reserve !== undefined && !sink.reserve(this.type, length)) return off;
        this.awaiting = undefined;
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
        continue;
      }
      if (this.headerFill === 0 && end - off >= HEADER_SIZE) {
        this.awaiting = this.readHeader(chunk, off);
        off += HEADER_SIZE;
      } else {
        const n = Math.min(end - off, HEADER_SIZE - this.headerFill);
        this.header.set(chunk.subarray(off, off + n), this.headerFill);
        this.headerFill += n;
        off += n;
        if (this.headerFill < HEADER_SIZE) break;
        this.headerFill = 0;
        this.awaiting = this.readHeader(this.header, 0);
      }
      // An empty body is complete with its header, even at the end of a chunk.
      if (this.awaiting === 0) {
        this.awaiting = undefined;
        if (!sink.frame({ type: this.type, flags: this.flags, body: chunk.subarray(off, off) })) return off;
      }
    }
    return off;
  }

  private readHeader(src: Uint8Array, off: number): number {
    const view = new DataView(src.buffer, src.byteOffset + off, HEADER_SIZE);
    try {
      if (view.getUint8(0) !== FRAME_MAGIC) throw new FrameError('bad-magic', `expected 0x${FRAME_MAGIC.toString(16)}, got 0x${view.getUint8(0).toString(16)}`);
      if (view.getUint32(8) !== crc32(src.subarray(off, off + 8))) throw new FrameError('bad-checksum', 'header checksum mismatch');
      if (view.getUint8(1) !== FRAME_VERSION) throw new FrameError('bad-version', `framing version ${view.getUint8(1)} is not supported (this node speaks ${FRAME_VERSION})`);
      const type = view.getUint8(2);
      if (!KNOWN_TYPES.has(type)) throw new FrameError('unknown-type', `unknown frame type ${type}`);
      const length = view.getUint32(4);
      if (length > this.maxFrameSize) throw new FrameError('too-large', `frame of ${length} bytes exceeds maxFrameSize ${this.maxFrameSize}`);
      this.type = type as FrameType;
      this.flags = view.getUint8(3);
      return length;
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }
}
