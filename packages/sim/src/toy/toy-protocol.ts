import { pack, unpack } from 'msgpackr';
import {
  ConfigError,
  assertBytes,
  InvariantError,
  NotLeaderError,
  majority,
  parseOptions,
  type OptionSpecs,
  type OptionsOf,
  resolveProtocolOptions,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type NodeId,
  type Protocol,
  type ProtocolModule,
  type ProtocolOptions,
  type Ready,
  type ReadState,
  type Role,
  type Snapshot,
  type Status,
  type Storage,
} from '@consensus-kit/core';

/**
 * A deliberately small Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
 * figure 2) used to prove the simulator: elections with randomised timeouts, log replication without
 * pipelining (every heartbeat resends the follower's outstanding entries), commitment by majority of the
 * current term (5.4.2), ReadIndex reads confirmed by a heartbeat round (thesis 6.4), and InstallSnapshot
 * (section 7) for a follower behind the leader's compacted log. No membership changes, no pre-vote. It is not a product: `@consensus-kit/raft` is.
 *
 * `ToyFlaws` switch on known bugs so the tests can show that the simulator catches each of them.
 */
export interface ToyFlaws {
  /** Commit an entry as soon as the leader has it: a quorum of one. */
  commitOnOneAck?: boolean;
  /** Do not recover the vote from storage on restart, so a node can vote twice in one term. */
  forgetVoteOnRestart?: boolean;
  /** Answer every read at once at the local commit index, on any node, with no leadership check. */
  localReads?: boolean;
}

type Msg =
  | { type: 'Vote'; term: number; lastIndex: number; lastTerm: number }
  | { type: 'VoteResp'; term: number; granted: boolean }
  | { type: 'Append'; term: number; prevIndex: number; prevTerm: number; entries: LogEntry[]; commit: number; seq: number }
  | { type: 'AppendResp'; term: number; ok: boolean; match: number; seq: number }
  | { type: 'Snap'; term: number; snapshot: Snapshot; seq: number };

interface HardState {
  term: number;
  vote?: NodeId;
}

interface PendingRead {
  ctx: Uint8Array;
  /** The read index, once the leader has committed an entry of its term. */
  index?: number;
  /** The heartbeat round a quorum must acknowledge. */
  seq: number;
}

/** The toy's own options (DESIGN r2: typed and validated by `parseOptions`). */
export const TOY_OPTIONS = {
  maxBatch: { type: 'integer', min: 1, max: 100_000, description: 'entries per Append message (default 64)' },
} as const satisfies OptionSpecs;

export type ToyOptions = OptionsOf<typeof TOY_OPTIONS>;

class ToyNode implements Protocol {
  private readonly id: NodeId;
  private readonly peers: NodeId[];
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly random: () => number;
  private readonly flaws: ToyFlaws;
  private readonly maxBatch: number;

  private term = 0;
  private vote: NodeId | undefined;
  private role: Role = 'follower';
  private leader: NodeId | undefined;
  /** log[i] is the entry at index offset + 1 + i; offset is the last index covered by a snapshot. */
  private log: LogEntry[] = [];
  private offset = 0;
  private offsetTerm = 0;
  private readonly storage: Storage;
  /** A snapshot received from the leader, to hand to the host in the next Ready. */
  private pendingSnapshot: Snapshot | undefined;
  private commit = 0;
  /** Highest index handed out in `Ready.committed`. */
  private emitted: number;
  /** Highest index the host has applied (acknowledged through `advance`). */
  private applied: number;
  /** Lowest index that has not been handed to the host for persistence. */
  private unstableFrom: number;
  private truncate: number | undefined;
  private hardStateDirty = false;
  private statusDirty = true;
  private msgs: Envelope<Msg>[] = [];
  private reads: ReadState[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private timeout = 0;
  private votes = new Set<NodeId>();
  private answered = new Set<NodeId>();
  private match = new Map<NodeId, number>();
  private next = new Map<NodeId, number>();
  private acked = new Map<NodeId, number>();
  private seq = 0;
  private pendingReads: PendingRead[] = [];

  constructor(options: ProtocolOptions & ToyOptions, flaws: ToyFlaws) {
    const o = resolveProtocolOptions(options);
    this.maxBatch = options.maxBatch ?? 64;
    this.id = o.id;
    this.peers = o.peers;
    this.electionTicks = o.electionTicks;
    this.heartbeatTicks = o.heartbeatTicks;
    this.random = o.random;
    this.flaws = flaws;
    const hs = options.storage.initialState().hardState;
    if (hs !== undefined) {
      const s = unpack(hs) as HardState;
      this.term = s.term;
      if (!flaws.forgetVoteOnRestart) this.vote = s.vote;
    }
    this.storage = options.storage;
    const first = options.storage.firstIndex();
    const last = options.storage.lastIndex();
    this.offset = first - 1;
    this.offsetTerm = options.storage.term(first - 1);
    this.log = last >= first ? options.storage.entries(first, last + 1) : [];
    this.unstableFrom = last + 1;
    // The host's state machine reflects o.applied (its restored snapshot): that much is committed.
    this.applied = o.applied;
    this.emitted = o.applied;
    this.commit = o.applied;
    this.resetTimeout();
  }

  // --- inputs ---------------------------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') {
      if (++this.heartbeatElapsed >= this.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.broadcastAppend();
      }
      return;
    }
    if (++this.electionElapsed >= this.timeout) return this.campaign();
    // Raft retries RPCs that get no answer (5.1): a candidate asks again the voters it has not heard from.
    if (this.role === 'candidate' && ++this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.requestVotes();
    }
  }

  step(envelope: Envelope): void {
    const m = envelope.msg as Msg;
    const from = envelope.from;
    if (typeof m !== 'object' || m === null || typeof m.term !== 'number' || !this.peers.includes(from) || from === this.id) return;
    if (m.term > this.term) this.becomeFollower(m.term, m.type === 'Append' ? from : undefined);
    if (m.term < this.term) {
      // A stale leader learns of the newer term from the refusal and steps down.
      if (m.type === 'Append') this.send(from, { type: 'AppendResp', term: this.term, ok: false, match: 0, seq: m.seq });
      return;
    }
    switch (m.type) {
      case 'Vote':
        return this.handleVote(from, m);
      case 'VoteResp':
        if (this.role === 'candidate') this.answered.add(from);
        if (this.role === 'candidate' && m.granted) {
          this.votes.add(from);
          if (this.votes.size >= majority(this.peers.length)) this.becomeLeader();
        }
        return;
      case 'Append':
        return this.handleAppend(from, m);
      case 'AppendResp':
        if (this.role === 'leader') this.handleAppendResp(from, m);
        return;
      case 'Snap':
        return this.handleSnapshot(from, m);
    }
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    this.appendLocal('command', data);
    this.broadcastAppend();
  }

  readIndex(ctx: Uint8Array): void {
    if (this.flaws.localReads) {
      this.reads.push({ ctx, index: this.commit });
      return;
    }
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    this.pendingReads.push({ ctx, seq: 0 });
    this.maybeStartReads();
  }

  proposeConfigChange(_change: ConfigChange): void {
    throw new ConfigError('the toy protocol does not support membership changes');
  }

  transferLeadership(_to: NodeId): void {
    // Not supported: the toy has no TimeoutNow.
  }

  // --- output ---------------------------------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.hardStateDirty ||
      this.truncate !== undefined ||
      this.unstableFrom <= this.lastIndex() ||
      this.pendingSnapshot !== undefined ||
      this.commit > this.emitted ||
      this.reads.length > 0 ||
      this.statusDirty
    );
  }

  ready(): Ready {
    const rd: Ready = {
      entries: this.log.slice(this.unstableFrom - 1 - this.offset),
      messages: this.msgs,
      committed: this.log.slice(this.emitted - this.offset, this.commit - this.offset),
      reads: this.reads,
    };
    if (this.pendingSnapshot !== undefined) rd.snapshot = this.pendingSnapshot;
    this.pendingSnapshot = undefined;
    if (this.hardStateDirty) rd.hardState = pack({ term: this.term, vote: this.vote } satisfies HardState);
    if (this.truncate !== undefined) rd.truncateAfter = this.truncate;
    if (this.statusDirty) rd.status = this.status();
    this.unstableFrom = this.lastIndex() + 1;
    this.emitted = this.commit;
    this.truncate = undefined;
    this.hardStateDirty = false;
    this.statusDirty = false;
    this.msgs = [];
    this.reads = [];
    return rd;
  }

  advance(ready: Ready): void {
    const last = ready.committed[ready.committed.length - 1];
    if (last !== undefined) this.applied = Math.max(this.applied, last.index);
    if (ready.snapshot !== undefined) this.applied = Math.max(this.applied, ready.snapshot.index);
  }

  status(): Status {
    const s: Status = {
      id: this.id,
      role: this.role,
      term: this.term,
      commitIndex: this.commit,
      appliedIndex: this.applied,
      lastIndex: this.lastIndex(),
      config: { voters: [...this.peers], learners: [] },
    };
    if (this.leader !== undefined) s.leader = this.leader;
    if (this.role === 'leader') {
      // Protocol-owned detail (DESIGN r2): per-follower match and next index, printed by tools, never read.
      const progress: Record<NodeId, { match: number; next: number }> = {};
      for (const p of this.peers) {
        const match = p === this.id ? this.lastIndex() : (this.match.get(p) ?? 0);
        progress[p] = { match, next: this.next.get(p) ?? match + 1 };
      }
      s.details = { progress };
    }
    return s;
  }

  // --- roles ----------------------------------------------------------------------------------------------

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    if (term > this.term) {
      this.term = term;
      this.vote = undefined;
      this.hardStateDirty = true;
    }
    this.role = 'follower';
    this.leader = leader;
    this.pendingReads = [];
    this.electionElapsed = 0;
    this.resetTimeout();
    this.statusDirty = true;
  }

  private campaign(): void {
    this.term++;
    this.vote = this.id;
    this.hardStateDirty = true;
    this.role = 'candidate';
    this.leader = undefined;
    this.votes = new Set([this.id]);
    this.electionElapsed = 0;
    this.resetTimeout();
    this.statusDirty = true;
    this.answered = new Set([this.id]);
    this.heartbeatElapsed = 0;
    if (this.votes.size >= majority(this.peers.length)) return this.becomeLeader();
    this.requestVotes();
  }

  private requestVotes(): void {
    const lastIndex = this.lastIndex();
    for (const p of this.peers) {
      if (!this.answered.has(p)) this.send(p, { type: 'Vote', term: this.term, lastIndex, lastTerm: this.termAt(lastIndex) });
    }
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leader = this.id;
    this.heartbeatElapsed = 0;
    this.statusDirty = true;
    for (const p of this.peers) {
      this.match.set(p, 0);
      this.next.set(p, this.lastIndex() + 1);
      this.acked.set(p, 0);
    }
    // A no-op of the new term lets the leader learn which entries are committed (5.4.2, thesis 6.4).
    this.appendLocal('noop', new Uint8Array(0));
    this.broadcastAppend();
  }

  // --- handlers -------------------------------------------------------------------------------------------

  private handleVote(from: NodeId, m: Extract<Msg, { type: 'Vote' }>): void {
    const lastIndex = this.lastIndex();
    const lastTerm = this.termAt(lastIndex);
    const upToDate = m.lastTerm > lastTerm || (m.lastTerm === lastTerm && m.lastIndex >= lastIndex);
    const granted = (this.vote === undefined || this.vote === from) && upToDate && this.role !== 'leader';
    if (granted) {
      this.vote = from;
      this.hardStateDirty = true;
      this.electionElapsed = 0;
    }
    this.send(from, { type: 'VoteResp', term: this.term, granted });
  }

  private handleAppend(from: NodeId, m: Extract<Msg, { type: 'Append' }>): void {
    if (this.role !== 'follower' || this.leader !== from) this.becomeFollower(m.term, from);
    this.electionElapsed = 0;
    let { prevIndex, prevTerm, entries } = m;
    if (prevIndex < this.offset) {
      // Everything up to our snapshot is committed, so it matches the leader's log (Leader Completeness):
      // skip the part of the message our snapshot already covers.
      if (prevIndex + entries.length <= this.offset) {
        this.send(from, { type: 'AppendResp', term: this.term, ok: true, match: prevIndex + entries.length, seq: m.seq });
        return;
      }
      entries = entries.filter((e) => e.index > this.offset);
      prevIndex = this.offset;
      prevTerm = this.offsetTerm;
    }
    if (prevIndex > this.lastIndex() || this.termAt(prevIndex) !== prevTerm) {
      this.send(from, { type: 'AppendResp', term: this.term, ok: false, match: Math.min(prevIndex - 1, this.lastIndex()), seq: m.seq });
      return;
    }
    for (const e of entries) {
      if (e.index <= this.lastIndex()) {
        if (this.termAt(e.index) === e.term) continue;
        if (e.index <= this.commit) throw new InvariantError(`toy: leader ${from} overwrites committed index ${e.index}`);
        this.truncateLog(e.index - 1);
      }
      this.log.push(e);
    }
    const lastNew = prevIndex + entries.length;
    const commit = Math.min(m.commit, lastNew);
    if (commit > this.commit) this.commit = commit;
    this.send(from, { type: 'AppendResp', term: this.term, ok: true, match: lastNew, seq: m.seq });
  }

  /**
   * InstallSnapshot (section 7, Figure 13): replace the whole log by the leader's snapshot unless we are already
   * past it. If our log holds the snapshot's last entry (same index and term), the entries after it stay (rule
   * 6): we may have acknowledged them, and the leader may have counted them to commit; we only commit up to it.
   */
  private handleSnapshot(from: NodeId, m: Extract<Msg, { type: 'Snap' }>): void {
    if (this.role !== 'follower' || this.leader !== from) this.becomeFollower(m.term, from);
    this.electionElapsed = 0;
    const snap = m.snapshot;
    if (snap.index > this.commit && snap.index <= this.lastIndex() && snap.index > this.offset && this.termAt(snap.index) === snap.term) {
      this.commit = snap.index;
    } else if (snap.index > this.commit) {
      this.log = [];
      this.offset = snap.index;
      this.offsetTerm = snap.term;
      this.commit = snap.index;
      this.emitted = snap.index;
      this.unstableFrom = snap.index + 1;
      this.truncate = undefined;
      this.pendingSnapshot = snap;
    }
    this.send(from, { type: 'AppendResp', term: this.term, ok: true, match: Math.min(snap.index, this.lastIndex()), seq: m.seq });
  }

  private handleAppendResp(from: NodeId, m: Extract<Msg, { type: 'AppendResp' }>): void {
    this.acked.set(from, Math.max(this.acked.get(from) ?? 0, m.seq));
    if (m.ok) {
      if (m.match > (this.match.get(from) ?? 0)) this.match.set(from, m.match);
      this.next.set(from, Math.max(this.next.get(from) ?? 1, m.match + 1));
      this.maybeCommit();
    } else {
      this.next.set(from, Math.max(1, Math.min((this.next.get(from) ?? 1) - 1, m.match + 1)));
      this.sendAppend(from);
    }
    this.maybeReleaseReads();
  }

  // --- helpers --------------------------------------------------------------------------------------------

  private appendLocal(type: LogEntry['type'], data: Uint8Array): void {
    const entry: LogEntry = { index: this.lastIndex() + 1, term: this.term, type, data };
    this.log.push(entry);
    this.match.set(this.id, entry.index);
    this.maybeCommit();
  }

  private maybeCommit(): void {
    let n: number;
    if (this.flaws.commitOnOneAck) {
      n = this.lastIndex();
    } else {
      const acks = this.peers.map((p) => (p === this.id ? this.lastIndex() : (this.match.get(p) ?? 0))).sort((a, b) => b - a);
      n = acks[majority(this.peers.length) - 1] ?? 0;
    }
    // Only entries of the current term are committed by counting replicas (5.4.2).
    if (n > this.commit && this.termAt(n) === this.term) {
      this.commit = n;
      this.maybeStartReads();
    }
  }

  private maybeStartReads(): void {
    if (this.role !== 'leader' || this.termAt(this.commit) !== this.term) return;
    let started = false;
    for (const r of this.pendingReads) {
      if (r.index === undefined) {
        r.index = this.commit;
        r.seq = ++this.seq;
        started = true;
      }
    }
    if (started) {
      if (this.peers.length === 1) this.maybeReleaseReads();
      else this.broadcastAppend();
    }
  }

  private maybeReleaseReads(): void {
    if (this.pendingReads.length === 0) return;
    const need = majority(this.peers.length);
    const keep: PendingRead[] = [];
    for (const r of this.pendingReads) {
      if (r.index === undefined) {
        keep.push(r);
        continue;
      }
      let n = 0;
      for (const p of this.peers) if (p === this.id || (this.acked.get(p) ?? 0) >= r.seq) n++;
      if (n >= need) this.reads.push({ ctx: r.ctx, index: r.index });
      else keep.push(r);
    }
    this.pendingReads = keep;
  }

  private broadcastAppend(): void {
    for (const p of this.peers) if (p !== this.id) this.sendAppend(p);
  }

  private sendAppend(to: NodeId): void {
    const next = this.next.get(to) ?? this.lastIndex() + 1;
    const prevIndex = next - 1;
    if (prevIndex < this.offset) {
      const snapshot = this.storage.snapshot();
      if (snapshot !== undefined && snapshot.index >= this.offset) {
        this.send(to, { type: 'Snap', term: this.term, snapshot, seq: this.seq });
        return;
      }
    }
    this.send(to, {
      type: 'Append',
      term: this.term,
      prevIndex,
      prevTerm: this.termAt(prevIndex),
      entries: this.log.slice(prevIndex - this.offset, prevIndex - this.offset + this.maxBatch),
      commit: this.commit,
      seq: this.seq,
    });
  }

  private truncateLog(after: number): void {
    this.log.length = after - this.offset;
    if (this.unstableFrom > after + 1) {
      this.unstableFrom = after + 1;
      this.truncate = Math.min(this.truncate ?? after, after);
    }
  }

  /**
   * The host compacted storage through `index` behind a snapshot (`ObservesCompaction`): drop the entries it
   * covers from memory too, so a follower that needs them is sent the snapshot (section 7), as a real
   * protocol whose log lives in storage would.
   */
  compacted(index: number): void {
    if (index <= this.offset || index > this.applied || index >= this.unstableFrom) return;
    this.offsetTerm = this.termAt(index);
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
  }

  private lastIndex(): number {
    return this.offset + this.log.length;
  }

  /** The term at `index`; -1 for a compacted index (matches nothing), 0 past the end. */
  private termAt(index: number): number {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset) return -1;
    return this.log[index - this.offset - 1]?.term ?? 0;
  }

  private send(to: NodeId, msg: Msg): void {
    this.msgs.push({ from: this.id, to, msg });
  }

  private resetTimeout(): void {
    this.timeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }
}

/**
 * A toy protocol module with the given flaws (none: a correct, simple Raft). The flaws are module variants
 * (the simulator's `toy-commit-one-ack`...), not options: a bug is never one flag away in a config file.
 */
export function createToyModule(flaws: ToyFlaws = {}, name = 'toy'): ProtocolModule<ToyOptions> {
  return {
    name,
    options: TOY_OPTIONS,
    parseOptions: (raw) => parseOptions(name, TOY_OPTIONS, raw),
    create: (options) => new ToyNode(options, flaws),
  };
}

/** The correct toy protocol: the simulator's built-in `--protocol toy`. */
export const toy: ProtocolModule<ToyOptions> = createToyModule();
