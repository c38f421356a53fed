import type { Envelope, LogEntry, NodeId, Protocol, Ready, ReportsUnreachable, Role, Status, ConfigChange } from '@consensus-kit/core';
import { isVoter } from '@consensus-kit/core';
import { encodeHardState } from './hard-state';
import { cloneConfig } from './membership';
import type { RaftOptions } from './options';
import { Raft } from './raft';
import { flush, maybeCommit } from './replication';
import type { RaftPhase, RaftStatusDetails } from './status-details';

const EMPTY: LogEntry[] = [];

/** The neutral role (DESIGN r2): a pre-candidate reports `candidate`, a non-voting follower `learner`. */
function neutralRole(r: Raft): Role {
  if (r.role === 'follower' && !isVoter(r.config, r.id) && r.config.learners.includes(r.id)) return 'learner';
  return r.role === 'pre-candidate' ? 'candidate' : r.role;
}

/** What a Ready's `status` reports a change of: Raft's own phase (pre-candidate included), or learner. */
function statusKey(r: Raft): RaftPhase | 'learner' {
  const role = neutralRole(r);
  return role === 'learner' ? role : r.role;
}

/**
 * Raft as a `Protocol` (etcd's `RawNode`): the inputs go to the `Raft` core, and this facade assembles its
 * state changes into `Ready` batches (what to persist, send, apply and release) and takes them back through
 * `advance`. It remembers what the previous Ready reported, so hard state and status are emitted only when
 * they change.
 */
export class RaftNode implements Protocol, ReportsUnreachable {
  readonly id: NodeId;
  /** The Raft core (internal: its fields are the package's business). */
  private readonly raft: Raft;

  /** What the previous Ready reported, to emit hardState/status only on change. */
  private prevTerm: number;
  private prevVote: NodeId | undefined;
  private prevCommit: number;
  /** The last Ready carried a leader's messages ahead of its new entries (thesis 10.2.1). */
  private sentFirst = false;
  private prevRole: RaftPhase | 'learner';
  private prevLead: NodeId | undefined;
  private statusTerm: number;

  constructor(options: RaftOptions) {
    const r = new Raft(options);
    this.raft = r;
    this.id = r.id;
    this.prevTerm = r.term;
    this.prevVote = r.vote;
    this.prevCommit = r.log.committed;
    this.prevRole = statusKey(r);
    this.prevLead = r.lead;
    this.statusTerm = r.term;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inputs
  // ---------------------------------------------------------------------------------------------------------

  tick(): void {
    this.raft.tick();
  }

  /** Delivers one message. Malformed, misaddressed or stale input is ignored; nothing here throws for it. */
  step(envelope: Envelope): void {
    this.raft.step(envelope);
  }

  propose(data: Uint8Array): void {
    this.raft.propose(data);
  }

  proposeConfigChange(change: ConfigChange): void {
    this.raft.proposeConfigChange(change);
  }

  readIndex(ctx: Uint8Array): void {
    this.raft.readIndex(ctx);
  }

  /** Thesis 3.10 leadership transfer: catch `to` up, then tell it to time out at once. */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /** Start an election now, as if the election timer had fired (etcd's MsgHup). Ignored on a leader or non-voter. */
  campaign(): void {
    this.raft.campaign();
  }

  reportUnreachable(peer: NodeId): void {
    this.raft.reportUnreachable(peer);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Output
  // ---------------------------------------------------------------------------------------------------------

  /**
   * Whether `ready()` has anything to hand over. Pure (DESIGN r2): asking changes nothing. Work the leader
   * defers to the Ready boundary (batched appends, a commit broadcast, a ReadIndex heartbeat round) counts as
   * something to hand over; `ready()` performs it.
   */
  hasReady(): boolean {
    const r = this.raft;
    const log = r.log;
    const u = log.unstable;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      (r.role === 'leader' && (r.needAppend || r.needCommitBroadcast || r.readOnly.needsRound())) ||
      u.hasNextEntries() ||
      (u.snapshot !== undefined && !u.snapshotInProgress) ||
      log.hasNextCommittedEntries() ||
      r.term !== this.prevTerm ||
      r.vote !== this.prevVote ||
      log.committed !== this.prevCommit ||
      statusKey(r) !== this.prevRole ||
      r.lead !== this.prevLead ||
      r.term !== this.statusTerm
    );
  }

  ready(): Ready {
    const r = this.raft;
    flush(r);
    const log = r.log;
    const u = log.unstable;
    const rd: Ready = { entries: EMPTY, messages: r.msgs, committed: EMPTY, reads: r.readStates };
    r.msgs = [];
    r.readStates = [];
    // Only term and vote must be durable before a message that depends on them leaves (thesis 3.8, Figure 3.1:
    // "persistent state"); the commit index is volatile and merely rides along when they change. A commit-only
    // change therefore costs no durable write (etcd's MustSync makes the same call): on restart the node
    // re-learns its commit index from the leader, and its applied index from the host's snapshot.
    if (r.term !== this.prevTerm || r.vote !== this.prevVote) {
      rd.hardState = encodeHardState({ term: r.term, vote: r.vote, commit: log.committed });
      this.prevTerm = r.term;
      this.prevVote = r.vote;
    }
    this.prevCommit = log.committed;
    if (u.snapshot !== undefined && !u.snapshotInProgress) {
      rd.snapshot = u.snapshot;
      log.persistedHigh = u.snapshot.index;
    }
    // Thesis 10.2.1: the leader may send AppendEntries while its own write of those entries is in flight,
    // since it counts itself towards commitment only once advance() reports them durable. The Ready contract
    // sends a batch's messages after its writes, so the leader hands out its messages in a Ready without the
    // new entries and the entries in the next one: followers write while the leader writes. Only when term
    // and vote are unchanged (no message may leave ahead of the hard state it depends on), and never twice in
    // a row, so a steady stream of messages cannot keep the entries from being written.
    const sendFirst =
      r.role === 'leader' &&
      rd.hardState === undefined &&
      rd.messages.length > 0 &&
      u.snapshot === undefined &&
      u.hasNextEntries() &&
      !this.sentFirst;
    this.sentFirst = sendFirst;
    if (!sendFirst && u.hasNextEntries()) {
      const ents = u.nextEntries();
      const first = (ents[0] as LogEntry).index;
      if (first <= log.persistedHigh) rd.truncateAfter = first - 1;
      log.persistedHigh = (ents[ents.length - 1] as LogEntry).index;
      rd.entries = ents;
    }
    if (!sendFirst) u.acceptInProgress();
    if (log.hasNextCommittedEntries()) {
      const committed = log.nextCommittedEntries(r.maxCommittedBytesPerReady);
      if (committed.length > 0) {
        log.applying = (committed[committed.length - 1] as LogEntry).index;
        rd.committed = committed;
        if (r.role === 'leader' && r.uncommittedSize > 0) {
          let bytes = 0;
          for (let i = 0; i < committed.length; i++) {
            const e = committed[i] as LogEntry;
            if (e.type === 'command') bytes += e.data.length + 24;
          }
          r.uncommittedSize = Math.max(0, r.uncommittedSize - bytes);
        }
      }
    }
    const role = statusKey(r);
    if (role !== this.prevRole || r.lead !== this.prevLead || r.term !== this.statusTerm) {
      rd.status = this.status();
      this.prevRole = role;
      this.prevLead = r.lead;
      this.statusTerm = r.term;
    }
    return rd;
  }

  advance(rd: Ready): void {
    const r = this.raft;
    const log = r.log;
    if (rd.snapshot !== undefined) {
      log.unstable.stableSnapTo(rd.snapshot.index);
      if (log.applied < rd.snapshot.index) log.applied = rd.snapshot.index;
      if (log.applying < rd.snapshot.index) log.applying = rd.snapshot.index;
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1] as LogEntry;
      log.unstable.stableTo(last.index, last.term);
      if (r.role === 'leader') {
        // Thesis 10.2.1: the leader counts itself only for what it has persisted.
        const self = r.prs.get(r.id);
        if (self !== undefined && self.maybeUpdate(Math.min(last.index, log.unstable.offset - 1))) maybeCommit(r);
      }
    }
    if (rd.committed.length > 0) {
      const last = (rd.committed[rd.committed.length - 1] as LogEntry).index;
      if (last > log.applied) log.applied = last;
    }
  }

  status(): Status & { details: RaftStatusDetails } {
    const r = this.raft;
    const details: RaftStatusDetails = { phase: r.role };
    const s: Status & { details: RaftStatusDetails } = {
      id: r.id,
      role: neutralRole(r),
      term: r.term,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      lastIndex: r.log.lastIndex(),
      config: cloneConfig(r.config),
      details,
    };
    if (r.lead !== undefined) s.leader = r.lead;
    if (r.snapRefused !== undefined) details.snapshotRefused = r.snapRefused;
    if (r.role === 'leader') {
      details.progress = r.tracker.view();
      if (r.leadTransferee !== undefined) details.transferringTo = r.leadTransferee;
    }
    return s;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Read-only inspection (tests, invariants, tooling)
  // ---------------------------------------------------------------------------------------------------------

  /** The vote cast in the current term, if any. */
  get votedFor(): NodeId | undefined {
    return this.raft.vote;
  }

  /** Term of the entry at `index` in this node's log (persisted or not), `undefined` when not held. */
  termAt(index: number): number | undefined {
    const t = this.raft.log.term(index);
    return t < 0 ? undefined : t;
  }

  /** The entry at `index`, `undefined` when compacted or past the end. */
  entryAt(index: number): LogEntry | undefined {
    if (index < this.raft.log.firstIndex() || index > this.raft.log.lastIndex()) return undefined;
    return this.raft.log.slice(index, index + 1, 1)?.[0];
  }

  firstIndex(): number {
    return this.raft.log.firstIndex();
  }
}
