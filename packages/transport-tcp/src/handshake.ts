import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Logger, type NodeId } from '@consensus-kit/core';
import { decodePlain, encodePlain, isRecord } from './codec';
import type { FramedConnection } from './connection';
import { HANDSHAKE_REFUSALS, HandshakeError, type HandshakeRefusal } from './errors';
import { FrameType } from './frame';

/**
 * The handshake every connection runs before anything else (dialer -> acceptor):
 *
 *   HELLO     { v, cluster, kind, from, to?, nonce: cN }
 *   CHALLENGE { nonce: sN }                      only when the acceptor has a cluster secret
 *   AUTH      { proof: HMAC(secret, client transcript) }
 *   WELCOME   { id, proof?: HMAC(secret, server transcript) }
 *   REJECT    { code, reason }                   either side, then the connection closes
 *
 * The secret never crosses the wire: each side proves it holds it with an HMAC-SHA256 over both fresh nonces,
 * both ids and the cluster id, under different labels for the two directions, so one side's proof can neither
 * be replayed to another connection nor reflected back as the other side's proof. The dialer proves first;
 * the acceptor answers with its own proof, so a dialer that holds the secret also authenticates the acceptor.
 */
export const PROTOCOL_VERSION = 1;

export type ConnectionKind = 'peer' | 'client';

export interface HandshakeOptions {
  clusterId: string;
  /** This side's id (a node id, or a client id). */
  id: string;
  secret?: string | Uint8Array | undefined;
  logger: Logger;
  timeoutMs: number;
  /** Only for tests of version refusal. */
  protocolVersion?: number;
}

export interface DialOptions extends HandshakeOptions {
  kind: ConnectionKind;
  /** The node id the dialer expects to reach (peers); the acceptor refuses if it is someone else. */
  expect?: NodeId | undefined;
}

export interface AcceptOptions extends HandshakeOptions {
  /** Whether a peer with this id may connect. */
  isKnownPeer(id: string): boolean;
  acceptClients: boolean;
  /**
   * Last check before the WELCOME (after the secret was proven): a refusal (a slot limit) to send, or
   * undefined to welcome. A connection it admits counts against its limits from then on.
   */
  admit?(kind: ConnectionKind, id: string): HandshakeError | undefined;
}

export interface HandshakeResult {
  kind: ConnectionKind;
  remoteId: string;
  /** Dialer side: what the acceptor's welcome announced it understands beyond version 1 ('rtt': Ping/Pong). */
  caps?: readonly string[];
}

/**
 * What an acceptor announces in its welcome to a peer. A field older dialers never read (they take `id` and
 * `proof` only), so no version bump: a newer dialer uses a capability only when the acceptor listed it.
 */
export const PEER_CAPABILITIES: readonly string[] = ['rtt'];

interface Hello {
  v: number;
  cluster: string;
  kind: ConnectionKind;
  from: string;
  to?: string;
  nonce: Uint8Array;
}

const NONCE_BYTES = 32;
const ID = /^[^\s]{1,128}$/;

function proof(secret: string | Uint8Array, label: 'dialer' | 'acceptor', h: Hello, acceptorId: string, serverNonce: Uint8Array): Buffer {
  const transcript = encodePlain(['consensus-kit/handshake', PROTOCOL_VERSION, label, h.cluster, h.kind, h.from, acceptorId, h.nonce, serverNonce]);
  return createHmac('sha256', secret).update(transcript).digest();
}

function sameBytes(a: unknown, b: Buffer): boolean {
  return a instanceof Uint8Array && a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

function parseHello(body: Uint8Array): Hello | string {
  const v = decodePlain(body);
  if (!isRecord(v)) return 'hello is not a map';
  if (typeof v.v !== 'number') return 'hello lacks a protocol version';
  if (typeof v.cluster !== 'string') return 'hello lacks a cluster id';
  if (v.kind !== 'peer' && v.kind !== 'client') return 'hello has an unknown kind';
  if (typeof v.from !== 'string' || !ID.test(v.from)) return 'hello has an invalid sender id';
  if (v.to !== undefined && (typeof v.to !== 'string' || !ID.test(v.to))) return 'hello has an invalid target id';
  if (!(v.nonce instanceof Uint8Array) || v.nonce.byteLength !== NONCE_BYTES) return 'hello has an invalid nonce';
  return { v: v.v, cluster: v.cluster, kind: v.kind, from: v.from, to: v.to as string | undefined, nonce: v.nonce };
}

function parseReject(body: Uint8Array): { code: HandshakeRefusal; reason: string } {
  try {
    const v = decodePlain(body);
    if (isRecord(v) && typeof v.code === 'string' && (HANDSHAKE_REFUSALS as readonly string[]).includes(v.code)) {
      return { code: v.code as HandshakeRefusal, reason: typeof v.reason === 'string' ? v.reason.slice(0, 500) : '' };
    }
  } catch {
    // fall through
  }
  return { code: 'malformed', reason: 'unreadable reject frame' };
}

/**
 * Runs `steps` over `conn` until it resolves; handles timeouts, remote rejects and early closes. `step`
 * returns a result to finish, undefined to wait for the next frame, or throws a HandshakeError to refuse.
 */
function drive<T>(
  conn: FramedConnection,
  options: HandshakeOptions,
  remote: () => string,
  step: (type: FrameType, body: Uint8Array) => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (err: HandshakeError | undefined, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === undefined) {
        // Frames behind the last handshake frame (a request written with the hello) wait for the owner the
        // connection is handed to; the handshake's events would drop them.
        conn.establish();
        conn.hold();
        resolve(value as T);
        return;
      }
      options.logger.warn(err.remote ? 'handshake refused by the remote side' : 'handshake refused', {
        code: err.reason,
        reason: err.message,
        remote: remote(),
      });
      if (!err.remote && err.reason !== 'closed' && !conn.isClosed) {
        conn.sendNow(FrameType.Reject, encodePlain({ code: err.reason, reason: err.message }));
        conn.end();
      } else {
        conn.destroy();
      }
      reject(err);
    };
    const timer = setTimeout(() => finish(new HandshakeError('timeout', `no handshake within ${options.timeoutMs} ms`)), options.timeoutMs);
    conn.setEvents({
      message(type, body) {
        if (done) return;
        if (type === FrameType.Reject) {
          const r = parseReject(body);
          finish(new HandshakeError(r.code, r.reason, true));
          return;
        }
        try {
          const out = step(type, body);
          if (out !== undefined) finish(undefined, out);
        } catch (e) {
          finish(e instanceof HandshakeError ? e : new HandshakeError('malformed', (e as Error)?.message ?? String(e)));
        }
      },
      close(error) {
        finish(new HandshakeError('closed', `connection closed during the handshake${error ? `: ${error.message}` : ''}`));
      },
    });
  });
}

function remoteOf(conn: FramedConnection): string {
  return `${conn.socket.remoteAddress ?? '?'}:${conn.socket.remotePort ?? '?'}`;
}

/** The dialer's side. Resolves with the acceptor's id once it welcomed us. */
export function dialHandshake(conn: FramedConnection, options: DialOptions): Promise<HandshakeResult> {
  const hello: Hello = {
    v: options.protocolVersion ?? PROTOCOL_VERSION,
    cluster: options.clusterId,
    kind: options.kind,
    from: options.id,
    nonce: randomBytes(NONCE_BYTES),
  };
  if (options.expect !== undefined) hello.to = options.expect;
  let serverNonce: Uint8Array | undefined;
  const promise = drive(conn, options, () => remoteOf(conn), (type, body) => {
    const v = decodePlain(body);
    if (!isRecord(v)) throw new HandshakeError('malformed', 'handshake body is not a map');
    if (type === FrameType.Challenge && serverNonce === undefined) {
      if (!(v.nonce instanceof Uint8Array) || v.nonce.byteLength !== NONCE_BYTES) throw new HandshakeError('malformed', 'challenge has an invalid nonce');
      if (options.secret === undefined) throw new HandshakeError('secret-required', 'the remote side requires a cluster secret and none is configured');
      serverNonce = v.nonce;
      conn.sendNow(FrameType.Auth, encodePlain({ proof: proof(options.secret, 'dialer', hello, options.expect ?? '', serverNonce) }));
      return undefined;
    }
    if (type === FrameType.Welcome) {
      if (typeof v.id !== 'string' || !ID.test(v.id)) throw new HandshakeError('malformed', 'welcome has an invalid node id');
      if (options.expect !== undefined && v.id !== options.expect) throw new HandshakeError('wrong-node', `expected node ${options.expect}, reached ${v.id}`);
      if (options.secret !== undefined) {
        if (serverNonce === undefined) throw new HandshakeError('secret-required', 'the remote side did not ask for the cluster secret, so it cannot prove it holds it');
        if (!sameBytes(v.proof, proof(options.secret, 'acceptor', hello, options.expect ?? '', serverNonce))) {
          throw new HandshakeError('bad-secret', 'the remote side could not prove it holds the cluster secret');
        }
      }
      const caps = Array.isArray(v.caps) ? v.caps.filter((c): c is string => typeof c === 'string') : [];
      return { kind: options.kind, remoteId: v.id, caps };
    }
    throw new HandshakeError('malformed', `unexpected frame type ${type} during the handshake`);
  });
  conn.sendNow(FrameType.Hello, encodePlain(hello));
  return promise;
}

/** The acceptor's side. Resolves with who connected, once they are welcomed. */
export function acceptHandshake(conn: FramedConnection, options: AcceptOptions): Promise<HandshakeResult> {
  let hello: Hello | undefined;
  let serverNonce: Uint8Array | undefined;
  const welcome = (h: Hello): HandshakeResult => {
    const refusal = options.admit?.(h.kind, h.from);
    if (refusal !== undefined) throw refusal;
    const body: Record<string, unknown> = { id: options.id };
    if (h.kind === 'peer') body.caps = PEER_CAPABILITIES;
    if (options.secret !== undefined && serverNonce !== undefined) body.proof = proof(options.secret, 'acceptor', h, h.to ?? '', serverNonce);
    conn.sendNow(FrameType.Welcome, encodePlain(body));
    return { kind: h.kind, remoteId: h.from };
  };
  return drive(conn, options, () => (hello ? `${hello.kind} ${hello.from} at ${remoteOf(conn)}` : remoteOf(conn)), (type, body) => {
    if (hello === undefined) {
      if (type !== FrameType.Hello) throw new HandshakeError('malformed', `expected a hello frame, got type ${type}`);
      const h = parseHello(body);
      if (typeof h === 'string') throw new HandshakeError('malformed', h);
      hello = h;
      const version = options.protocolVersion ?? PROTOCOL_VERSION;
      if (h.v !== version) throw new HandshakeError('version-mismatch', `protocol version ${h.v} is not supported (this node speaks ${version})`);
      if (h.cluster !== options.clusterId) throw new HandshakeError('cluster-mismatch', `cluster ${JSON.stringify(h.cluster)} is not this cluster (${JSON.stringify(options.clusterId)})`);
      if (h.to !== undefined && h.to !== options.id) throw new HandshakeError('wrong-node', `this is node ${options.id}, not ${h.to}`);
      if (h.kind === 'peer' && !options.isKnownPeer(h.from)) throw new HandshakeError('unknown-node', `node ${JSON.stringify(h.from)} is not a known peer`);
      if (h.kind === 'client' && !options.acceptClients) throw new HandshakeError('unknown-node', 'this listener does not accept clients');
      if (options.secret === undefined) return welcome(h);
      serverNonce = randomBytes(NONCE_BYTES);
      conn.sendNow(FrameType.Challenge, encodePlain({ nonce: serverNonce }));
      return undefined;
    }
    if (type !== FrameType.Auth || serverNonce === undefined || options.secret === undefined) {
      throw new HandshakeError('malformed', `unexpected frame type ${type} during the handshake`);
    }
    const v = decodePlain(body);
    if (!isRecord(v) || !sameBytes(v.proof, proof(options.secret, 'dialer', hello, hello.to ?? '', serverNonce))) {
      throw new HandshakeError('bad-secret', `${hello.kind} ${hello.from} could not prove it holds the cluster secret`);
    }
    return welcome(hello);
  });
}
