import {
  applyConfigChange,
  CompactedError,
  ConfigError,
  encodeClusterConfig,
  jointCommittedIndex,
  majority,
  NotLeaderError,
  ProposalDroppedError,
  assertBytes,
  assertNodeId,
  configMembers,
  isVoter,
  resolveProtocolOptions,
  type ClusterConfig,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type NodeId,
  type Protocol,
  type Ready,
  type ReadState,
  type Snapshot,
  type Status,
  type Storage,
} from '@consensus-kit/core';
import { decodeHardState, encodeHardState } from './hard-state';
import { parseMessage, type AckEpoch, type Notification, type Proposal, type Segment, type ZabMessage } from './messages';
import { resolveZabOptions, type ResolvedZabOptions, type ZabOptions } from './options';
import type { ZabPeerDetails, ZabStatusDetails } from './status-details';
import { compareVotes, type Vote } from './vote';
import { ZabLog } from './zab-log';
import { compareSummaries, describeZxid, type Zxid } from './zxid';

/** ZooKeeper's ServerState: LOOKING runs Fast Leader Election; FOLLOWING and LEADING run phases 1-3. */
export type ZabPhase = 'looking' | 'following' | 'leading';

/**
 * A follower's stage with its leader (DSN 2011 section IV-B): `discovery` until it acknowledged the new epoch
 * (`acked`), `syncing` while the history, then currentEpoch, then the NEWLEADER ack are made durable one Ready
 * each, `synced` once acked, `uptodate` after UPTODATE (it serves, and reports `follower`).
 */
export type FollowerStage = 'discovery' | 'acked' | 'syncing' | 'synced' | 'uptodate';

/** A prospective leader's stage: `discovery` (phase 1), `sync` (phase 2), `established` (phase 3). */
export type LeaderStage = 'discovery' | 'sync' | 'established';

/** One follower or observer session, as the leader sees it (ZooKeeper's LearnerHandler). */
interface Peer {
  nonce: number;
  stage: 'info' | 'acked' | 'sync' | 'synced';
  acceptedEpoch: number;
  ack?: AckEpoch;
  /** Next index to send; entries below it were sent (or are in the synced history). */
  next: number;
  /** Highest index known durable on the peer and equal to the leader's (set once NEWLEADER is acked). */
  match: number;
  sentCommit: number;
  seq: number;
  upToDateSent: boolean;
}

interface ReadRound {
  ctx: Uint8Array;
  index: number;
  seq: number;
}

/** How many election timeouts a leadership transfer waits for its target to join and synchronise (see tickTransfer). */
const TRANSFER_JOIN_ELECTIONS = 10;

const NO_ENTRIES: LogEntry[] = [];
const NO_MESSAGES: Envelope[] = [];
const NO_READS: ReadState[] = [];

/**
 * ZAB as a pure state machine: Junqueira, Reed, Serafini, "Zab: High-performance broadcast for primary-backup
 * systems" (DSN 2011), as ZooKeeper implements it (Medeiros 2012, "ZooKeeper's atomic broadcast protocol: Theory
 * and practice"): Fast Leader Election (FastLeaderElection), then per follower discovery (FOLLOWERINFO /
 * LEADERINFO / ACKEPOCH), synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and broadcast (PROPOSAL /
 * ACK / COMMIT), with zxids mapped onto the log as (term, index) (see zxid.ts).
 */
export class ZabNode implements Protocol {
  readonly id: NodeId;
  /** @internal */ readonly o: ResolvedZabOptions;
  /** @internal */ readonly electionTicks: number;
  /** @internal */ readonly heartbeatTicks: number;
  /** @internal */ readonly random: () => number;
  readonly log: ZabLog;

  // Durable (hard-state.ts).
  acceptedEpoch = 0;
  acceptedBy: NodeId = '';
  currentEpoch = 0;
  private boot: NodeId[];
  private sessions = 0;
  private hsDirty = false;

  phase: ZabPhase = 'looking';
  /** Entries up to here are committed (known delivered by a quorum in order). Not durable: learnt again. */
  commit: number;
  /** The last index handed out in `Ready.committed` (or restored from a snapshot). */
  emitted: number;

  // Fast Leader Election (FastLeaderElection.lookForLeader).
  round = 0;
  vote: Vote | undefined;
  private recv = new Map<NodeId, Vote>();
  private elapsed = 0;
  private timeout = 0;
  private finalize = false;

  // Following.
  leaderId: NodeId | undefined;
  /** The epoch of the leader followed (known from LEADERINFO). */
  leaderEpoch = 0;
  stage: FollowerStage = 'discovery';
  private nonce = 0;
  /** The `req` of this follower's latest ACKEPOCH (see messages.ts). */
  private syncReq = 0;

  // Leading.
  epoch = 0;
  leaderStage: LeaderStage = 'discovery';
  /** The last index of the leader's initial history: the epoch's zxid counter counts from here. */
  epochBase = 0;
  private peers = new Map<NodeId, Peer>();
  private selfAcked = false;
  /** The leader's currentEpoch is durable with its history: its own ack counts. */
  private selfSynced = false;
  private selfMatch = 0;
  private active = new Set<NodeId>();
  private seq = 0;
  private reads: ReadRound[] = [];
  private needBroadcast = false;
  /** The last Ready sent PROPOSALs ahead of the leader's own write of those entries. */
  private sentFirst = false;
  private transferTo: NodeId | undefined;
  /** Ticks since the transfer was asked for (bounds the wait for a target that has not synchronised yet). */
  private transferElapsed = 0;
  /** Ticks of the final catch-up, proposals paused, once the target is synchronised (Raft thesis 3.10's bound). */
  private transferCatchUp = 0;
  /** The PING sequence number sent with the transfer request: a PONG at or above it shows the target alive since. */
  private transferSeq = 0;
  private hbElapsed = 0;

  // Output.
  private msgs: Envelope[] = [];
  private readsOut: ReadState[] = [];
  /** Work to do once the next Ready is durable: the strict persist order of phase 2 (DESIGN "Crash order"). */
  private afterNext: (() => void)[] = [];
  private inflight: { actions: (() => void)[]; upTo: number } | undefined;
  private lastStatus: { role: Status['role']; term: number; leader: NodeId | undefined };

  constructor(options: ZabOptions) {
    const r = resolveProtocolOptions(options);
    this.o = resolveZabOptions(options);
    this.id = r.id;
    this.electionTicks = r.electionTicks;
    this.heartbeatTicks = r.heartbeatTicks;
    this.random = r.random;
    const storage: Storage = options.storage;
    const raw = storage.initialState().hardState;
    if (raw !== undefined) {
      const hs = decodeHardState(raw);
      this.acceptedEpoch = hs.acceptedEpoch;
      this.acceptedBy = hs.acceptedBy;
      this.currentEpoch = hs.currentEpoch;
      this.boot = hs.boot;
      this.sessions = hs.sessions;
    } else {
      this.boot = [...r.peers].sort();
      this.hsDirty = this.boot.length > 0;
    }
    this.log = new ZabLog(storage, { voters: this.boot, learners: [] });
    this.commit = this.emitted = Math.min(Math.max(r.applied, this.log.base), this.log.lastIndex);
    this.lastStatus = { role: this.neutralRole(), term: this.term(), leader: undefined };
    this.startLooking();
  }

  // ---- Inputs -------------------------------------------------------------------------------------------------

  tick(): void {
    this.elapsed++;
    if (this.phase === 'looking') this.tickLooking();
    else if (this.phase === 'following') this.tickFollowing();
    else this.tickLeading();
  }

  step(envelope: Envelope): void {
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.from !== 'string' || envelope.from === this.id) return;
    const m = parseMessage(envelope.msg);
    if (m === undefined) return;
    const from = envelope.from;
    if (m.type === 'Notification') return this.handleNotification(from, m);
    // A FOLLOWERINFO to a peer that does not lead: it answers with its state, so the sender looks again.
    if (m.type === 'FollowerInfo' && this.phase !== 'leading') return this.send(from, this.notification());
    if (this.phase === 'following' && from === this.leaderId) return this.stepFollower(m);
    if (this.phase === 'leading') return this.stepLeader(from, m);
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    this.proposeEntry('command', data);
  }

  readIndex(ctx: Uint8Array): void {
    assertBytes(ctx, 'read context');
    if (!this.isLeader()) throw new NotLeaderError(this.leaderHint());
    // A read barrier (ZooKeeper's `sync` alone is not linearizable): the commit point now, released once a quorum
    // answered a PING sent after the request in this epoch, so no newer leader can have committed past it.
    this.seq++;
    this.reads.push({ ctx, index: this.commit, seq: this.seq });
    this.broadcastPing();
    this.maybeReleaseReads();
  }

  proposeConfigChange(change: ConfigChange): void {
    if (!this.isLeader()) throw new NotLeaderError(this.leaderHint());
    // Refused for the whole transfer: a change could remove its target.
    if (this.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    const configs = this.log.configs;
    if ((configs[configs.length - 1] as { index: number }).index > this.commit) throw new ProposalDroppedError('config-change-in-progress');
    const current = this.log.config;
    const target = applyConfigChange(current, change);
    // One voter at a time (Raft thesis 4.1; ZooKeeper's incremental reconfig adds or removes servers in one
    // proposal acknowledged by quorums of both configurations, Shraer et al., USENIX ATC 2012): any majority of
    // the old voters meets any majority of the new, so the election and discovery quorums of either intersect.
    const added = target.voters.filter((v) => !current.voters.includes(v));
    const removed = current.voters.filter((v) => !target.voters.includes(v));
    if (added.length + removed.length > 1) throw new ConfigError('zab changes its voters one server at a time: add or remove one voter per change');
    this.proposeEntry('config', encodeClusterConfig(target));
  }

  transferLeadership(to: NodeId): void {
    assertNodeId(to, 'transfer target');
    if (!this.isLeader()) throw new NotLeaderError(this.leaderHint());
    if (to === this.id) return;
    if (!this.log.config.voters.includes(to)) throw new ConfigError(`${to} is not a voter: leadership goes to voters only`);
    this.transferTo = to;
    this.transferElapsed = this.transferCatchUp = 0;
    // The leader does not know a server died: it hands over only once the target answered a PING sent now (a
    // handoff to a dead server would leave the ensemble leaderless until an election, which the target cannot win).
    this.transferSeq = ++this.seq;
    this.broadcastPing();
    // A target with no session yet (still starting, or looking) is invited at once.
    if (this.peers.get(to)?.stage !== 'synced') this.send(to, this.notification());
  }

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.readsOut.length > 0 ||
      this.hsDirty ||
      this.log.hasUnsaved() ||
      this.afterNext.length > 0 ||
      this.needBroadcast ||
      Math.min(this.commit, this.log.stableIndex) > this.emitted ||
      this.statusChanged()
    );
  }

  ready(): Ready {
    if (this.needBroadcast) this.broadcastEntries();
    this.needBroadcast = false;
    const rd: Ready = { entries: NO_ENTRIES, messages: NO_MESSAGES, committed: NO_ENTRIES, reads: NO_READS };
    // Committed entries are handed out once durable here (the stable index as of before this Ready).
    const upTo = Math.min(this.commit, this.log.stableIndex);
    if (upTo > this.emitted) {
      rd.committed = this.log.entries(this.emitted + 1, upTo);
      this.emitted = upTo;
    }
    // As Raft thesis 10.2.1 (and etcd's raft): the leader hands out its PROPOSALs in a Ready without the new entries
    // and writes them in the next, so followers write while it writes instead of after it. A PROPOSAL is not the
    // leader's ACK: its own acknowledgement counts only for what a Ready made durable (`advance`). Only when nothing
    // else in the Ready needs those writes first (broadcast traffic alone), and never twice in a row.
    const sendFirst =
      this.isLeader() &&
      !this.sentFirst &&
      !this.hsDirty &&
      this.afterNext.length === 0 &&
      this.msgs.length > 0 &&
      this.log.hasOnlyNewEntries() &&
      this.msgs.every((e) => {
        const t = (e.msg as ZabMessage).type;
        return t === 'Proposal' || t === 'Inform' || t === 'Ping' || t === 'Commit';
      });
    this.sentFirst = sendFirst;
    const save: { snapshot?: Snapshot; truncateAfter?: number; entries: LogEntry[]; upTo: number } = sendFirst ? { entries: NO_ENTRIES, upTo: this.log.stableIndex } : this.log.takeUnsaved();
    if (save.snapshot !== undefined) {
      rd.snapshot = save.snapshot;
      this.emitted = Math.max(this.emitted, save.snapshot.index);
      this.commit = Math.max(this.commit, save.snapshot.index);
    }
    if (save.truncateAfter !== undefined) rd.truncateAfter = save.truncateAfter;
    if (save.entries.length > 0) rd.entries = save.entries;
    if (this.hsDirty) {
      rd.hardState = encodeHardState({ acceptedEpoch: this.acceptedEpoch, acceptedBy: this.acceptedBy, currentEpoch: this.currentEpoch, boot: this.boot, sessions: this.sessions });
      this.hsDirty = false;
    }
    if (this.msgs.length > 0) {
      rd.messages = this.msgs;
      this.msgs = [];
    }
    if (this.readsOut.length > 0) {
      rd.reads = this.readsOut;
      this.readsOut = [];
    }
    if (this.statusChanged()) {
      this.lastStatus = { role: this.neutralRole(), term: this.term(), leader: this.statusLeader() };
      rd.status = this.status();
    }
    this.inflight = { actions: this.afterNext, upTo: save.upTo };
    this.afterNext = [];
    return rd;
  }

  advance(_rd: Ready): void {
    const f = this.inflight;
    this.inflight = undefined;
    if (f === undefined) return;
    this.log.markStable(f.upTo);
    if (this.phase === 'leading' && this.selfSynced) {
      const m = Math.min(this.log.stableIndex, this.log.lastIndex);
      if (m > this.selfMatch) {
        this.selfMatch = m;
        this.maybeCommit();
      }
    }
    for (const a of f.actions) a();
    this.log.release(this.emitted);
  }

  status(): Status & { details: ZabStatusDetails } {
    const last: Zxid = this.zxidAt(this.log.lastIndex);
    const details: ZabStatusDetails = {
      phase: this.phase,
      acceptedEpoch: this.acceptedEpoch,
      currentEpoch: this.currentEpoch,
      lastZxid: describeZxid(last),
      round: this.round,
    };
    if (this.phase === 'following') details.stage = this.stage;
    if (this.phase === 'leading') {
      details.stage = this.leaderStage;
      details.epochBase = this.epochBase;
      if (this.transferTo !== undefined) details.transferringTo = this.transferTo;
      const peers: Record<string, ZabPeerDetails> = {};
      for (const [id, p] of this.peers) peers[id] = { stage: p.stage, match: p.match, next: p.next };
      details.peers = peers;
    }
    const s: Status & { details: ZabStatusDetails } = {
      id: this.id,
      role: this.neutralRole(),
      term: this.term(),
      commitIndex: this.commit,
      appliedIndex: this.emitted,
      lastIndex: this.log.lastIndex,
      config: this.log.config,
      details,
    };
    const leader = this.statusLeader();
    if (leader !== undefined) s.leader = leader;
    return s;
  }

  // ---- Views --------------------------------------------------------------------------------------------------

  /** Established leader: a quorum acknowledged NEWLEADER (DSN 2011 IV-B, end of phase 2). */
  isLeader(): boolean {
    return this.phase === 'leading' && this.leaderStage === 'established';
  }

  /**
   * The zxid of the entry at `index` (DSN 2011 III-A): its epoch, and its counter within the epoch, counted from the
   * epoch's first index in this log. Where a snapshot cut off the epoch's beginning, counted from the snapshot.
   */
  zxidAt(index: number): Zxid {
    const term = this.log.term(index) ?? 0;
    if (term === 0) return { epoch: 0, counter: index };
    const first = this.log.runStart(index);
    return { epoch: term, counter: first === this.log.base ? index - first : index - first + 1 };
  }

  /** The entry at `index`, if this replica still holds it. */
  entryAt(index: number): LogEntry | undefined {
    return this.log.entry(index);
  }

  private voters(): readonly NodeId[] {
    return this.log.config.voters;
  }

  private amVoter(): boolean {
    return this.log.config.voters.includes(this.id);
  }

  private term(): number {
    if (this.isLeader()) return this.epoch;
    if (this.phase === 'following' && this.stage === 'uptodate') return this.leaderEpoch;
    return this.currentEpoch;
  }

  private statusLeader(): NodeId | undefined {
    if (this.isLeader()) return this.id;
    if (this.phase === 'following' && this.stage === 'uptodate') return this.leaderId;
    return undefined;
  }

  private leaderHint(): NodeId | undefined {
    if (this.phase === 'following') return this.leaderId;
    return this.statusLeader();
  }

  private neutralRole(): Status['role'] {
    if (!isVoter(this.log.config, this.id)) return 'learner';
    if (this.isLeader()) return 'leader';
    if (this.phase === 'following' && this.stage === 'uptodate') return 'follower';
    return 'candidate';
  }

  private statusChanged(): boolean {
    const l = this.lastStatus;
    return l.role !== this.neutralRole() || l.term !== this.term() || l.leader !== this.statusLeader();
  }

  private send(to: NodeId, msg: ZabMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }

  private members(): NodeId[] {
    return configMembers(this.log.config).filter((m) => m !== this.id);
  }

  private myVote(): Vote {
    return { leader: this.id, epoch: this.currentEpoch, term: this.log.lastTerm, index: this.log.lastIndex };
  }

  // ---- Fast Leader Election (ZooKeeper FastLeaderElection; Medeiros 2012, section 3.1) -------------------------

  private resetTimeout(): void {
    this.elapsed = 0;
    this.timeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }

  /** LOOKING: a new electoral round, voting for itself (lookForLeader: `logicalclock++`, `updateProposal(self)`). */
  private startLooking(): void {
    this.resetRoleState();
    this.phase = 'looking';
    this.round++;
    this.recv.clear();
    this.finalize = false;
    this.vote = this.amVoter() ? this.myVote() : undefined;
    if (this.vote !== undefined) this.recv.set(this.id, this.vote);
    this.resetTimeout();
    this.broadcastNotification();
    this.maybeDecide();
  }

  private resetRoleState(): void {
    this.leaderId = undefined;
    this.stage = 'discovery';
    this.leaderStage = 'discovery';
    this.peers.clear();
    this.selfAcked = this.selfSynced = false;
    this.selfMatch = 0;
    this.active.clear();
    this.transferTo = undefined;
    this.needBroadcast = false;
    this.reads = [];
  }

  private notification(): Notification {
    const state = this.phase;
    if (state === 'looking') {
      const v = this.vote ?? this.myVote();
      return { type: 'Notification', round: this.round, state, leader: this.vote === undefined ? '' : v.leader, epoch: v.epoch, term: v.term, index: v.index };
    }
    const leader = state === 'leading' ? this.id : (this.leaderId as NodeId);
    const epoch = state === 'leading' ? this.epoch : this.leaderEpoch;
    return { type: 'Notification', round: this.round, state, leader, epoch, term: this.log.lastTerm, index: this.log.lastIndex };
  }

  private broadcastNotification(): void {
    for (const m of this.members()) this.send(m, this.notification());
  }

  private tickLooking(): void {
    // finalizeWait: the quorum held for a whole tick with no better vote arriving.
    if (this.finalize) {
      this.finalize = false;
      if (this.maybeDecide(true)) return;
    }
    if (this.elapsed % 2 === 0) this.broadcastNotification();
    if (this.elapsed >= this.timeout) this.startLooking();
  }

  private handleNotification(from: NodeId, n: Notification): void {
    if (this.phase === 'following' && this.stage === 'discovery' && from === this.leaderId && n.state !== 'leading') {
      // The peer this one decided to follow does not lead (it settled on another leader, or still looks).
      return this.startLooking();
    }
    if (this.phase !== 'looking') {
      // "A server that is not looking answers with its leader" (FastLeaderElection.WorkerReceiver): a rejoining
      // server learns who leads and follows it, without starting an election that would disrupt the ensemble.
      if (n.state === 'looking' && this.canAnswerAsLeaderOrFollower()) this.send(from, this.notification());
      return;
    }
    if (n.state !== 'looking') {
      // lookForLeader, FOLLOWING/LEADING notifications: follow a leader that says it leads, unless this peer
      // already acknowledged a newer epoch (that leader is stale).
      if (n.state === 'leading' && n.leader === from && n.epoch >= this.acceptedEpoch) this.becomeFollowing(from);
      return;
    }
    const voters = this.voters();
    if (n.round < this.round) {
      // The sender is behind: send back our notification so it catches up.
      this.send(from, this.notification());
      return;
    }
    const candidate: Vote | undefined = n.leader !== '' && voters.includes(n.leader) ? { leader: n.leader, epoch: n.epoch, term: n.term, index: n.index } : undefined;
    if (n.round > this.round) {
      this.round = n.round;
      this.recv.clear();
      const own = this.amVoter() ? this.myVote() : undefined;
      this.vote = candidate !== undefined && (own === undefined || compareVotes(candidate, own) > 0) ? candidate : own;
      if (this.vote !== undefined) this.recv.set(this.id, this.vote);
      this.broadcastNotification();
    } else if (candidate !== undefined && (this.vote === undefined || compareVotes(candidate, this.vote) > 0)) {
      // totalOrderPredicate: (epoch, zxid, server id), higher wins.
      this.vote = candidate;
      if (this.amVoter()) this.recv.set(this.id, candidate);
      this.broadcastNotification();
    }
    if (voters.includes(from) && candidate !== undefined) this.recv.set(from, candidate);
    this.maybeDecide();
  }

  /**
   * termPredicate: a quorum of voters in this round votes as this peer does. As lookForLeader's finalizeWait, the
   * decision waits (here until the next tick) for a better vote that may still be on its way; `now` decides.
   */
  private maybeDecide(now = false): boolean {
    const v = this.vote;
    if (v === undefined || this.phase !== 'looking') return false;
    let agree = 0;
    for (const id of this.voters()) {
      const w = this.recv.get(id);
      if (w !== undefined && compareVotes(w, v) === 0) agree++;
    }
    if (agree < majority(this.voters().length)) return false;
    if (!now) {
      this.finalize = true;
      return false;
    }
    if (v.leader === this.id) this.becomeLeading();
    else this.becomeFollowing(v.leader);
    return true;
  }

  private canAnswerAsLeaderOrFollower(): boolean {
    return this.isLeader() || (this.phase === 'following' && this.stage === 'uptodate');
  }

  // ---- Following (Learner / Follower) -------------------------------------------------------------------------

  private becomeFollowing(leader: NodeId): void {
    this.resetRoleState();
    this.phase = 'following';
    this.leaderId = leader;
    this.stage = 'discovery';
    // A fresh session: durable before FOLLOWERINFO leaves (same Ready), so no restart reuses it.
    this.sessions++;
    this.hsDirty = true;
    this.nonce = this.sessions * 1024 + Math.floor(this.random() * 1024);
    this.syncReq = 0;
    this.elapsed = 0;
    // Phase 1: FOLLOWERINFO with the acceptedEpoch (DSN 2011 IV-B: CEPOCH(f.p)).
    this.send(leader, { type: 'FollowerInfo', nonce: this.nonce, acceptedEpoch: this.acceptedEpoch });
  }

  private tickFollowing(): void {
    const leader = this.leaderId as NodeId;
    if (this.elapsed > this.electionTicks) return this.startLooking();
    // The network may drop: the handshake is repeated until the leader answers (ZooKeeper relies on TCP).
    if (this.elapsed % 2 === 0 && this.elapsed > 0) {
      if (this.stage === 'discovery') this.send(leader, { type: 'FollowerInfo', nonce: this.nonce, acceptedEpoch: this.acceptedEpoch });
      else if (this.stage === 'acked') this.send(leader, this.ackEpoch());
      else if (this.stage === 'synced') this.send(leader, { type: 'AckNewLeader', nonce: this.nonce, epoch: this.leaderEpoch, index: this.log.lastIndex });
    }
  }

  private ackEpoch(): AckEpoch {
    return {
      type: 'AckEpoch',
      nonce: this.nonce,
      req: this.syncReq,
      epoch: this.leaderEpoch,
      currentEpoch: this.currentEpoch,
      term: this.log.lastTerm,
      index: this.log.lastIndex,
      commit: this.commit,
      segments: this.log.segments(),
    };
  }

  private stepFollower(m: ZabMessage): void {
    if (!('nonce' in m) || m.nonce !== this.nonce) return;
    const leader = this.leaderId as NodeId;
    // Any message of this session shows the leader alive (ZooKeeper: any packet read within syncLimit).
    this.elapsed = 0;
    switch (m.type) {
      case 'LeaderInfo': {
        if (this.stage !== 'discovery') return;
        this.elapsed = 0;
        // DSN 2011 IV-B phase 1: on NEWEPOCH(e'), if e' > f.p then f.p <- e' and ACK-E; ZooKeeper re-acks the epoch
        // it already accepted (Learner.registerWithLeader) — here only to the same leader, so an epoch has one leader.
        if (m.epoch > this.acceptedEpoch || (m.epoch === this.acceptedEpoch && this.acceptedBy === leader)) {
          if (m.epoch !== this.acceptedEpoch || this.acceptedBy !== leader) {
            this.acceptedEpoch = m.epoch;
            this.acceptedBy = leader;
            this.hsDirty = true;
          }
          this.leaderEpoch = m.epoch;
          this.stage = 'acked';
          // Sent once acceptedEpoch is durable: messages leave after the Ready's hard state.
          this.send(leader, this.ackEpoch());
        } else this.startLooking();
        return;
      }
      case 'Sync':
        if (this.stage !== 'acked' || m.epoch !== this.leaderEpoch || m.req !== this.syncReq) return;
        this.elapsed = 0;
        return this.handleSync(m.mode, m.truncateTo, m.snapshot, m.entries, m.base);
      case 'UpToDate':
        if (m.epoch !== this.leaderEpoch) return;
        this.elapsed = 0;
        if (this.stage === 'synced') this.stage = 'uptodate';
        if (this.stage === 'uptodate') this.learnCommit(m.commit);
        return;
      case 'Proposal':
      case 'Inform':
        if (m.epoch !== this.leaderEpoch || (this.stage !== 'synced' && this.stage !== 'uptodate')) return;
        this.elapsed = 0;
        return this.handleProposal(m);
      case 'Commit':
        if (m.epoch !== this.leaderEpoch || (this.stage !== 'synced' && this.stage !== 'uptodate')) return;
        this.elapsed = 0;
        return this.learnCommit(m.commit);
      case 'Ping':
        if (m.epoch !== this.leaderEpoch || (this.stage !== 'synced' && this.stage !== 'uptodate')) return;
        this.elapsed = 0;
        this.learnCommit(m.commit);
        this.send(leader, { type: 'Pong', nonce: this.nonce, epoch: this.leaderEpoch, seq: m.seq, index: this.log.lastIndex });
        return;
      case 'Handoff':
        if (m.epoch !== this.leaderEpoch || this.stage !== 'uptodate') return;
        this.round++;
        if (m.to === this.id) this.becomeLeading();
        else this.becomeFollowing(m.to);
        return;
      default:
        return;
    }
  }

  /**
   * Phase 2 on the follower (DSN 2011 IV-B; ZooKeeper Learner.syncWithLeader): take the leader's history (TRUNC,
   * SNAP, DIFF), and then, each step in its own Ready so that a crash never leaves a later one durable without
   * the earlier: (1) the history is durable, (2) currentEpoch <- e is durable, (3) ACK(NEWLEADER) leaves.
   * ZOOKEEPER-3911, 4643, 4646 and 4785 are each a violation of this order.
   */
  private handleSync(mode: 'diff' | 'trunc' | 'snap', truncateTo: number | undefined, snapshot: Snapshot | undefined, entries: LogEntry[], base: number): void {
    if (mode === 'snap') {
      if (snapshot === undefined) return;
      // A snapshot at or below the commit point holds nothing this follower lacks (a duplicated or stale SNAP, e.g.
      // answering an old ACKEPOCH): the entries after it are then a DIFF.
      if (snapshot.index > this.commit) this.log.installSnapshot(snapshot);
    } else if (mode === 'trunc') {
      if (truncateTo === undefined || truncateTo < this.commit || truncateTo < this.log.base) return this.startLooking();
      this.log.truncate(truncateTo);
    }
    const first = entries[0];
    if (first !== undefined) {
      if (first.index > this.log.lastIndex + 1) return this.startLooking();
      const fresh = entries.filter((e) => e.index > this.log.lastIndex);
      for (const e of entries) {
        if (e.index <= this.log.lastIndex && e.index > this.commit && this.log.term(e.index) !== e.term) return this.startLooking();
      }
      this.log.append(fresh);
    }
    if (this.log.lastIndex < base) {
      // Only part of the leader's initial history so far: currentEpoch = epoch would claim the whole of it (the
      // hazard of ZOOKEEPER-4646). Ask for the rest, once this part is durable (the ACKEPOCH leaves with it).
      this.syncReq++;
      this.send(this.leaderId as NodeId, this.ackEpoch());
      return;
    }
    this.stage = 'syncing';
    const nonce = this.nonce;
    const epoch = this.leaderEpoch;
    const same = () => this.phase === 'following' && this.nonce === nonce && this.stage === 'syncing';
    // (1) This Ready carries the history; once it is durable:
    this.afterNext.push(() => {
      if (!same()) return;
      // (2) currentEpoch, alone in the next Ready (DSN 2011: "f.a <- e" on NEWLEADER, after accepting the history).
      this.currentEpoch = epoch;
      this.hsDirty = true;
      this.afterNext.push(() => {
        if (!same()) return;
        // (3) the ACK of NEWLEADER, in the Ready after that.
        this.stage = 'synced';
        this.send(this.leaderId as NodeId, { type: 'AckNewLeader', nonce, epoch, index: this.log.lastIndex });
      });
    });
  }

  /** Phase 3 on the follower: log the proposal, ACK once durable (the ACK leaves with the Ready that writes it). */
  private handleProposal(m: Proposal): void {
    const first = m.entries[0];
    if (first !== undefined) {
      if (first.index > this.log.lastIndex + 1) {
        this.send(this.leaderId as NodeId, { type: 'Ack', nonce: this.nonce, epoch: this.leaderEpoch, index: this.log.lastIndex, gap: true });
        return;
      }
      const fresh = m.entries.filter((e) => e.index > this.log.lastIndex);
      this.log.append(fresh);
    }
    if (m.type === 'Proposal') this.send(this.leaderId as NodeId, { type: 'Ack', nonce: this.nonce, epoch: this.leaderEpoch, index: this.log.lastIndex });
    this.learnCommit(m.commit);
  }

  private learnCommit(c: number): void {
    const to = Math.min(c, this.log.lastIndex);
    if (to > this.commit) this.commit = to;
  }

  // ---- Leading (Leader / LearnerHandler) ---------------------------------------------------------------------

  private becomeLeading(): void {
    this.resetRoleState();
    this.phase = 'leading';
    this.leaderStage = 'discovery';
    this.leaderId = this.id;
    this.epoch = 0;
    this.elapsed = 0;
    this.hbElapsed = 0;
    this.maybeProposeEpoch();
  }

  private quorumOf(ids: Iterable<NodeId>): boolean {
    const set = new Set(ids);
    let n = 0;
    for (const v of this.voters()) if (set.has(v)) n++;
    return n >= majority(this.voters().length);
  }

  /**
   * Phase 1 (DSN 2011 IV-B; Leader.getEpochToPropose): once a quorum (this peer included) sent FOLLOWERINFO, the
   * new epoch is one more than every acceptedEpoch among them; the leader accepts it itself first.
   */
  private maybeProposeEpoch(): void {
    if (this.leaderStage !== 'discovery' || this.epoch !== 0) return;
    const infos = [this.id, ...[...this.peers.keys()]];
    if (!this.quorumOf(infos)) return;
    let max = this.acceptedEpoch;
    for (const p of this.peers.values()) max = Math.max(max, p.acceptedEpoch);
    this.epoch = max + 1;
    this.acceptedEpoch = this.epoch;
    this.acceptedBy = this.id;
    this.hsDirty = true;
    for (const [id, p] of this.peers) this.send(id, { type: 'LeaderInfo', nonce: p.nonce, epoch: this.epoch });
    const epoch = this.epoch;
    this.afterNext.push(() => {
      if (this.phase !== 'leading' || this.epoch !== epoch) return;
      this.selfAcked = true;
      this.maybeEstablishEpoch();
    });
  }

  private stepLeader(from: NodeId, m: ZabMessage): void {
    if (!configMembers(this.log.config).includes(from)) return;
    if (m.type === 'FollowerInfo') return this.handleFollowerInfo(from, m.nonce, m.acceptedEpoch);
    const p = this.peers.get(from);
    if (p === undefined || !('nonce' in m) || m.nonce !== p.nonce) return;
    this.active.add(from);
    switch (m.type) {
      case 'AckEpoch':
        if (m.epoch !== this.epoch || this.epoch === 0) return;
        if (p.stage === 'info') {
          p.stage = 'acked';
          p.ack = m;
          if (this.leaderStage === 'discovery') this.maybeEstablishEpoch();
          else this.sendSync(from, p);
        } else if (p.stage === 'acked' && this.leaderStage === 'discovery') {
          // Still waiting for a quorum: answer the retransmission so the follower knows the leader is alive.
          this.send(from, { type: 'LeaderInfo', nonce: p.nonce, epoch: this.epoch });
        } else if (p.stage === 'sync' && this.leaderStage !== 'discovery') {
          // A retransmitted ACKEPOCH, or the follower asking for the rest of the history after a partial Sync.
          p.ack = m;
          this.sendSync(from, p);
        }
        return;
      case 'AckNewLeader':
        if (m.epoch !== this.epoch) return;
        if (p.stage === 'sync') {
          p.stage = 'synced';
          p.match = Math.min(m.index, this.log.lastIndex);
          p.next = Math.max(p.next, p.match + 1);
          this.needBroadcast = true;
          if (this.leaderStage === 'established') this.sendUpToDate(from, p);
          else this.maybeEstablish();
          this.maybeCommit();
          if (this.transferTo === from) this.maybeHandoff();
        } else if (p.stage === 'synced' && this.leaderStage === 'established') this.sendUpToDate(from, p);
        return;
      case 'Ack':
      case 'Pong': {
        if (m.epoch !== this.epoch || p.stage !== 'synced') return;
        const index = m.index;
        if (m.type === 'Ack' && m.gap === true) p.next = Math.min(p.next, index + 1);
        if (m.type === 'Pong') {
          if (index + 1 < p.next) p.next = index + 1;
          p.seq = Math.max(p.seq, m.seq);
        }
        if (index > p.match) p.match = Math.min(index, this.log.lastIndex);
        if (p.next <= this.log.lastIndex) this.needBroadcast = true;
        this.maybeCommit();
        this.maybeReleaseReads();
        if (this.transferTo === from) this.maybeHandoff();
        return;
      }
      default:
        return;
    }
  }

  private handleFollowerInfo(from: NodeId, nonce: number, acceptedEpoch: number): void {
    const old = this.peers.get(from);
    if (old !== undefined && old.nonce === nonce) {
      if (old.stage === 'info' && this.epoch !== 0) this.send(from, { type: 'LeaderInfo', nonce, epoch: this.epoch });
      return;
    }
    const p: Peer = { nonce, stage: 'info', acceptedEpoch, next: 0, match: 0, sentCommit: 0, seq: 0, upToDateSent: false };
    this.peers.set(from, p);
    this.active.add(from);
    if (this.epoch !== 0) this.send(from, { type: 'LeaderInfo', nonce, epoch: this.epoch });
    else this.maybeProposeEpoch();
  }

  /**
   * End of phase 1 (Leader.waitForEpochAck): a quorum, the leader included, acknowledged the epoch. If one of them
   * is ahead of the leader (higher currentEpoch, or same and higher last zxid) the leader gives up, as ZooKeeper
   * does ("Follower is ahead of the leader"): its history must be the most up to date of the quorum (DSN 2011
   * IV-B picks the follower with the highest (currentEpoch, zxid); Fast Leader Election makes that the leader).
   */
  private maybeEstablishEpoch(): void {
    if (this.leaderStage !== 'discovery' || !this.selfAcked) return;
    const acked = [...this.peers].filter(([, p]) => p.stage === 'acked').map(([id]) => id);
    if (!this.quorumOf([this.id, ...acked])) return;
    const mine = { currentEpoch: this.currentEpoch, last: { term: this.log.lastTerm, index: this.log.lastIndex } };
    for (const id of acked) {
      const a = (this.peers.get(id) as Peer).ack as AckEpoch;
      if (compareSummaries({ currentEpoch: a.currentEpoch, last: { term: a.term, index: a.index } }, mine) > 0) return this.startLooking();
    }
    // Phase 2 begins: the leader's own history becomes the epoch's initial history; currentEpoch <- e durable
    // before any NEWLEADER leaves (the messages of this Ready go after its hard state).
    this.leaderStage = 'sync';
    this.epochBase = this.log.lastIndex;
    this.currentEpoch = this.epoch;
    this.hsDirty = true;
    for (const id of acked) this.sendSync(id, this.peers.get(id) as Peer);
    const epoch = this.epoch;
    this.afterNext.push(() => {
      if (this.phase !== 'leading' || this.epoch !== epoch) return;
      this.selfSynced = true;
      this.selfMatch = Math.min(this.log.stableIndex, this.log.lastIndex);
      this.maybeEstablish();
    });
  }

  /**
   * Synchronisation, chosen as LearnerHandler.syncFollower does: DIFF when the follower's history is a prefix of
   * the leader's, TRUNC (then DIFF) when it holds entries the leader does not, SNAP (then DIFF) when what it misses
   * is no longer in the leader's log. The common prefix is found from the follower's term runs: with one leader per
   * epoch, two logs that hold the same (term, index) agree up to it.
   */
  private sendSync(id: NodeId, p: Peer): void {
    const a = p.ack as AckEpoch;
    let match = 0;
    const segs = a.segments as Segment[];
    for (let k = segs.length - 1; k >= 0; k--) {
      const [term, from, to] = segs[k] as Segment;
      const i = this.log.lastAtOrBelow(term, to);
      if (i !== undefined && i >= from && this.log.term(i) === term) {
        match = i;
        break;
      }
    }
    // Entries the follower knows committed are in the leader's history too (DSN 2011, Lemma: the leader's initial
    // history holds every committed transaction).
    match = Math.max(match, Math.min(a.commit, a.index));
    match = Math.min(match, this.log.lastIndex);
    const last = this.log.lastIndex;
    let hi = Math.min(last, match + this.o.maxBatch);
    let msg: ZabMessage | undefined;
    try {
      if (match < this.log.base) throw new CompactedError(match + 1, this.log.base + 1);
      const entries = this.log.entries(match + 1, hi);
      msg = a.index > match ? { type: 'Sync', nonce: p.nonce, req: a.req, epoch: this.epoch, base: this.epochBase, mode: 'trunc', truncateTo: match, entries } : { type: 'Sync', nonce: p.nonce, req: a.req, epoch: this.epoch, base: this.epochBase, mode: 'diff', entries };
    } catch (e) {
      if (!CompactedError.is(e)) throw e;
    }
    if (msg === undefined) {
      const snap = this.log.snapshot();
      if (snap === undefined) return;
      hi = Math.min(last, snap.index + this.o.maxBatch);
      let entries: LogEntry[];
      try {
        entries = this.log.entries(snap.index + 1, hi);
      } catch (e) {
        if (!CompactedError.is(e)) throw e;
        return;
      }
      msg = { type: 'Sync', nonce: p.nonce, req: a.req, epoch: this.epoch, base: this.epochBase, mode: 'snap', snapshot: snap, entries };
    }
    p.stage = 'sync';
    p.next = hi + 1;
    this.send(id, msg);
  }

  /** End of phase 2: a quorum (the leader included) acknowledged NEWLEADER with the whole initial history. */
  private maybeEstablish(): void {
    if (this.leaderStage !== 'sync' || !this.selfSynced) return;
    const ok = [this.id, ...[...this.peers].filter(([, p]) => p.stage === 'synced' && p.match >= this.epochBase).map(([id]) => id)];
    if (!this.quorumOf(ok)) return;
    this.leaderStage = 'established';
    this.elapsed = 0;
    this.active.clear();
    this.maybeCommit();
    for (const [id, p] of this.peers) if (p.stage === 'synced') this.sendUpToDate(id, p);
  }

  private sendUpToDate(id: NodeId, p: Peer): void {
    p.upToDateSent = true;
    p.sentCommit = this.commit;
    this.send(id, { type: 'UpToDate', nonce: p.nonce, epoch: this.epoch, commit: this.commit });
  }

  private matchOf(id: NodeId): number {
    if (id === this.id) return this.selfSynced ? this.selfMatch : 0;
    const p = this.peers.get(id);
    return p !== undefined && p.stage === 'synced' ? p.match : 0;
  }

  /**
   * Phase 3 (DSN 2011 IV-B): COMMIT once a quorum acknowledged, in order. The quorum is one of the configuration in
   * force, the latest in the log (one voter changes at a time, so it meets every quorum of the one before: Raft
   * thesis 4.1). Asking the configuration before it to acknowledge too, until the change commits, would leave a
   * leader that inherited the change uncommitted (its remover stepped down first) waiting for a removed server.
   */
  private maybeCommit(): void {
    if (!this.isLeader()) return;
    const configs = this.log.configs;
    const latest = configs[configs.length - 1] as { index: number; config: ClusterConfig };
    const q = jointCommittedIndex({ voters: latest.config.voters }, (id) => this.matchOf(id));
    if (q <= this.commit || q < this.epochBase) return;
    this.commit = Math.min(q, this.log.lastIndex);
    this.needBroadcast = true;
    // A leader that the committed configuration removed leaves (ZooKeeper: the leader of a reconfig that removes
    // it stops leading once it commits).
    if (latest.index <= this.commit && !latest.config.voters.includes(this.id)) this.startLooking();
  }

  private proposeEntry(type: 'command' | 'config', data: Uint8Array): void {
    if (!this.isLeader()) throw new NotLeaderError(this.leaderHint());
    if (type === 'config' ? this.transferTo !== undefined : this.transferCatchingUp()) throw new ProposalDroppedError('transfer-in-progress');
    // ZOOKEEPER-1277: the counter (the low 32 bits of the zxid) must not roll over into the epoch: the leader
    // gives up leadership instead, and the next leader starts a new epoch with the counter back at 1.
    if (this.log.lastIndex - this.epochBase >= this.o.counterLimit) {
      this.startLooking();
      throw new NotLeaderError(undefined, `zxid counter of epoch ${this.epoch} reached ${this.o.counterLimit}: a new epoch is being elected`);
    }
    const index = this.log.lastIndex + 1;
    this.log.append([{ index, term: this.epoch, type, data }]);
    this.needBroadcast = true;
    if (type === 'config') {
      // Sessions of servers that are no longer members end: one that is added back later (perhaps with a wiped data
      // directory, whose first session nonce is the same again) starts a fresh session.
      const members = new Set(this.members());
      for (const id of [...this.peers.keys()]) if (!members.has(id)) this.peers.delete(id);
      // New members are invited at once (a joining server is LOOKING and does not know the leader yet).
      for (const m of members) if (!this.peers.has(m)) this.send(m, this.notification());
    }
  }

  /** PROPOSAL to followers from their next index, INFORM of committed entries to observers, COMMIT otherwise. */
  private broadcastEntries(): void {
    if (!this.isLeader()) return;
    const voters = this.voters();
    for (const [id, p] of this.peers) {
      if (p.stage !== 'synced') continue;
      const observer = !voters.includes(id);
      const upTo = observer ? Math.min(this.commit, this.log.lastIndex) : this.log.lastIndex;
      let sent = false;
      let dropped = false;
      while (p.next <= upTo) {
        const hi = Math.min(upTo, p.next + this.o.maxBatch - 1);
        let entries: LogEntry[];
        try {
          entries = this.log.entries(p.next, hi);
        } catch (e) {
          if (!CompactedError.is(e)) throw e;
          // What the follower misses left the leader's log: its session ends here; it stops hearing from the leader,
          // looks again, and the new session synchronises it with SNAP.
          this.peers.delete(id);
          dropped = true;
          break;
        }
        this.send(id, { type: observer ? 'Inform' : 'Proposal', nonce: p.nonce, epoch: this.epoch, entries, commit: this.commit });
        p.sentCommit = this.commit;
        p.next = hi + 1;
        sent = true;
        if (p.next - p.match > 8 * this.o.maxBatch) break;
      }
      if (!dropped && !sent && p.sentCommit < this.commit && p.upToDateSent) {
        p.sentCommit = this.commit;
        this.send(id, { type: 'Commit', nonce: p.nonce, epoch: this.epoch, commit: this.commit });
      }
    }
  }

  private broadcastPing(): void {
    for (const [id, p] of this.peers) {
      if (p.stage === 'synced') this.send(id, { type: 'Ping', nonce: p.nonce, epoch: this.epoch, commit: this.commit, seq: this.seq });
    }
  }

  private maybeReleaseReads(): void {
    if (this.reads.length === 0) return;
    const voters = this.voters();
    while (this.reads.length > 0) {
      const r = this.reads[0] as ReadRound;
      const acks = [this.id, ...voters.filter((v) => v !== this.id && (this.peers.get(v)?.seq ?? 0) >= r.seq && this.peers.get(v)?.stage === 'synced')];
      if (!this.quorumOf(acks)) return;
      this.reads.shift();
      this.readsOut.push({ ctx: r.ctx, index: r.index });
    }
  }

  private tickLeading(): void {
    if (this.leaderStage !== 'established') {
      // ZooKeeper's initLimit: a prospective leader that cannot establish its epoch goes back to LOOKING.
      if (this.elapsed > 2 * this.electionTicks) return this.startLooking();
      // Followers already synchronised hear from it while the rest of the quorum comes.
      if (this.elapsed % this.heartbeatTicks === 0) this.broadcastPing();
      return;
    }
    this.hbElapsed++;
    if (this.hbElapsed >= this.heartbeatTicks) {
      this.hbElapsed = 0;
      this.broadcastPing();
      this.needBroadcast = true;
    }
    if (this.elapsed % this.electionTicks === 0) {
      // Invite members with no session: joining or rejoining servers that are LOOKING.
      for (const m of this.members()) if (!this.peers.has(m) || this.peers.get(m)?.stage === 'info') this.send(m, this.notification());
    }
    this.tickTransfer();
    if (this.elapsed >= this.electionTicks) {
      // Leader.lead's syncLimit check: without a quorum of followers heard from in the last period, the leader
      // abandons leadership (it may be in a minority partition).
      const ok = this.quorumOf([this.id, ...this.active]);
      this.active.clear();
      this.elapsed = 0;
      if (!ok) this.startLooking();
    }
  }

  /**
   * ZooKeeper has no leadership transfer; we follow Raft thesis 3.10, adapted to ZAB's sessions. Raft's leader
   * brings the target up to date (pausing client requests) and aborts after an election timeout. Here the target
   * may have no synchronised session yet: right after a cluster starts, FLE elects a leader from the first servers
   * up while the target is still starting or looking (the CLI's `leader transfer` after `start` failed so), and a
   * target that crashed still looks synchronised to the leader. Until the target is synchronised and has answered
   * a PING sent after the request, the leader keeps serving and waits for it up to TRANSFER_JOIN_ELECTIONS election
   * timeouts; from then on proposals pause while it catches up, for at most one election timeout (3.10).
   */
  private transferCatchingUp(): boolean {
    if (this.transferTo === undefined) return false;
    const p = this.peers.get(this.transferTo);
    return p !== undefined && p.stage === 'synced' && p.seq >= this.transferSeq;
  }

  private tickTransfer(): void {
    if (this.transferTo === undefined) return;
    this.transferElapsed++;
    const expired = this.transferCatchingUp() ? ++this.transferCatchUp > this.electionTicks : this.transferElapsed > TRANSFER_JOIN_ELECTIONS * this.electionTicks;
    if (expired || !this.voters().includes(this.transferTo)) this.transferTo = undefined;
  }

  /** Leadership transfer: once the target holds the whole log, everyone is told to follow it; it leads a new epoch. */
  private maybeHandoff(): void {
    const to = this.transferTo;
    if (to === undefined || !this.isLeader()) return;
    const p = this.peers.get(to);
    if (!this.transferCatchingUp() || p === undefined || p.match < this.log.lastIndex) return;
    for (const [id, q] of this.peers) if (q.stage === 'synced') this.send(id, { type: 'Handoff', nonce: q.nonce, epoch: this.epoch, to });
    this.round++;
    this.becomeFollowing(to);
  }
}

export type { Vote };
