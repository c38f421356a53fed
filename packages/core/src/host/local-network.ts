import { pack, unpack } from 'msgpackr';
import { TransportError } from '../errors';
import type { Envelope, NodeId, Transport, TransportHandler } from '../types';
import { assertNodeId } from '../validate';

export interface LocalNetworkOptions {
  /**
   * Round-trip every message through msgpackr, as a real wire would (default true): catches messages that
   * are not plain encodable data and keeps senders and receivers from sharing objects.
   */
  serialize?: boolean;
}

/**
 * An in-process network for tests and demos: one `Transport` per node, asynchronous delivery (never
 * re-entrant into the sender), and switches to cut links one way or both.
 */
export class LocalNetwork {
  private readonly handlers = new Map<NodeId, TransportHandler>();
  private readonly blocked = new Set<string>();
  private readonly serialize: boolean;
  /** Messages handed to the network, delivered or not. */
  sent = 0;
  delivered = 0;
  /** Envelopes refused because they claimed another sender (`send` never throws; it drops them). */
  refused = 0;

  constructor(options: LocalNetworkOptions = {}) {
    this.serialize = options.serialize ?? true;
  }

  /** The transport of node `id`. */
  transport(id: NodeId): Transport {
    assertNodeId(id);
    return new LocalTransport(this, id);
  }

  /** Stop delivering messages from `from` to `to` (one-way). */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}\u0000${to}`);
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(`${from}\u0000${to}`);
  }

  /** Cut `node` off from everyone else, both ways. */
  isolate(node: NodeId): void {
    for (const other of this.handlers.keys()) {
      if (other === node) continue;
      this.block(node, other);
      this.block(other, node);
    }
  }

  /** Restore every link. */
  heal(): void {
    this.blocked.clear();
  }

  /** @internal */
  attach(id: NodeId, handler: TransportHandler): void {
    if (this.handlers.has(id)) throw new TransportError(`node ${id} is already attached to this network`);
    this.handlers.set(id, handler);
  }

  /** @internal */
  detach(id: NodeId): void {
    this.handlers.delete(id);
  }

  /** @internal */
  post(from: NodeId, envelopes: readonly Envelope[]): void {
    for (const env of envelopes) {
      if (typeof env !== 'object' || env === null || env.from !== from || typeof env.to !== 'string') {
        this.refused++;
        continue;
      }
      this.sent++;
      const wire = this.serialize ? pack(env.msg) : env.msg;
      setImmediate(() => {
        if (this.blocked.has(`${env.from}\u0000${env.to}`)) return;
        const target = this.handlers.get(env.to);
        if (target === undefined) {
          this.handlers.get(from)?.unreachable?.(env.to);
          return;
        }
        this.delivered++;
        const msg = this.serialize ? unpack(wire as Uint8Array) : wire;
        target.deliver({ from: env.from, to: env.to, msg });
      });
    }
  }
}

class LocalTransport implements Transport {
  private started = false;
  constructor(
    private readonly network: LocalNetwork,
    private readonly id: NodeId,
  ) {}

  async start(handler: TransportHandler): Promise<void> {
    if (this.started) throw new TransportError(`transport of ${this.id} is already started`);
    this.network.attach(this.id, handler);
    this.started = true;
  }

  send(envelopes: readonly Envelope[]): void {
    if (!this.started) return;
    this.network.post(this.id, envelopes);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.network.detach(this.id);
  }
}
