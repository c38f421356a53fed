import type { ClusterConfig, EntryType, LogEntry, NodeId } from '@consensus-kit/core';

/**
 * Multi-Paxos messages (Paxos Made Simple, section 2.2 and 3; PMMC section 3), a discriminated union with string
 * tags. Phase 1 (`Prepare`/`Promise`) runs once for every slot above the proposer's commit point; phase 2
 * (`Accept`/`Accepted`) carries batches of consecutive slots. `Learn` streams decided values to replicas that
 * lag (the learners of Paxos Made Simple, section 2.4), `SnapshotChunk`s (answered by `SnapshotAck`) replace them
 * once the log was compacted.
 */
export interface Prepare {
  type: 'Prepare';
  ballot: number;
  /** The proposer's commit point: report accepted values above it. */
  commit: number;
  /** A leadership transfer: acceptors answer even while they still hear from a leader. */
  force?: boolean;
}

export interface Promise {
  type: 'Promise';
  ballot: number;
  /** The acceptor's own commit point (values at or below it are decided). */
  commit: number;
  /** The first slot the report covers; above the proposer's commit + 1 means compacted: it is incomplete. */
  first: number;
  /** Every value accepted (term = ballot > 0) in slots >= first. */
  entries: LogEntry[];
}

/** A request refused because the acceptor promised a higher ballot (PMMC's "preempted"). */
export interface Nack {
  type: 'Nack';
  ballot: number;
  promised: number;
  /**
   * The acceptor follows a leader whose ballot is its promise (phase 1 of that ballot succeeded). Absent or false:
   * the promise belongs to a proposer no one is known to follow yet (a candidate, perhaps the acceptor itself).
   */
  led?: boolean;
}

export interface Accept {
  type: 'Accept';
  ballot: number;
  /** The leader's commit point: slots <= it whose value the acceptor holds at `ballot` are decided. */
  commit: number;
  /** Consecutive slots, each with term = ballot. */
  entries: LogEntry[];
}

export interface Accepted {
  type: 'Accepted';
  ballot: number;
  /** The slots accepted: [from, to]. */
  from: number;
  to: number;
  commit: number;
}

export interface Heartbeat {
  type: 'Heartbeat';
  ballot: number;
  commit: number;
  seq: number;
}

export interface HeartbeatReply {
  type: 'HeartbeatReply';
  ballot: number;
  seq: number;
  commit: number;
}

/** Decided values (in slots first..), and the sender's commit point. */
export interface Learn {
  type: 'Learn';
  commit: number;
  entries: LogEntry[];
}

export interface Learned {
  type: 'Learned';
  commit: number;
}

/** Asks for decided values from slot `from` on (a proposer that learned it is behind). */
export interface CatchupRequest {
  type: 'CatchupRequest';
  from: number;
}

/**
 * One chunk of the sender's snapshot: bytes [offset, offset + data.length) of `total` (core's `SnapshotSender`,
 * Raft thesis 5.3's chunked InstallSnapshot). Every chunk carries the snapshot's metadata, which is small.
 *
 * Its tag is not the former whole-snapshot message's (`Snapshot`): a replica of an earlier version ignores a chunk
 * (an unknown message) instead of installing its first bytes as the whole snapshot. A `Snapshot` from such a
 * replica is still read, as the one chunk of its snapshot.
 */
export interface SnapshotMessage {
  type: 'SnapshotChunk';
  index: number;
  term: number;
  config: ClusterConfig;
  /** The whole snapshot's size in bytes. */
  total: number;
  offset: number;
  data: Uint8Array;
  /** The sender's promise when it started the transfer: a higher one's transfer replaces a lower one's. */
  epoch: number;
  /** The membership as of `index` (hard-state form). */
  membership: unknown;
}

/** The receiver of snapshot (index, term) holds its first `offset` bytes; `gap`: resend from there. */
export interface SnapshotAck {
  type: 'SnapshotAck';
  index: number;
  term: number;
  offset: number;
  gap: boolean;
}

/** Leadership transfer: start phase 1 at once (Raft thesis 3.10's TimeoutNow, applied to a Paxos leader). */
export interface TimeoutNow {
  type: 'TimeoutNow';
  ballot: number;
}

export type PaxosMessage =
  | Prepare
  | Promise
  | Nack
  | Accept
  | Accepted
  | Heartbeat
  | HeartbeatReply
  | Learn
  | Learned
  | CatchupRequest
  | SnapshotMessage
  | SnapshotAck
  | TimeoutNow;

export type PaxosMessageType = PaxosMessage['type'];

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const TYPES: ReadonlySet<string> = new Set<EntryType>(['command', 'noop', 'config']);
const ids = (x: unknown): x is NodeId[] => Array.isArray(x) && x.every((s) => typeof s === 'string' && s.length > 0);

/**
 * A well-formed list of consecutive slots, returned as it is (validated in place, as raft's parseMessage does):
 * copying every entry of every Accept cost a fifth of the pure core's time. Entries are never mutated (a slot is
 * rewritten by replacing its object, see PaxosLog.put), so holding the sender's objects is safe.
 */
function entries(x: unknown): LogEntry[] | undefined {
  if (!Array.isArray(x)) return undefined;
  let prev = 0;
  for (let i = 0; i < x.length; i++) {
    const e = x[i] as Partial<LogEntry> | null | undefined;
    if (typeof e !== 'object' || e === null || !isInt(e.index) || e.index < 1 || !isInt(e.term) || typeof e.type !== 'string' || !TYPES.has(e.type)) return undefined;
    if (!(e.data instanceof Uint8Array)) return undefined;
    if (prev !== 0 && e.index !== prev + 1) return undefined; // consecutive slots only
    prev = e.index;
  }
  return x as LogEntry[];
}

/** Validates an inbound message; anything malformed is undefined (and ignored by the caller). */
export function parseMessage(msg: unknown): PaxosMessage | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  switch (m.type) {
    case 'Prepare':
      return isInt(m.ballot) && isInt(m.commit) ? { type: 'Prepare', ballot: m.ballot, commit: m.commit, force: m.force === true } : undefined;
    case 'Promise': {
      const es = entries(m.entries);
      return isInt(m.ballot) && isInt(m.commit) && isInt(m.first) && es !== undefined ? { type: 'Promise', ballot: m.ballot, commit: m.commit, first: m.first, entries: es } : undefined;
    }
    case 'Nack':
      if (!isInt(m.ballot) || !isInt(m.promised) || (m.led !== undefined && typeof m.led !== 'boolean')) return undefined;
      return m.led === true ? { type: 'Nack', ballot: m.ballot, promised: m.promised, led: true } : { type: 'Nack', ballot: m.ballot, promised: m.promised };
    case 'Accept': {
      const es = entries(m.entries);
      return isInt(m.ballot) && isInt(m.commit) && es !== undefined && es.length > 0 ? { type: 'Accept', ballot: m.ballot, commit: m.commit, entries: es } : undefined;
    }
    case 'Accepted':
      return isInt(m.ballot) && isInt(m.from) && isInt(m.to) && isInt(m.commit) && m.from <= m.to ? { type: 'Accepted', ballot: m.ballot, from: m.from, to: m.to, commit: m.commit } : undefined;
    case 'Heartbeat':
      return isInt(m.ballot) && isInt(m.commit) && isInt(m.seq) ? { type: 'Heartbeat', ballot: m.ballot, commit: m.commit, seq: m.seq } : undefined;
    case 'HeartbeatReply':
      return isInt(m.ballot) && isInt(m.seq) && isInt(m.commit) ? { type: 'HeartbeatReply', ballot: m.ballot, seq: m.seq, commit: m.commit } : undefined;
    case 'Learn': {
      const es = entries(m.entries);
      return isInt(m.commit) && es !== undefined ? { type: 'Learn', commit: m.commit, entries: es } : undefined;
    }
    case 'Learned':
      return isInt(m.commit) ? { type: 'Learned', commit: m.commit } : undefined;
    case 'CatchupRequest':
      return isInt(m.from) ? { type: 'CatchupRequest', from: m.from } : undefined;
    case 'SnapshotChunk':
    case 'Snapshot': {
      const c = m.config as Partial<ClusterConfig> | undefined;
      if (!isInt(m.index) || !isInt(m.term) || !(m.data instanceof Uint8Array) || typeof c !== 'object' || c === null || !ids(c.voters)) return undefined;
      const config: ClusterConfig = { voters: c.voters, learners: ids(c.learners) ? c.learners : [] };
      if (ids(c.outgoing)) config.outgoing = c.outgoing;
      // The earlier whole-snapshot message: the one chunk of a snapshot of its length, from epoch 0.
      if (m.type === 'Snapshot') return { type: 'SnapshotChunk', index: m.index, term: m.term, config, total: m.data.length, offset: 0, data: m.data, epoch: 0, membership: m.membership };
      // A chunk lies inside the size it declares (core's SnapshotReceiver checks again).
      if (!isInt(m.total) || !isInt(m.offset) || !isInt(m.epoch) || m.offset + m.data.length > m.total) return undefined;
      return { type: 'SnapshotChunk', index: m.index, term: m.term, config, total: m.total, offset: m.offset, data: m.data, epoch: m.epoch, membership: m.membership };
    }
    case 'SnapshotAck':
      if (!isInt(m.index) || !isInt(m.term) || !isInt(m.offset) || typeof m.gap !== 'boolean') return undefined;
      return { type: 'SnapshotAck', index: m.index, term: m.term, offset: m.offset, gap: m.gap };
    case 'TimeoutNow':
      return isInt(m.ballot) ? { type: 'TimeoutNow', ballot: m.ballot } : undefined;
    default:
      return undefined;
  }
}
