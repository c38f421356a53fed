import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { TransportError, type Logger } from '@consensus-kit/core';
import { FramedConnection, type ConnectionLimits } from './connection';
import { HandshakeError } from './errors';
import { acceptHandshake, type AcceptOptions, type ConnectionKind } from './handshake';
import { InboundBudget } from './inbound-budget';
import { formatAddress, type ServerLimits, type TlsOptions } from './options';

/**
 * Room above the client and handshake budgets in the OS-level cap on sockets (`server.maxConnections`): a
 * cluster's peers (one inbound connection each, plus a replaced one still closing) and TLS handshakes not yet
 * handed to us. Only a backstop; the budgets below are what admits or refuses.
 */
const PEER_ALLOWANCE = 256;

/**
 * When client slots run out, a client connection idle at least this long (nothing in flight, nothing received)
 * is closed to make room for the new one, the longest-idle first; without one, the new client is refused.
 */
export const EVICT_IDLE_CLIENT_MS = 1000;

export interface ListenerParams {
  host: string;
  port: number;
  tls?: TlsOptions | undefined;
  limits: ConnectionLimits;
  logger: Logger;
  /** Client and handshake slots, per-address cap, buffered request bytes (see ServerLimitOptions). */
  server: ServerLimits;
  handshake: Omit<AcceptOptions, 'logger' | 'admit'>;
  /** A connection finished its handshake; the callee owns it from now on. */
  onPeer(conn: FramedConnection, id: string): void;
  onClient(conn: FramedConnection, id: string): void;
}

/**
 * Accepts connections, runs the acceptor's handshake and hands each connection over by kind.
 *
 * Admission, with separate budgets as etcd and ZooKeeper operators expect (there, peers and clients even have
 * separate ports): a connection in its handshake takes one of `maxHandshakes` slots, and when they are all
 * taken the oldest is closed (a silent socket cannot hold a slot a peer needs, and it would be closed at its
 * handshake deadline anyway); a peer, once it proved who it is, is never counted against clients; a client
 * takes one of `maxClients` slots and one of `maxClientsPerAddress` for its IP address, or is refused with a
 * REJECT `too-many-connections` and a logged reason; when the slots are all taken, the client connection
 * idle longest (at least EVICT_IDLE_CLIENT_MS) is closed to make room first, so idle connections cannot lock
 * clients out either. Client connections share one budget of buffered request
 * bytes (`InboundBudget`).
 */
export class Listener {
  private readonly server: Server;
  private readonly conns = new Set<FramedConnection>();
  /** Connections in their handshake, oldest first. */
  private readonly handshaking = new Set<FramedConnection>();
  private readonly clients = new Set<FramedConnection>();
  private readonly clientsPerAddress = new Map<string, number>();
  /** Buffered request bytes of every client connection. */
  readonly budget: InboundBudget;
  /** Every accepted socket, TLS handshake still running or not, so `close` can end them all. */
  private readonly sockets = new Set<Socket>();
  /** Connections refused or closed for breaking the protocol (handshake or frames). */
  refused = 0;

  constructor(private readonly params: ListenerParams) {
    this.budget = new InboundBudget(params.server.maxInboundBytes);
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
    this.server.maxConnections = params.server.maxClients + params.server.maxHandshakes + PEER_ALLOWANCE;
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

  /** Client connections currently held. */
  get clientConnections(): number {
    return this.clients.size;
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
    const { logger, server } = this.params;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn = new FramedConnection(socket, this.params.limits, { message() {}, close() {} });
    if (this.handshaking.size >= server.maxHandshakes) {
      const oldest = this.handshaking.values().next().value as FramedConnection;
      this.handshaking.delete(oldest);
      logger.warn('too many connections in their handshake; closing the oldest', {
        limit: server.maxHandshakes,
        closed: `${oldest.socket.remoteAddress}:${oldest.socket.remotePort}`,
      });
      oldest.destroy(new TransportError(`closed to make room: ${server.maxHandshakes} connections were in their handshake`));
    }
    this.conns.add(conn);
    this.handshaking.add(conn);
    socket.once('close', () => {
      this.conns.delete(conn);
      this.handshaking.delete(conn);
    });
    acceptHandshake(conn, { ...this.params.handshake, logger, admit: (kind) => this.admit(conn, kind) }).then(
      (r) => {
        this.handshaking.delete(conn);
        if (conn.isClosed) return;
        logger.debug('connection accepted', { kind: r.kind, id: r.remoteId, remote });
        if (r.kind === 'peer') this.params.onPeer(conn, r.remoteId);
        else {
          conn.setBudget(this.budget);
          this.params.onClient(conn, r.remoteId);
        }
      },
      () => {
        // acceptHandshake logged the reason and closed the connection.
        this.handshaking.delete(conn);
        this.refused++;
      },
    );
  }

  /** Takes a client slot for `conn`, or says why there is none (sent to the client as a REJECT). */
  private admit(conn: FramedConnection, kind: ConnectionKind): HandshakeError | undefined {
    if (kind !== 'client') return undefined;
    const { maxClients, maxClientsPerAddress } = this.params.server;
    const address = conn.socket.remoteAddress ?? '?';
    if (this.clients.size >= maxClients && !this.evictIdleClient()) {
      return new HandshakeError('too-many-connections', `this node holds its limit of ${maxClients} client connections (maxConnections)`);
    }
    const fromAddress = this.clientsPerAddress.get(address) ?? 0;
    if (fromAddress >= maxClientsPerAddress) {
      return new HandshakeError('too-many-connections', `${address} holds its limit of ${maxClientsPerAddress} client connections (maxConnectionsPerAddress)`);
    }
    this.clients.add(conn);
    this.clientsPerAddress.set(address, fromAddress + 1);
    conn.socket.once('close', () => this.releaseClient(conn));
    return undefined;
  }

  /** Gives back `conn`'s client slot (once). */
  private releaseClient(conn: FramedConnection): void {
    if (!this.clients.delete(conn)) return;
    const address = conn.socket.remoteAddress ?? '?';
    const n = (this.clientsPerAddress.get(address) ?? 1) - 1;
    if (n > 0) this.clientsPerAddress.set(address, n);
    else this.clientsPerAddress.delete(address);
  }

  /** Closes the client connection idle longest, if one has been idle long enough; returns whether it did. */
  private evictIdleClient(): boolean {
    const now = performance.now();
    let oldest: FramedConnection | undefined;
    for (const c of this.clients) {
      const idle = c.idle;
      if (idle === undefined || c.bytesReceived !== idle.bytes || c.heldBack || now - idle.since < EVICT_IDLE_CLIENT_MS) continue;
      if (oldest === undefined || idle.since < oldest.idle!.since) oldest = c;
    }
    if (oldest === undefined) return false;
    this.params.logger.info('client connections at their limit; closing the one idle longest', {
      limit: this.params.server.maxClients,
      closed: `${oldest.socket.remoteAddress}:${oldest.socket.remotePort}`,
      idleMs: Math.round(now - oldest.idle!.since),
    });
    this.releaseClient(oldest);
    oldest.end();
    return true;
  }
}
