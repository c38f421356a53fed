import {
  NotLeaderError,
  ProposalDroppedError,
  assertBytes,
  SnapshotReceiver,
  resolveProtocolOptions,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type NodeId,
  type ObservesCompaction,
  type Protocol,
  type Ready,
  type ReadState,
  type Status,
  type Storage,
} from '@consensus-kit/core';
import { handleAccept, handleHeartbeat, handlePrepare } from './acceptor';
import { decodeHardState } from './hard-state';
import { handleTimeoutNow, transferLeadership } from './leader-transfer';
import { handleCatchupRequest, handleLearn, handleLearned, handleSnapshot, handleSnapshotAck, tickSnapshots, type OutgoingSnapshot, type PendingInstall } from './learner';
import { Membership } from './membership';
import { parseMessage, type PaxosMessage } from './messages';
import { markStatus, status } from './node-status';
import { checkFlexibleQuorums, resolvePaxosOptions, type PaxosOptions, type ResolvedPaxosOptions } from './options';
import { PaxosLog } from './paxos-log';
import { becomeFollower, campaign, canCampaign, handleNack, handlePromise, resetElectionTimer } from './phase1';
import { fill, handleAccepted, handleHeartbeatReply, tickLeader, type CoverMemo, type Peer } from './phase2';
import { readIndex, type Round } from './reads';
import { advance, hasReady, ready } from './ready';
import { proposeConfigChange } from './reconfiguration';
import type { PaxosStatusDetails } from './status-details';
import { WaitingQueue } from './waiting-queue';

/**
 * Multi-Paxos as a pure state machine (Lamport, "Paxos Made Simple" section 3; van Renesse & Altinbuken, "Paxos
 * Made Moderately Complex", PMMC). Every node is an acceptor and a learner; a node that suspects the leader runs
 * phase 1 once for every slot above its commit point and, once a phase-1 quorum promised, leads: it re-proposes
 * the highest-ballot value it learned for each slot, fills gaps with no-ops, and then assigns one new slot per
 * proposal, pipelined within PMMC's WINDOW.
 *
 * This class holds the state and the inputs (`tick`, `step`, the proposals); the protocol is split as etcd's
 * raft is, in functions over this state, which is why its fields are not private (they are internal, not API):
 * the acceptor (acceptor.ts), the learner and catch-up (learner.ts), the proposer's phase 1 and role changes
 * (phase1.ts), the leader's phase 2 (phase2.ts), reads (reads.ts), quorums (quorums.ts), reconfiguration
 * (reconfiguration.ts), leadership transfer (leader-transfer.ts), Ready assembly (ready.ts) and the status
 * (node-status.ts).
 */
export class PaxosNode implements Protocol, ObservesCompaction {
  readonly id: NodeId;
  /** @internal */ readonly o: ResolvedPaxosOptions;
  /** @internal */ readonly electionTicks: number;
  /** @internal */ readonly heartbeatTicks: number;
  /** @internal */ readonly random: () => number;
  /** @internal */ readonly storage: Storage;
  readonly log: PaxosLog;

  // Acceptor and learner state (durable part in the hard state).
  promised = 0;
  commit = 0;
  membership: Membership;
  /** @internal Paxos Made Live 5.1: no promises until this slot is decided (accepted values may be lost). */
  amnesiaUntil = 0;
  /** @internal The last slot handed out in `Ready.committed`. */
  emitted: number;
  /** @internal The highest ballot seen in any message. */
  maxSeen = 0;

  role: 'follower' | 'candidate' | 'leader' = 'follower';
  leaderId: NodeId | undefined;
  /** @internal */ leaderBallot = 0;
  /** @internal */ elapsed = 0;
  /** @internal */ timeout = 0;
  /** @internal Ticks since creation. */
  now = 0;

  // Outputs (internal).
  /** @internal */ msgs: Envelope[] = [];
  /** @internal */ readsOut: ReadState[] = [];
  /** @internal */ hsDirty = false;
  /** @internal What the last `Ready.status` reported. */
  lastStatus: { role: Status['role']; term: number; leader: NodeId | undefined };
  /** @internal */ snap: PendingInstall | undefined;
  /**
   * @internal A Ready carrying a snapshot install was handed out and not yet advanced: the host is making the
   * install durable and restoring the state machine from it (seconds for a large one), and no campaign starts
   * meanwhile (phase1.ts `canCampaign`). A replica that has just been brought up to date by the leader is not the
   * one to depose it the moment it stops hearing from it (the pre-vote idea, Raft thesis 9.6: a node that cannot
   * win, or has no reason to, does not disrupt); it campaigns once the host is done, if the leader is still silent.
   */
  installing = false;
  /** @internal A peer's snapshot being assembled from its chunks (learner.ts). */
  snapIn: SnapshotReceiver;
  /** @internal The last snapshot transfer refused (over `maxSnapshotBytes`, malformed): who sent it and why. */
  snapRefused: string | undefined;
  /** @internal The tick a chunk last added to `snapIn` (-1: none since it was last dropped); see tickSnapshots. */
  snapInAt = -1;
  /** @internal Snapshot transfers to peers behind the compacted log, by peer (learner.ts). */
  snapOut = new Map<NodeId, OutgoingSnapshot>();

  // Proposer state (candidate and leader).
  ballot = 0;
  /** @internal */ promisers = new Set<NodeId>();
  /** @internal */ asked = new Set<NodeId>();
  /** @internal Per slot, the highest-ballot value phase 1 reported (P2c). */
  adopt = new Map<number, LogEntry>();
  /** @internal */ maxAdopt = 0;
  /** @internal The commit point phase 1 started from. */
  base = 0;
  nextSlot = 0;
  /** @internal */ waiting = new WaitingQueue();
  /** @internal Leader: propose no-ops up to this slot when no proposal waits (a configuration's activation). */
  noopsUntil = 0;
  /** @internal `fill`'s memo of the phase-1 coverage (phase2.ts). */
  coverMemo: CoverMemo | undefined;
  /** @internal */ peers = new Map<NodeId, Peer>();
  /** @internal */ selfMatch = 0;
  /** @internal */ readyMark: { ballot: number; upTo: number } | undefined;
  /** @internal The last Ready sent the leader's Accepts ahead of its new slots (ready.ts). */
  sentFirst = false;
  /** @internal */ hbElapsed = 0;
  /** @internal */ cqElapsed = 0;
  /** @internal */ seq = 0;
  /** @internal */ rounds = new Map<number, Round>();
  /** @internal */ reads: { ctx: Uint8Array; index: number; seq: number }[] = [];
  /** @internal */ recentActive = new Set<NodeId>();
  /** @internal */ needBroadcast = false;
  /** @internal */ needHeartbeat = false;
  /** @internal */ transferTo: NodeId | undefined;
  /** @internal */ transferElapsed = 0;
  /** @internal */ leaseUntil = 0;

  constructor(options: PaxosOptions) {
    const r = resolveProtocolOptions(options);
    this.o = resolvePaxosOptions(options);
    this.id = r.id;
    this.electionTicks = r.electionTicks;
    this.heartbeatTicks = r.heartbeatTicks;
    this.random = r.random;
    this.storage = options.storage;
    this.log = new PaxosLog(options.storage, this.o.logChunkBits);
    this.snapIn = new SnapshotReceiver({ maxBytes: this.o.maxSnapshotBytes });
    const raw = options.storage.initialState().hardState;
    const snap = options.storage.snapshot();
    if (raw !== undefined) {
      const hs = decodeHardState(raw);
      this.promised = hs.promised;
      this.commit = hs.commit;
      this.membership = hs.membership;
      this.amnesiaUntil = hs.amnesiaUntil;
      // A snapshot install whose closing hard state never became durable: the install's own marks say where.
      // (Any later hard state, the closing one included, drops the marks, so a stored commit older than the true
      // one never meets them: an install always writes its closing hard state, see ready.ts.)
      if (hs.installing !== undefined && snap !== undefined && snap.index >= hs.installing.index && this.commit < hs.installing.index) {
        this.membership = hs.installing.membership;
        this.commit = hs.installing.index;
      }
    } else {
      this.membership = Membership.initial(r.peers);
      if (snap !== undefined && r.peers.length === 0) this.membership = new Membership([{ slot: 1, from: 1, config: snap.config }]);
    }
    checkFlexibleQuorums(this.o, this.membership.configAt(this.commit + 1).voters.length);
    // Paxos Made Simple 2.3: the promise survives restarts; an accepted ballot is a promise too.
    for (let s = this.log.firstIndex; s <= this.log.lastIndex; s++) {
      const t = this.log.termAt(s);
      if (t > this.promised) this.promised = t;
    }
    // The stored commit may be older than the one this replica knew (it is written only along with the rest of
    // the hard state, see `decide` in learner.ts), never newer. Slots at or below the compaction point or the
    // state machine's applied index (its restored snapshot) were decided: commit at least there, as Raft does
    // with its volatile commit index (thesis Figure 3.1). The membership needs no replay for those slots: a
    // decided configuration always writes the hard state (learner.ts), before the host applies or compacts it.
    // Every slot above stays undecided here until learned again, its accepted value kept (Paxos Made Simple 2.2:
    // a higher ballot re-proposes a chosen value, so no chosen value is rewritten; see also `decide`).
    const decided = Math.max(this.commit, this.log.offset, Math.min(r.applied, this.log.lastIndex));
    this.commit = Math.min(decided, Math.max(this.log.lastIndex, this.log.offset));
    this.emitted = Math.max(Math.min(r.applied, this.commit), this.log.offset);
    // Paxos Made Live 5.1: the slots an amnesia mark covers are decided already (the mark's clearing was lost).
    if (this.amnesiaUntil > 0 && this.commit >= this.amnesiaUntil) this.amnesiaUntil = 0;
    this.maxSeen = this.promised;
    resetElectionTimer(this);
    this.lastStatus = { role: 'follower', term: 0, leader: undefined };
    markStatus(this);
  }

  // -- inputs ---------------------------------------------------------------------------------------------

  tick(): void {
    this.now++;
    tickSnapshots(this);
    if (this.role === 'leader') return tickLeader(this);
    this.elapsed++;
    if (this.elapsed >= this.timeout && (this.role === 'candidate' || canCampaign(this))) {
      if (canCampaign(this)) campaign(this, false);
      else becomeFollower(this, undefined);
    }
  }

  step(envelope: Envelope): void {
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.from !== 'string' || envelope.from === this.id) return;
    const m = parseMessage(envelope.msg);
    if (m === undefined) return;
    this.handle(envelope.from, m);
  }

  private handle(from: NodeId, m: PaxosMessage): void {
    switch (m.type) {
      case 'Prepare':
        return handlePrepare(this, from, m);
      case 'Promise':
        return handlePromise(this, from, m);
      case 'Nack':
        return handleNack(this, m);
      case 'Accept':
        return handleAccept(this, from, m);
      case 'Accepted':
        return handleAccepted(this, from, m);
      case 'Heartbeat':
        return handleHeartbeat(this, from, m);
      case 'HeartbeatReply':
        return handleHeartbeatReply(this, from, m);
      case 'Learn':
        return handleLearn(this, from, m);
      case 'Learned':
        return handleLearned(this, from, m);
      case 'CatchupRequest':
        return handleCatchupRequest(this, from, m);
      case 'SnapshotChunk':
        return handleSnapshot(this, from, m);
      case 'SnapshotAck':
        return handleSnapshotAck(this, from, m);
      case 'TimeoutNow':
        return handleTimeoutNow(this, from, m);
    }
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    this.mustLead();
    if (this.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    // One proposal = one slot (PMMC section 3): it waits here for a slot inside the window, and is never
    // re-proposed into another slot.
    this.waiting.push('command', data);
    // Behind a full window it waits for a decision (maybeCommit fills then): nothing to assign now.
    if (this.nextSlot <= this.commit + this.o.window) fill(this);
  }

  readIndex(ctx: Uint8Array): void {
    readIndex(this, ctx);
  }

  proposeConfigChange(change: ConfigChange): void {
    proposeConfigChange(this, change);
  }

  transferLeadership(to: NodeId): void {
    transferLeadership(this, to);
  }

  /** Phase 1a for every slot above the commit point; `force` passes the acceptors' stickiness (a transfer). */
  campaign(force: boolean): void {
    campaign(this, force);
  }

  compacted(index: number): void {
    if (index <= this.log.offset || index > this.log.lastIndex) return;
    this.log.compact(index, this.log.termAt(index));
    this.membership.prune(index);
  }

  // -- outputs ---------------------------------------------------------------------------------------------

  hasReady(): boolean {
    return hasReady(this);
  }

  ready(): Ready {
    return ready(this);
  }

  advance(rd: Ready): void {
    advance(this, rd);
  }

  status(): Status & { details: PaxosStatusDetails } {
    return status(this);
  }

  /** The entry at `slot` (persisted or not), for tests and invariants. */
  entryAt(slot: number): LogEntry | undefined {
    return this.log.at(slot);
  }

  /** @internal Queues a message for the next Ready. */
  send(to: NodeId, msg: PaxosMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }

  /** @internal */
  mustLead(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId === this.id ? undefined : this.leaderId);
  }
}
