import { isVoter, type NodeId, type VoteResult } from '@consensus-kit/core';
import type { Raft } from './raft';
import { voterIds } from './tracker';

/**
 * Elections (thesis 3.4, 3.6, 4.2.2, 4.2.3, 9.6): who may campaign, PreVote and vote rounds, and the
 * RequestVote receiver with the election restriction. Functions over the `Raft` state, as etcd's `raft.go`
 * methods are; the role changes themselves (`become*`) stay in raft.ts.
 */

/**
 * Whether this node may start an election: no snapshot is being installed, and it is a voter in its latest
 * configuration, or in the one before while the latest (which removes or demotes it) is not committed yet.
 * Thesis 4.2.2 (Figure 4.6): such a server may still be needed to elect a leader that commits C_new; its
 * own vote counts only if it is in its latest configuration (the quorum helpers count voters only).
 */
export function promotable(r: Raft): boolean {
  if (r.log.unstable.snapshot !== undefined) return false;
  if (isVoter(r.config, r.id)) return true;
  const latest = r.configs.latest();
  if (latest.index <= r.log.committed) return false;
  const prev = r.configs.previous();
  return prev !== latest && isVoter(prev.config, r.id);
}

/**
 * Thesis 4.2.3: a server that heard from a current leader within the minimum election timeout does not
 * grant votes nor update its term for a vote request (with CheckQuorum, as in etcd).
 */
export function inLease(r: Raft): boolean {
  return r.checkQuorum && (r.lead !== undefined || r.bootLease) && r.electionElapsed < r.electionTicks;
}

export function hup(r: Raft, transfer: boolean): void {
  if (r.role === 'leader' || !promotable(r)) return;
  if (r.preVote && !transfer) startElection(r, 'pre', false);
  else startElection(r, 'elect', transfer);
}

export function startElection(r: Raft, kind: 'pre' | 'elect', transfer: boolean): void {
  let voteTerm: number;
  if (kind === 'pre') {
    r.becomePreCandidate();
    voteTerm = r.term + 1; // thesis 9.6: ask at the term we would use, without adopting it
  } else {
    r.becomeCandidate();
    voteTerm = r.term;
  }
  const result = poll(r, r.id, true);
  if (result === 'won') {
    // A single-voter cluster wins at once.
    if (kind === 'pre') startElection(r, 'elect', false);
    else r.becomeLeader();
    return;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  for (const id of voterIds(r.config)) {
    if (id === r.id) continue;
    if (kind === 'pre') r.send(id, { type: 'PreVote', term: voteTerm, lastIndex, lastTerm });
    else if (transfer) r.send(id, { type: 'RequestVote', term: voteTerm, lastIndex, lastTerm, transfer: true });
    else r.send(id, { type: 'RequestVote', term: voteTerm, lastIndex, lastTerm });
  }
}

export function poll(r: Raft, from: NodeId, granted: boolean): VoteResult {
  // Thesis 4.3: in a joint configuration an election needs a majority of both halves.
  return r.tracker.poll(r.config, from, granted);
}

/** Figure 3.1 RequestVote receiver, with the election restriction of thesis 3.6.1. */
export function handleVoteRequest(r: Raft, from: NodeId, type: 'PreVote' | 'RequestVote', term: number, lastIndex: number, lastTerm: number): void {
  const canVote =
    r.vote === from ||
    (r.vote === undefined && r.lead === undefined) ||
    (type === 'PreVote' && term > r.term);
  if (canVote && r.log.isUpToDate(lastIndex, lastTerm)) {
    if (type === 'PreVote') {
      r.send(from, { type: 'PreVoteResponse', term, reject: false });
    } else {
      // The vote is part of the hard state of this Ready; the host persists it before sending the reply.
      r.electionElapsed = 0;
      r.vote = from;
      r.send(from, { type: 'RequestVoteResponse', term, reject: false });
    }
  } else if (type === 'PreVote') {
    r.send(from, { type: 'PreVoteResponse', term: r.term, reject: true });
  } else {
    r.send(from, { type: 'RequestVoteResponse', term: r.term, reject: true });
  }
}
