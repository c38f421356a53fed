import { ScenarioNetwork, type Invariant, type ReplicaView, type ScenarioReplica, type SimView } from '@consensus-kit/core/testing';
import type { LogEntry, NodeId, Protocol, Ready } from '@consensus-kit/core';
import { decodeHardState } from '../src/hard-state';
import { paxosInvariants } from '../src/invariants';
import type { PaxosMessage } from '../src/messages';
import type { PaxosSpecificOptions } from '../src/options';
import { PaxosNode } from '../src/paxos';

export type NodeOptions = PaxosSpecificOptions & { electionTicks?: number; heartbeatTicks?: number };
export type Replica = ScenarioReplica<PaxosNode>;

/**
 * Multi-Paxos' test network: core's `ScenarioNetwork` of PaxosNodes with Paxos' invariants checked after every
 * Ready, and, before any message of a Ready leaves, that a Promise or an Accepted never leaves ahead of the
 * durable promise and accepted values it reports (Paxos Made Simple 2.3).
 */
export class TestNetwork extends ScenarioNetwork<PaxosNode> {
  private readonly invariants: Invariant[] = paxosInvariants();

  constructor(ids: NodeId[], options: NodeOptions = {}, seed = 1) {
    const hooks: { net?: TestNetwork } = {};
    super(ids, {
      seed,
      create: (o) => new PaxosNode({ ...options, ...o }),
      onPersisted: (r, rd) => checkDurableBeforeSend(r, rd),
      afterReady: () => hooks.net?.check(),
    });
    hooks.net = this;
  }

  private view(): SimView {
    const replicas: ReplicaView[] = [...this.replicas.values()].map((r) => ({
      id: r.id,
      state: r.up ? 'up' : 'crashed',
      incarnation: r.incarnation,
      protocol: r.up ? r.node : undefined,
      status: () => (r.up ? r.node.status() : undefined),
      storage: r.storage,
      appliedIndex: r.appliedIndex,
    }));
    return {
      time: 0,
      tick: 0,
      replicas,
      replica: (id) => replicas.find((r) => r.id === id) as ReplicaView,
      committed: new Map(),
      protocolAs: <T extends Protocol>(id: NodeId) => (this.get(id).up ? (this.get(id).node as unknown as T) : undefined),
    };
  }

  check(): void {
    const view = this.view();
    for (const inv of this.invariants) {
      const msg = inv.check(view);
      if (msg !== undefined) throw new Error(`invariant ${inv.name} violated: ${msg}`);
    }
  }

  /** A node's slots in memory (persisted or not). */
  entries(id: NodeId): LogEntry[] {
    const n = this.get(id).node;
    return n.log.slice(n.log.firstIndex, n.log.lastIndex);
  }
}

function checkDurableBeforeSend(r: Replica, rd: Ready): void {
  const raw = r.storage.raw.hardState;
  const promised = raw === undefined ? 0 : decodeHardState(raw).promised;
  for (const env of rd.messages) {
    const m = env.msg as PaxosMessage;
    if (m.type === 'Promise' && m.ballot > promised) throw new Error(`${r.id} sent a Promise for ${m.ballot} before persisting it (durable ${promised})`);
    if (m.type === 'Accepted') {
      for (let s = m.from; s <= m.to; s++) {
        if (s <= r.storage.firstIndex() - 1 || s > r.storage.lastIndex()) continue;
        const t = r.storage.term(s);
        // Slots the acceptor knows decided need no vote (it holds their chosen value); its in-memory commit counts,
        // the stored one may be older (see `decide` in learner.ts).
        if (t < m.ballot && s > r.node.commit) throw new Error(`${r.id} acknowledged slot ${s} at ${m.ballot} before persisting it`);
      }
    }
  }
}
