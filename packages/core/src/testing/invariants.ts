import type { LogEntry, NodeId, Protocol, Status, Storage } from '../types';

/**
 * What an invariant sees after every step of a harness (the simulator, a scenario network). Declared once, here, for every protocol and harness (DESIGN r2). Protocol packages export their own invariants (Raft's
 * election safety, ZAB's primary order, ...) written against this view; `protocolAs` hands them their own
 * node type.
 */
export interface ReplicaView {
  readonly id: NodeId;
  /** `paused`: a stalled process (its ticks stop, its inbox fills); `crashed`: no process at all. */
  readonly state: 'up' | 'paused' | 'crashed';
  /** Starts at 1; +1 on every restart. */
  readonly incarnation: number;
  /** The running protocol instance; undefined while crashed. */
  readonly protocol: Protocol | undefined;
  /** `protocol.status()`, computed on demand; undefined while crashed. */
  status(): Status | undefined;
  /** What the replica has made durable (a batch still in its simulated fsync is not there yet). */
  readonly storage: Storage;
  /** The last index applied to this replica's state machine in this incarnation. */
  readonly appliedIndex: number;
}

export interface SimView {
  /** Simulated time in microseconds. */
  readonly time: number;
  /** Simulated time in ticks of the reference clock (a replica with a fast clock ticks more often). */
  readonly tick: number;
  readonly replicas: readonly ReplicaView[];
  replica(id: NodeId): ReplicaView;
  /** The cluster's committed log: the entry first applied at each index by any replica. */
  readonly committed: ReadonlyMap<number, LogEntry>;
  /**
   * The protocol instance of `id`, cast to the protocol package's own node type (`view.protocolAs<RaftNode>('n1')`);
   * undefined while the replica is crashed. The cast is unchecked: use it only in your own protocol's invariants.
   */
  protocolAs<T extends Protocol>(id: NodeId): T | undefined;
}

/**
 * A safety property checked after every step. Return undefined when it holds, or a one-line description of
 * the violation (it becomes the run's failure message). An invariant may keep state between calls (e.g. the
 * leader seen in each term); then export a factory so every run gets fresh instances.
 */
export interface Invariant {
  readonly name: string;
  check(view: SimView): string | undefined;
}

/** What a protocol package exports as `invariants`: a list, or a factory called once per run. */
export type InvariantSource = readonly Invariant[] | (() => readonly Invariant[]);

export function instantiateInvariants(source: InvariantSource | undefined): Invariant[] {
  if (source === undefined) return [];
  return [...(typeof source === 'function' ? source() : source)];
}

/**
 * At most one leader per term (Raft 5.2, "Election Safety"), observed through `status()`: a protocol-agnostic
 * invariant for protocols whose `term` means a leader's term (Raft, ZAB epochs, Paxos ballots with a
 * distinguished proposer). Returns a fresh, stateful instance.
 */
export function electionSafety(): Invariant {
  const leaders = new Map<number, NodeId>();
  return {
    name: 'election-safety',
    check(view) {
      for (const r of view.replicas) {
        const s = r.status();
        if (s === undefined || s.role !== 'leader') continue;
        const seen = leaders.get(s.term);
        if (seen === undefined) leaders.set(s.term, s.id);
        else if (seen !== s.id) return `two leaders in term ${s.term}: ${seen} and ${s.id}`;
      }
      return undefined;
    },
  };
}
