import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { AbortedError, TransportError } from '@consensus-kit/core';
import { FramedConnection, type ConnectionLimits } from './connection';
import { dialHandshake, type DialOptions, type HandshakeResult } from './handshake';
import { parseAddress, type TlsOptions } from './options';

export interface DialParams {
  address: string;
  tls?: TlsOptions | undefined;
  /** Give up on a TCP (and TLS) connect after this long, so a dead endpoint costs little. */
  connectTimeoutMs: number;
  limits: ConnectionLimits;
  handshake: DialOptions;
  signal?: AbortSignal | undefined;
}

/** Opens a socket with a connect timeout. Rejects with TransportError (or AbortedError). */
export function openSocket(address: string, tls: TlsOptions | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  const { host, port } = parseAddress(address);
  return new Promise<Socket>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError(signal.reason));
      return;
    }
    const socket: Socket =
      tls === undefined
        ? netConnect({ host, port })
        : tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername, ALPNProtocols: ['consensus-kit/1'] });
    const ready = tls === undefined ? 'connect' : 'secureConnect';
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener(ready, onReady);
      if (err !== undefined) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onError = (err: Error) => done(new TransportError(`cannot connect to ${address}: ${err.message}`, { cause: err }));
    const onReady = () => done();
    const onAbort = () => done(new AbortedError(signal?.reason));
    const timer = setTimeout(() => done(new TransportError(`cannot connect to ${address}: no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', onError);
    socket.once(ready, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Connects and runs the dialer's handshake. The connection is ready for traffic when this resolves. */
export async function dial(params: DialParams): Promise<{ conn: FramedConnection; remote: HandshakeResult }> {
  const socket = await openSocket(params.address, params.tls, params.connectTimeoutMs, params.signal);
  const conn = new FramedConnection(socket, params.limits, { message() {}, close() {} });
  const onAbort = () => conn.destroy(new AbortedError(params.signal?.reason));
  params.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const remote = await dialHandshake(conn, params.handshake);
    return { conn, remote };
  } finally {
    params.signal?.removeEventListener('abort', onAbort);
  }
}
