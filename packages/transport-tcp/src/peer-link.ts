import { TransportError, type Logger, type NodeId } from '@consensus-kit/core';
import { Backoff, type BackoffOptions } from './backoff';
import type { FramedConnection, ConnectionLimits } from './connection';
import { dial } from './dial';
import { FrameType } from './frame';
import type { DialOptions } from './handshake';
import type { TlsOptions } from './options';

export type PeerLinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

export interface PeerLinkContext {
  limits: ConnectionLimits;
  logger: Logger;
  tls: TlsOptions | undefined;
  connectTimeoutMs: number;
  handshake: Omit<DialOptions, 'expect' | 'kind'>;
  backoff: BackoffOptions;
  /** Tell the host that messages to `peer` were lost. */
  unreachable(peer: NodeId): void;
  /** Ms between round-trip probes to a peer that understands them (0: none). */
  pingIntervalMs: number;
  /** A probe's round trip to `peer`, in ms. */
  roundTrip?: ((peer: NodeId, ms: number) => void) | undefined;
}

/**
 * The outbound half of the link to one peer (as in hashicorp/raft's NetworkTransport and etcd's rafthttp,
 * each node dials its peers for what it sends and accepts their connections for what it receives).
 *
 * States: idle -> connecting -> open; a failed dial or a lost connection goes to backoff (capped exponential,
 * full jitter) and the link redials when the delay is over if anything was sent meanwhile, so a restarted
 * peer is picked up by the next message without operator action. Messages sent while connecting wait in a
 * bounded queue; messages sent during backoff are dropped. Every loss is reported to the host through
 * `unreachable`, once per episode (not once per message), like etcd's ReportUnreachable.
 */
export class PeerLink {
  state: PeerLinkState = 'idle';
  private conn: FramedConnection | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private wanted = false;
  private reported = false;
  private readonly backoff: Backoff;
  private abort: AbortController | undefined;
  /** Messages dropped because the queue was full or the peer was down. */
  dropped = 0;
  /** Successful handshakes, for tests and status. */
  connects = 0;
  /** Message bytes handed to the open connection (frame headers not counted). */
  bytesSent = 0;
  /** Messages that could not be sent: dropped (above) or larger than maxMessageSize. */
  sendFailures = 0;
  /** The last probe's round trip in ms (undefined until one came back). */
  lastRttMs: number | undefined;
  private pinger: NodeJS.Timeout | undefined;

  constructor(
    readonly id: NodeId,
    public address: string,
    private readonly ctx: PeerLinkContext,
  ) {
    this.backoff = new Backoff(ctx.backoff);
  }

  /** Queued outbound bytes (waiting for the connection, or in it). */
  get queuedBytes(): number {
    return this.pendingBytes + (this.conn?.pendingBytes ?? 0);
  }

  send(body: Uint8Array): void {
    switch (this.state) {
      case 'open': {
        const r = this.conn!.send(FrameType.Message, body);
        if (r === 'queued') {
          this.reported = false;
          this.bytesSent += body.byteLength;
        } else if (r === 'too-large') {
          this.sendFailures++;
          this.ctx.logger.error('message exceeds maxMessageSize; dropped', { peer: this.id, bytes: body.byteLength });
        } else this.drop(r === 'full' ? 'queue full' : 'connection closed');
        return;
      }
      case 'connecting': {
        const { maxQueueBytes, maxQueueMessages, maxMessageSize } = this.ctx.limits;
        if (body.byteLength > maxMessageSize) {
          this.sendFailures++;
          this.ctx.logger.error('message exceeds maxMessageSize; dropped', { peer: this.id, bytes: body.byteLength });
          return;
        }
        if (this.pending.length >= maxQueueMessages || this.pendingBytes + body.byteLength > maxQueueBytes) {
          this.drop('queue full while connecting');
          return;
        }
        this.pending.push(body);
        this.pendingBytes += body.byteLength;
        return;
      }
      case 'idle':
        this.connect();
        this.send(body);
        return;
      case 'backoff':
        this.wanted = true;
        this.drop('peer is down');
        return;
      case 'closed':
        return;
    }
  }

  /**
   * The peer is up: it just connected to this node (its inbound connection passed the handshake), or this node
   * started and announces itself. A link waiting out its backoff dials now instead of dropping what is sent until
   * the delay ends (up to `capMs`, 2 s by default: longer than an election timeout), and an idle link dials too,
   * so the peer hears from this node at once. Without it, a follower restarted while the leader's link to it was
   * backing off heard nothing from the leader, timed out and campaigned, though the leader was alive: on a
   * 3-node paxos cluster (tickMs 50) the restarted node campaigned 750-860 ms after it started, and the leader
   * redialled it only after that node's own messages arrived.
   */
  dialNow(): void {
    if (this.state === 'backoff') {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.backoff.reset();
      this.reported = false;
      this.connect();
    } else if (this.state === 'idle') this.connect();
  }

  /** Writes what the open connection holds now (see FramedConnection.flush). */
  flush(): void {
    if (this.state === 'open') this.conn?.flush();
  }

  /** Points the link at a new address; an open connection to the old one is closed. */
  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    this.reset();
  }

  close(): void {
    this.reset();
    this.state = 'closed';
  }

  private reset(): void {
    this.stopPinging();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    this.abort = undefined;
    const conn = this.conn;
    this.conn = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.state !== 'closed') this.state = 'idle';
    conn?.destroy();
  }

  private drop(why: string): void {
    this.dropped++;
    this.sendFailures++;
    if (this.reported) return;
    this.reported = true;
    this.ctx.logger.debug('dropping messages to peer', { peer: this.id, why });
    this.ctx.unreachable(this.id);
  }

  private connect(): void {
    this.state = 'connecting';
    const abort = new AbortController();
    this.abort = abort;
    const address = this.address;
    dial({
      address,
      tls: this.ctx.tls,
      connectTimeoutMs: this.ctx.connectTimeoutMs,
      limits: this.ctx.limits,
      handshake: { ...this.ctx.handshake, kind: 'peer', expect: this.id },
      signal: abort.signal,
    }).then(
      ({ conn, remote }) => {
        if (abort.signal.aborted || this.state !== 'connecting') {
          conn.destroy();
          return;
        }
        this.abort = undefined;
        this.conn = conn;
        this.state = 'open';
        this.connects++;
        this.backoff.reset();
        this.ctx.logger.info('connected to peer', { peer: this.id, address });
        conn.setEvents({
          message: (type, body) => {
            if (type === FrameType.Pong && this.pinger !== undefined && body.byteLength === 8) {
              const sent = new DataView(body.buffer, body.byteOffset, 8).getFloat64(0);
              const ms = performance.now() - sent;
              if (ms >= 0) {
                this.lastRttMs = ms;
                this.ctx.roundTrip?.(this.id, ms);
              }
              return;
            }
            // Peers only send on their own outbound connections; anything here breaks the protocol.
            conn.destroy(new TransportError(`unexpected frame type ${type} on an outbound peer connection`));
          },
          close: (error) => {
            if (this.conn !== conn) return;
            this.stopPinging();
            this.conn = undefined;
            this.ctx.logger.info('connection to peer lost', { peer: this.id, reason: error?.message });
            if (conn.pendingMessages > 0) this.drop('connection lost with messages queued');
            this.enterBackoff();
          },
        });
        const pending = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        for (const body of pending) this.send(body);
        if (remote.caps?.includes('rtt') === true) this.startPinging(conn);
      },
      (err: Error) => {
        if (abort.signal.aborted || this.state !== 'connecting') return;
        this.abort = undefined;
        this.ctx.logger.debug('cannot reach peer', { peer: this.id, address, reason: err.message });
        const lost = this.pending.length > 0;
        this.pending = [];
        this.pendingBytes = 0;
        if (lost) this.drop(err.message);
        else this.ctx.unreachable(this.id);
        this.enterBackoff();
      },
    );
  }

  /**
   * Probes the round trip every `pingIntervalMs` on the open connection (like etcd's peer prober): a Ping holds
   * the send time, the peer echoes it in a Pong, queued as a small message behind what is queued before it.
   */
  private startPinging(conn: FramedConnection): void {
    const every = this.ctx.pingIntervalMs;
    if (every <= 0) return;
    const ping = () => {
      const body = new Uint8Array(8);
      new DataView(body.buffer).setFloat64(0, performance.now());
      conn.send(FrameType.Ping, body);
    };
    this.pinger = setInterval(ping, every);
    this.pinger.unref();
    ping();
  }

  private stopPinging(): void {
    if (this.pinger !== undefined) clearInterval(this.pinger);
    this.pinger = undefined;
  }

  private enterBackoff(): void {
    if (this.state === 'closed') return;
    this.state = 'backoff';
    this.wanted = false;
    this.reported = false;
    const delay = this.backoff.next();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state !== 'backoff') return;
      if (this.wanted) {
        this.reported = false;
        this.connect();
      } else this.state = 'idle';
    }, delay);
    this.timer.unref();
  }
}
