/**
 * What the visualizer shows, as data: the contract between the sources that describe a cluster (a live
 * cluster polled by `consensus-cli ui`, a simulator run replayed by `consensus-sim replay --ui`), the server
 * that pushes it, and the page that draws it. Plain JSON: every field is sent to the browser as is.
 */

/** Whether the page watches a running cluster or steps through a recorded run. */
export type UiMode = 'live' | 'replay';

/** One entry of a node's log as the page draws it: coloured by `term` (Raft term, Paxos ballot, ZAB epoch). */
export interface UiLogEntry {
  index: number;
  term: number;
  type?: 'command' | 'noop' | 'config';
}

/** One node as last seen. Fields other than `id` and `up` are absent while the node does not answer. */
export interface UiNodeState {
  id: string;
  /** The node answers (live: its status endpoint; replay: not crashed). */
  up: boolean;
  /** Core's `Role`: leader, follower, candidate, learner, observer, ... */
  role?: string;
  /** Raft term, Paxos ballot, ZAB epoch: one integer, unique per leader. */
  term?: number;
  leader?: string;
  commitIndex?: number;
  appliedIndex?: number;
  lastIndex?: number;
  /** First index still in the log (entries below it are in the snapshot). */
  firstIndex?: number;
  snapshotIndex?: number;
  /** How far this node's applied index is behind the highest commit index any node reports. */
  lag?: number;
  /** The last entries of the log, oldest first, at most `UI_LOG_TAIL` of them. */
  log: UiLogEntry[];
  /** Peers this node is cut off from (`consensus-cli partition`, or the simulator's network). */
  partitioned?: string[];
  address?: string;
  http?: string;
  pid?: number;
  /** Protocol-owned detail (core `Status.details`), shown as is on request. */
  details?: Record<string, unknown>;
}

/** The configuration in force, as the leader (or, without one, the most advanced node) reports it. */
export interface UiMembers {
  voters: string[];
  learners: string[];
  observers: string[];
}

/** One direction of one link between two nodes. */
export interface UiLink {
  from: string;
  to: string;
  /** Messages per second sent on this link over the last second or so (live), or in the last step (replay). */
  rate: number;
  /** The link is cut (a partition). */
  blocked: boolean;
}

/** One message between two nodes, drawn as it travels; under load a sample of them. */
export interface UiMessage {
  from: string;
  to: string;
  /** The protocol's own message type: AppendEntries, Prepare, PROPOSAL, ... */
  type: string;
  at: number;
  /**
   * Set when the message never arrives, with why (`partitioned`, `lost`, `receiver-down`): sent on a cut link
   * (a live node samples its messages before the transport drops them), or the simulator dropped it. The page
   * draws it stopping at the cut.
   */
  dropped?: string;
}

export type UiEventKind =
  | 'election'
  | 'leader'
  | 'config'
  | 'snapshot'
  | 'partition'
  | 'heal'
  | 'kill'
  | 'restart'
  | 'crash'
  /** The simulator stalled a node's process (no ticks, its messages wait) and let it go on. */
  | 'pause'
  | 'resume'
  | 'action'
  | 'error'
  | 'violation';

/**
 * Something worth a mark on the timeline. `text` is a whole sentence that names the node it is about ("n2 leads
 * (term 3)", "isolate n2"); `node` says which node, for the page to mark and filter, and is not printed again.
 */
export interface UiEvent {
  at: number;
  kind: UiEventKind;
  node?: string;
  text: string;
  /**
   * `'node'`: one node's own view (each node reports the leader it follows, the configuration it sees), so an
   * election brings one per node; the page lists them only when asked ("all node events"). Absent: an event of
   * the cluster (the leader the nodes agree on, a crash, an action, the violation), always listed.
   */
  scope?: 'node';
}

/** The whole picture at one moment, plus what happened since the previous frame. */
export interface UiFrame {
  /** 0, 1, 2, ... in the order the source made them. */
  seq: number;
  /** Milliseconds since the epoch (live) or the simulator's tick (replay): see `UiHello.timeUnit`. */
  at: number;
  members: UiMembers;
  nodes: UiNodeState[];
  links: UiLink[];
  /** Messages since the previous frame (sampled). */
  messages: UiMessage[];
  /** Events since the previous frame. */
  events: UiEvent[];
}

/** What the page learns first: what it is looking at and what it may do. */
export interface UiHello {
  mode: UiMode;
  protocol: string;
  /** A short title: the cluster directory, or the seed and its options. */
  title: string;
  timeUnit: 'ms' | 'tick';
  /** The actions the source accepts (none in replay). */
  actions: UiActionName[];
  /** The election timeout, in `timeUnit`s, when known. */
  electionTimeout?: number;
  /** Replay only: the command that reproduces the run. */
  replayCommand?: string;
}

/** Everything the page can ask a live cluster to do. */
export type UiAction =
  | { action: 'put'; key: string; value: string }
  | { action: 'get'; key: string }
  | { action: 'kill'; node: string }
  | { action: 'restart'; node: string }
  /** Cut `node` off from every peer, or only the link to `peer` when given (both directions). */
  | { action: 'partition'; node: string; peer?: string }
  | { action: 'heal' }
  | { action: 'transfer'; to: string }
  /** Start a new node and add it (as a voter unless `role` says otherwise); `node` names it when given. */
  | { action: 'add-member'; node?: string; role?: 'voter' | 'learner' | 'observer' }
  | { action: 'remove-member'; node: string }
  | { action: 'bench'; seconds?: number; clients?: number };

export type UiActionName = UiAction['action'];

export const UI_ACTION_NAMES: readonly UiActionName[] = ['put', 'get', 'kill', 'restart', 'partition', 'heal', 'transfer', 'add-member', 'remove-member', 'bench'];

/** The answer to an action: shown on the page next to the cluster's reaction. */
export interface UiActionResult {
  ok: boolean;
  /** One line for the page: "n2 killed", "put a = 1 at revision 7", or the error's message. */
  text: string;
  data?: unknown;
}

/** What the server serves: a live cluster or a recorded run. */
export interface UiSource {
  hello(): UiHello;
  /** The frames kept so far, oldest first (bounded by the source): the timeline the page scrubs. */
  history(): UiFrame[];
  /** Called with every new frame; returns the unsubscribe function. */
  subscribe(listener: (frame: UiFrame) => void): () => void;
  /** Runs an action (live sources only); rejects nothing: failures come back as `{ ok: false }`. */
  act?(action: UiAction): Promise<UiActionResult>;
  close?(): Promise<void>;
}

/** How many log entries a node state carries. */
export const UI_LOG_TAIL = 48;
