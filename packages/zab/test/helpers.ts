import { ScenarioNetwork, type ScenarioNetworkOptions, type ScenarioNodeOptions, type ScenarioReplica } from '@consensus-kit/core/testing';
import type { Envelope, NodeId } from '@consensus-kit/core';
import { ZabNode } from '../src/index';
import type { ZabMessage } from '../src/messages';

export const text = (s: string) => new TextEncoder().encode(s);

/** A ScenarioNetwork of ZAB nodes, with the helpers the scenario tests share. */
export function network(ids: NodeId[], options: Record<string, unknown> = {}, hooks: Omit<ScenarioNetworkOptions<ZabNode>, 'create'> = {}): ScenarioNetwork<ZabNode> {
  return new ScenarioNetwork<ZabNode>(ids, { ...hooks, create: (o: ScenarioNodeOptions) => new ZabNode({ ...o, ...options }) });
}

/** Ticks every live replica and delivers everything, until `pred` holds (bounded). */
export function settle(net: ScenarioNetwork<ZabNode>, pred: () => boolean, max = 400): void {
  for (let i = 0; i < max; i++) {
    net.deliver();
    if (pred()) return;
    net.tickAll();
  }
  net.deliver();
  if (!pred()) throw new Error('did not settle');
}

export function leaderOf(net: ScenarioNetwork<ZabNode>): ScenarioReplica<ZabNode> | undefined {
  return net.leader();
}

export function electLeader(net: ScenarioNetwork<ZabNode>, id?: NodeId): ScenarioReplica<ZabNode> {
  settle(net, () => {
    const l = net.leader();
    return l !== undefined && (id === undefined || l.id === id) && [...net.replicas.values()].every((r) => !r.up || r.node.status().leader === l.id);
  });
  return net.leader() as ScenarioReplica<ZabNode>;
}

export function proposeAll(net: ScenarioNetwork<ZabNode>, leader: NodeId, cmds: string[]): void {
  for (const c of cmds) net.get(leader).node.propose(text(c));
  net.processAll();
  net.deliver();
  net.tickAll();
  net.deliver();
}

export const msgType = (e: Envelope) => (e.msg as ZabMessage).type;
