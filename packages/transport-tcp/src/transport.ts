import {
  ConfigError,
  TransportError,
  assertNodeId,
  type Envelope,
  type Logger,
  type NodeId,
  type Transport,
  type TransportHandler,
} from '@consensus-kit/core';
import { silentLogger } from '@consensus-kit/core/host';
import type { BackoffOptions } from './backoff';
import { createCodec, type Codec } from './codec';
import type { ConnectionLimits, FramedConnection } from './connection';
import { FrameError } from './errors';
import { FaultControl } from './faults';
import { FrameType } from './frame';
import { PROTOCOL_VERSION } from './handshake';
import { Listener } from './listener';
import { formatAddress, parseAddress, positiveOption, resolveLimits, resolveServerLimits, type LimitOptions, type ServerLimitOptions, type ServerLimits, type TlsOptions } from './options';
import { PeerLink, type PeerLinkState } from './peer-link';
import { serveClient, type RequestHandler } from './request-server';

export interface TcpTransportOptions extends LimitOptions, ServerLimitOptions {
  /** This node's id. */
  id: NodeId;
  /** Connections from other clusters are refused. */
  clusterId: string;
  /** Where to listen for peers and clients. Port 0 picks a free port (see `address()`). */
  listen: { host?: string; port: number };
  /** Peer id -> 'host:port'. May include this node (ignored). Change later with `setPeers`. */
  peers: Record<NodeId, string>;
  /** Shared cluster secret; when set, every connection proves it with an HMAC challenge both ways. */
  secret?: string | Uint8Array;
  tls?: TlsOptions;
  logger?: Logger;
  /** TCP/TLS connect timeout for dialing peers (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Handshake deadline, both sides: a connection not through its handshake by then is closed (default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** Reconnect backoff (defaults: base 50 ms, cap 2000 ms, full jitter). */
  backoff?: BackoffOptions;
  /** Client requests one connection may have in flight (default 128). */
  maxConcurrentRequests?: number;
  /**
   * Ms between round-trip probes (Ping/Pong) to each peer whose node understands them (default 2000; 0: none).
   * A peer of an older version is never probed.
   */
  pingIntervalMs?: number;
  /** Told each probe's round trip to a peer, in ms (for metrics). */
  onRoundTrip?: (peer: NodeId, ms: number) => void;
}

/** What `peerStats()` reports for one peer. */
export interface PeerStats {
  address: string;
  state: PeerLinkState;
  queuedBytes: number;
  dropped: number;
  connects: number;
  /** Inbound connections from this peer that are open. */
  inbound: number;
  /** Message bytes handed to the connection to this peer since start (frame headers not counted). */
  bytesSent: number;
  /** Message bytes received from this peer since start (frame headers not counted). */
  bytesReceived: number;
  /** Messages to this peer that could not be sent: dropped (peer down, queue full) or too large. */
  sendFailures: number;
  /** The last round-trip probe's time in ms; undefined until one came back (or for a peer of an older version). */
  rttMs: number | undefined;
}

/** A `Transport` over TCP, plus the client channel and the controls a local cluster needs. */
export interface TcpTransport extends Transport {
  readonly id: NodeId;
  /** Drop traffic to/from chosen peers. */
  readonly faults: FaultControl;
  /** Where the listener is bound (after `start`). */
  address(): { host: string; port: number };
  /** 'host:port' of the listener, for peers and clients. */
  endpoint(): string;
  /** Replace the peer map (membership change, readdressed node). Links to removed peers are closed. */
  setPeers(peers: Record<NodeId, string>): void;
  /** Serve client requests on the same listener. */
  onRequest(handler: RequestHandler): void;
  peerStats(): Record<NodeId, PeerStats>;
}

/** Creates a TCP transport. Nothing is opened until `start`. */
export function tcpTransport(options: TcpTransportOptions): TcpTransport {
  return new TcpTransportImpl(options);
}

function checkPeers(peers: Record<NodeId, string>): Map<NodeId, string> {
  if (typeof peers !== 'object' || peers === null) throw new ConfigError('peers must be an object of id -> "host:port"');
  const out = new Map<NodeId, string>();
  for (const [id, addr] of Object.entries(peers)) {
    assertNodeId(id, 'peer id');
    parseAddress(addr);
    out.set(id, addr);
  }
  return out;
}

class TcpTransportImpl implements TcpTransport {
  readonly id: NodeId;
  readonly faults = new FaultControl();
  private readonly clusterId: string;
  private readonly logger: Logger;
  private readonly limits: ConnectionLimits;
  private readonly serverLimits: ServerLimits;
  private readonly codec: Codec = createCodec();
  /** The last message encoded in the current send() call and its bytes, for an envelope carrying the same object. */
  private lastMsg: unknown;
  private lastBytes: Uint8Array | undefined;
  private peers: Map<NodeId, string>;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Map<NodeId, Set<FramedConnection>>();
  /** Message bytes received per peer, kept across its connections (one object per peer: no lookup per message). */
  private readonly received = new Map<NodeId, { bytes: number }>();
  private listener: Listener | undefined;
  private handler: TransportHandler | undefined;
  private requestHandler: RequestHandler | undefined;
  private state: 'new' | 'started' | 'stopped' = 'new';

  constructor(private readonly options: TcpTransportOptions) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('transport options must be an object');
    assertNodeId(options.id, 'id');
    if (typeof options.clusterId !== 'string' || options.clusterId.length === 0 || options.clusterId.length > 256) {
      throw new ConfigError('clusterId must be a non-empty string of at most 256 characters');
    }
    if (typeof options.listen !== 'object' || options.listen === null) throw new ConfigError('listen must be { host, port }');
    this.id = options.id;
    this.clusterId = options.clusterId;
    this.logger = options.logger ?? silentLogger;
    this.limits = resolveLimits(options);
    this.serverLimits = resolveServerLimits(options, this.limits);
    this.peers = checkPeers(options.peers);
    this.peers.delete(this.id);
  }

  async start(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new TransportError(`transport of ${this.id} was already started`);
    this.state = 'started';
    this.handler = handler;
    const o = this.options;
    this.listener = new Listener({
      host: o.listen.host ?? '127.0.0.1',
      port: o.listen.port,
      tls: o.tls,
      limits: this.limits,
      logger: this.logger,
      server: this.serverLimits,
      handshake: {
        clusterId: this.clusterId,
        id: this.id,
        secret: o.secret,
        timeoutMs: this.handshakeTimeoutMs,
        protocolVersion: PROTOCOL_VERSION,
        isKnownPeer: (id) => this.peers.has(id),
        acceptClients: true,
      },
      onPeer: (conn, id) => this.acceptPeer(conn, id),
      onClient: (conn, clientId) =>
        serveClient(conn, clientId, {
          handler: () => this.requestHandler,
          resolveLeader: (id) => (id === this.id ? this.endpoint() : this.peers.get(id)),
          maxConcurrentRequests: positiveOption(o.maxConcurrentRequests, 'maxConcurrentRequests', 128),
          idleTimeoutMs: this.serverLimits.clientIdleTimeoutMs,
          logger: this.logger,
        }),
    });
    try {
      await this.listener.listen();
    } catch (e) {
      this.state = 'stopped';
      throw e;
    }
    this.logger.info('transport listening', { id: this.id, address: this.endpoint() });
    // Announce this node: its peers' links to it may be backing off (it was down), and a node that has nothing to
    // send yet (a restarted follower) would otherwise not be heard of until its election timeout ran out. Each
    // peer that accepts the connection redials this node at once (`acceptPeer`).
    for (const id of this.peers.keys()) this.linkTo(id)?.dialNow();
  }

  /** The link to a known peer, created on first use. */
  private linkTo(id: NodeId): PeerLink | undefined {
    const link = this.links.get(id);
    if (link !== undefined) return link;
    const address = this.peers.get(id);
    return address === undefined ? undefined : this.newLink(id, address);
  }

  /**
   * Queues every envelope, then writes each peer's connection at once rather than at the end of the turn.
   * A host hands over a whole batch per call, and what it does next (a follower applying committed entries
   * after acknowledging new ones, a leader writing its own log after sending AppendEntries) should not hold
   * the batch's messages back: on a follower, waiting for the end of the turn put the apply of one batch
   * between the durable write of the next and its acknowledgement.
   */
  send(envelopes: readonly Envelope[]): void {
    if (this.state !== 'started') return;
    this.lastBytes = undefined;
    for (const env of envelopes) {
      try {
        this.sendOne(env);
      } catch (e) {
        // Never throw out of send: a bad envelope is logged and dropped.
        this.logger.error('cannot send message; dropped', { to: (env as Partial<Envelope>)?.to, reason: (e as Error)?.message ?? String(e) });
      }
    }
    this.lastMsg = undefined;
    this.lastBytes = undefined;
    // A second flush of the same link finds its queue empty and writes nothing.
    for (const env of envelopes) {
      const to = (env as Partial<Envelope> | null)?.to;
      if (typeof to === 'string') this.links.get(to)?.flush();
    }
  }

  private sendOne(env: Envelope): void {
    if (env.from !== this.id) throw new TransportError(`envelope from ${String(env.from)} cannot be sent by node ${this.id}`);
    const to = env.to;
    if (this.faults.dropsOutbound(to)) return;
    if (to === this.id) {
      const handler = this.handler;
      const msg = this.codec.decode(this.codec.encode(env.msg));
      setImmediate(() => this.deliver(handler, { from: this.id, to, msg }));
      return;
    }
    let link = this.links.get(to);
    if (link === undefined) {
      const address = this.peers.get(to);
      if (address === undefined) {
        this.logger.debug('message to unknown peer dropped', { to });
        this.handler?.unreachable?.(to);
        return;
      }
      link = this.newLink(to, address);
    }
    // A protocol that sends one message object to several peers (raft's AppendEntries to followers in step)
    // has it encoded once per send() call.
    let bytes = this.lastBytes;
    if (bytes === undefined || this.lastMsg !== env.msg) {
      bytes = this.codec.encode(env.msg);
      this.lastMsg = env.msg;
      this.lastBytes = bytes;
    }
    link.send(bytes);
  }

  private newLink(id: NodeId, address: string): PeerLink {
    const o = this.options;
    const link = new PeerLink(id, address, {
      limits: this.limits,
      logger: this.logger,
      tls: o.tls,
      connectTimeoutMs: positiveOption(o.connectTimeoutMs, 'connectTimeoutMs', 1000),
      handshake: { clusterId: this.clusterId, id: this.id, secret: o.secret, logger: this.logger, timeoutMs: this.handshakeTimeoutMs },
      backoff: o.backoff ?? {},
      pingIntervalMs: o.pingIntervalMs ?? 2000,
      roundTrip: o.onRoundTrip,
      unreachable: (peer) => {
        try {
          this.handler?.unreachable?.(peer);
        } catch (e) {
          this.logger.error('unreachable handler threw', { peer, reason: (e as Error)?.message ?? String(e) });
        }
      },
    });
    this.links.set(id, link);
    return link;
  }

  private get handshakeTimeoutMs(): number {
    return positiveOption(this.options.handshakeTimeoutMs, 'handshakeTimeoutMs', 5000);
  }

  private acceptPeer(conn: FramedConnection, from: NodeId): void {
    if (this.state !== 'started') {
      conn.destroy();
      return;
    }
    let set = this.inbound.get(from);
    if (set === undefined) this.inbound.set(from, (set = new Set()));
    // A peer has one outbound connection to us; an older one is a leftover of its previous life.
    for (const old of set) old.destroy(new TransportError(`replaced by a newer connection from ${from}`));
    set.add(conn);
    // The peer is up (it may have restarted): our link to it stops backing off and dials now, so what this node
    // sends it (a leader's heartbeats) is not dropped until the backoff delay ends.
    this.linkTo(from)?.dialNow();
    const to = this.id;
    const codec = createCodec();
    let received = this.received.get(from);
    if (received === undefined) this.received.set(from, (received = { bytes: 0 }));
    const counted = received;
    conn.setEvents({
      message: (type, body, own) => {
        if (type === FrameType.Ping) {
          // A round-trip probe (this node announced 'rtt' in its welcome): echoed at once.
          if (body.byteLength !== 8) throw new FrameError('unknown-type', 'a ping carries 8 bytes');
          conn.send(FrameType.Pong, body.slice());
          return;
        }
        if (type !== FrameType.Message) throw new FrameError('unknown-type', `frame type ${type} is not allowed on a peer connection`);
        counted.bytes += body.byteLength;
        const msg = codec.decode(body, own);
        if (this.faults.dropsInbound(from)) return;
        this.deliver(this.handler, { from, to, msg });
      },
      close: (error) => {
        set.delete(conn);
        if (set.size === 0 && this.inbound.get(from) === set) this.inbound.delete(from);
        if (error !== undefined && !TransportError.is(error)) {
          this.logger.warn('peer connection closed on bad input', { peer: from, reason: error.message });
        }
      },
    });
  }

  private deliver(handler: TransportHandler | undefined, env: Envelope): void {
    if (handler === undefined || this.state !== 'started') return;
    try {
      handler.deliver(env);
    } catch (e) {
      this.logger.error('deliver handler threw', { from: env.from, reason: (e as Error)?.message ?? String(e) });
    }
  }

  address(): { host: string; port: number } {
    if (this.listener === undefined) throw new TransportError(`transport of ${this.id} is not started`);
    return this.listener.address();
  }

  endpoint(): string {
    const a = this.address();
    return formatAddress(a.host, a.port);
  }

  setPeers(peers: Record<NodeId, string>): void {
    const next = checkPeers(peers);
    next.delete(this.id);
    this.peers = next;
    for (const [id, link] of this.links) {
      const addr = next.get(id);
      if (addr === undefined) {
        link.close();
        this.links.delete(id);
      } else link.setAddress(addr);
    }
    for (const [id, set] of this.inbound) {
      if (!next.has(id)) for (const c of set) c.destroy(new TransportError(`${id} is no longer a peer`));
    }
  }

  onRequest(handler: RequestHandler): void {
    this.requestHandler = handler;
  }

  peerStats(): Record<NodeId, PeerStats> {
    const out: Record<NodeId, PeerStats> = {};
    for (const [id, address] of this.peers) {
      const link = this.links.get(id);
      out[id] = {
        address,
        state: link?.state ?? 'idle',
        queuedBytes: link?.queuedBytes ?? 0,
        dropped: link?.dropped ?? 0,
        connects: link?.connects ?? 0,
        inbound: this.inbound.get(id)?.size ?? 0,
        bytesSent: link?.bytesSent ?? 0,
        bytesReceived: this.received.get(id)?.bytes ?? 0,
        sendFailures: link?.sendFailures ?? 0,
        rttMs: link?.lastRttMs,
      };
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const set of this.inbound.values()) for (const c of set) c.destroy();
    this.inbound.clear();
    await this.listener?.close();
    this.logger.info('transport stopped', { id: this.id });
  }
}
