import { MalformedMessageError, TransportError } from '@consensus-kit/core';

/** Why a frame was refused by the parser. */
export type FrameErrorReason = 'bad-magic' | 'bad-version' | 'bad-checksum' | 'too-large' | 'unknown-type' | 'bad-part';

/** A frame that breaks the wire format. The connection that sent it is closed; the node goes on. */
export class FrameError extends MalformedMessageError {
  readonly reason: FrameErrorReason;
  constructor(reason: FrameErrorReason, message: string) {
    super(`bad frame (${reason}): ${message}`);
    this.reason = reason;
  }
  static override is(e: unknown): e is FrameError {
    return MalformedMessageError.is(e) && typeof (e as Partial<FrameError>).reason === 'string';
  }
}

/**
 * Why a handshake was refused. Carried in the REJECT frame, logged on both sides and exposed as
 * `HandshakeError.reason` (the error's `code` stays core's `TRANSPORT`).
 */
export type HandshakeRefusal =
  | 'version-mismatch'
  | 'cluster-mismatch'
  | 'unknown-node'
  | 'wrong-node'
  | 'bad-secret'
  | 'secret-required'
  | 'malformed'
  | 'timeout'
  | 'closed'
  /** The acceptor holds as many client connections as it takes (in all, or from this address). */
  | 'too-many-connections';

export const HANDSHAKE_REFUSALS: readonly HandshakeRefusal[] = [
  'version-mismatch',
  'cluster-mismatch',
  'unknown-node',
  'wrong-node',
  'bad-secret',
  'secret-required',
  'malformed',
  'timeout',
  'closed',
  'too-many-connections',
];

/** A connection whose handshake failed or was refused by either side. */
export class HandshakeError extends TransportError {
  readonly reason: HandshakeRefusal;
  /** True when the other side refused us (a REJECT frame); false when we refused or the link failed. */
  readonly remote: boolean;
  constructor(reason: HandshakeRefusal, message: string, remote = false) {
    super(`handshake ${remote ? 'refused by the remote side' : 'failed'} (${reason}): ${message}`);
    this.reason = reason;
    this.remote = remote;
  }
  /** True for a HandshakeError from any copy of this package (checks core's brand, then the fields). */
  static override is(e: unknown): e is HandshakeError {
    return (
      TransportError.is(e) &&
      (HANDSHAKE_REFUSALS as readonly unknown[]).includes((e as Partial<HandshakeError>).reason) &&
      typeof (e as Partial<HandshakeError>).remote === 'boolean'
    );
  }
}
