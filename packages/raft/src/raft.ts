import {
  assertBytes,
  assertNodeId,
  configMembers,
  ConfigError,
  decodeClusterConfig,
  encodeClusterConfig,
  hasQuorum,
  InvalidArgumentError,
  InvariantError,
  isJoint,
  isVoter,
  jointCommittedIndex,
  jointVoteResult,
  NotLeaderError,
  ProposalDroppedError,
  resolveProtocolOptions,
  StorageError,
  type ClusterConfig,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type NodeId,
  type PeerProgress,
  type Protocol,
  type ProtocolOptions,
  type Ready,
  type ReadState,
  type ReportsUnreachable,
  type Role,
  type Snapshot,
  type Status,
} from '@consensus-kit/core';
import { leaveJoint, nextConfigEntry } from './confchange';
import { decodeHardState, encodeHardState } from './hard-state';
import {
  isLeaderMessage,
  parseMessage,
  type AppendEntries,
  type AppendEntriesResponse,
  type Heartbeat,
  type HeartbeatResponse,
  type InstallSnapshot,
  type InstallSnapshotResponse,
  type RaftMessage,
} from './messages';
import { Progress } from './progress';
import { RaftLog } from './raft-log';
import { ReadOnly } from './read-only';

/** Options of `RaftNode`: the protocol contract's options plus Raft's own knobs. */
export interface RaftOptions extends ProtocolOptions {
  /** Thesis 9.6 PreVote: a node only bumps its term once a quorum says it could win. Default true. */
  preVote?: boolean;
  /**
   * Thesis 6.2 CheckQuorum: a leader steps down when it has not heard from a quorum for an election timeout,
   * and followers that heard from a leader within the election timeout ignore vote requests (thesis 4.2.3).
   * Default true.
   */
  checkQuorum?: boolean;
  /**
   * 'safe' (default): ReadIndex confirms leadership with a heartbeat round (thesis 6.4).
   * 'lease': serve reads at the commit index while the leader's lease holds (thesis 6.4.1); needs checkQuorum
   * and bounded clock drift; falls back to a heartbeat round when the lease is not known to hold.
   */
  readOnly?: 'safe' | 'lease';
  /** Appends in flight per follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes in flight per follower (0: unlimited). Default 32 MiB. */
  maxInflightBytes?: number;
  /** Approximate byte limit of one AppendEntries (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Proposals are refused while this many bytes are uncommitted (0: unlimited). Default 64 MiB. */
  maxUncommittedBytes?: number;
  /** Bytes per InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Approximate byte limit of `Ready.committed`. Default 64 MiB. */
  maxCommittedBytesPerReady?: number;
  /**
   * How followers learn that the commit index moved. 'next-message' (default): it rides on the next
   * AppendEntries, or goes out with the next tick at the latest (hashicorp/raft makes the same call), which
   * saves an AppendEntries and its reply per follower per commit. 'immediate': an empty AppendEntries carries
   * it at once (etcd's choice), so followers apply sooner. Either way the leader commits and answers its
   * clients at the same moment; only followers' applied index differs (by at most one tick).
   */
  commitNotify?: 'next-message' | 'immediate';
}

type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';
type StepFn = (from: NodeId, m: RaftMessage) => void;

/** A follower's snapshot being assembled from chunks. */
interface IncomingSnapshot {
  index: number;
  term: number;
  /** The term of the leader streaming it. */
  leaderTerm: number;
  config: ClusterConfig;
  buf: Uint8Array;
  received: number;
}

/** A configuration and the log index of the entry (or snapshot) that set it. */
interface ConfigAt {
  index: number;
  config: ClusterConfig;
}

/** Snapshot chunks in flight per follower. */
const SNAPSHOT_WINDOW_CHUNKS = 4;
/** Heartbeat responses without chunk progress before resending from the last acknowledged byte. */
const SNAPSHOT_STALL_HEARTBEATS = 2;

const EMPTY: LogEntry[] = [];

function positiveInt(value: number | undefined, fallback: number, what: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Raft (Ongaro & Ousterhout 2014; Ongaro's thesis 2014) as a deterministic state machine in the etcd/raft
 * `RawNode` model: `tick`, `step` and the local calls go in, one `Ready` batch comes out.
 *
 * Roles swap behaviour: `become*` sets `stepFn` and `tickFn`. Every outbound message goes through `send()`;
 * all messages of a Ready are sent by the host only after that Ready's state and entries are durable, which is
 * what makes replies such as votes and append acknowledgements safe (thesis 3.8).
 */
export class RaftNode implements Protocol, ReportsUnreachable {
  readonly id: NodeId;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly readOnlyOption: 'safe' | 'lease';
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;
  private readonly maxSizePerMsg: number;
  private readonly maxUncommittedBytes: number;
  private readonly snapshotChunkBytes: number;
  private readonly maxCommittedBytesPerReady: number;
  private readonly commitNotify: 'next-message' | 'immediate';
  /** The leader's commit index moved since the last broadcast that carried it ('next-message'). */
  private commitUnsent = false;

  private term = 0;
  private vote: NodeId | undefined;
  private lead: NodeId | undefined;
  private role: RaftRole = 'follower';
  private readonly log: RaftLog;

  /** The configuration in force: the latest one in the log, committed or not (thesis 4.1). */
  private config: ClusterConfig;
  /** The configuration of the snapshot (or of the first boot) under the log. */
  private baseConfig: ConfigAt;
  /** Configurations from config entries after baseConfig.index, ascending by index. */
  private configHistory: ConfigAt[] = [];

  private readonly prs = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private msgs: Envelope[] = [];
  private readStates: ReadState[] = [];
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before the leader committed an entry of its term (thesis 6.4 step 1). */
  private pendingReads: { from: NodeId; ctx: Uint8Array }[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Ticks since creation; the leader's lease is measured in them. */
  private ticks = 0;
  /** Lease reads are allowed while `ticks < leaseExpiry` (leader only). */
  private leaseExpiry = 0;
  /** A TimeoutNow was sent in this leadership: a forced election may follow, so no more lease reads. */
  private leaseRevoked = false;
  /**
   * With lease reads: after a restart we do not know whether a leader's lease counts on our vote; act as if
   * we had just heard from a leader until one election timeout has passed (keeps lease reads safe across
   * follower restarts; etcd does not do this). Every member of a cluster using lease reads must use them.
   */
  private bootLease: boolean;

  private leadTransferee: NodeId | undefined;
  /** Index of the latest config entry the leader appended; no new change until it commits. */
  private pendingConfIndex = 0;
  private uncommittedSize = 0;
  /** Leader: new entries to send at the next flush (batching of proposals). */
  private needAppend = false;
  /** Leader: the commit index advanced; tell followers at the next flush even with no new entries. */
  private needCommitBroadcast = false;
  private incoming: IncomingSnapshot | undefined;

  private stepFn: StepFn;
  private tickFn: () => void;

  /** What the previous Ready reported, to emit hardState/status only on change. */
  private prevTerm: number;
  private prevVote: NodeId | undefined;
  private prevCommit: number;
  /** The last Ready carried a leader's messages ahead of its new entries (thesis 10.2.1). */
  private sentFirst = false;
  /**
   * The AppendEntries last built during the current broadcastAppend (undefined: none yet); null outside one,
   * where nothing is shared.
   */
  private appendMemo: { prevIndex: number; last: number; commit: number; msg: RaftMessage; count: number; bytes: number } | undefined | null = null;
  private prevRole: Role;
  private prevLead: NodeId | undefined;
  private statusTerm: number;

  constructor(options: RaftOptions) {
    const o = resolveProtocolOptions(options);
    this.id = o.id;
    this.electionTicks = o.electionTicks;
    this.heartbeatTicks = o.heartbeatTicks;
    this.random = o.random;
    this.preVote = options.preVote ?? true;
    this.checkQuorum = options.checkQuorum ?? true;
    this.readOnlyOption = options.readOnly ?? 'safe';
    if (this.readOnlyOption !== 'safe' && this.readOnlyOption !== 'lease') {
      throw new ConfigError(`readOnly must be 'safe' or 'lease', got ${String(this.readOnlyOption)}`);
    }
    if (this.readOnlyOption === 'lease' && !this.checkQuorum) {
      throw new ConfigError("readOnly 'lease' needs checkQuorum: without it a deposed leader could serve stale reads");
    }
    this.maxInflightMsgs = positiveInt(options.maxInflightMsgs, 256, 'maxInflightMsgs');
    this.maxInflightBytes = positiveInt(options.maxInflightBytes, 32 << 20, 'maxInflightBytes', true);
    this.maxSizePerMsg = positiveInt(options.maxSizePerMsg, 1 << 20, 'maxSizePerMsg');
    this.maxUncommittedBytes = positiveInt(options.maxUncommittedBytes, 64 << 20, 'maxUncommittedBytes', true);
    this.snapshotChunkBytes = positiveInt(options.snapshotChunkBytes, 1 << 20, 'snapshotChunkBytes');
    this.maxCommittedBytesPerReady = positiveInt(options.maxCommittedBytesPerReady, 64 << 20, 'maxCommittedBytesPerReady');
    const notify = options.commitNotify ?? 'next-message';
    if (notify !== 'next-message' && notify !== 'immediate') {
      throw new InvalidArgumentError(`commitNotify must be 'next-message' or 'immediate', got ${String(notify)}`);
    }
    this.commitNotify = notify;
    this.bootLease = this.readOnlyOption === 'lease';

    const storage = options.storage;
    this.log = new RaftLog(storage);

    // Restart: hard state, then the snapshot's configuration, then every config entry in the log (thesis 4.1:
    // a server uses the latest configuration in its log, committed or not).
    const raw = storage.initialState().hardState;
    let hs = { term: 0, vote: undefined as NodeId | undefined, commit: 0 };
    if (raw !== undefined && raw.length > 0) {
      try {
        const d = decodeHardState(raw);
        hs = { term: d.term, vote: d.vote, commit: d.commit };
      } catch (cause) {
        throw new StorageError('stored raft hard state is unreadable', { cause });
      }
    }
    const snap = storage.snapshot();
    this.baseConfig =
      snap !== undefined && snap.index >= this.log.firstIndex() - 1
        ? { index: snap.index, config: cloneConfig(snap.config) }
        : { index: 0, config: { voters: [...o.peers].sort(), learners: [] } };
    for (const e of this.log.scan(Math.max(this.log.firstIndex(), this.baseConfig.index + 1), this.log.lastIndex() + 1)) {
      if (e.type === 'config') this.pushConfig(e);
    }
    this.config = this.latestConfig().config;

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

    this.log.onAppend = (ents) => this.afterAppend(ents);
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    this.becomeFollower(hs.term, undefined);
    this.vote = hs.vote;
    this.prevTerm = this.term;
    this.prevVote = this.vote;
    this.prevCommit = this.log.committed;
    this.prevRole = this.statusRole();
    this.prevLead = this.lead;
    this.statusTerm = this.term;
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
      this.handleReadIndex(this.id, ctx);
      return;
    }
    // Follower reads (thesis 6.4): the leader finds the read index; we release the read once applied.
    if (this.lead === undefined) throw new NotLeaderError(undefined, 'no leader is known to serve the read');
    this.send(this.lead, { type: 'ReadIndexRequest', term: this.term, ctx });
  }

  /** Thesis 3.10 leadership transfer: catch `to` up, then tell it to time out at once. */
  transferLeadership(to: NodeId): void {
    assertNodeId(to, 'transfer target');
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (to === this.id) {
      this.abortLeaderTransfer();
      return;
    }
    if (!isVoter(this.config, to)) throw new InvalidArgumentError(`cannot transfer leadership to ${to}: not a voter`);
    if (this.leadTransferee === to) return;
    this.abortLeaderTransfer();
    this.leadTransferee = to;
    // The transfer must finish within an election timeout or it is abandoned (thesis 3.10).
    this.electionElapsed = 0;
    const pr = this.prs.get(to) as Progress;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  /** Start an election now, as if the election timer had fired (etcd's MsgHup). Ignored on a leader or non-voter. */
  campaign(): void {
    this.hup(false);
  }

  reportUnreachable(peer: NodeId): void {
    const pr = this.role === 'leader' ? this.prs.get(peer) : undefined;
    // Optimistic pipelining to an unreachable peer only piles up lost messages: probe instead.
    if (pr !== undefined && peer !== this.id && pr.state === 'replicate') pr.becomeProbe();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Output
  // ---------------------------------------------------------------------------------------------------------

  hasReady(): boolean {
    this.flush();
    const u = this.log.unstable;
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      u.hasNextEntries() ||
      (u.snapshot !== undefined && !u.snapshotInProgress) ||
      this.log.hasNextCommittedEntries() ||
      this.term !== this.prevTerm ||
      this.vote !== this.prevVote ||
      this.log.committed !== this.prevCommit ||
      this.statusRole() !== this.prevRole ||
      this.lead !== this.prevLead ||
      this.term !== this.statusTerm
    );
  }

  ready(): Ready {
    this.flush();
    const log = this.log;
    const u = log.unstable;
    const rd: Ready = { entries: EMPTY, messages: this.msgs, committed: EMPTY, reads: this.readStates };
    this.msgs = [];
    this.readStates = [];
    // Only term and vote must be durable before a message that depends on them leaves (thesis 3.8, Figure 3.1:
    // "persistent state"); the commit index is volatile and merely rides along when they change. A commit-only
    // change therefore costs no durable write (etcd's MustSync makes the same call): on restart the node
    // re-learns its commit index from the leader, and its applied index from the host's snapshot.
    if (this.term !== this.prevTerm || this.vote !== this.prevVote) {
      rd.hardState = encodeHardState({ term: this.term, vote: this.vote, commit: log.committed });
      this.prevTerm = this.term;
      this.prevVote = this.vote;
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
      this.role === 'leader' &&
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
      const committed = log.nextCommittedEntries(this.maxCommittedBytesPerReady);
      if (committed.length > 0) {
        log.applying = (committed[committed.length - 1] as LogEntry).index;
        rd.committed = committed;
        if (this.role === 'leader' && this.uncommittedSize > 0) {
          let bytes = 0;
          for (let i = 0; i < committed.length; i++) {
            const e = committed[i] as LogEntry;
            if (e.type === 'command') bytes += e.data.length + 24;
          }
          this.uncommittedSize = Math.max(0, this.uncommittedSize - bytes);
        }
      }
    }
    const role = this.statusRole();
    if (role !== this.prevRole || this.lead !== this.prevLead || this.term !== this.statusTerm) {
      rd.status = this.status();
      this.prevRole = role;
      this.prevLead = this.lead;
      this.statusTerm = this.term;
    }
    return rd;
  }

  advance(rd: Ready): void {
    const log = this.log;
    if (rd.snapshot !== undefined) {
      log.unstable.stableSnapTo(rd.snapshot.index);
      if (log.applied < rd.snapshot.index) log.applied = rd.snapshot.index;
      if (log.applying < rd.snapshot.index) log.applying = rd.snapshot.index;
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1] as LogEntry;
      log.unstable.stableTo(last.index, last.term);
      if (this.role === 'leader') {
        // Thesis 10.2.1: the leader counts itself only for what it has persisted.
        const self = this.prs.get(this.id);
        if (self !== undefined && self.maybeUpdate(Math.min(last.index, log.unstable.offset - 1))) this.maybeCommit();
      }
    }
    if (rd.committed.length > 0) {
      const last = (rd.committed[rd.committed.length - 1] as LogEntry).index;
      if (last > log.applied) log.applied = last;
    }
  }

  status(): Status {
    const s: Status = {
      id: this.id,
      role: this.statusRole(),
      term: this.term,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      config: cloneConfig(this.config),
    };
    if (this.lead !== undefined) s.leader = this.lead;
    if (this.role === 'leader') {
      const progress: Record<NodeId, PeerProgress> = {};
      for (const id of [...this.prs.keys()].sort()) progress[id] = (this.prs.get(id) as Progress).view();
      s.progress = progress;
      if (this.leadTransferee !== undefined) s.transferringTo = this.leadTransferee;
    }
    return s;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Read-only inspection (tests, invariants, tooling)
  // ---------------------------------------------------------------------------------------------------------

  /** The vote cast in the current term, if any. */
  get votedFor(): NodeId | undefined {
    return this.vote;
  }

  /** Term of the entry at `index` in this node's log (persisted or not), `undefined` when not held. */
  termAt(index: number): number | undefined {
    const t = this.log.term(index);
    return t < 0 ? undefined : t;
  }

  /** The entry at `index`, `undefined` when compacted or past the end. */
  entryAt(index: number): LogEntry | undefined {
    if (index < this.log.firstIndex() || index > this.log.lastIndex()) return undefined;
    return this.log.slice(index, index + 1, 1)?.[0];
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Role changes
  // ---------------------------------------------------------------------------------------------------------

  private statusRole(): Role {
    if (this.role === 'follower' && !isVoter(this.config, this.id) && this.config.learners.includes(this.id)) return 'learner';
    return this.role;
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = undefined;
    }
    this.lead = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = undefined;
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReads = [];
    this.needAppend = false;
    this.needCommitBroadcast = false;
    this.commitUnsent = false;
    this.leaseExpiry = 0;
    this.leaseRevoked = false;
    this.resetProgress();
  }

  private resetProgress(): void {
    this.prs.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of this.members()) {
      this.prs.set(id, new Progress(next, !isVoter(this.config, id), this.maxInflightMsgs, this.maxInflightBytes));
    }
  }

  /** Everyone who receives the log, plus ourselves (a leader removing itself keeps managing, thesis 4.2.2). */
  private members(): NodeId[] {
    const ids = configMembers(this.config);
    if (!ids.includes(this.id)) ids.push(this.id);
    return ids;
  }

  private resetRandomizedElectionTimeout(): void {
    // Thesis 3.4: election timeouts drawn uniformly from [electionTicks, 2 * electionTicks).
    const r = Math.floor(this.random() * this.electionTicks);
    this.randomizedElectionTimeout = this.electionTicks + Math.min(Math.max(r, 0), this.electionTicks - 1);
  }

  private becomeFollower(term: number, lead: NodeId | undefined): void {
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('leader -> pre-candidate is not a legal transition');
    // Thesis 9.6: a pre-candidate changes neither its term nor its vote.
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.votes.clear();
    this.lead = undefined;
    this.role = 'pre-candidate';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('leader -> candidate is not a legal transition');
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
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

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) this.bootLease = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // Thesis 6.2: a leader that has not heard from a quorum for an election timeout steps down.
        if (!this.quorumActive()) {
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
      this.broadcastHeartbeat(); // carries the commit index to every follower that holds it
      this.commitUnsent = false;
    } else if (this.commitUnsent) {
      this.needCommitBroadcast = true; // 'next-message': no AppendEntries carried it within a tick
    }
  }

  private quorumActive(): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.prs) if (id === this.id || pr.recentActive) active.add(id);
    return hasQuorum(this.config, active);
  }

  /**
   * Whether this node may start an election: no snapshot is being installed, and it is a voter in its latest
   * configuration, or in the one before while the latest (which removes or demotes it) is not committed yet.
   * Thesis 4.2.2 (Figure 4.6): such a server may still be needed to elect a leader that commits C_new; its
   * own vote counts only if it is in its latest configuration (the quorum helpers count voters only).
   */
  private promotable(): boolean {
    if (this.log.unstable.snapshot !== undefined) return false;
    if (isVoter(this.config, this.id)) return true;
    const latest = this.latestConfig();
    if (latest.index <= this.log.committed) return false;
    const prev = this.configHistory.length >= 2 ? (this.configHistory[this.configHistory.length - 2] as ConfigAt) : this.baseConfig;
    return prev !== latest && isVoter(prev.config, this.id);
  }

  /**
   * Thesis 4.2.3: a server that heard from a current leader within the minimum election timeout does not
   * grant votes nor update its term for a vote request (with CheckQuorum, as in etcd).
   */
  private inLease(): boolean {
    return this.checkQuorum && (this.lead !== undefined || this.bootLease) && this.electionElapsed < this.electionTicks;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Elections
  // ---------------------------------------------------------------------------------------------------------

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.preVote && !transfer) this.startElection('pre', false);
    else this.startElection('elect', transfer);
  }

  private startElection(kind: 'pre' | 'elect', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteTerm = this.term + 1; // thesis 9.6: ask at the term we would use, without adopting it
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    const result = this.poll(this.id, true);
    if (result === 'won') {
      // A single-voter cluster wins at once.
      if (kind === 'pre') this.startElection('elect', false);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voterIds()) {
      if (id === this.id) continue;
      if (kind === 'pre') this.send(id, { type: 'PreVote', term: voteTerm, lastIndex, lastTerm });
      else if (transfer) this.send(id, { type: 'RequestVote', term: voteTerm, lastIndex, lastTerm, transfer: true });
      else this.send(id, { type: 'RequestVote', term: voteTerm, lastIndex, lastTerm });
    }
  }

  private voterIds(): NodeId[] {
    const ids = new Set(this.config.voters);
    for (const id of this.config.outgoing ?? []) ids.add(id);
    return [...ids].sort();
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    // Thesis 4.3: in a joint configuration an election needs a majority of both halves.
    return jointVoteResult(this.config, this.votes);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Step: term rules first (Figure 3.1 "all servers"), then the role's handler
  // ---------------------------------------------------------------------------------------------------------

  private stepMessage(from: NodeId, m: RaftMessage): void {
    if (m.term > this.term) {
      if (m.type === 'PreVote' || m.type === 'RequestVote') {
        const force = m.type === 'RequestVote' && m.transfer === true;
        // Thesis 4.2.3 (disruptive servers): ignore, do not even adopt the term. A TimeoutNow-driven
        // election (thesis 3.10) is exempt: the leader asked for it.
        if (!force && this.inLease()) return;
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
      this.handleVoteRequest(from, m.type, m.term, m.lastIndex, m.lastTerm);
      return;
    }
    this.stepFn(from, m);
  }

  /** Figure 3.1 RequestVote receiver, with the election restriction of thesis 3.6.1. */
  private handleVoteRequest(from: NodeId, type: 'PreVote' | 'RequestVote', term: number, lastIndex: number, lastTerm: number): void {
    const canVote =
      this.vote === from ||
      (this.vote === undefined && this.lead === undefined) ||
      (type === 'PreVote' && term > this.term);
    if (canVote && this.log.isUpToDate(lastIndex, lastTerm)) {
      if (type === 'PreVote') {
        this.send(from, { type: 'PreVoteResponse', term, reject: false });
      } else {
        // The vote is part of the hard state of this Ready; the host persists it before sending the reply.
        this.electionElapsed = 0;
        this.vote = from;
        this.send(from, { type: 'RequestVoteResponse', term, reject: false });
      }
    } else if (type === 'PreVote') {
      this.send(from, { type: 'PreVoteResponse', term: this.term, reject: true });
    } else {
      this.send(from, { type: 'RequestVoteResponse', term: this.term, reject: true });
    }
  }

  private stepFollower(from: NodeId, m: RaftMessage): void {
    switch (m.type) {
      case 'AppendEntries':
        this.heardFromLeader(from);
        this.handleAppendEntries(from, m);
        break;
      case 'Heartbeat':
        this.heardFromLeader(from);
        this.handleHeartbeat(from, m);
        break;
      case 'InstallSnapshot':
        this.heardFromLeader(from);
        this.handleSnapshotChunk(from, m);
        break;
      case 'TimeoutNow':
        // Thesis 3.10: start an election at once, skipping PreVote; the leader vouches for it.
        this.hup(true);
        break;
      case 'ReadIndexResponse':
        this.readStates.push({ ctx: m.ctx, index: m.index });
        break;
      default:
        break;
    }
  }

  private stepCandidate(from: NodeId, m: RaftMessage): void {
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
        const result = this.poll(from, !m.reject);
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.startElection('elect', false);
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

  private stepLeader(from: NodeId, m: RaftMessage): void {
    switch (m.type) {
      case 'AppendEntriesResponse':
        this.handleAppendResponse(from, m);
        break;
      case 'HeartbeatResponse':
        this.handleHeartbeatResponse(from, m);
        break;
      case 'InstallSnapshotResponse':
        this.handleSnapshotResponse(from, m);
        break;
      case 'ReadIndexRequest':
        if (this.prs.has(from)) this.handleReadIndex(from, m.ctx);
        break;
      default:
        break;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.lead = from;
    this.bootLease = false;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Follower handlers
  // ---------------------------------------------------------------------------------------------------------

  private handleAppendEntries(from: NodeId, m: AppendEntries): void {
    const log = this.log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit index already agrees with any leader (Log Matching + Leader Completeness).
      this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: log.committed, reject: false });
      return;
    }
    const lastNew = log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew === -1) return; // would rewrite a committed entry: faulty input, ignored
    if (lastNew !== undefined) {
      this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: lastNew, reject: false });
      return;
    }
    // Rejection with a hint so the leader can skip a whole term per round trip (thesis 5.3 optimisation).
    const [hintIndex, hintTerm] = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
    this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: m.prevIndex, reject: true, hintIndex, hintTerm });
  }

  private handleHeartbeat(from: NodeId, m: Heartbeat): void {
    // The leader sends min(our match, its commit), so this never commits an entry we do not share with it.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(from, { type: 'HeartbeatResponse', term: this.term, seq: m.seq });
  }

  /**
   * InstallSnapshot receiver (thesis 5.3, Figure 5.3), chunked: chunks must arrive in order; anything else is
   * answered with the offset we hold so the leader resumes from there.
   */
  private handleSnapshotChunk(from: NodeId, m: InstallSnapshot): void {
    const log = this.log;
    if (m.index <= log.committed || log.matchTerm(m.index, m.snapTerm)) {
      // We already hold this prefix: no transfer needed (etcd's fast-forward); Figure 5.3 rule 6.
      this.incoming = undefined;
      log.commitTo(Math.min(m.index, log.lastIndex()));
      this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: log.committed, reject: false });
      return;
    }
    let inc = this.incoming;
    // A transfer belongs to one leadership: a new leader's snapshot replaces whatever an old one had begun.
    if (inc !== undefined && inc.leaderTerm !== m.term) inc = undefined;
    if (inc !== undefined && m.index < inc.index) return; // a chunk of an older transfer of this leader
    if (inc === undefined || inc.index !== m.index || inc.term !== m.snapTerm || inc.buf.length !== m.total) {
      if (m.offset !== 0) {
        this.send(from, { type: 'InstallSnapshotResponse', term: this.term, index: m.index, offset: 0, reject: true });
        return;
      }
      let buf: Uint8Array;
      try {
        buf = new Uint8Array(m.total);
      } catch {
        return; // cannot hold it; the leader will retry
      }
      inc = { index: m.index, term: m.snapTerm, leaderTerm: m.term, config: cloneConfig(m.config), buf, received: 0 };
      this.incoming = inc;
    }
    if (m.offset !== inc.received) {
      this.send(from, { type: 'InstallSnapshotResponse', term: this.term, index: m.index, offset: inc.received, reject: m.offset > inc.received });
      return;
    }
    inc.buf.set(m.data, m.offset);
    inc.received += m.data.length;
    if (inc.received < inc.buf.length) {
      this.send(from, { type: 'InstallSnapshotResponse', term: this.term, index: m.index, offset: inc.received, reject: false });
      return;
    }
    this.incoming = undefined;
    const snap: Snapshot = { index: inc.index, term: inc.term, config: inc.config, data: inc.buf };
    // Figure 5.3 rules 6-8: discard the whole log, install the snapshot, adopt its configuration.
    log.restore(snap);
    this.baseConfig = { index: snap.index, config: cloneConfig(snap.config) };
    this.configHistory = [];
    this.applyConfig(this.baseConfig.config);
    // The acknowledgement leaves with the Ready that installs the snapshot, i.e. once it is durable.
    this.send(from, { type: 'AppendEntriesResponse', term: this.term, index: log.lastIndex(), reject: false });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leader handlers
  // ---------------------------------------------------------------------------------------------------------

  private handleAppendResponse(from: NodeId, m: AppendEntriesResponse): void {
    const pr = this.prs.get(from);
    if (pr === undefined || from === this.id) return;
    pr.recentActive = true;
    if (m.reject) {
      if (m.index > this.log.lastIndex()) return; // we never sent that
      let next = m.hintIndex ?? 0;
      // Fast backtracking (thesis 5.3): jump over every entry of ours whose term is above the follower's.
      if ((m.hintTerm ?? 0) > 0) next = this.log.findConflictByTerm(next, m.hintTerm ?? 0)[0];
      if (pr.maybeDecrTo(m.index, next)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(from);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) return; // acknowledges entries we do not have: bogus
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      // Stale or duplicate acknowledgement. A follower finishing a snapshot may still need a nudge.
      if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        this.sendAppend(from);
      }
      return;
    }
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match + 1 >= this.log.firstIndex() || pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      default:
        pr.inflights.freeLE(m.index);
    }
    if (!this.maybeCommit() && oldPaused) this.sendAppend(from);
    if (this.role !== 'leader') return; // the commit removed us (thesis 4.2.2)
    // Pipelining: keep the window full.
    while (this.maybeSendAppend(from, false));
    if (from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(from);
  }

  private handleHeartbeatResponse(from: NodeId, m: HeartbeatResponse): void {
    const pr = this.prs.get(from);
    if (pr === undefined || from === this.id) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) {
      // An acknowledgement was probably lost: free a slot so the follower is probed again.
      pr.inflights.freeFirstOne();
    }
    if (pr.state === 'snapshot') {
      if (pr.snapProgressed) {
        pr.snapProgressed = false;
        pr.snapStall = 0;
      } else if (++pr.snapStall >= SNAPSHOT_STALL_HEARTBEATS) {
        // No chunk acknowledged for a while: a chunk or its ack was lost; resume from the last acked byte.
        pr.snapStall = 0;
        pr.snapSent = pr.snapAcked;
        pr.snapDoneSent = false;
        pr.snapRewound = -1;
      }
      this.sendSnapshotChunks(from, pr);
    } else if (pr.match < this.log.lastIndex()) {
      this.sendAppend(from);
    }
    this.readOnly.ack(from, m.seq);
    this.maybeReleaseReads();
  }

  private handleSnapshotResponse(from: NodeId, m: InstallSnapshotResponse): void {
    const pr = this.prs.get(from);
    if (pr === undefined || from === this.id) return;
    pr.recentActive = true;
    if (pr.state !== 'snapshot' || m.index !== pr.pendingSnapshot) return;
    if (m.offset > pr.snapAcked) {
      pr.snapAcked = Math.min(m.offset, pr.snapSent);
      pr.snapProgressed = true;
      pr.snapRewound = -1;
    }
    // A chunk was lost: resume from what the follower holds. Every chunk after the gap reports the same
    // offset; one rewind per gap is enough.
    if (m.reject && m.offset < pr.snapSent && m.offset !== pr.snapRewound) {
      pr.snapAcked = m.offset;
      pr.snapSent = m.offset;
      pr.snapDoneSent = false;
      pr.snapRewound = m.offset;
    }
    this.sendSnapshotChunks(from, pr);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Replication
  // ---------------------------------------------------------------------------------------------------------

  private checkProposal(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    if (!isVoter(this.config, this.id)) throw new ProposalDroppedError('removed', 'proposal dropped: this leader is being removed from the cluster');
  }

  /** Leader appends one entry of its term; returns its index. Replication happens at the next flush. */
  private appendEntry(type: LogEntry['type'], data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    const entry: LogEntry = { index, term: this.term, type, data };
    this.log.appendOne(entry);
    this.needAppend = true;
    return index;
  }

  /**
   * Configuration bookkeeping for entries written to the log (RaftLog.onAppend: exactly what was written,
   * replacing everything from ents[0].index on). A configuration takes effect as soon as its entry is in the
   * log (thesis 4.1), and a truncated config entry takes its configuration with it.
   */
  private afterAppend(ents: readonly LogEntry[]): void {
    const first = (ents[0] as LogEntry).index;
    let changed = false;
    while (this.configHistory.length > 0 && (this.configHistory[this.configHistory.length - 1] as ConfigAt).index >= first) {
      this.configHistory.pop();
      changed = true;
    }
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i] as LogEntry;
      if (e.type === 'config' && this.pushConfig(e)) changed = true;
    }
    if (changed) this.applyConfig(this.latestConfig().config);
  }

  private pushConfig(e: LogEntry): boolean {
    try {
      this.configHistory.push({ index: e.index, config: decodeClusterConfig(e.data) });
      return true;
    } catch {
      return false; // a malformed config entry changes nothing
    }
  }

  private latestConfig(): ConfigAt {
    return this.configHistory[this.configHistory.length - 1] ?? this.baseConfig;
  }

  private applyConfig(config: ClusterConfig): void {
    this.config = config;
    const members = this.members();
    const next = this.log.lastIndex() + 1;
    for (const id of members) {
      const learner = !isVoter(config, id);
      const pr = this.prs.get(id);
      if (pr === undefined) {
        // A new member starts probing at our last entry (etcd: next = lastIndex).
        this.prs.set(id, new Progress(Math.max(1, next - 1), learner, this.maxInflightMsgs, this.maxInflightBytes));
      } else {
        pr.learner = learner;
      }
    }
    const keep = new Set(members);
    for (const id of [...this.prs.keys()]) if (!keep.has(id)) this.prs.delete(id);
    if (this.role === 'leader') {
      if (this.leadTransferee !== undefined && !isVoter(config, this.leadTransferee)) this.abortLeaderTransfer();
      this.needCommitBroadcast = true;
    }
  }

  /** Thesis 3.6.2 / Figure 8: commit the highest index replicated on a quorum, if it is of this term. */
  private maybeCommit(): boolean {
    const prs = this.prs;
    const mci = jointCommittedIndex(this.config, (id) => prs.get(id)?.match);
    if (mci === Number.MAX_SAFE_INTEGER || !this.log.maybeCommit(mci, this.term)) return false;
    if (this.commitNotify === 'immediate') this.needCommitBroadcast = true;
    else this.commitUnsent = true;
    this.afterCommit();
    return true;
  }

  private afterCommit(): void {
    const committed = this.log.committed;
    // Forget configurations that can no longer be truncated away, except the latest committed one.
    while (this.configHistory.length > 1 && (this.configHistory[1] as ConfigAt).index <= committed) this.configHistory.shift();
    if (this.pendingReads.length > 0 && this.log.term(committed) === this.term) {
      const reads = this.pendingReads;
      this.pendingReads = [];
      for (const r of reads) this.handleReadIndex(r.from, r.ctx);
    }
    const current = this.latestConfig();
    if (current.index > committed) return;
    const leave = this.pendingConfIndex <= committed ? leaveJoint(this.config) : undefined;
    if (leave !== undefined) {
      // Thesis 4.3: once C_old,new is committed the leader moves to C_new on its own.
      this.pendingConfIndex = this.appendEntry('config', encodeClusterConfig(leave));
    } else if (!isVoter(this.config, this.id)) {
      // Thesis 4.2.2: a leader not in C_new steps down once C_new is committed. Tell followers the commit first,
      // then hand over to an up-to-date voter at once (thesis 3.10) instead of leaving the cluster to time out.
      this.broadcastAppend(true);
      let best: NodeId | undefined;
      let bestMatch = -1;
      for (const id of this.voterIds()) {
        const m = this.prs.get(id)?.match ?? 0;
        if (id !== this.id && m > bestMatch) {
          best = id;
          bestMatch = m;
        }
      }
      if (best !== undefined && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
      this.becomeFollower(this.term, undefined);
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends the next AppendEntries to `to` if flow control allows (etcd's maybeSendAppend): in probe state one
   * per heartbeat interval, in replicate state while the in-flight window has room. Falls back to a snapshot
   * when the entries `to` needs are compacted.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const log = this.log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm < 0) return this.sendSnapshot(to, pr);
    const last = log.lastIndex();
    const memo = this.appendMemo;
    if (memo !== undefined && memo !== null && memo.prevIndex === prevIndex && memo.last === last && memo.commit === log.committed) {
      // Same batch as the follower before (the usual case: every follower in step). Sharing the message
      // object lets the transport encode it once for all of them.
      if (memo.count === 0 && !sendIfEmpty) return false;
      this.send(to, memo.msg);
      pr.sentEntries(memo.count, prevIndex + memo.count, memo.bytes);
      return true;
    }
    let ents: LogEntry[] = EMPTY;
    if (pr.next <= last) {
      const s = log.slice(pr.next, last + 1, this.maxSizePerMsg);
      if (s === undefined) return this.sendSnapshot(to, pr);
      ents = s;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (let i = 0; i < ents.length; i++) bytes += (ents[i] as LogEntry).data.length + 24;
    const msg: RaftMessage = { type: 'AppendEntries', term: this.term, prevIndex, prevTerm, entries: ents, commit: log.committed };
    this.send(to, msg);
    pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
    if (this.appendMemo !== null) this.appendMemo = { prevIndex, last, commit: log.committed, msg, count: ents.length, bytes };
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.log.storage.snapshot();
    if (snap === undefined) return false; // storage compacted without a snapshot: nothing we can send
    pr.becomeSnapshot(snap.index);
    this.sendSnapshotChunks(to, pr);
    return true;
  }

  /** Streams snapshot chunks to `to` while fewer than SNAPSHOT_WINDOW_CHUNKS are unacknowledged. */
  private sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const snap = this.log.storage.snapshot();
    if (snap === undefined || snap.index !== pr.pendingSnapshot) {
      // The host took a newer snapshot meanwhile: probe again, which restarts with the newest snapshot.
      pr.becomeProbe();
      pr.next = pr.match + 1;
      this.sendAppend(to);
      return;
    }
    const s = snap as Snapshot;
    const total = s.data.length;
    const chunk = this.snapshotChunkBytes;
    let window = chunk * SNAPSHOT_WINDOW_CHUNKS;
    if (this.maxInflightBytes > 0) window = Math.max(chunk, Math.min(window, this.maxInflightBytes));
    while (!pr.snapDoneSent && pr.snapSent - pr.snapAcked < window) {
      const end = Math.min(total, pr.snapSent + chunk);
      this.send(to, {
        type: 'InstallSnapshot',
        term: this.term,
        index: s.index,
        snapTerm: s.term,
        config: s.config,
        total,
        offset: pr.snapSent,
        data: s.data.subarray(pr.snapSent, end),
      });
      pr.snapSent = end;
      if (end === total) pr.snapDoneSent = true;
    }
  }

  /** Flow-controlled appends to every follower; with `sendIfEmpty` also an empty one to carry the commit. */
  private broadcastAppend(sendIfEmpty: boolean): void {
    // Within one broadcast the log, term and commit index stand still, so an AppendEntries built for one
    // follower serves every other follower that needs the same range (appendMemo).
    this.appendMemo = undefined;
    try {
      for (const [id, pr] of this.prs) {
        if (id === this.id || !this.maybeSendAppend(id, sendIfEmpty)) continue;
        // Pipelining (thesis 10.2.1): a follower in replicate state gets every pending batch now.
        while (pr.state === 'replicate' && this.maybeSendAppend(id, false));
      }
    } finally {
      this.appendMemo = null;
    }
  }

  private broadcastHeartbeat(): void {
    const seq = this.readOnly.nextRound(this.ticks);
    const committed = this.log.committed;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send(id, { type: 'Heartbeat', term: this.term, commit: Math.min(pr.match, committed), seq });
    }
    this.maybeReleaseReads();
  }

  /** Work deferred to the Ready boundary so that many proposals and reads share messages. */
  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.needAppend || this.needCommitBroadcast) {
      const ifEmpty = this.needCommitBroadcast;
      this.needAppend = false;
      this.needCommitBroadcast = false;
      this.commitUnsent = false; // every follower with room gets an AppendEntries, which carries it
      this.broadcastAppend(ifEmpty);
    }
    if (this.readOnly.needsRound()) this.broadcastHeartbeat();
  }

  private sendTimeoutNow(to: NodeId): void {
    this.leaseRevoked = true;
    this.send(to, { type: 'TimeoutNow', term: this.term });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reads
  // ---------------------------------------------------------------------------------------------------------

  /** Thesis 6.4 ReadIndex on the leader, for itself or for a follower that forwarded the read. */
  private handleReadIndex(from: NodeId, ctx: Uint8Array): void {
    const committed = this.log.committed;
    // Step 1: the leader must have committed an entry of its term to know the commit index is current.
    if (this.log.term(committed) !== this.term) {
      this.pendingReads.push({ from, ctx });
      return;
    }
    if (hasQuorum(this.config, new Set([this.id]))) {
      this.respondRead(from, ctx, committed);
      return;
    }
    // Thesis 6.4.1: within the lease no other leader can exist; no round trip needed.
    if (this.readOnlyOption === 'lease' && this.leaseValid()) {
      this.respondRead(from, ctx, committed);
      return;
    }
    // Steps 2-3: remember the read index, confirm leadership with a heartbeat round (sent at the flush).
    this.readOnly.add(from, ctx, committed);
  }

  private leaseValid(): boolean {
    return this.checkQuorum && !this.leaseRevoked && this.leadTransferee === undefined && this.ticks < this.leaseExpiry;
  }

  private maybeReleaseReads(): void {
    const q = this.readOnly.quorumSeq(this.config, this.id);
    if (q === 0) return;
    if (this.readOnlyOption === 'lease') {
      // Every follower that acknowledged round q heard from us at or after its send tick and ignores vote
      // requests for an election timeout after that (thesis 4.2.3); one tick of margin for clock drift.
      const sent = this.readOnly.sentTick(q);
      if (sent !== undefined) this.leaseExpiry = Math.max(this.leaseExpiry, sent + this.electionTicks - 1);
    }
    this.readOnly.prune(q);
    if (this.readOnly.pending === 0) return;
    for (const r of this.readOnly.release(q)) this.respondRead(r.from, r.ctx, r.index);
  }

  private respondRead(from: NodeId, ctx: Uint8Array, index: number): void {
    if (from === this.id) this.readStates.push({ ctx, index });
    else this.send(from, { type: 'ReadIndexResponse', term: this.term, ctx, index });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Output of messages
  // ---------------------------------------------------------------------------------------------------------

  /**
   * The one exit for messages. All of them leave in the next Ready, which the host sends only after that
   * Ready's hard state and entries are durable (so every reply reflects persisted state).
   */
  private send(to: NodeId, msg: RaftMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }
}

function cloneConfig(c: ClusterConfig): ClusterConfig {
  const out: ClusterConfig = { voters: [...c.voters], learners: [...c.learners] };
  if (c.outgoing !== undefined) out.outgoing = [...c.outgoing];
  return out;
}
