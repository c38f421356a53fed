import type { NodeId } from '@consensus-kit/core';

/**
 * The replication state of one follower as the leader tracks it (etcd's tracker states):
 * - probe: where the follower's log ends is unknown; one AppendEntries per heartbeat interval (thesis 3.5);
 * - replicate: caught up; appends are pipelined (thesis 10.2.1), bounded by the in-flight window;
 * - snapshot: the entries it needs are compacted; a snapshot is being streamed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** One follower's progress as the leader sees it (thesis Figure 3.1 nextIndex/matchIndex, extended). */
export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  /** Appends sent and not yet acknowledged. */
  inflight: number;
  /** Heard from within the current election timeout (CheckQuorum, thesis 6.2). */
  active: boolean;
  learner: boolean;
}

/**
 * Where a node is in Raft's role cycle. The neutral `Status.role` reports a pre-candidate (thesis 9.6 PreVote)
 * as `candidate`; `phase` tells the two apart.
 */
export type RaftPhase = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/**
 * Raft's `Status.details` (DESIGN r2: protocol-owned, printed by tools, interpreted by none of them).
 * Plain msgpack-encodable data.
 */
export interface RaftStatusDetails {
  [key: string]: unknown;
  phase: RaftPhase;
  /** The vote cast in the current term, if any. */
  vote?: NodeId;
  /** Leader only: every member's progress, by node id in sorted order (the leader's own included). */
  progress?: Record<NodeId, PeerProgress>;
  /** Leader only: a leadership transfer to this node is under way (thesis 3.10). */
  transferringTo?: NodeId;
  /** The last snapshot transfer this node refused (larger than `maxSnapshotBytes`, or not allocatable), and why. */
  snapshotRefused?: string;
}
