import { hasQuorum, isVoter, jointCommittedIndex, jointVoteResult, type ClusterConfig, type NodeId, type VoteResult } from '@consensus-kit/core';
import { Progress } from './progress';
import type { PeerProgress } from './status-details';

/**
 * The leader's view of every member's replication (etcd's `tracker.ProgressTracker`) and a candidate's
 * tally of votes. The quorum arithmetic itself, majority or joint (thesis 4.3), is core's, shared by every
 * protocol; this class only feeds it what Raft tracks.
 */
export class ProgressTracker {
  /** One entry per member of the configuration in force, plus the node itself. */
  readonly progress = new Map<NodeId, Progress>();
  /** Votes received in the current election (pre-vote or vote), granted or not. */
  readonly votes = new Map<NodeId, boolean>();

  constructor(
    private readonly maxInflightMsgs: number,
    private readonly maxInflightBytes: number,
  ) {}

  /** Fresh progress for every member, all probing from `next` (a new term). */
  reset(members: readonly NodeId[], config: ClusterConfig, next: number): void {
    this.progress.clear();
    for (const id of members) this.progress.set(id, new Progress(next, !isVoter(config, id), this.maxInflightMsgs, this.maxInflightBytes));
  }

  /**
   * Follows a configuration change: new members start probing at `next - 1` (etcd: next = lastIndex), the
   * learner flag follows the configuration, and members that left are forgotten.
   */
  applyConfig(members: readonly NodeId[], config: ClusterConfig, next: number): void {
    for (const id of members) {
      const learner = !isVoter(config, id);
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, new Progress(Math.max(1, next - 1), learner, this.maxInflightMsgs, this.maxInflightBytes));
      else pr.learner = learner;
    }
    const keep = new Set(members);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
  }

  /** Whether `self` and the members heard from recently make a quorum (thesis 6.2 CheckQuorum). */
  quorumActive(config: ClusterConfig, self: NodeId): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.progress) if (id === self || pr.recentActive) active.add(id);
    return hasQuorum(config, active);
  }

  /** The highest index a quorum has matched (both halves of a joint configuration); MAX_SAFE_INTEGER with no voter. */
  committedIndex(config: ClusterConfig): number {
    const prs = this.progress;
    return jointCommittedIndex(config, (id) => prs.get(id)?.match);
  }

  /** Records `from`'s first answer in this election and tallies (thesis 4.3: a majority of both halves). */
  poll(config: ClusterConfig, from: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return jointVoteResult(config, this.votes);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Every member's progress, by id in sorted order, as plain data for `Status.details`. */
  view(): Record<NodeId, PeerProgress> {
    const out: Record<NodeId, PeerProgress> = {};
    for (const id of [...this.progress.keys()].sort()) out[id] = (this.progress.get(id) as Progress).view();
    return out;
  }
}

/** Every voter of `config` (both halves of a joint configuration), sorted. */
export function voterIds(config: ClusterConfig): NodeId[] {
  const ids = new Set(config.voters);
  for (const id of config.outgoing ?? []) ids.add(id);
  return [...ids].sort();
}
