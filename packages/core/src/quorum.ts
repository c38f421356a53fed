import type { ClusterConfig, NodeId } from './types';

/**
 * Quorum arithmetic shared by every protocol: majority configurations and joint configurations (a decision
 * in a joint configuration needs a majority of each half; Raft thesis 4.3).
 */

/** The number of votes that make a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of `voters`. An empty voter set places no constraint and returns
 * `Number.MAX_SAFE_INTEGER`, so that `Math.min` over the two halves of a joint configuration works.
 */
export function committedIndex(voters: readonly NodeId[], match: (id: NodeId) => number | undefined): number {
  const n = voters.length;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  const acked = new Array<number>(n);
  for (let i = 0; i < n; i++) acked[i] = match(voters[i] as NodeId) ?? 0;
  acked.sort((a, b) => b - a);
  // acked is sorted descending: the majority(n)-th highest value has been reached by a majority.
  return acked[majority(n) - 1] as number;
}

/** The index committed under `config`, joint or not. */
export function jointCommittedIndex(config: Pick<ClusterConfig, 'voters' | 'outgoing'>, match: (id: NodeId) => number | undefined): number {
  return Math.min(committedIndex(config.voters, match), committedIndex(config.outgoing ?? [], match));
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The state of an election among `voters` given the votes received (`true` granted, `false` rejected). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return 'won';
  if (voters.length - rejected < need) return 'lost';
  return 'pending';
}

/** Joint election: won only when both halves are won, lost as soon as either is lost. */
export function jointVoteResult(config: Pick<ClusterConfig, 'voters' | 'outgoing'>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = voteResult(config.voters, votes);
  const b = voteResult(config.outgoing ?? [], votes);
  if (a === 'lost' || b === 'lost') return 'lost';
  if (a === 'won' && b === 'won') return 'won';
  return 'pending';
}

/** Whether `acks` contains a quorum of `config` (e.g. heartbeat acknowledgements for ReadIndex or CheckQuorum). */
export function hasQuorum(config: Pick<ClusterConfig, 'voters' | 'outgoing'>, acks: ReadonlySet<NodeId>): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of acks) votes.set(id, true);
  return jointVoteResult(config, votes) === 'won';
}
