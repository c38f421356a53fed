import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { TransportError, type Logger } from '@consensus-kit/core';
import { FramedConnection, type ConnectionLimits } from './connection';
import { acceptHandshake, type AcceptOptions } from './handshake';
import { formatAddress, type TlsOptions } from './options';

export interface ListenerParams {
  host: string;
  port: number;
  tls?: TlsOptions | undefined;
  limits: ConnectionLimits;
  logger: Logger;
  /** Bounds the number of connections a listener holds (default 1024); extra ones are closed at once. */
  maxConnections: number;
  handshake: Omit<AcceptOptions, 'logger'>;
  /** A connection finished its handshake; the callee owns it from now on. */
  onPeer(conn: FramedConnection, id: string): void;
  onClient(conn: FramedConnection, id: string): void;
}

/** Accepts connections, runs the acceptor's handshake and hands each connection over by kind. */
export class Listener {
  private readonly server: Server;
  private readonly conns = new Set<FramedConnection>();
  /** Every accepted socket, TLS handshake still running or not, so `close` can end them all. */
  private readonly sockets = new Set<Socket>();
  /** Connections refused or closed for breaking the protocol (handshake or frames). */
  refused = 0;

  constructor(private readonly params: ListenerParams) {
    const onSocket = (socket: Socket) => this.accept(socket);
    if (params.tls === undefined) this.server = createNetServer({ noDelay: true }, onSocket);
    else {
      const tls = params.tls;
      this.server = createTlsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          requestCert: tls.mutual === true,
          rejectUnauthorized: tls.mutual === true,
          ALPNProtocols: ['consensus-kit/1'],
          handshakeTimeout: params.handshake.timeoutMs,
        },
        onSocket,
      );
      this.server.on('tlsClientError', (err, socket) => {
        this.refused++;
        params.logger.warn('tls handshake failed', { reason: err.message, remote: `${socket.remoteAddress}:${socket.remotePort}` });
      });
    }
    this.server.maxConnections = params.maxConnections;
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('error', (err) => params.logger.error('listener error', { reason: err.message }));
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new TransportError(`cannot listen on ${formatAddress(this.params.host, this.params.port)}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(this.params.port, this.params.host, () => {
        this.server.removeListener('error', onError);
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new TransportError('listener is not listening');
    return { host: a.address, port: a.port };
  }

  /** Connections currently held (handshaking or handed over and still open). */
  get connections(): number {
    return this.conns.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.conns]) c.destroy();
    this.conns.clear();
    for (const s of [...this.sockets]) s.destroy();
    this.sockets.clear();
    await closed;
  }

  private accept(socket: Socket): void {
    const { logger } = this.params;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn = new FramedConnection(socket, this.params.limits, { message() {}, close() {} });
    this.conns.add(conn);
    socket.once('close', () => this.conns.delete(conn));
    acceptHandshake(conn, { ...this.params.handshake, logger }).then(
      (r) => {
        if (conn.isClosed) return;
        logger.debug('connection accepted', { kind: r.kind, id: r.remoteId, remote });
        if (r.kind === 'peer') this.params.onPeer(conn, r.remoteId);
        else this.params.onClient(conn, r.remoteId);
      },
      () => {
        // acceptHandshake logged the reason and closed the connection.
        this.refused++;
      },
    );
  }
}
