import { assertNodeId, type NodeId } from '@consensus-kit/core';

export type FaultDirection = 'outbound' | 'inbound' | 'both';

/**
 * Drops traffic to and/or from chosen peers, for local clusters and tests (`consensus-cli partition`).
 * Dropping happens above the sockets: connections stay up, messages silently vanish, as in a network
 * partition that loses packets; the sender is not told (a real partition does not tell it either).
 */
export class FaultControl {
  private readonly out = new Set<NodeId>();
  private readonly in = new Set<NodeId>();
  /** Messages dropped by this control, per direction. */
  droppedOutbound = 0;
  droppedInbound = 0;

  /** Drop messages to `peer` (outbound), from `peer` (inbound) or both (default). */
  block(peer: NodeId, direction: FaultDirection = 'both'): void {
    assertNodeId(peer, 'peer');
    if (direction !== 'inbound') this.out.add(peer);
    if (direction !== 'outbound') this.in.add(peer);
  }

  unblock(peer: NodeId, direction: FaultDirection = 'both'): void {
    if (direction !== 'inbound') this.out.delete(peer);
    if (direction !== 'outbound') this.in.delete(peer);
  }

  /** Block every listed peer both ways. */
  isolate(peers: Iterable<NodeId>): void {
    for (const p of peers) this.block(p, 'both');
  }

  /** Restore every link. */
  heal(): void {
    this.out.clear();
    this.in.clear();
  }

  /** What is blocked now, for status displays. */
  blocked(): { outbound: NodeId[]; inbound: NodeId[] } {
    return { outbound: [...this.out].sort(), inbound: [...this.in].sort() };
  }

  /** @internal */
  dropsOutbound(peer: NodeId): boolean {
    if (this.out.size === 0 || !this.out.has(peer)) return false;
    this.droppedOutbound++;
    return true;
  }

  /** @internal */
  dropsInbound(peer: NodeId): boolean {
    if (this.in.size === 0 || !this.in.has(peer)) return false;
    this.droppedInbound++;
    return true;
  }
}
