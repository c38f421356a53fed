import type { ClusterConfig, LogEntry, NodeId } from '@consensus-kit/core';

/**
 * Raft's wire messages: a discriminated union on a string `type` tag, plain msgpack-encodable data (numbers,
 * strings, booleans, arrays, Uint8Array), readable in traces through core's `describeMessage`.
 *
 * Every message carries the sender's `term` (thesis 3.3: "current terms are exchanged whenever servers
 * communicate"). PreVote requests carry the term the sender *would* campaign at (thesis 9.6).
 */

/** Thesis 9.6: "would you vote for me at `term`?" The receiver's term is not changed by it. */
export interface PreVote {
  type: 'PreVote';
  term: number;
  lastIndex: number;
  lastTerm: number;
}

export interface PreVoteResponse {
  type: 'PreVoteResponse';
  term: number;
  reject: boolean;
}

/** Thesis 3.4 / Figure 3.1 RequestVote. `transfer` marks a campaign started by TimeoutNow (thesis 3.10). */
export interface RequestVote {
  type: 'RequestVote';
  term: number;
  lastIndex: number;
  lastTerm: number;
  transfer?: boolean;
}

export interface RequestVoteResponse {
  type: 'RequestVoteResponse';
  term: number;
  reject: boolean;
}

/** Figure 3.1 AppendEntries: entries[i] sits at log index prevIndex + 1 + i. */
export interface AppendEntries {
  type: 'AppendEntries';
  term: number;
  prevIndex: number;
  prevTerm: number;
  entries: LogEntry[];
  commit: number;
}

/**
 * Reply to AppendEntries (and to a completed snapshot). On success `index` is the last index the follower now
 * holds in agreement with the leader. On rejection `index` echoes the rejected prevIndex, and
 * (`hintIndex`, `hintTerm`) is the follower's best guess of where the logs agree: the largest index <= the
 * rejected one whose term is <= the leader's prevTerm (thesis 5.3's fast backtracking, etcd's variant).
 */
export interface AppendEntriesResponse {
  type: 'AppendEntriesResponse';
  term: number;
  index: number;
  reject: boolean;
  hintIndex?: number;
  hintTerm?: number;
}

/**
 * Leader liveness and commit propagation. `commit` is min(follower's match, leader's commit) so the follower
 * never learns a commit index past what it holds in agreement with the leader. `seq` numbers heartbeat rounds
 * of one leadership: acknowledging a round confirms the leader was still leader when it was sent (ReadIndex,
 * thesis 6.4, and the read lease, thesis 6.4.1).
 */
export interface Heartbeat {
  type: 'Heartbeat';
  term: number;
  commit: number;
  seq: number;
}

export interface HeartbeatResponse {
  type: 'HeartbeatResponse';
  term: number;
  seq: number;
}

/**
 * One chunk of a snapshot (thesis 5.3 / Figure 5.3 InstallSnapshot): `data` holds bytes
 * [offset, offset + data.length) of a snapshot of `total` bytes covering the log through `index`/`snapTerm`.
 */
export interface InstallSnapshot {
  type: 'InstallSnapshot';
  term: number;
  index: number;
  snapTerm: number;
  config: ClusterConfig;
  total: number;
  offset: number;
  data: Uint8Array;
}

/**
 * The follower holds the first `offset` bytes of snapshot `index`. With `reject` false this acknowledges a
 * chunk; with `reject` true a chunk arrived past `offset` (an earlier one was lost): resend from `offset`.
 */
export interface InstallSnapshotResponse {
  type: 'InstallSnapshotResponse';
  term: number;
  index: number;
  offset: number;
  reject: boolean;
}

/** Thesis 3.10: the leader tells a caught-up follower to start an election at once. */
export interface TimeoutNow {
  type: 'TimeoutNow';
  term: number;
}

/** A follower asks the leader for a read index on behalf of a local reader (thesis 6.4, follower reads). */
export interface ReadIndexRequest {
  type: 'ReadIndexRequest';
  term: number;
  ctx: Uint8Array;
}

export interface ReadIndexResponse {
  type: 'ReadIndexResponse';
  term: number;
  ctx: Uint8Array;
  index: number;
}

export type RaftMessage =
  | PreVote
  | PreVoteResponse
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

export type RaftMessageType = RaftMessage['type'];

const ENTRY_TYPES = new Set(['command', 'noop', 'config']);

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isIdList(v: unknown): v is NodeId[] {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== 'string' || x.length === 0) return false;
  return true;
}

function isConfig(v: unknown): v is ClusterConfig {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Partial<ClusterConfig>;
  return isIdList(c.voters) && isIdList(c.learners) && (c.outgoing === undefined || isIdList(c.outgoing));
}

/**
 * Entries must be well formed and contiguous from `prevIndex + 1` (thesis Figure 3.1: entries[i] is at
 * prevIndex + 1 + i). Entry terms never decrease along a log.
 */
function isEntryList(v: unknown, prevIndex: number, prevTerm: number): v is LogEntry[] {
  if (!Array.isArray(v)) return false;
  let term = prevTerm;
  for (let i = 0; i < v.length; i++) {
    const e = v[i] as Partial<LogEntry> | null;
    if (typeof e !== 'object' || e === null) return false;
    if (e.index !== prevIndex + 1 + i || !isIndex(e.term) || e.term < term) return false;
    if (!ENTRY_TYPES.has(e.type as string) || !(e.data instanceof Uint8Array)) return false;
    term = e.term;
  }
  return true;
}

/**
 * Returns `msg` typed when it is a well-formed Raft message, `undefined` otherwise. Remote input is never
 * trusted: the caller drops what fails here (thesis: malformed or stale messages are ignored).
 */
export function parseMessage(msg: unknown): RaftMessage | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  if (!isIndex(m.term)) return undefined;
  switch (m.type) {
    case 'PreVote':
    case 'RequestVote':
      if (!isIndex(m.lastIndex) || !isIndex(m.lastTerm) || m.term === 0) return undefined;
      if (m.transfer !== undefined && typeof m.transfer !== 'boolean') return undefined;
      return msg as RaftMessage;
    case 'PreVoteResponse':
    case 'RequestVoteResponse':
      return typeof m.reject === 'boolean' ? (msg as RaftMessage) : undefined;
    case 'AppendEntries':
      if (!isIndex(m.prevIndex) || !isIndex(m.prevTerm) || !isIndex(m.commit)) return undefined;
      return isEntryList(m.entries, m.prevIndex, m.prevTerm) ? (msg as RaftMessage) : undefined;
    case 'AppendEntriesResponse':
      if (!isIndex(m.index) || typeof m.reject !== 'boolean') return undefined;
      if (m.reject && (!isIndex(m.hintIndex) || !isIndex(m.hintTerm))) return undefined;
      return msg as RaftMessage;
    case 'Heartbeat':
      return isIndex(m.commit) && isIndex(m.seq) ? (msg as RaftMessage) : undefined;
    case 'HeartbeatResponse':
      return isIndex(m.seq) ? (msg as RaftMessage) : undefined;
    case 'InstallSnapshot':
      if (!isIndex(m.index) || !isIndex(m.snapTerm) || !isIndex(m.total) || !isIndex(m.offset)) return undefined;
      if (!(m.data instanceof Uint8Array) || !isConfig(m.config)) return undefined;
      if (m.offset + m.data.length > m.total) return undefined;
      return msg as RaftMessage;
    case 'InstallSnapshotResponse':
      return isIndex(m.index) && isIndex(m.offset) && typeof m.reject === 'boolean' ? (msg as RaftMessage) : undefined;
    case 'TimeoutNow':
      return msg as RaftMessage;
    case 'ReadIndexRequest':
      return m.ctx instanceof Uint8Array ? (msg as RaftMessage) : undefined;
    case 'ReadIndexResponse':
      return m.ctx instanceof Uint8Array && isIndex(m.index) ? (msg as RaftMessage) : undefined;
    default:
      return undefined;
  }
}

/** Messages only a leader sends; receiving one at the current term identifies the leader. */
export function isLeaderMessage(type: RaftMessageType): boolean {
  return type === 'AppendEntries' || type === 'Heartbeat' || type === 'InstallSnapshot' || type === 'TimeoutNow' || type === 'ReadIndexResponse';
}
