/**
 * The contract between consensus-kit packages (DESIGN.md). Every protocol is a deterministic, single-threaded
 * state machine in the etcd/raft `RawNode` model: time enters through `tick()`, randomness through the
 * injected `random`, messages through `step()`, and everything it wants done comes out as a `Ready` batch.
 */

/** A node's identity inside one cluster. Non-empty, at most 128 characters, no whitespace. */
export type NodeId = string;

/** One protocol message in flight between two nodes. `msg` is plain msgpackr-encodable data. */
export interface Envelope<M = unknown> {
  from: NodeId;
  to: NodeId;
  msg: M;
}

export type EntryType = 'command' | 'noop' | 'config';

/**
 * One slot of the replicated log. Indexes are 1-based and contiguous once committed. `term` is the Raft term,
 * the Paxos ballot round or the ZAB epoch that wrote the entry.
 */
export interface LogEntry {
  index: number;
  term: number;
  type: EntryType;
  /** Opaque command bytes; empty for noop; an encoded `ClusterConfig` for config entries. */
  data: Uint8Array;
}

/**
 * A cluster configuration. Outside a membership change `outgoing` is absent; during joint consensus
 * (Raft thesis 4.3) decisions need a majority of `voters` AND a majority of `outgoing`.
 * Config entries always carry the whole resulting configuration (never a delta), encoded with
 * `encodeClusterConfig`, so any reader of the log (host, storage, inspect) can follow membership without
 * knowing the protocol.
 */
export interface ClusterConfig {
  voters: NodeId[];
  /** The previous voter set while a joint configuration is in force. */
  outgoing?: NodeId[];
  /** Non-voting members that receive the log. */
  learners: NodeId[];
}

/** One membership operation. */
export interface ConfigChangeOp {
  op: 'addVoter' | 'addLearner' | 'remove';
  node: NodeId;
}

/**
 * A membership change. A single op that adds or removes one voter may take the one-step path (thesis 4.1);
 * anything else goes through a joint configuration (thesis 4.3), left automatically once committed.
 */
export interface ConfigChange {
  changes: ConfigChangeOp[];
}

/** Where a snapshot sits in the log and which configuration was in force there. */
export interface SnapshotMeta {
  index: number;
  term: number;
  config: ClusterConfig;
}

/** A state-machine snapshot together with its position in the log. */
export interface Snapshot extends SnapshotMeta {
  data: Uint8Array;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'learner';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower's replication. */
export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  inflight: number;
  /** Whether the peer was heard from recently (CheckQuorum). */
  active: boolean;
  learner: boolean;
}

export interface Status {
  id: NodeId;
  role: Role;
  term: number;
  leader?: NodeId;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  config: ClusterConfig;
  /** Per-peer progress; present on the leader only. */
  progress?: Record<NodeId, PeerProgress>;
  /** The node a leadership transfer is moving to, while one is in progress. */
  transferringTo?: NodeId;
}

/** A linearizable read released once the local state machine has applied `index`. */
export interface ReadState {
  ctx: Uint8Array;
  index: number;
}

/**
 * One batch of work for the host. The host handles it in this order, then calls `advance(ready)`:
 * 1. persist: `snapshot` (install), then `hardState`, `truncateAfter` and `entries` in one `save`;
 * 2. send `messages` (only once the above is durable);
 * 3. apply: restore `snapshot` into the state machine, then `committed` in index order, exactly once;
 * 4. release `reads` whose index is applied.
 */
export interface Ready {
  /** Protocol-owned durable state (vote, promised ballot, epochs...). Persist before anything is sent. */
  hardState?: Uint8Array;
  /** Drop persisted entries with index > this before writing `entries`. */
  truncateAfter?: number;
  /** Entries to persist; an entry at an existing index replaces it (and everything after it). */
  entries: LogEntry[];
  /** A snapshot received from the leader, to install in storage and restore into the state machine. */
  snapshot?: Snapshot;
  /** Messages to send once the above is durable. */
  messages: Envelope[];
  /** Entries to apply, in index order, exactly once. */
  committed: LogEntry[];
  reads: ReadState[];
  /** Present when role, leader or term changed since the previous Ready. */
  status?: Status;
}

export interface Protocol {
  /** Advance logical time by one tick (elections, heartbeats, timeouts are counted in ticks). */
  tick(): void;
  /** Deliver one inbound message. Never throws for bad remote input: such input is ignored. */
  step(envelope: Envelope): void;
  /** Append a command. Throws `NotLeaderError` (with a hint), `ProposalDroppedError`, ... */
  propose(data: Uint8Array): void;
  /** Start a read barrier; answered through `Ready.reads` with the same `ctx`. */
  readIndex(ctx: Uint8Array): void;
  proposeConfigChange(change: ConfigChange): void;
  transferLeadership(to: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  /** The host has persisted, sent and applied `ready`. */
  advance(ready: Ready): void;
  status(): Status;
}

export interface ProtocolOptions {
  id: NodeId;
  /** Voters, including `id`, on first boot. Ignored once storage holds a configuration. */
  peers: NodeId[];
  /** Synchronous read view of what has been persisted; a restart recovers from it. */
  storage: Storage;
  /** Index the state machine already reflects (its restored snapshot); later committed entries are emitted again. */
  applied?: number;
  /** Default 10. */
  electionTicks?: number;
  /** Default 1. */
  heartbeatTicks?: number;
  /** Uniform in [0, 1). Seeded in tests. Defaults to a fixed-seed PRNG, never `Math.random`. */
  random?: () => number;
}

export interface ProtocolModule {
  name: 'raft' | 'paxos' | 'zab' | (string & {});
  create(options: ProtocolOptions): Protocol;
}

/** What storage holds besides the log. */
export interface InitialState {
  hardState?: Uint8Array;
}

/**
 * The synchronous read side of storage: what has been persisted. Protocols read it; only the host writes.
 * Valid terms are those of [firstIndex() - 1, lastIndex()]: index firstIndex() - 1 is the snapshot's (or 0).
 */
export interface Storage {
  initialState(): InitialState;
  /** Entries in [lo, hi). Throws `CompactedError` below firstIndex(), `StorageError` past lastIndex() + 1. */
  entries(lo: number, hi: number, maxBytes?: number): LogEntry[];
  /** Term of the entry at `index`; `0` for index 0. Throws `CompactedError` when compacted away. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot, if any. */
  snapshot(): Snapshot | undefined;
}

/** What one `save` writes, in this order: hard state, truncation, entries. */
export interface SaveBatch {
  hardState?: Uint8Array;
  truncateAfter?: number;
  entries: LogEntry[];
}

/** The asynchronous write side the host drives. A resolved promise means durable. */
export interface DurableStorage extends Storage {
  save(batch: SaveBatch): Promise<void>;
  /** Install a snapshot received from a leader: the whole log is replaced by it (firstIndex = index + 1). */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** Record a snapshot of the local state machine; the log is kept (compact it separately). */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Drop entries with index <= `index`; `index` must not exceed the latest snapshot's index. */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

/** Receives what a transport delivers. */
export interface TransportHandler {
  deliver(envelope: Envelope): void;
  /** A peer could not be reached (queue overflow, connection refused). Optional for transports. */
  unreachable?(peer: NodeId): void;
}

/** Peer-to-peer message delivery: best effort, may drop, duplicate or reorder; never throws on send. */
export interface Transport {
  start(handler: TransportHandler): Promise<void>;
  send(envelopes: readonly Envelope[]): void;
  stop(): Promise<void>;
}

/** A deterministic state machine driven by the replicated log. */
export interface StateMachine<Cmd = unknown, Res = unknown, Q = unknown, R = unknown> {
  apply(entry: LogEntry, command: Cmd): Res;
  query(query: Q): R;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

/** Optional protocol ability: be told that a peer is unreachable (e.g. to pause pipelining to it). */
export interface ReportsUnreachable {
  reportUnreachable(peer: NodeId): void;
}

export function canReportUnreachable(p: Protocol): p is Protocol & ReportsUnreachable {
  return typeof (p as Partial<ReportsUnreachable>).reportUnreachable === 'function';
}

/** Optional protocol ability: be told that the host compacted storage (e.g. to drop cached terms). */
export interface ObservesCompaction {
  compacted(index: number): void;
}

export function canObserveCompaction(p: Protocol): p is Protocol & ObservesCompaction {
  return typeof (p as Partial<ObservesCompaction>).compacted === 'function';
}

/** A tiny structured logger; hosts and transports take one instead of writing to the console. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Wall-clock scheduling, injected so hosts can be driven by a fake clock in tests. */
export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
