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

/**
 * A node's role, the same words for every protocol (DESIGN r2). Raft's pre-candidate, Paxos phase 1 and ZAB's
 * LOOKING (and its discovery and synchronisation phases) report `candidate`; Paxos and ZAB report `leader`
 * only once established (phase 1 won, NEWLEADER acknowledged by a quorum).
 */
export type Role = 'leader' | 'follower' | 'candidate' | 'learner';

export interface Status {
  id: NodeId;
  role: Role;
  /**
   * One integer, strictly increasing, unique per leader: the Raft term, the Paxos ballot, the ZAB epoch.
   * Two statuses with the same term and role `leader` are the same leader.
   */
  term: number;
  leader?: NodeId;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** The configuration in force. */
  config: ClusterConfig;
  /**
   * Protocol-owned detail: Raft's per-peer progress and pre-vote phase, Paxos ballots and windows, ZAB zxids
   * and phases. Plain msgpack-encodable data that tools print (`describeStatus`, the CLI) but never interpret.
   */
  details?: Record<string, unknown>;
}

/** A linearizable read released once the local state machine has applied `index`. */
export interface ReadState {
  ctx: Uint8Array;
  index: number;
}

/**
 * One batch of work for the host. The host handles it in this order, then calls `advance(ready)`:
 * 1. persist, durable in this order (DESIGN r2): `snapshot` (install), `truncateAfter`, `entries`,
 *    `hardState`. A crash may leave any prefix of that order durable, never a later part without an earlier
 *    one; a protocol that needs a stricter order between two writes puts them in separate Readys;
 * 2. send `messages` (only once the whole batch is durable);
 * 3. apply: restore `snapshot` into the state machine, then `committed` in index order, exactly once;
 * 4. release `reads` whose index is applied.
 */
export interface Ready {
  /** Protocol-owned durable state (vote, promised ballot, epochs...). Durable last, before anything is sent. */
  hardState?: Uint8Array;
  /** Drop persisted entries with index > this before writing `entries`: the only way a suffix is dropped. */
  truncateAfter?: number;
  /**
   * Entries to persist, in index order, contiguous with each other. An entry at an existing index overwrites
   * that one index and keeps every entry after it (a Paxos acceptor re-accepting a slot); an entry at
   * lastIndex + 1 appends. A protocol never rewrites an index at or below its own commit index.
   */
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
  /** Whether `ready()` has anything to hand over. Pure: asking changes nothing (DESIGN r2). */
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

/**
 * A protocol as a plug-in (DESIGN r2). `O` is its own options (Raft's `preVote`, Paxos' window...), typed for
 * code and validated for untyped input: `parseOptions` turns what a config file, a CLI flag or the simulator
 * passes into `O`, and refuses an unknown, misspelt or ill-typed option with a `ConfigError` that names it.
 */
export interface ProtocolModule<O extends object = Record<string, unknown>> {
  name: 'raft' | 'paxos' | 'zab' | (string & {});
  /** The options this protocol takes, for help texts and validation (see `parseOptions` in core). */
  readonly options: OptionSpecs;
  /** Validates untyped protocol options (`{}` gives the defaults). Throws `ConfigError`. */
  parseOptions(raw: unknown): O;
  create(options: ProtocolOptions & Partial<O>): Protocol;
}

/** Any protocol module, whatever its options: what hosts, the simulator and the CLI accept. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProtocolModule = ProtocolModule<any>;

/** How one protocol option is checked. */
export interface OptionSpec {
  type: 'boolean' | 'integer' | 'number' | 'string';
  /** For integers and numbers: inclusive bounds. */
  min?: number;
  max?: number;
  /** For strings: the allowed values. */
  values?: readonly string[];
  /** One line for help texts. */
  description: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

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

/**
 * What one `save` writes, durable in this order (DESIGN r2): truncation, entries, hard state. A crash may leave
 * any prefix of that order durable (some of the entries, in index order), never a later part without an
 * earlier one. An entry at an existing index overwrites that index only.
 */
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
  /**
   * Optional (r2): the command that carries the leader's clock into the log. A state machine that needs time
   * (leases, lock sessions) implements it; the host proposes `timeCommand(term, clockMs)` while it leads (on
   * becoming leader, then every `timeIntervalMs`), and the state machine feeds each such entry to a
   * `ReplicatedTime`. It never reads a clock itself.
   */
  timeCommand?(term: number, clockMs: number): Cmd;
  /**
   * Optional (r3): an incremental snapshot, for a state machine too large to serialize in one event-loop turn.
   * It captures the state as of the call (the applied index then) and returns a job; the host runs the job's
   * `step` in slices between batches, applying entries meanwhile, until a step returns the bytes. Those bytes
   * are the ones `snapshot()` would have returned at the call, and `restore` takes them alike. A host without
   * it calls `snapshot()`; the state machine stays deterministic either way (the job changes no state).
   */
  beginSnapshot?(): SnapshotJob;
  /**
   * Optional (r3): an incremental restore, for a state machine too large to restore in one event-loop turn.
   * The host uses it for a snapshot installed from the leader: it runs the job's `step` in slices, one turn of
   * the event loop each, and holds back everything after it (the Ready's committed entries, later Readys, the
   * reads they release) until a step returns true; the protocol keeps receiving messages meanwhile (a follower
   * keeps hearing its leader's heartbeats). The job must leave the state machine as it was until its last step,
   * which switches to the restored state at once (build aside, swap at the end): no query or apply ever sees
   * it half-restored, and a cancelled job changes nothing. The state at the end is what `restore(data)` gives.
   */
  beginRestore?(data: Uint8Array): RestoreJob;
}

/** A restore in progress (`StateMachine.beginRestore`). */
export interface RestoreJob {
  /** Does about `budget` units of work (e.g. keys); true once the restored state is in place. */
  step(budget: number): boolean;
  /** Abandons the job: the state machine keeps the state it had. Safe to call after it is done. */
  cancel(): void;
}

/** A snapshot in progress (`StateMachine.beginSnapshot`). */
export interface SnapshotJob {
  /** Does about `budget` units of work (a state machine's own unit, e.g. keys); returns the bytes once done. */
  step(budget: number): Uint8Array | undefined;
  /** Abandons the job, releasing what it holds (e.g. history kept for it). Safe to call after it is done. */
  cancel(): void;
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
