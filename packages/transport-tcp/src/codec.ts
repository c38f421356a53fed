import { MalformedMessageError } from '@consensus-kit/core';
import { Packr, Unpackr } from 'msgpackr';

/**
 * Message bodies are msgpackr, as plain maps: no record extension, no `structures` shared across messages,
 * no `sequential` mode, so every frame is self-describing and a dropped frame, a dropped connection or a
 * reconnect can never leave the two ends with different structure tables. Decoders are created per
 * connection all the same (`createCodec`), so nothing a decoder holds can outlive its connection. Decoders
 * still accept records, so a peer that sends them is understood.
 *
 * Departures from the obvious design:
 * - Records defined inside each message make an AppendEntries of 20 entries about 7% smaller for the same
 *   encode and decode time, but every small message (responses, heartbeats, client requests) took about
 *   twice as long to encode and decode (measured on the 2-core CI-sized machine): on loopback and LAN links
 *   CPU is the scarcer resource.
 * - msgpackr's `sequential` mode (structures carried from one message to the next) would shrink a heartbeat
 *   from ~33 to ~5 bytes, but then any message dropped after encoding (a full queue, a fault, a cut
 *   connection) desynchronises the peer's decoder, and a large message sent on the bulk lane would be decoded
 *   after small messages encoded later. Self-describing frames keep drops and lanes safe.
 */

/** Above this size a Packr is replaced after encoding, so it does not keep a large scratch buffer alive. */
const RETAIN_LIMIT = 256 * 1024;

export interface Codec {
  /** Encodes `value`; the result is never overwritten by later calls. Throws MalformedMessageError. */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes one whole body. `own` says the body is a buffer dedicated to this message (a reassembled large
   * message), so binary fields may be views of it. Otherwise a body of 4 KiB or more is first copied whole
   * into a buffer of its own (its binary fields are views of that copy), and a smaller one has its binary
   * fields copied: a `Uint8Array` in a delivered message never pins a socket read buffer. Throws
   * MalformedMessageError.
   */
  decode(body: Uint8Array, own?: boolean): unknown;
}

const SLACK = 64 * 1024;

/**
 * Bytes of binary data found in the first `budget` nodes of `value` (breadth-first). A hint, not a size:
 * binaries buried deeper are missed, which only costs msgpackr's own buffer growth.
 */
export function binaryBytes(value: unknown, budget = 64): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value !== 'object' || value === null) return 0;
  // One queue for every call (this runs for each message encoded, and never re-enters): no array per message.
  // Its length is never reset (that would free its storage); the slots used are cleared instead, so nothing
  // scanned stays referenced.
  const queue = SCAN_QUEUE;
  queue[0] = value;
  let n = 1;
  let total = 0;
  const cap = budget * 4;
  try {
    for (let i = 0; i < n && i < budget; i++) {
      const v = queue[i];
      if (v instanceof Uint8Array) total += v.byteLength;
      else if (Array.isArray(v)) {
        for (let j = 0; j < v.length && n < cap; j++) {
          const x: unknown = v[j];
          if (typeof x === 'object' && x !== null) queue[n++] = x;
        }
      } else if (typeof v === 'object' && v !== null) {
        for (const k in v) {
          if (n >= cap) break;
          const x = (v as Record<string, unknown>)[k];
          if (typeof x === 'object' && x !== null) queue[n++] = x;
        }
      }
    }
  } finally {
    for (let i = 0; i < n; i++) queue[i] = undefined; // also when a getter threw: the next call starts clean
  }
  return total;
}

const SCAN_QUEUE: unknown[] = [];

const PACK_OPTIONS = { useRecords: false, moreTypes: false } as const;

/** Bodies at least this large are copied whole before decoding (see `decode`). */
const OWN_COPY_BYTES = 4096;

export function createCodec(): Codec {
  let packr = new Packr(PACK_OPTIONS);
  const copying = new Unpackr({ useRecords: true, mapsAsObjects: true, copyBuffers: true });
  const viewing = new Unpackr({ useRecords: true, mapsAsObjects: true, copyBuffers: false });
  return {
    encode(value) {
      let out: Uint8Array;
      try {
        const hint = binaryBytes(value);
        if (hint > RETAIN_LIMIT) {
          // msgpackr grows its buffer 2-4x when a message outgrows it; size it up front for big binaries
          // (snapshot chunks) so that encoding costs one copy of the payload, not three.
          const sized = new Packr(PACK_OPTIONS);
          sized.useBuffer(Buffer.allocUnsafe(hint + SLACK));
          out = sized.pack(value);
          return out;
        }
        out = packr.pack(value);
      } catch (e) {
        packr = new Packr(PACK_OPTIONS);
        throw new MalformedMessageError('message cannot be encoded with msgpackr', { cause: e });
      }
      if (out.byteLength > RETAIN_LIMIT) packr = new Packr(PACK_OPTIONS);
      return out;
    },
    decode(body, own = false) {
      if (body.byteLength === 0) throw new MalformedMessageError('empty message body');
      try {
        if (own) return viewing.unpack(body);
        // A large body (an AppendEntries batch) is copied once into a buffer of its own and its binary fields
        // become views of that copy: one allocation instead of one per entry. A small body is decoded with
        // copies, so its few bytes never pin the socket's read buffer.
        if (body.byteLength >= OWN_COPY_BYTES) return viewing.unpack(Uint8Array.prototype.slice.call(body));
        return copying.unpack(body);
      } catch (e) {
        throw new MalformedMessageError(`message body is not valid msgpack: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      }
    },
  };
}

/** Plain msgpack (maps, no records) for handshake bodies and HMAC transcripts: stable bytes, any decoder. */
const plainPackr = new Packr({ useRecords: false, moreTypes: false });
const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodePlain(value: unknown): Uint8Array {
  // Copy: plain pack results are views of a shared scratch buffer that later calls continue to use.
  return Uint8Array.prototype.slice.call(plainPackr.pack(value));
}

export function decodePlain(body: Uint8Array): unknown {
  try {
    return plainUnpackr.unpack(body);
  } catch (e) {
    throw new MalformedMessageError(`body is not valid msgpack: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
