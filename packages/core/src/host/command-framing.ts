import { randomBytes } from 'node:crypto';
import { Unpackr, pack } from 'msgpackr';
import { InvalidArgumentError } from '../errors';
import { preview } from '../validate';

/**
 * Encodes commands into entry bytes and back. The default is msgpackr, and its `decode` copies binary fields.
 * A custom `decode` should copy any bytes the state machine keeps as well: an entry's data may be a view of
 * a larger buffer (a follower receives a batch of entries in one message), which a kept view would pin.
 */
export interface CommandCodec<Cmd> {
  encode(command: Cmd): Uint8Array;
  decode(data: Uint8Array): Cmd;
}

/** Copies binary fields, so what a state machine keeps from a command never pins the entry's buffer. */
const commandUnpackr = new Unpackr({ useRecords: false, copyBuffers: true });

export const defaultCodec: CommandCodec<never> = {
  encode: (command) => pack(command),
  decode: (data) => commandUnpackr.unpack(data) as never,
};

/** Header of a host-framed command entry: magic, 8-byte incarnation, 8-byte sequence number. */
const FRAME_MAGIC = 0xc7;
export const FRAME_HEADER = 17;

/** Scratch space for a sequence number (big-endian float64), so no DataView is made per entry. */
const SEQ_SCRATCH = new DataView(new ArrayBuffer(8));
const SEQ_BYTES = new Uint8Array(SEQ_SCRATCH.buffer);

/**
 * The host's framing of command entries: `[magic][incarnation: 8 bytes][seq: 8 bytes][payload]`. The
 * incarnation is random per `ConsensusNode` instance, so when an entry applies, the node that proposed it (and
 * only that node, in that life) finds the caller waiting for it by `seq`. Read-barrier contexts carry the same
 * incarnation and their own sequence number.
 */
export class CommandFraming<Cmd> {
  private readonly incarnation = randomBytes(8);
  private seq = 0;
  private readSeq = 0;

  constructor(readonly codec: CommandCodec<Cmd>) {}

  /** Frames an encoded command under the next sequence number, which becomes `lastSeq`. */
  frame(command: Cmd): Uint8Array {
    let payload: Uint8Array;
    try {
      payload = this.codec.encode(command);
    } catch (cause) {
      throw new InvalidArgumentError(`command cannot be encoded: ${preview(command)}`, { cause });
    }
    if (!(payload instanceof Uint8Array)) throw new InvalidArgumentError('codec.encode must return a Uint8Array');
    // Every byte is written below. Buffer.allocUnsafe takes small sizes from Node's shared pool: much
    // cheaper than a zeroed ArrayBuffer of its own per entry.
    const data = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
    data[0] = FRAME_MAGIC;
    data.set(this.incarnation, 1);
    SEQ_SCRATCH.setFloat64(0, ++this.seq);
    data.set(SEQ_BYTES, 9);
    data.set(payload, FRAME_HEADER);
    return data;
  }

  /** The sequence number given to the last framed command. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Whether `data` was framed by a ConsensusNode (any node, any incarnation). */
  isFramed(data: Uint8Array): boolean {
    return data.length >= FRAME_HEADER && data[0] === FRAME_MAGIC;
  }

  /** The command inside a framed entry. */
  decode(data: Uint8Array): Cmd {
    return this.codec.decode(data.subarray(FRAME_HEADER));
  }

  /** The sequence number of a framed entry proposed by this incarnation, or undefined for anyone else's. */
  ownSeq(data: Uint8Array): number | undefined {
    for (let i = 0; i < 8; i++) if (data[1 + i] !== this.incarnation[i]) return undefined;
    for (let i = 0; i < 8; i++) SEQ_BYTES[i] = data[9 + i] as number;
    return SEQ_SCRATCH.getFloat64(0);
  }

  /** A fresh read-barrier context: incarnation + read sequence number. */
  readContext(): Uint8Array {
    const ctx = new Uint8Array(16);
    ctx.set(this.incarnation, 0);
    new DataView(ctx.buffer).setFloat64(8, ++this.readSeq);
    return ctx;
  }
}

/** The key a read context is filed under while its barrier is pending. */
export function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('base64');
}
