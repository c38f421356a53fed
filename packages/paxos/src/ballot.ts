/**
 * Ballots as one integer: round * RANK_SPACE + rank, where rank (1..RANK_SPACE - 1) is unique per node. Two
 * proposers never use the same ballot, and every node can order them (Paxos Made Simple, section 2.2: "different
 * proposals have different numbers"; PMMC section 3: ballot = (round, leader id), compared lexicographically).
 */
export const RANK_SPACE = 4096;

export function ballotOf(round: number, rank: number): number {
  return round * RANK_SPACE + rank;
}

export function roundOf(ballot: number): number {
  return Math.floor(ballot / RANK_SPACE);
}

export function rankOf(ballot: number): number {
  return ballot % RANK_SPACE;
}

/** The smallest ballot of `rank` strictly above `above`. */
export function nextBallot(above: number, rank: number): number {
  const r = roundOf(above);
  const b = ballotOf(r, rank);
  return b > above ? b : ballotOf(r + 1, rank);
}

/** `round.rank`, for traces and status details. */
export function describeBallot(ballot: number): string {
  return ballot === 0 ? '0' : `${roundOf(ballot)}.${rankOf(ballot)}`;
}
