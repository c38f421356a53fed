import {
  InvalidArgumentError,
  NotLeaderError,
  ProposalDroppedError,
  applyConfigChange,
  assertBytes,
  encodeClusterConfig,
  majority,
  resolveProtocolOptions,
  type ClusterConfig,
  type ConfigChange,
  type EntryType,
  type Envelope,
  type LogEntry,
  type NodeId,
  type ObservesCompaction,
  type Protocol,
  type Ready,
  type ReadState,
  type Snapshot,
  type Status,
  type Storage,
} from '@consensus-kit/core';
import { describeBallot, nextBallot } from './ballot';
import { decodeHardState, encodeHardState } from './hard-state';
import { Membership } from './membership';
import { parseMessage, type Accept, type Accepted, type Heartbeat, type HeartbeatReply, type Learn, type PaxosMessage, type Prepare, type Promise, type SnapshotMessage } from './messages';
import { checkFlexibleQuorums, resolvePaxosOptions, type PaxosOptions, type ResolvedPaxosOptions } from './options';
import { PaxosLog } from './paxos-log';
import type { PaxosStatusDetails } from './status-details';

const EMPTY = new Uint8Array(0);

/** The leader's view of one peer (PMMC's per-acceptor state for phase 2, with Raft-style flow control). */
interface Peer {
  /** Accepted every slot in (phase-1 base, match] at the leader's ballot. */
  match: number;
  next: number;
  commit: number;
  /** Last slot of each Accept in flight. */
  inflight: number[];
  matchAtHeartbeat: number;
  commitAtHeartbeat: number;
  snapshotAt: number;
}

/** A heartbeat round: when it left and who answered (read barriers and leases count on it). */
interface Round {
  tick: number;
  acks: Set<NodeId>;
}

interface Waiting {
  type: EntryType;
  data: Uint8Array;
}

const sameValue = (a: LogEntry, b: LogEntry) => a.type === b.type && a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);

/**
 * Multi-Paxos as a pure state machine (Lamport, "Paxos Made Simple" section 3; van Renesse & Altinbuken, "Paxos
 * Made Moderately Complex", PMMC). Every node is an acceptor and a learner; a node that suspects the leader runs
 * phase 1 once for every slot above its commit point and, once a phase-1 quorum promised, leads: it re-proposes
 * the highest-ballot value it learned for each slot, fills gaps with no-ops, and then assigns one new slot per
 * proposal, pipelined within PMMC's WINDOW.
 */
export class PaxosNode implements Protocol, ObservesCompaction {
  readonly id: NodeId;
  private readonly o: ResolvedPaxosOptions;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly random: () => number;
  private readonly storage: Storage;
  readonly log: PaxosLog;

  // Acceptor and learner state (durable part in the hard state).
  promised = 0;
  commit = 0;
  membership: Membership;
  private amnesiaUntil = 0;
  private emitted: number;
  private maxSeen = 0;

  role: 'follower' | 'candidate' | 'leader' = 'follower';
  leaderId: NodeId | undefined;
  private leaderBallot = 0;
  private elapsed = 0;
  private timeout = 0;
  private now = 0;

  // Outputs.
  private msgs: Envelope[] = [];
  private readsOut: ReadState[] = [];
  private hsDirty = false;
  private lastStatusKey: string;
  private snap: { stage: 'mark' | 'marking' | 'install'; snapshot: Snapshot; membership: Membership; amnesia: number; from: NodeId } | undefined;

  // Proposer state (candidate and leader).
  ballot = 0;
  private promisers = new Set<NodeId>();
  private asked = new Set<NodeId>();
  private adopt = new Map<number, LogEntry>();
  private maxAdopt = 0;
  private base = 0;
  nextSlot = 0;
  private waiting: Waiting[] = [];
  private peers = new Map<NodeId, Peer>();
  private selfMatch = 0;
  private readyMark: { ballot: number; upTo: number } | undefined;
  private hbElapsed = 0;
  private cqElapsed = 0;
  private seq = 0;
  private rounds = new Map<number, Round>();
  private reads: { ctx: Uint8Array; index: number; seq: number }[] = [];
  private recentActive = new Set<NodeId>();
  private needBroadcast = false;
  private needHeartbeat = false;
  private transferTo: NodeId | undefined;
  private transferElapsed = 0;
  private leaseUntil = 0;

  constructor(options: PaxosOptions) {
    const r = resolveProtocolOptions(options);
    this.o = resolvePaxosOptions(options);
    this.id = r.id;
    this.electionTicks = r.electionTicks;
    this.heartbeatTicks = r.heartbeatTicks;
    this.random = r.random;
    this.storage = options.storage;
    this.log = new PaxosLog(options.storage);
    const raw = options.storage.initialState().hardState;
    const snap = options.storage.snapshot();
    if (raw !== undefined) {
      const hs = decodeHardState(raw);
      this.promised = hs.promised;
      this.commit = hs.commit;
      this.membership = hs.membership;
      this.amnesiaUntil = hs.amnesiaUntil;
      // A snapshot install whose closing hard state never became durable: the install's own marks say where.
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
    for (const e of this.log.entries) if (e.term > this.promised) this.promised = e.term;
    this.commit = Math.min(Math.max(this.commit, this.log.offset), Math.max(this.log.lastIndex, this.log.offset));
    this.emitted = Math.max(Math.min(r.applied, this.commit), this.log.offset);
    this.maxSeen = this.promised;
    this.resetTimeout();
    this.lastStatusKey = this.statusKey();
  }

  // -- inputs ---------------------------------------------------------------------------------------------

  tick(): void {
    this.now++;
    if (this.role === 'leader') return this.tickLeader();
    this.elapsed++;
    if (this.elapsed >= this.timeout && (this.role === 'candidate' || this.canCampaign())) {
      if (this.canCampaign()) this.campaign(false);
      else this.becomeFollower(undefined);
    }
  }

  private tickLeader(): void {
    if (++this.hbElapsed >= this.heartbeatTicks) {
      this.hbElapsed = 0;
      this.needHeartbeat = true;
      // Ask again the voters of a configuration whose phase 1 is still missing (their Prepare may be lost).
      if (!this.covered(this.nextSlot)) {
        this.asked = new Set(this.promisers);
        this.prepareMissing(this.nextSlot);
      }
    }
    if (this.transferTo !== undefined && ++this.transferElapsed >= this.electionTicks) this.transferTo = undefined;
    // Check quorum (as Raft thesis 6.2): a leader that heard from no phase-2 quorum for an election timeout
    // steps down, so a partitioned leader stops claiming leadership.
    if (++this.cqElapsed >= this.electionTicks) {
      this.cqElapsed = 0;
      const cfg = this.membership.configAt(this.commit + 1);
      const active = cfg.voters.filter((v) => v === this.id || this.recentActive.has(v)).length;
      this.recentActive.clear();
      if (active < this.q2(cfg)) this.becomeFollower(undefined);
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
        return this.handlePrepare(from, m);
      case 'Promise':
        return this.handlePromise(from, m);
      case 'Nack':
        if (m.promised > this.maxSeen) this.maxSeen = m.promised;
        // PMMC section 3 ("preempted"): a proposer whose ballot was overtaken gives up and backs off for a
        // random time before trying again, so dueling proposers converge.
        if (this.role !== 'follower' && m.ballot === this.ballot && m.promised > this.ballot) this.becomeFollower(undefined);
        return;
      case 'Accept':
        return this.handleAccept(from, m);
      case 'Accepted':
        return this.handleAccepted(from, m);
      case 'Heartbeat':
        return this.handleHeartbeat(from, m);
      case 'HeartbeatReply':
        return this.handleHeartbeatReply(from, m);
      case 'Learn':
        return this.handleLearn(from, m);
      case 'Learned': {
        const pr = this.role === 'leader' ? this.peers.get(from) : undefined;
        if (pr === undefined) return;
        pr.commit = Math.max(pr.commit, m.commit);
        if (pr.commit < this.commit) this.sendLearn(from, pr.commit + 1);
        this.maybeTimeoutNow(from);
        return;
      }
      case 'CatchupRequest':
        if (m.from <= this.commit) this.sendLearn(from, m.from);
        return;
      case 'Snapshot':
        return this.handleSnapshot(from, m);
      case 'TimeoutNow':
        if (m.ballot === this.promised && this.leaderId === from && this.role === 'follower' && this.canCampaign()) this.campaign(true);
        return;
    }
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    this.mustLead();
    if (this.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    // One proposal = one slot (PMMC section 3): it waits here for a slot inside the window, and is never
    // re-proposed into another slot.
    this.waiting.push({ type: 'command', data });
    this.fill();
  }

  readIndex(ctx: Uint8Array): void {
    assertBytes(ctx, 'read context');
    this.mustLead();
    // Every value that may have been chosen before this read lies in a slot the leader has proposed or will
    // re-propose (phase 1 reported it): the read waits for all of them to be applied.
    const index = Math.max(this.nextSlot - 1, this.maxAdopt, this.commit);
    if (this.soleVoter() || (this.o.leaseReads && this.now < this.leaseUntil && this.transferTo === undefined)) {
      this.readsOut.push({ ctx, index });
      return;
    }
    this.reads.push({ ctx, index, seq: this.seq + 1 });
    this.needHeartbeat = true;
  }

  proposeConfigChange(change: ConfigChange): void {
    this.mustLead();
    if (this.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
    if (this.configPending()) throw new ProposalDroppedError('config-change-in-progress');
    const target = applyConfigChange(this.membership.latest(), change);
    // PMMC section 4: the configuration governs slots from its own slot + WINDOW; the leader fills the slots in
    // between with no-ops so that it takes effect without waiting for traffic.
    this.waiting.push({ type: 'config', data: encodeClusterConfig(target) });
    for (let i = 1; i < this.o.window; i++) this.waiting.push({ type: 'noop', data: EMPTY });
    this.fill();
  }

  transferLeadership(to: NodeId): void {
    this.mustLead();
    if (to === this.id) return;
    const voters = this.membership.configAt(this.nextSlot).voters;
    if (!voters.includes(to)) throw new InvalidArgumentError(`cannot transfer leadership to ${to}: not a voter`);
    this.transferTo = to;
    this.transferElapsed = 0;
    this.leaseUntil = 0;
    this.maybeTimeoutNow(to);
  }

  compacted(index: number): void {
    if (index <= this.log.offset || index > this.log.lastIndex) return;
    this.log.compact(index, this.log.termAt(index));
    this.membership.prune(index);
  }

  // -- acceptor (Paxos Made Simple 2.2, phases 1b and 2b) ------------------------------------------------

  private handlePrepare(from: NodeId, m: Prepare): void {
    if (m.ballot > this.maxSeen) this.maxSeen = m.ballot;
    // Paxos Made Live 5.1: an acceptor that may have lost accepted values makes no promise.
    if (this.amnesiaUntil > 0 || this.snap !== undefined) return;
    // Stickiness (PML 5.2 master leases; Raft thesis 4.2.3): while a live leader is heard, ignore other
    // proposers, unless a leadership transfer forces the election.
    if (!m.force && this.role === 'leader') return;
    if (!m.force && this.leaderId !== undefined && this.leaderId !== from && this.elapsed < this.electionTicks) return;
    if (!m.force && this.o.leaseReads && this.leaderId === undefined && this.now < this.electionTicks) return;
    if (m.ballot < this.promised) return this.send(from, { type: 'Nack', ballot: m.ballot, promised: this.promised });
    if (m.ballot > this.promised) {
      this.promised = m.ballot;
      this.hsDirty = true;
      if (this.role !== 'follower' || this.leaderId !== undefined) this.becomeFollower(undefined);
    }
    // Phase 1b for every slot above the proposer's commit point at once (Paxos Made Simple section 3).
    const first = Math.max(m.commit + 1, this.log.offset + 1);
    const entries = this.log.slice(first, this.log.lastIndex).filter((e) => e.term > 0);
    this.send(from, { type: 'Promise', ballot: m.ballot, commit: this.commit, first, entries });
  }

  private handleAccept(from: NodeId, m: Accept): void {
    if (m.ballot < this.promised) return this.send(from, { type: 'Nack', ballot: m.ballot, promised: this.promised });
    this.followLeader(from, m.ballot);
    // Phase 2b: accept every slot of the batch (overwriting a lower ballot's value in place, DESIGN r2; the
    // slots above stay). Decided slots are never rewritten.
    for (const e of m.entries) {
      if (e.index <= this.commit || e.index <= this.log.offset || e.term !== m.ballot) continue;
      this.log.put({ index: e.index, term: e.term, type: e.type, data: e.data });
    }
    this.learnCommit(m.commit, m.ballot);
    const first = (m.entries[0] as LogEntry).index;
    const last = (m.entries.at(-1) as LogEntry).index;
    this.send(from, { type: 'Accepted', ballot: m.ballot, from: first, to: last, commit: this.commit });
  }

  private handleHeartbeat(from: NodeId, m: Heartbeat): void {
    if (m.ballot < this.promised) return this.send(from, { type: 'Nack', ballot: m.ballot, promised: this.promised });
    this.followLeader(from, m.ballot);
    this.learnCommit(m.commit, m.ballot);
    this.send(from, { type: 'HeartbeatReply', ballot: m.ballot, seq: m.seq, commit: this.commit });
  }

  /** A message of the leader in force: follow it, and promise its ballot if not yet (phase 2 implies it). */
  private followLeader(from: NodeId, ballot: number): void {
    if (ballot > this.maxSeen) this.maxSeen = ballot;
    if (ballot > this.promised) {
      this.promised = ballot;
      this.hsDirty = true;
    }
    if (this.role !== 'follower') this.becomeFollower(from);
    this.leaderId = from;
    this.leaderBallot = ballot;
    this.elapsed = 0;
  }

  /** The leader says slots <= commit are decided: those whose value we hold at its ballot are (its value). */
  private learnCommit(leaderCommit: number, ballot: number): void {
    let c = this.commit;
    while (c < leaderCommit && this.log.at(c + 1)?.term === ballot) c++;
    if (c > this.commit) this.decide(c);
  }

  /** Decided values streamed by a peer (the learners of Paxos Made Simple 2.4, catching up). */
  private handleLearn(from: NodeId, m: Learn): void {
    let c = this.commit;
    for (const e of m.entries) {
      if (e.index <= c || e.index <= this.log.offset) continue;
      if (e.index > c + 1 || e.term === 0) break;
      const held = this.log.at(e.index);
      // Keep the higher of the two ballots when the value is the same: a lower one would hide, from a later
      // phase 1, that this acceptor voted for the value at the higher ballot.
      const term = held !== undefined && sameValue(held, e) ? Math.max(held.term, e.term) : e.term;
      if (held === undefined || held.term !== term || !sameValue(held, e)) this.log.put({ index: e.index, term, type: e.type, data: e.data });
      if (term > this.promised) {
        this.promised = term;
        this.hsDirty = true;
      }
      c = e.index;
    }
    if (c > this.commit) this.decide(c);
    this.send(from, { type: 'Learned', commit: this.commit });
  }

  private handleSnapshot(from: NodeId, m: SnapshotMessage): void {
    if (m.index <= this.commit || this.snap !== undefined || this.role === 'leader') {
      if (this.snap === undefined) this.send(from, { type: 'Learned', commit: this.commit });
      return;
    }
    const membership = Membership.fromWire(m.membership);
    if (membership === undefined) return;
    // Accepted values above the snapshot survive the install (written right after it); should the save tear
    // between the two, Paxos Made Live 5.1 applies: no promises until those slots are decided.
    const votes = this.log.slice(m.index + 1, this.log.lastIndex).some((e) => e.term > 0);
    this.snap = {
      stage: 'mark',
      snapshot: { index: m.index, term: m.term, config: m.config, data: m.data },
      membership,
      amnesia: votes ? this.log.lastIndex : 0,
      from,
    };
  }

  /** Slots up to `to` are decided: follow configurations in slot order (PMMC section 4). */
  private decide(to: number): void {
    for (let s = this.commit + 1; s <= to; s++) {
      const e = this.log.at(s);
      if (e !== undefined) this.membership.decideEntry(e, this.o.window);
    }
    this.commit = to;
    this.hsDirty = true;
    if (this.amnesiaUntil > 0 && this.commit >= this.amnesiaUntil) this.amnesiaUntil = 0;
    if (this.role === 'leader') this.syncPeers();
  }

  // -- proposer: phase 1 ----------------------------------------------------------------------------------

  private canCampaign(): boolean {
    return (
      this.amnesiaUntil === 0 &&
      this.snap === undefined &&
      this.membership.rank(this.id) !== undefined &&
      this.membership.configAt(this.commit + 1).voters.includes(this.id)
    );
  }

  /** Phase 1a for every slot above the commit point (Paxos Made Simple section 3; PMMC's scout). */
  campaign(force: boolean): void {
    const rank = this.membership.rank(this.id);
    if (rank === undefined) return;
    const b = nextBallot(Math.max(this.promised, this.maxSeen), rank);
    this.becomeFollower(undefined);
    this.role = 'candidate';
    this.ballot = this.promised = this.maxSeen = b;
    this.hsDirty = true;
    this.base = this.commit;
    this.promisers = new Set([this.id]);
    this.asked = new Set([this.id]);
    this.adopt = new Map();
    this.maxAdopt = 0;
    this.mergeReport(this.log.slice(this.base + 1, this.log.lastIndex));
    const prepare: Prepare = { type: 'Prepare', ballot: b, commit: this.base };
    if (force) prepare.force = true;
    for (const cfg of this.membership.configsIn(this.base + 1, this.base + this.o.window)) {
      for (const v of cfg.voters) {
        if (this.asked.has(v)) continue;
        this.asked.add(v);
        this.send(v, prepare);
      }
    }
    if (this.covered(this.base + 1)) this.becomeLeader();
  }

  private handlePromise(from: NodeId, m: Promise): void {
    if (this.role === 'follower' || m.ballot !== this.ballot) return;
    const floor = this.role === 'leader' ? this.nextSlot - 1 : this.base;
    if (m.first > floor + 1) {
      // The acceptor compacted slots we have not decided: catch up first, try again later.
      this.send(from, { type: 'CatchupRequest', from: this.commit + 1 });
      return;
    }
    this.mergeReport(m.entries.filter((e) => e.index > floor));
    this.promisers.add(from);
    if (this.role === 'candidate') {
      if (this.covered(this.base + 1)) this.becomeLeader();
    } else {
      this.fill();
    }
  }

  /** Keep, per slot, the value accepted at the highest ballot (Paxos Made Simple 2.2, P2c). */
  private mergeReport(entries: readonly LogEntry[]): void {
    for (const e of entries) {
      if (e.term === 0) continue;
      const cur = this.adopt.get(e.index);
      if (cur === undefined || e.term > cur.term) this.adopt.set(e.index, e);
      if (e.index > this.maxAdopt) this.maxAdopt = e.index;
    }
  }

  /** Whether a phase-1 quorum of the configuration governing `slot` promised our ballot (Flexible Paxos 3). */
  private covered(slot: number): boolean {
    const cfg = this.membership.configAt(slot);
    if (cfg.voters.length === 0) return false;
    return cfg.voters.filter((v) => this.promisers.has(v)).length >= this.q1(cfg);
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leaderId = this.id;
    this.leaderBallot = this.ballot;
    this.nextSlot = this.base + 1;
    this.selfMatch = this.base;
    this.peers = new Map();
    this.syncPeers();
    this.hbElapsed = this.cqElapsed = 0;
    this.recentActive.clear();
    this.rounds.clear();
    this.needHeartbeat = true;
    this.fill();
  }

  private becomeFollower(leader: NodeId | undefined): void {
    this.role = 'follower';
    this.leaderId = leader;
    this.leaderBallot = leader === undefined ? 0 : this.promised;
    this.peers = new Map();
    this.waiting = [];
    this.reads = [];
    this.rounds.clear();
    this.adopt = new Map();
    this.maxAdopt = 0;
    this.transferTo = undefined;
    this.needBroadcast = this.needHeartbeat = false;
    this.leaseUntil = 0;
    this.elapsed = 0;
    this.resetTimeout();
  }

  /** Election timeouts and preemption backoff, randomised in [E, 2E) ticks (PMMC section 3, liveness). */
  private resetTimeout(): void {
    this.timeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }

  // -- proposer: phase 2 (PMMC's commander, pipelined within WINDOW) --------------------------------------

  /** Assigns slots: re-proposals first (P2c), then no-ops for gaps, then waiting proposals, within the window. */
  private fill(): void {
    if (this.role !== 'leader') return;
    // The commit point may have passed the phase-1 base meanwhile (values learned while campaigning): those
    // slots are decided and are never proposed again.
    if (this.nextSlot <= this.commit) this.nextSlot = this.commit + 1;
    const limit = this.commit + this.o.window;
    while (this.nextSlot <= limit) {
      const s = this.nextSlot;
      if (!this.covered(s)) {
        // A configuration whose voters have not all been asked yet: phase 1 with them, then go on.
        this.prepareMissing(s);
        break;
      }
      let type: EntryType;
      let data: Uint8Array;
      const adopted = this.adopt.get(s);
      if (adopted !== undefined) {
        type = adopted.type;
        data = adopted.data;
        this.adopt.delete(s);
      } else if (s === 1) {
        type = 'config';
        data = encodeClusterConfig(this.membership.configAt(1));
      } else if (s <= this.maxAdopt) {
        type = 'noop';
        data = EMPTY;
      } else {
        const w = this.waiting.shift();
        if (w === undefined) break;
        type = w.type;
        data = w.data;
      }
      this.log.put({ index: s, term: this.ballot, type, data });
      this.nextSlot++;
      this.needBroadcast = true;
    }
  }

  private prepareMissing(slot: number): void {
    const prepare: Prepare = { type: 'Prepare', ballot: this.ballot, commit: this.nextSlot - 1 };
    for (const v of this.membership.configAt(slot).voters) {
      if (this.asked.has(v)) continue;
      this.asked.add(v);
      this.send(v, prepare);
    }
  }

  /** Every member of every known configuration has a peer entry. */
  private syncPeers(): void {
    for (const id of this.membership.members()) {
      if (id === this.id || this.peers.has(id)) continue;
      this.peers.set(id, { match: this.base, next: Math.max(this.base, this.commit) + 1, commit: 0, inflight: [], matchAtHeartbeat: -1, commitAtHeartbeat: -1, snapshotAt: -Infinity });
    }
  }

  private isVoterAnywhere(id: NodeId): boolean {
    return this.membership.configs.some((c) => c.config.voters.includes(id));
  }

  /** Phase 2a to one acceptor: batches of consecutive slots, at most `maxInflight` batches unanswered. */
  private sendAccepts(id: NodeId, pr: Peer): void {
    if (!this.isVoterAnywhere(id)) return;
    if (pr.next <= this.log.offset) pr.next = this.log.offset + 1;
    while (pr.inflight.length < this.o.maxInflight && pr.next < this.nextSlot) {
      const hi = Math.min(pr.next + this.o.maxBatch - 1, this.nextSlot - 1);
      this.send(id, { type: 'Accept', ballot: this.ballot, commit: this.commit, entries: this.log.slice(pr.next, hi) });
      pr.inflight.push(hi);
      pr.next = hi + 1;
    }
  }

  private handleAccepted(from: NodeId, m: Accepted): void {
    const pr = this.role === 'leader' && m.ballot === this.ballot ? this.peers.get(from) : undefined;
    if (pr === undefined) return;
    this.recentActive.add(from);
    pr.commit = Math.max(pr.commit, m.commit);
    // Slots at or below the commit point need no more votes, so an ack that starts just above counts.
    if (m.from <= Math.max(pr.match, this.commit) + 1 && m.to > pr.match) pr.match = m.to;
    pr.inflight = pr.inflight.filter((hi) => hi > m.to);
    this.maybeCommit();
    this.sendAccepts(from, pr);
    this.maybeTimeoutNow(from);
  }

  /** A slot is chosen once a phase-2 quorum of its configuration accepted it (Flexible Paxos section 3). */
  private maybeCommit(): void {
    if (this.role !== 'leader') return;
    let c = this.commit;
    while (c + 1 < this.nextSlot) {
      const s = c + 1;
      const cfg = this.membership.configAt(s);
      const segEnd = Math.min(this.membership.nextChange(s) - 1, this.nextSlot - 1);
      const matches = cfg.voters.map((v) => (v === this.id ? this.selfMatch : (this.peers.get(v)?.match ?? 0))).sort((a, b) => b - a);
      const q = this.q2(cfg);
      const reached = cfg.voters.length === 0 ? 0 : Math.min(matches[q - 1] ?? 0, segEnd);
      if (reached < s) break;
      c = reached;
      if (reached < segEnd) break;
    }
    if (c > this.commit) {
      this.decide(c);
      this.fill();
    }
  }

  private handleHeartbeatReply(from: NodeId, m: HeartbeatReply): void {
    const pr = this.role === 'leader' && m.ballot === this.ballot ? this.peers.get(from) : undefined;
    if (pr === undefined) return;
    this.recentActive.add(from);
    pr.commit = Math.max(pr.commit, m.commit);
    const round = this.rounds.get(m.seq);
    if (round !== undefined) {
      round.acks.add(from);
      this.maybeConfirm(m.seq, round);
    }
    // Retransmit when an acceptor made no progress since the previous heartbeat (a batch was lost).
    const eff = Math.max(pr.match, this.commit);
    if (eff < this.nextSlot - 1 && pr.match === pr.matchAtHeartbeat) {
      pr.next = eff + 1;
      pr.inflight = [];
    }
    pr.matchAtHeartbeat = pr.match;
    this.sendAccepts(from, pr);
    // Stream decided values to a peer whose commit point stalls (it missed them, or joined late).
    if (pr.commit < this.commit && (pr.commit === pr.commitAtHeartbeat || !this.isVoterAnywhere(from))) this.sendLearn(from, pr.commit + 1, pr);
    pr.commitAtHeartbeat = pr.commit;
    this.maybeTimeoutNow(from);
  }

  /** Decided values from slot `from` on, or the snapshot when they were compacted. */
  private sendLearn(to: NodeId, from: number, pr?: Peer): void {
    if (from <= this.log.offset) {
      const snap = this.storage.snapshot();
      if (snap === undefined || snap.index < from - 1 || snap.index > this.commit) return;
      if (pr !== undefined) {
        if (this.now - pr.snapshotAt < this.electionTicks) return;
        pr.snapshotAt = this.now;
      }
      const membership = this.membership.asOf(snap.index).toWire();
      this.send(to, { type: 'Snapshot', index: snap.index, term: snap.term, config: snap.config, data: snap.data, membership });
      return;
    }
    const hi = Math.min(this.commit, from + this.o.maxBatch - 1);
    if (hi < from) return;
    this.send(to, { type: 'Learn', commit: this.commit, entries: this.log.slice(from, hi) });
  }

  private maybeTimeoutNow(to: NodeId): void {
    if (this.transferTo !== to || this.role !== 'leader') return;
    const pr = this.peers.get(to);
    if (pr === undefined || pr.match < this.nextSlot - 1 || pr.commit < this.commit) return;
    this.send(to, { type: 'TimeoutNow', ballot: this.ballot });
  }

  // -- reads -----------------------------------------------------------------------------------------------

  /** A heartbeat round answered by enough voters that no other proposer can have won phase 1 meanwhile. */
  private maybeConfirm(seq: number, round: Round): void {
    for (const cfg of this.membership.configsIn(this.commit + 1, this.commit + this.o.window)) {
      const need = cfg.voters.length - this.q1(cfg) + 1;
      if (cfg.voters.filter((v) => round.acks.has(v)).length < need) return;
    }
    // PML 5.2: followers that answered ignore other proposers for an election timeout of their own clock; the
    // lease is shorter by the drift margin, counted from when the round left.
    const d = this.o.leaseDriftBound;
    const lease = Math.floor((this.electionTicks * (1 - d)) / (1 + d)) - 1;
    if (this.o.leaseReads && lease > 0) this.leaseUntil = Math.max(this.leaseUntil, round.tick + lease);
    while (this.reads.length > 0 && (this.reads[0] as { seq: number }).seq <= seq) {
      const r = this.reads.shift() as { ctx: Uint8Array; index: number };
      this.readsOut.push({ ctx: r.ctx, index: r.index });
    }
    for (const s of this.rounds.keys()) if (s <= seq) this.rounds.delete(s);
  }

  // -- Ready -------------------------------------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.readsOut.length > 0 ||
      this.hsDirty ||
      this.log.dirtyFrom <= this.log.lastIndex ||
      this.commit > this.emitted ||
      this.needBroadcast ||
      this.needHeartbeat ||
      (this.snap !== undefined && this.snap.stage !== 'marking') ||
      this.statusKey() !== this.lastStatusKey
    );
  }

  ready(): Ready {
    if (this.role === 'leader') {
      if (this.needBroadcast) for (const [id, pr] of this.peers) this.sendAccepts(id, pr);
      if (this.needHeartbeat) this.broadcastHeartbeat();
    }
    this.needBroadcast = this.needHeartbeat = false;
    const rd: Ready = { entries: [], messages: [], committed: [], reads: [] };
    const snap = this.snap;
    if (snap?.stage === 'mark') {
      // First the marks (installing, amnesia) alone, durable before the log is replaced.
      rd.hardState = encodeHardState({
        promised: this.promised,
        commit: this.commit,
        membership: this.membership,
        amnesiaUntil: Math.max(this.amnesiaUntil, snap.amnesia),
        installing: { index: snap.snapshot.index, membership: snap.membership },
      });
      this.hsDirty = false;
      snap.stage = 'marking';
    } else {
      if (snap?.stage === 'install' && this.commit >= snap.snapshot.index) this.snap = undefined;
      else if (snap?.stage === 'install') {
        this.log.resetTo(snap.snapshot.index, snap.snapshot.term);
        this.membership = snap.membership;
        this.commit = this.emitted = snap.snapshot.index;
        rd.snapshot = snap.snapshot;
        this.hsDirty = true;
        this.snap = undefined;
        this.send(snap.from, { type: 'Learned', commit: this.commit });
      }
      if (snap?.stage !== 'marking') {
        rd.entries = this.log.unstable();
        this.log.markStable();
      }
      if (this.commit > this.emitted) {
        rd.committed = this.log.slice(this.emitted + 1, this.commit);
        this.emitted = this.commit;
      }
      if (this.hsDirty) {
        rd.hardState = encodeHardState({ promised: this.promised, commit: this.commit, membership: this.membership, amnesiaUntil: this.amnesiaUntil });
        this.hsDirty = false;
      }
    }
    rd.messages = this.msgs;
    this.msgs = [];
    rd.reads = this.readsOut;
    this.readsOut = [];
    const key = this.statusKey();
    if (key !== this.lastStatusKey) {
      this.lastStatusKey = key;
      rd.status = this.status();
    }
    this.readyMark = this.role === 'leader' ? { ballot: this.ballot, upTo: this.nextSlot - 1 } : undefined;
    return rd;
  }

  advance(_rd: Ready): void {
    if (this.snap?.stage === 'marking') this.snap.stage = 'install';
    const mark = this.readyMark;
    this.readyMark = undefined;
    // The leader's own vote counts once it is durable (PMMC: the leader is one of the acceptors).
    if (mark !== undefined && this.role === 'leader' && mark.ballot === this.ballot && mark.upTo > this.selfMatch) {
      this.selfMatch = mark.upTo;
      this.maybeCommit();
    }
  }

  private broadcastHeartbeat(): void {
    const seq = ++this.seq;
    this.rounds.set(seq, { tick: this.now, acks: new Set([this.id]) });
    if (this.rounds.size > 4 * this.electionTicks) this.rounds.delete(this.rounds.keys().next().value as number);
    for (const id of this.peers.keys()) this.send(id, { type: 'Heartbeat', ballot: this.ballot, commit: this.commit, seq });
    if (this.soleVoter()) this.maybeConfirm(seq, this.rounds.get(seq) as Round);
  }

  // -- helpers ---------------------------------------------------------------------------------------------

  private send(to: NodeId, msg: PaxosMessage): void {
    this.msgs.push({ from: this.id, to, msg });
  }

  private mustLead(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId === this.id ? undefined : this.leaderId);
  }

  private soleVoter(): boolean {
    return this.membership.configsIn(this.commit + 1, this.commit + this.o.window).every((c) => c.voters.length === 1 && c.voters[0] === this.id);
  }

  private configPending(): boolean {
    if (this.membership.configs.some((c) => c.from > this.commit + 1)) return true;
    if (this.waiting.some((w) => w.type === 'config')) return true;
    for (let s = this.commit + 1; s < this.nextSlot; s++) if (this.log.at(s)?.type === 'config') return true;
    return false;
  }

  /** Phase-2 quorum size for `cfg`: a majority, or the Flexible Paxos size (capped by the voters). */
  private q2(cfg: ClusterConfig): number {
    const n = cfg.voters.length;
    if (this.o.phase2Quorum === 0 && this.o.phase1Quorum === 0) return majority(n);
    if (this.o.phase2Quorum === 0) return Math.max(1, n - Math.min(this.o.phase1Quorum, n) + 1);
    return Math.min(this.o.phase2Quorum, n);
  }

  /** Phase-1 quorum size: always large enough to meet every phase-2 quorum (|Q1| + |Q2| > N). */
  private q1(cfg: ClusterConfig): number {
    const n = cfg.voters.length;
    if (this.o.phase2Quorum === 0 && this.o.phase1Quorum === 0) return majority(n);
    return Math.max(n - this.q2(cfg) + 1, Math.min(this.o.phase1Quorum, n));
  }

  private statusKey(): string {
    const s = this.neutralRole();
    return `${s}|${this.term()}|${this.leaderId ?? ''}`;
  }

  private term(): number {
    if (this.role === 'leader') return this.ballot;
    return this.leaderId !== undefined ? this.leaderBallot : this.promised;
  }

  private neutralRole(): Status['role'] {
    if (this.role !== 'follower') return this.role;
    return this.membership.configAt(this.commit + 1).voters.includes(this.id) ? 'follower' : 'learner';
  }

  /** The entry at `slot` (persisted or not), for tests and invariants. */
  entryAt(slot: number): LogEntry | undefined {
    return this.log.at(slot);
  }

  status(): Status & { details: PaxosStatusDetails } {
    const details: PaxosStatusDetails = { promised: this.promised, ballot: describeBallot(this.term()), window: this.o.window };
    const rank = this.membership.rank(this.id);
    if (rank !== undefined) details.rank = rank;
    if (this.amnesiaUntil > 0) details.amnesiaUntil = this.amnesiaUntil;
    if (this.role === 'leader') {
      details.nextSlot = this.nextSlot;
      details.waiting = this.waiting.length;
      details.phase1Base = this.base;
      if (this.transferTo !== undefined) details.transferringTo = this.transferTo;
      if (this.o.leaseReads) details.leaseReads = true;
      details.peers = {};
      for (const [id, pr] of this.peers) details.peers[id] = { match: pr.match, next: pr.next, commit: pr.commit, inflight: pr.inflight.length };
    }
    const s: Status & { details: PaxosStatusDetails } = {
      id: this.id,
      role: this.neutralRole(),
      term: this.term(),
      commitIndex: this.commit,
      appliedIndex: this.emitted,
      lastIndex: this.log.lastIndex,
      config: this.membership.configAt(this.commit + 1),
      details,
    };
    if (this.leaderId !== undefined) s.leader = this.leaderId;
    return s;
  }
}
