import type { NodeId } from '@consensus-kit/core';

/** A Fast Leader Election vote (ZooKeeper's Vote): proposed leader, its currentEpoch and last zxid (term, index). */
export interface Vote {
  leader: NodeId;
  epoch: number;
  term: number;
  index: number;
}

/**
 * FastLeaderElection.totalOrderPredicate: the higher epoch wins, then the higher zxid, then the higher server id.
 * Returns > 0 when `a` beats `b`, 0 for the same vote.
 */
export function compareVotes(a: Vote, b: Vote): number {
  if (a.epoch !== b.epoch) return a.epoch - b.epoch;
  if (a.term !== b.term) return a.term - b.term;
  if (a.index !== b.index) return a.index - b.index;
  return a.leader < b.leader ? -1 : a.leader > b.leader ? 1 : 0;
}
