import { assertBytes, configMembers, isVoter, majority, resolveProtocolOptions, SnapshotReceiver, type ClusterConfig, type ConfigChange, type SnapshotSender, type Envelope, type LogEntry, type NodeId, type Protocol, type ReadState, type Ready, type Snapshot, type Status, type Storage } from '@consensus-kit/core';
import { broadcastEntries, maybeCommit, proposeEntry, startRead } from './broadcast';
import { handleNotification, notification, startLooking, tickLooking } from './election';
import { stepFollower, tickFollowing } from './follower';
import { decodeHardState, encodeHardState } from './hard-state';
import { stepLeader, tickLeading } from './leader';
import { proposeMembershipChange } from './membership';
import { parseMessage, type AckEpoch, type ZabMessage } from './messages';
import { resolveZabOptions, type ResolvedZabOptions, type ZabOptions } from './options';
import type { ZabPeerDetails, ZabStatusDetails } from './status-details';
import { startTransfer } from './transfer';
import type { Vote } from './vote';
import { ZabLog } from './zab-log';
import { describeZxid, type Zxid } from './zxid';

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

/** One follower or observer session, as the leader sees it (ZooKeeper's LearnerHandler). @internal */
export interface Peer {
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
  /** SNAP in chunks to this peer (snapshot-chunks.ts): the sender, the snapshot's configuration, the ACKEPOCH answered. */
  snap?: SnapshotSender | undefined;
  snapConfig?: ClusterConfig | undefined;
  snapReq: number;
  snapTotal: number;
}

/** A read barrier waiting for a quorum's PONG (reads in broadcast.ts). @internal */
export interface ReadRound {
  ctx: Uint8Array;
  index: number;
  seq: number;
}

const NO_ENTRIES: LogEntry[] = [];
const NO_MESSAGES: Envelope[] = [];
const NO_READS: ReadState[] = [];

/**
 * ZAB as a pure state machine: Junqueira, Reed, Serafini, "Zab: High-performance broadcast for primary-backup
 * systems" (DSN 2011), as ZooKeeper implements it (Medeiros 2012, "ZooKeeper's atomic broadcast protocol: Theory
 * and practice"): Fast Leader Election (FastLeaderElection), then per follower discovery (FOLLOWERINFO /
 * LEADERINFO / ACKEPOCH), synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and broadcast (PROPOSAL /
 * ACK / COMMIT), with zxids mapped onto the log as (term, index) (see zxid.ts).
 *
 * This class holds the state and the `Protocol` surface (inputs, `Ready`, status); each phase is functions over it
 * in its own file, as raft's are: election.ts (FLE), discovery.ts (phase 1), synchronisation.ts (phase 2),
 * broadcast.ts (phase 3 and reads), follower.ts and leader.ts (each side of a session), membership.ts, transfer.ts.
 * Fields without a doc comment of their own are internal to those files.
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
  boot: NodeId[];
  sessions = 0;
  hsDirty = false;

  phase: ZabPhase = 'looking';
  /** Entries up to here are committed (known delivered by a quorum in order). Not durable: learnt again. */
  commit: number;
  /** The last index handed out in `Ready.committed` (or restored from a snapshot). */
  emitted: number;

  // Fast Leader Election (FastLeaderElection.lookForLeader).
  round = 0;
  vote: Vote | undefined;
  recv = new Map<NodeId, Vote>();
  elapsed = 0;
  timeout = 0;
  finalize = false;

  // Following.
  leaderId: NodeId | undefined;
  /** The epoch of the leader followed (known from LEADERINFO). */
  leaderEpoch = 0;
  stage: FollowerStage = 'discovery';
  nonce = 0;
  /** The `req` of this follower's latest ACKEPOCH (see messages.ts). */
  syncReq = 0;
  /** A SNAP being received in chunks, and the leader sending it (snapshot-chunks.ts). */
  snapIn: SnapshotReceiver;
  /** @internal The last SNAP refused (over `maxSnapshotBytes`, malformed): from whom and why. */
  snapRefused: string | undefined;
  snapFrom: NodeId | undefined;

  // Leading.
  epoch = 0;
  leaderStage: LeaderStage = 'discovery';
  /** The last index of the leader's initial history: the epoch's zxid counter counts from here. */
  epochBase = 0;
  peers = new Map<NodeId, Peer>();
  selfAcked = false;
  /** The leader's currentEpoch is durable with its history: its own ack counts. */
  selfSynced = false;
  selfMatch = 0;
  active = new Set<NodeId>();
  seq = 0;
  reads: ReadRound[] = [];
  needBroadcast = false;
  /** The last Ready sent PROPOSALs ahead of the leader's own write of those entries. */
  sentFirst = false;
  transferTo: NodeId | undefined;
  /** Ticks since the transfer was asked for (bounds the wait for a target that has not synchronised yet). */
  transferElapsed = 0;
  /** Ticks of the final catch-up, proposals paused, once the target is synchronised (Raft thesis 3.10's bound). */
  transferCatchUp = 0;
  /** The PING sequence number sent with the transfer request: a PONG at or above it shows the target alive since. */
  transferSeq = 0;
  hbElapsed = 0;

  // Output.
  msgs: Envelope[] = [];
  readsOut: ReadState[] = [];
  /** Work to do once the next Ready is durable: the strict persist order of phase 2 (DESIGN "Crash order"). */
  afterNext: (() => void)[] = [];
  inflight: { actions: (() => void)[]; upTo: number } | undefined;
  lastStatus: { role: Status['role']; term: number; leader: NodeId | undefined };

  constructor(options: ZabOptions) {
    const r = resolveProtocolOptions(options);
    this.o = resolveZabOptions(options);
    this.snapIn = new SnapshotReceiver({ maxBytes: this.o.maxSnapshotBytes });
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
    startLooking(this);
  }

  // ---- Inputs -------------------------------------------------------------------------------------------------

  tick(): void {
    this.elapsed++;
    if (this.phase === 'looking') tickLooking(this);
    else if (this.phase === 'following') tickFollowing(this);
    else tickLeading(this);
  }

  step(envelope: Envelope): void {
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.from !== 'string' || envelope.from === this.id) return;
    const m = parseMessage(envelope.msg);
    if (m === undefined) return;
    const from = envelope.from;
    if (m.type === 'Notification') return handleNotification(this, from, m);
    // A FOLLOWERINFO to a peer that does not lead: it answers with its state, so the sender looks again.
    if (m.type === 'FollowerInfo' && this.phase !== 'leading') return this.send(from, notification(this));
    if (this.phase === 'following' && from === this.leaderId) return stepFollower(this, m);
    if (this.phase === 'leading') return stepLeader(this, from, m);
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    proposeEntry(this, 'command', data);
  }

  readIndex(ctx: Uint8Array): void {
    startRead(this, ctx);
  }

  proposeConfigChange(change: ConfigChange): void {
    proposeMembershipChange(this, change);
  }

  transferLeadership(to: NodeId): void {
    startTransfer(this, to);
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
    if (this.needBroadcast) broadcastEntries(this);
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
        maybeCommit(this);
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
    if (this.snapRefused !== undefined) details.snapshotRefused = this.snapRefused;
    if (this.phase === 'leading') {
      details.stage = this.leaderStage;
      details.epochBase = this.epochBase;
      if (this.transferTo !== undefined) details.transferringTo = this.transferTo;
      const peers: Record<string, ZabPeerDetails> = {};
      for (const [id, p] of this.peers) {
        const d: ZabPeerDetails = { stage: p.stage, match: p.match, next: p.next };
        const snap = p.snap?.current;
        if (snap !== undefined && p.stage === 'sync') d.snapshot = { index: snap.index, acked: p.snap?.acknowledged ?? 0, total: p.snapTotal };
        peers[id] = d;
      }
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

  voters(): readonly NodeId[] {
    return this.log.config.voters;
  }

  amVoter(): boolean {
    return this.log.config.voters.includes(this.id);
  }

  term(): number {
    if (this.isLeader()) return this.epoch;
    if (this.phase === 'following' && this.stage === 'uptodate') return this.leaderEpoch;
    return this.currentEpoch;
  }

  statusLeader(): NodeId | undefined {
    if (this.isLeader()) return this.id;
    if (this.phase === 'following' && this.stage === 'uptodate') return this.leaderId;
    return undefined;
  }

  leaderHint(): NodeId | undefined {
    if (this.phase === 'following') return this.leaderId;
    return this.statusLeader();
  }

  neutralRole(): Status['role'] {
    if (!isVoter(this.log.config, this.id)) return 'learner';
    if (this.isLeader()) return 'leader';
    if (this.phase === 'following' && this.stage === 'uptodate') return 'follower';
    return 'candidate';
  }

  statusChanged(): boolean {
    const l = this.lastStatus;
    return l.role !== this.neutralRole() || l.term !== this.term() || l.leader !== this.statusLeader();
  }

  send(to: NodeId, msg: ZabMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }

  members(): NodeId[] {
    return configMembers(this.log.config).filter((m) => m !== this.id);
  }

  /** Forgets what the previous role knew, on every change of role (LOOKING, FOLLOWING, LEADING). */
  resetRoleState(): void {
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

  /** Whether `ids` hold a majority of the voters of the latest configuration. */
  quorumOf(ids: Iterable<NodeId>): boolean {
    const set = new Set(ids);
    let n = 0;
    for (const v of this.voters()) if (set.has(v)) n++;
    return n >= majority(this.voters().length);
  }
}

export type { Vote };
