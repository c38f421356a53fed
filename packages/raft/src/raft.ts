import {
  assertBytes,
  configMembers,
  ConfigError,
  encodeClusterConfig,
  InvariantError,
  isJoint,
  isVoter,
  NotLeaderError,
  ProposalDroppedError,
  resolveProtocolOptions,
  type ClusterConfig,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type NodeId,
  type ReadState,
} from '@consensus-kit/core';
import { nextConfigEntry } from './confchange';
import { handleVoteRequest, hup, inLease, poll, promotable, startElection } from './election';
import { readHardState } from './hard-state';
import { afterAppend, ConfigHistory, cloneConfig } from './membership';
import { transferLeadership } from './leader-transfer';
import { isLeaderMessage, parseMessage, type RaftMessage } from './messages';
import { resolveRaftOptions, type RaftOptions } from './options';
import type { Progress } from './progress';
import { RaftLog } from './raft-log';
import { handleReadIndex } from './read-index';
import { ReadOnly } from './read-only';
import { broadcastHeartbeat, handleAppendEntries, handleAppendResponse, handleHeartbeat, handleHeartbeatResponse } from './replication';
import { handleSnapshotChunk, handleSnapshotResponse, type IncomingSnapshot } from './snapshot-stream';
import type { RaftPhase } from './status-details';
import { ProgressTracker } from './tracker';

type StepFn = (from: NodeId, m: RaftMessage) => void;

/**
 * Raft's core (Ongaro & Ousterhout 2014; Ongaro's thesis 2014), etcd's `raft.go`: the state of one server,
 * its roles, `tick` and `step`. Internal to the package: `RaftNode` (rawnode.ts) is the `Protocol` facade
 * that assembles `Ready` batches from this state. The leader's replication (replication.ts), elections
 * (election.ts), reads (read-index.ts) and snapshot streaming (snapshot-stream.ts) are functions over this
 * state, which is why its fields are not private.
 *
 * Roles swap behaviour: `become*` sets `stepFn` and `tickFn`. Every outbound message goes through `send()`;
 * all messages of a Ready are sent by the host only after that Ready's state and entries are durable, which is
 * what makes replies such as votes and append acknowledgements safe (thesis 3.8).
 */
export class Raft {
  readonly id: NodeId;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly random: () => number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: 'safe' | 'lease';
  /** Ticks a lease lasts from when its heartbeat round left (thesis 6.4.1, shortened by `leaseDriftBound`). */
  readonly leaseTicks: number;
  readonly maxInflightBytes: number;
  readonly maxSizePerMsg: number;
  readonly maxUncommittedBytes: number;
  readonly snapshotChunkBytes: number;
  readonly maxSnapshotBytes: number;
  readonly maxCommittedBytesPerReady: number;
  readonly commitNotify: 'next-message' | 'immediate';
  /** The leader's commit index moved since the last broadcast that carried it ('next-message'). */
  commitUnsent = false;

  term = 0;
  vote: NodeId | undefined;
  lead: NodeId | undefined;
  role: RaftPhase = 'follower';
  readonly log: RaftLog;

  /** The configuration in force: the latest one in the log, committed or not (thesis 4.1). */
  config: ClusterConfig;
  /** The configurations in the log, to follow truncations and commits. */
  readonly configs: ConfigHistory;

  readonly tracker: ProgressTracker;
  /** `tracker.progress`: every member's replication progress (leader). */
  readonly prs: Map<NodeId, Progress>;
  msgs: Envelope[] = [];
  readStates: ReadState[] = [];
  readonly readOnly = new ReadOnly();
  /** Reads that arrived before the leader committed an entry of its term (thesis 6.4 step 1). */
  pendingReads: { from: NodeId; ctx: Uint8Array }[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Ticks since creation; the leader's lease is measured in them. */
  ticks = 0;
  /** Lease reads are allowed while `ticks < leaseExpiry` (leader only). */
  leaseExpiry = 0;
  /** A TimeoutNow was sent in this leadership: a forced election may follow, so no more lease reads. */
  leaseRevoked = false;
  /**
   * With lease reads: after a restart we do not know whether a leader's lease counts on our vote; act as if
   * we had just heard from a leader until one election timeout has passed (keeps lease reads safe across
   * follower restarts; etcd does not do this). Every member of a cluster using lease reads must use them.
   */
  bootLease: boolean;

  leadTransferee: NodeId | undefined;
  /** Index of the latest config entry the leader appended; no new change until it commits. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  /** Leader: new entries to send at the next flush (batching of proposals). */
  needAppend = false;
  /** Leader: the commit index advanced; tell followers at the next flush even with no new entries. */
  needCommitBroadcast = false;
  incoming: IncomingSnapshot | undefined;
  /** The last snapshot transfer refused (over `maxSnapshotBytes`, or too large to allocate): from whom and why. */
  snapRefused: string | undefined;

  stepFn: StepFn;
  tickFn: () => void;

  /**
   * The AppendEntries last built during the current broadcastAppend (undefined: none yet); null outside one,
   * where nothing is shared.
   */
  appendMemo: { prevIndex: number; last: number; commit: number; msg: RaftMessage; count: number; bytes: number } | undefined | null = null;

  constructor(options: RaftOptions) {
    const o = resolveProtocolOptions(options);
    const ro = resolveRaftOptions(options);
    this.id = o.id;
    this.electionTicks = o.electionTicks;
    this.heartbeatTicks = o.heartbeatTicks;
    this.random = o.random;
    this.preVote = ro.preVote;
    this.checkQuorum = ro.checkQuorum;
    this.readOnlyOption = ro.readOnly;
    const d = ro.leaseDriftBound;
    this.leaseTicks = Math.floor((this.electionTicks * (1 - d)) / (1 + d)) - 1;
    this.maxInflightBytes = ro.maxInflightBytes;
    this.maxSizePerMsg = ro.maxSizePerMsg;
    this.maxUncommittedBytes = ro.maxUncommittedBytes;
    this.snapshotChunkBytes = ro.snapshotChunkBytes;
    this.maxSnapshotBytes = ro.maxSnapshotBytes;
    this.maxCommittedBytesPerReady = ro.maxCommittedBytesPerReady;
    this.commitNotify = ro.commitNotify;
    this.bootLease = this.readOnlyOption === 'lease';
    this.tracker = new ProgressTracker(ro.maxInflightMsgs, ro.maxInflightBytes);
    this.prs = this.tracker.progress;

    const storage = options.storage;
    this.log = new RaftLog(storage);

    // Restart: hard state, then the snapshot's configuration, then every config entry in the log (thesis 4.1:
    // a server uses the latest configuration in its log, committed or not).
    const hs = readHardState(storage);
    const snap = storage.snapshot();
    const base =
      snap !== undefined && snap.index >= this.log.firstIndex() - 1
        ? { index: snap.index, config: cloneConfig(snap.config) }
        : { index: 0, config: { voters: [...o.peers].sort(), learners: [] } };
    this.configs = new ConfigHistory(base);
    for (const e of this.log.scan(Math.max(this.log.firstIndex(), base.index + 1), this.log.lastIndex() + 1)) {
      if (e.type === 'config') this.configs.push(e);
    }
    this.config = this.configs.latest().config;

    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    // The commit index is volatile state (Figure 3.1): if the log lost its tail (a torn write), commit less.
    if (hs.commit > last) hs.commit = last;
    const applied = o.applied;
    if (applied > last) throw new ConfigError(`options.applied (${applied}) is past the last stored index ${last}`);
    if (applied < first - 1) {
      throw new ConfigError(`options.applied (${applied}) is below the snapshot index ${first - 1}: restore the snapshot into the state machine first`);
    }
    this.log.committed = Math.max(hs.commit, applied, first - 1);
    this.log.applied = applied;
    this.log.applying = applied;

    this.log.onAppend = (ents) => afterAppend(this, ents);
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    this.becomeFollower(hs.term, undefined);
    this.vote = hs.vote;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inputs
  // ---------------------------------------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    this.tickFn();
  }

  /** Delivers one message. Malformed, misaddressed or stale input is ignored; nothing here throws for it. */
  step(envelope: Envelope): void {
    if (typeof envelope !== 'object' || envelope === null) return;
    const from = envelope.from;
    if (envelope.to !== this.id || typeof from !== 'string' || from.length === 0 || from === this.id) return;
    const m = parseMessage(envelope.msg);
    if (m === undefined) return;
    this.stepMessage(from, m);
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal data');
    this.checkProposal();
    const size = data.length + 24;
    if (this.maxUncommittedBytes > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedBytes) {
      throw new ProposalDroppedError('too-many-uncommitted', `proposal dropped: ${this.uncommittedSize} bytes are uncommitted (limit ${this.maxUncommittedBytes})`);
    }
    this.uncommittedSize += size;
    this.appendEntry('command', data);
  }

  proposeConfigChange(change: ConfigChange): void {
    this.checkProposal();
    // One change at a time, and not before an entry of this term committed (the single-server change fix to
    // thesis 4.1, Ongaro 2015: pendingConfIndex starts at the leader's no-op).
    if (this.pendingConfIndex > this.log.committed || isJoint(this.config)) {
      throw new ProposalDroppedError('config-change-in-progress');
    }
    this.pendingConfIndex = this.appendEntry('config', encodeClusterConfig(nextConfigEntry(this.config, change)));
  }

  readIndex(ctx: Uint8Array): void {
    assertBytes(ctx, 'read ctx');
    if (this.role === 'leader') {
      handleReadIndex(this, this.id, ctx);
      return;
    }
    // Follower reads (thesis 6.4): the leader finds the read index; we release the read once applied.
    if (this.lead === undefined) throw new NotLeaderError(undefined, 'no leader is known to serve the read');
    this.send(this.lead, { type: 'ReadIndexRequest', term: this.term, ctx });
  }

  /** Thesis 3.10 leadership transfer: catch `to` up, then tell it to time out at once. */
  transferLeadership(to: NodeId): void {
    transferLeadership(this, to);
  }

  /** Start an election now, as if the election timer had fired (etcd's MsgHup). Ignored on a leader or non-voter. */
  campaign(): void {
    hup(this, false);
  }

  reportUnreachable(peer: NodeId): void {
    const pr = this.role === 'leader' ? this.prs.get(peer) : undefined;
    // Optimistic pipelining to an unreachable peer only piles up lost messages: probe instead.
    if (pr !== undefined && peer !== this.id && pr.state === 'replicate') pr.becomeProbe();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Role changes
  // ---------------------------------------------------------------------------------------------------------

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = undefined;
    }
    this.lead = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = undefined;
    this.tracker.resetVotes();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReads = [];
    this.needAppend = false;
    this.needCommitBroadcast = false;
    this.commitUnsent = false;
    this.leaseExpiry = 0;
    this.leaseRevoked = false;
    this.tracker.reset(this.members(), this.config, this.log.lastIndex() + 1);
  }

  /** Everyone who receives the log, plus ourselves (a leader removing itself keeps managing, thesis 4.2.2). */
  members(): NodeId[] {
    const ids = configMembers(this.config);
    if (!ids.includes(this.id)) ids.push(this.id);
    return ids;
  }

  resetRandomizedElectionTimeout(): void {
    // Thesis 3.4: election timeouts drawn uniformly from [electionTicks, 2 * electionTicks).
    const r = Math.floor(this.random() * this.electionTicks);
    this.randomizedElectionTimeout = this.electionTicks + Math.min(Math.max(r, 0), this.electionTicks - 1);
  }

  becomeFollower(term: number, lead: NodeId | undefined): void {
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('leader -> pre-candidate is not a legal transition');
    // Thesis 9.6: a pre-candidate changes neither its term nor its vote.
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.tracker.resetVotes();
    this.lead = undefined;
    this.role = 'pre-candidate';
  }

  becomeCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('leader -> candidate is not a legal transition');
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    if (this.role !== 'candidate') throw new InvariantError(`${this.role} -> leader is not a legal transition`);
    this.stepFn = this.stepLeader;
    this.tickFn = this.tickHeartbeat;
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.bootLease = false;
    const self = this.prs.get(this.id) as Progress;
    self.becomeReplicate();
    self.recentActive = true;
    self.maybeUpdate(this.log.unstable.offset - 1);
    // Thesis 6.4 / 3.6.2: a no-op entry at the start of the term lets the leader commit (and so learn the
    // commit index, needed for ReadIndex) and commits all earlier entries indirectly (Figure 8).
    // No configuration change until it commits (pendingConfIndex), see proposeConfigChange.
    this.pendingConfIndex = this.appendEntry('noop', new Uint8Array(0));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Ticks
  // ---------------------------------------------------------------------------------------------------------

  tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) this.bootLease = false;
    if (promotable(this) && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      hup(this, false);
    }
  }

  tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // Thesis 6.2: a leader that has not heard from a quorum for an election timeout steps down.
        if (!this.tracker.quorumActive(this.config, this.id)) {
          this.becomeFollower(this.term, undefined);
          return;
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      }
      // Thesis 3.10: a transfer that did not complete within an election timeout is abandoned.
      this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      broadcastHeartbeat(this); // carries the commit index to every follower that holds it
      this.commitUnsent = false;
    } else if (this.commitUnsent) {
      this.needCommitBroadcast = true; // 'next-message': no AppendEntries carried it within a tick
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Step: term rules first (Figure 3.1 "all servers"), then the role's handler
  // ---------------------------------------------------------------------------------------------------------

  stepMessage(from: NodeId, m: RaftMessage): void {
    if (m.term > this.term) {
      if (m.type === 'PreVote' || m.type === 'RequestVote') {
        const force = m.type === 'RequestVote' && m.transfer === true;
        // Thesis 4.2.3 (disruptive servers): ignore, do not even adopt the term. A TimeoutNow-driven
        // election (thesis 3.10) is exempt: the leader asked for it.
        if (!force && inLease(this)) return;
      }
      if (m.type === 'PreVote') {
        // Never change term for a pre-vote (thesis 9.6).
      } else if (m.type === 'PreVoteResponse' && !m.reject) {
        // A granted pre-vote carries the term we would campaign at; adopt it only by winning.
      } else if (isLeaderMessage(m.type)) {
        this.becomeFollower(m.term, from);
      } else {
        this.becomeFollower(m.term, undefined);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'AppendEntries' || m.type === 'Heartbeat')) {
        // A stale leader (e.g. partitioned then healed) learns our term and steps down; without this it
        // could keep a partitioned follower that ignores its own higher-term elections stuck (etcd #5451).
        this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: 0, reject: false });
      } else if (m.type === 'PreVote') {
        this.send(from, { type: 'PreVoteResponse', term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'PreVote' || m.type === 'RequestVote') {
      handleVoteRequest(this, from, m.type, m.term, m.lastIndex, m.lastTerm);
      return;
    }
    this.stepFn(from, m);
  }

  stepFollower(from: NodeId, m: RaftMessage): void {
    switch (m.type) {
      case 'AppendEntries':
        this.heardFromLeader(from);
        handleAppendEntries(this, from, m);
        break;
      case 'Heartbeat':
        this.heardFromLeader(from);
        handleHeartbeat(this, from, m);
        break;
      case 'InstallSnapshot':
        this.heardFromLeader(from);
        handleSnapshotChunk(this, from, m);
        break;
      case 'TimeoutNow':
        // Thesis 3.10: start an election at once, skipping PreVote; the leader vouches for it.
        hup(this, true);
        break;
      case 'ReadIndexResponse':
        this.readStates.push({ ctx: m.ctx, index: m.index });
        break;
      default:
        break;
    }
  }

  stepCandidate(from: NodeId, m: RaftMessage): void {
    switch (m.type) {
      case 'AppendEntries':
      case 'Heartbeat':
      case 'InstallSnapshot':
        // Thesis 3.4: a candidate that hears from a leader of its term returns to follower.
        this.becomeFollower(m.term, from);
        this.stepFollower(from, m);
        break;
      case 'PreVoteResponse':
      case 'RequestVoteResponse': {
        if ((m.type === 'PreVoteResponse') !== (this.role === 'pre-candidate')) break;
        const result = poll(this, from, !m.reject);
        if (result === 'won') {
          if (this.role === 'pre-candidate') startElection(this, 'elect', false);
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, undefined);
        }
        break;
      }
      default:
        break;
    }
  }

  stepLeader(from: NodeId, m: RaftMessage): void {
    switch (m.type) {
      case 'AppendEntriesResponse':
        handleAppendResponse(this, from, m);
        break;
      case 'HeartbeatResponse':
        handleHeartbeatResponse(this, from, m);
        break;
      case 'InstallSnapshotResponse':
        handleSnapshotResponse(this, from, m);
        break;
      case 'ReadIndexRequest':
        if (this.prs.has(from)) handleReadIndex(this, from, m.ctx);
        break;
      default:
        break;
    }
  }

  heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.lead = from;
    this.bootLease = false;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Replication
  // ---------------------------------------------------------------------------------------------------------

  checkProposal(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    if (!isVoter(this.config, this.id)) throw new ProposalDroppedError('removed', 'proposal dropped: this leader is being removed from the cluster');
  }

  /** Leader appends one entry of its term; returns its index. Replication happens at the next flush. */
  appendEntry(type: LogEntry['type'], data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    const entry: LogEntry = { index, term: this.term, type, data };
    this.log.appendOne(entry);
    this.needAppend = true;
    return index;
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Output of messages
  // ---------------------------------------------------------------------------------------------------------

  /**
   * The one exit for messages. All of them leave in the next Ready, which the host sends only after that
   * Ready's hard state and entries are durable (so every reply reflects persisted state).
   */
  send(to: NodeId, msg: RaftMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }
}
