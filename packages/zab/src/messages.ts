import type { ClusterConfig, EntryType, LogEntry, NodeId, Snapshot } from '@consensus-kit/core';

/**
 * ZAB's messages (Junqueira, Reed, Serafini, DSN 2011, section IV; ZooKeeper's QuorumPacket types and
 * FastLeaderElection's Notification), a discriminated union with string tags. `nonce` names one follower session
 * with one leader: ZooKeeper gets that from a TCP connection, here the network may drop, duplicate and reorder,
 * so both sides ignore anything from another session.
 */

/** Fast Leader Election (ZooKeeper FastLeaderElection.Notification): the sender's vote and state. */
export interface Notification {
  type: 'Notification';
  /** The sender's electoral round (logicalclock). */
  round: number;
  state: 'looking' | 'following' | 'leading';
  /** The vote: proposed leader, its currentEpoch (peerEpoch) and last zxid as (term, index). */
  leader: NodeId;
  epoch: number;
  term: number;
  index: number;
}

/** Phase 1 (discovery): CEPOCH / FOLLOWERINFO, carrying the follower's acceptedEpoch. */
export interface FollowerInfo {
  type: 'FollowerInfo';
  nonce: number;
  acceptedEpoch: number;
}

/** Phase 1: NEWEPOCH / LEADERINFO, the epoch the prospective leader proposes. */
export interface LeaderInfo {
  type: 'LeaderInfo';
  nonce: number;
  epoch: number;
}

/** One run of equal terms in a log: indexes [from, to] all hold `term`. */
export type Segment = [term: number, from: number, to: number];

/**
 * Phase 1: ACK-E / ACKEPOCH, with the follower's currentEpoch and last zxid (DSN 2011 IV-B). `segments` (the term
 * runs of its log, newest last) and `commit` are ours: they let the leader find the longest common prefix in one
 * round trip, where ZooKeeper relies on its committed-log window (LearnerHandler.syncFollower).
 */
export interface AckEpoch {
  type: 'AckEpoch';
  nonce: number;
  /**
   * Which state of the follower's log this describes: 0 first, one more after each part of a synchronisation it
   * took. The Sync answering it carries it back, and the follower takes only the answer to its latest (a delayed
   * Sync computed from an older state would truncate entries it holds rightly).
   */
  req: number;
  epoch: number;
  currentEpoch: number;
  term: number;
  index: number;
  commit: number;
  segments: Segment[];
}

/**
 * Phase 2 (synchronisation): DIFF or TRUNC followed by the missing history and NEWLEADER, in one message of at most
 * `maxBatch` entries. `truncateTo` (TRUNC) drops what follows it; `entries` follow. SNAP goes as `SnapChunk`s, and
 * the DIFF after it as a Sync answering the follower's next ACKEPOCH; a `snapshot` here (SNAP in one message, what
 * a leader of an earlier version sends) replaces the log and is still taken. `base` is the last index of the
 * leader's initial history: a follower that holds less after this message asks for the rest (a new ACKEPOCH) before
 * it may take currentEpoch = epoch.
 */
export interface Sync {
  type: 'Sync';
  nonce: number;
  /** The `req` of the ACKEPOCH this answers. */
  req: number;
  epoch: number;
  base: number;
  mode: 'diff' | 'trunc' | 'snap';
  truncateTo?: number;
  snapshot?: Snapshot;
  entries: LogEntry[];
}

/**
 * Phase 2, SNAP (ZooKeeper's LearnerHandler writes the SNAP packet, then the serialized data tree on the same
 * stream): bytes [offset, offset + data.length) of the leader's snapshot at (index, term), of `total` bytes, with
 * its configuration. `req` is the ACKEPOCH's it answers, as a Sync's; `epoch` the leader's.
 */
export interface SnapChunk {
  type: 'SnapChunk';
  nonce: number;
  req: number;
  epoch: number;
  index: number;
  term: number;
  config: ClusterConfig;
  total: number;
  offset: number;
  data: Uint8Array;
}

/**
 * Phase 2, SNAP (ours; ZooKeeper relies on TCP): the follower holds bytes [0, offset) of snapshot (index, term);
 * `gap`: a chunk past it arrived, the leader resends from `offset`.
 */
export interface SnapAck {
  type: 'SnapAck';
  nonce: number;
  epoch: number;
  index: number;
  term: number;
  offset: number;
  gap: boolean;
}

/** Phase 2: ACK of NEWLEADER, sent only once the history and then currentEpoch are durable. */
export interface AckNewLeader {
  type: 'AckNewLeader';
  nonce: number;
  epoch: number;
  index: number;
}

/** Phase 2: UPTODATE, once a quorum acknowledged NEWLEADER: the follower may serve. */
export interface UpToDate {
  type: 'UpToDate';
  nonce: number;
  epoch: number;
  commit: number;
}

/** Phase 3 (broadcast): PROPOSAL to followers (and INFORM to observers: committed entries only). */
export interface Proposal {
  type: 'Proposal' | 'Inform';
  nonce: number;
  epoch: number;
  entries: LogEntry[];
  commit: number;
}

/** Phase 3: ACK of proposals up to `index` (durable). `gap`: the follower misses entries before the ones it got. */
export interface Ack {
  type: 'Ack';
  nonce: number;
  epoch: number;
  index: number;
  gap?: boolean;
}

/** Phase 3: COMMIT up to `commit`. */
export interface Commit {
  type: 'Commit';
  nonce: number;
  epoch: number;
  commit: number;
}

/** ZooKeeper's PING, both ways: the leader's liveness, and (with `seq`) the quorum check behind a read barrier. */
export interface Ping {
  type: 'Ping';
  nonce: number;
  epoch: number;
  commit: number;
  seq: number;
}

export interface Pong {
  type: 'Pong';
  nonce: number;
  epoch: number;
  seq: number;
  index: number;
}

/** Leadership transfer (ours; ZooKeeper has none): the leader hands the epoch's end over to `to`. */
export interface Handoff {
  type: 'Handoff';
  nonce: number;
  epoch: number;
  to: NodeId;
}

/**
 * The leader ends a session whose follower misses entries no longer in its log (ours): the follower registers
 * again at once, and the new session synchronises it with SNAP, then DIFF (LearnerHandler.syncFollower). In
 * ZooKeeper the leader queues every proposal for a connected follower, so one falls that far behind only across a
 * reconnection, which starts a new LearnerHandler; here the leader's log is compacted under a slow follower.
 */
export interface Resync {
  type: 'Resync';
  nonce: number;
  epoch: number;
}

export type ZabMessage =
  | Notification
  | FollowerInfo
  | LeaderInfo
  | AckEpoch
  | Sync
  | SnapChunk
  | SnapAck
  | AckNewLeader
  | UpToDate
  | Proposal
  | Ack
  | Commit
  | Ping
  | Pong
  | Handoff
  | Resync;

export type ZabMessageType = ZabMessage['type'];

const count = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const ENTRY_TYPES: ReadonlySet<string> = new Set<EntryType>(['command', 'noop', 'config']);

function isEntry(e: unknown): e is LogEntry {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Partial<LogEntry>;
  return count(x.index) && x.index > 0 && count(x.term) && typeof x.type === 'string' && ENTRY_TYPES.has(x.type) && x.data instanceof Uint8Array;
}

/** Entries at consecutive indexes, each well formed. */
function isRun(es: unknown): es is LogEntry[] {
  if (!Array.isArray(es)) return false;
  for (let i = 0; i < es.length; i++) {
    const e: unknown = es[i];
    if (!isEntry(e)) return false;
    if (i > 0 && e.index !== (es[i - 1] as LogEntry).index + 1) return false;
  }
  return true;
}

const ids = (v: unknown) => Array.isArray(v) && v.every((i) => typeof i === 'string');

function isConfig(c: unknown): c is ClusterConfig {
  return typeof c === 'object' && c !== null && ids((c as Partial<ClusterConfig>).voters) && ids((c as Partial<ClusterConfig>).learners);
}

function isSnapshot(s: unknown): s is Snapshot {
  if (typeof s !== 'object' || s === null) return false;
  const x = s as Partial<Snapshot>;
  return count(x.index) && count(x.term) && x.data instanceof Uint8Array && isConfig(x.config);
}

/** A chunk within its declared size; empty only as the one chunk of an empty snapshot. */
function isChunk(m: Record<string, unknown>): boolean {
  if (!count(m.total) || !count(m.offset) || !(m.data instanceof Uint8Array)) return false;
  const end = m.offset + m.data.length;
  return end <= m.total && (m.data.length > 0 || m.total === 0);
}

/**
 * The message in an envelope, checked field by field; undefined for anything malformed (the caller ignores it:
 * bad remote input never throws, DESIGN "Errors").
 */
export function parseMessage(msg: unknown): ZabMessage | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  switch (m.type) {
    case 'Notification':
      return count(m.round) && (m.state === 'looking' || m.state === 'following' || m.state === 'leading') && typeof m.leader === 'string' && count(m.epoch) && count(m.term) && count(m.index)
        ? (m as unknown as Notification)
        : undefined;
    case 'FollowerInfo':
      return count(m.nonce) && count(m.acceptedEpoch) ? (m as unknown as FollowerInfo) : undefined;
    case 'LeaderInfo':
      return count(m.nonce) && count(m.epoch) ? (m as unknown as LeaderInfo) : undefined;
    case 'AckEpoch':
      return count(m.nonce) &&
        count(m.req) &&
        count(m.epoch) &&
        count(m.currentEpoch) &&
        count(m.term) &&
        count(m.index) &&
        count(m.commit) &&
        Array.isArray(m.segments) &&
        m.segments.every((s: unknown) => Array.isArray(s) && s.length === 3 && s.every(count))
        ? (m as unknown as AckEpoch)
        : undefined;
    case 'Sync':
      return count(m.nonce) &&
        count(m.req) &&
        count(m.epoch) &&
        count(m.base) &&
        (m.mode === 'diff' || m.mode === 'trunc' || m.mode === 'snap') &&
        (m.truncateTo === undefined || count(m.truncateTo)) &&
        (m.snapshot === undefined || isSnapshot(m.snapshot)) &&
        isRun(m.entries)
        ? (m as unknown as Sync)
        : undefined;
    case 'SnapChunk':
      return count(m.nonce) && count(m.req) && count(m.epoch) && count(m.index) && count(m.term) && isConfig(m.config) && isChunk(m) ? (m as unknown as SnapChunk) : undefined;
    case 'SnapAck':
      return count(m.nonce) && count(m.epoch) && count(m.index) && count(m.term) && count(m.offset) && typeof m.gap === 'boolean' ? (m as unknown as SnapAck) : undefined;
    case 'AckNewLeader':
      return count(m.nonce) && count(m.epoch) && count(m.index) ? (m as unknown as AckNewLeader) : undefined;
    case 'UpToDate':
    case 'Commit':
      return count(m.nonce) && count(m.epoch) && count(m.commit) ? (m as unknown as UpToDate | Commit) : undefined;
    case 'Proposal':
    case 'Inform':
      return count(m.nonce) && count(m.epoch) && count(m.commit) && isRun(m.entries) ? (m as unknown as Proposal) : undefined;
    case 'Ack':
      return count(m.nonce) && count(m.epoch) && count(m.index) && (m.gap === undefined || typeof m.gap === 'boolean') ? (m as unknown as Ack) : undefined;
    case 'Ping':
      return count(m.nonce) && count(m.epoch) && count(m.commit) && count(m.seq) ? (m as unknown as Ping) : undefined;
    case 'Pong':
      return count(m.nonce) && count(m.epoch) && count(m.seq) && count(m.index) ? (m as unknown as Pong) : undefined;
    case 'Handoff':
      return count(m.nonce) && count(m.epoch) && typeof m.to === 'string' ? (m as unknown as Handoff) : undefined;
    case 'Resync':
      return count(m.nonce) && count(m.epoch) ? (m as unknown as Resync) : undefined;
    default:
      return undefined;
  }
}
