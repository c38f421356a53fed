import { ScenarioNetwork, type ScenarioReplica } from '@consensus-kit/core/testing';
import type { LogEntry, NodeId, Ready } from '@consensus-kit/core';
import { decodeHardState } from '../src/hard-state';
import { RaftInvariants, type InvariantViolation, type RaftReplicaView } from '../src/invariants';
import type { RaftMessage } from '../src/messages';
import type { RaftOptions } from '../src/options';
import { RaftNode } from '../src/rawnode';

/** Options applied to every node of a test network. */
export type NodeOptions = Omit<RaftOptions, 'id' | 'peers' | 'storage' | 'applied' | 'random'>;

/** One replica in the test network: a RaftNode, its storage, and the scenario network's text state machine. */
export type Replica = ScenarioReplica<RaftNode>;

/**
 * Raft's test network: core's generic `ScenarioNetwork` of RaftNodes (FIFO delivery, cut links, partitions,
 * crash and restart from storage, msgpack round trip, the shared Ready loop), with Raft's own checks layered
 * on top: after every Ready, Raft's invariants (thesis Figure 3.2), and before any message of a Ready leaves,
 * that a granted vote is already in the persisted hard state (thesis 3.8).
 */
export class TestNetwork extends ScenarioNetwork<RaftNode> {
  readonly invariants = new RaftInvariants();
  violations: InvariantViolation[] = [];
  /** Check invariants after every Ready (default true). */
  checkInvariants = true;

  constructor(ids: NodeId[], options: NodeOptions = {}, seed = 1) {
    const hooks: { net?: TestNetwork } = {};
    super(ids, {
      seed,
      create: (o) => new RaftNode({ ...options, ...o }),
      onPersisted: (r, rd) => checkVotesPersisted(r, rd),
      afterReady: () => {
        if (hooks.net?.checkInvariants === true) hooks.net.check();
      },
      onRestart: (r) => hooks.net?.invariants.restarted(r.id),
    });
    hooks.net = this;
  }

  view(r: Replica): RaftReplicaView {
    const s = r.node.status();
    return {
      id: r.id,
      role: s.role,
      term: s.term,
      commitIndex: s.commitIndex,
      firstIndex: r.node.firstIndex(),
      lastIndex: s.lastIndex,
      entryAt: (i) => r.node.entryAt(i),
      persistedHardState: r.storage.raw.hardState,
    };
  }

  check(): void {
    const views = [...this.replicas.values()].filter((r) => r.up).map((r) => this.view(r));
    const v = this.invariants.observe(views);
    if (v.length > 0) {
      this.violations.push(...v);
      throw new Error(`invariant violated: ${v.map((x) => `${x.invariant}: ${x.message}`).join('; ')}`);
    }
  }

  /** A node's log (persisted or not), for assertions. */
  entries(id: NodeId): LogEntry[] {
    const r = this.get(id);
    const out: LogEntry[] = [];
    for (let i = r.node.firstIndex(); i <= r.node.status().lastIndex; i++) {
      const e = r.node.entryAt(i);
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}

/** Thesis 3.8: a granted vote may leave only once the hard state recording it is durable. */
function checkVotesPersisted(r: Replica, rd: Ready): void {
  const raw = r.storage.raw.hardState;
  const hs = raw === undefined ? undefined : decodeHardState(raw);
  for (const env of rd.messages) {
    const m = env.msg as RaftMessage;
    if (m.type === 'RequestVoteResponse' && !m.reject && (hs === undefined || hs.term !== m.term || hs.vote !== env.to)) {
      throw new Error(`${r.id} granted a vote to ${env.to} in term ${m.term} before persisting it`);
    }
  }
}
