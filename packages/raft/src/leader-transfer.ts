import { assertNodeId, InvalidArgumentError, isVoter, NotLeaderError, type NodeId } from '@consensus-kit/core';
import type { Progress } from './progress';
import type { Raft } from './raft';
import { sendAppend } from './replication';

/**
 * Leadership transfer (thesis 3.10): the leader stops taking proposals, brings the target's log up to date,
 * then sends it TimeoutNow so it campaigns at once (skipping PreVote, since the leader vouches for it). A
 * transfer not done within an election timeout is abandoned (see `tickHeartbeat`).
 */

/** Thesis 3.10 leadership transfer: catch `to` up, then tell it to time out at once. */
export function transferLeadership(r: Raft, to: NodeId): void {
  assertNodeId(to, 'transfer target');
  if (r.role !== 'leader') throw new NotLeaderError(r.lead);
  if (to === r.id) {
    r.abortLeaderTransfer();
    return;
  }
  if (!isVoter(r.config, to)) throw new InvalidArgumentError(`cannot transfer leadership to ${to}: not a voter`);
  if (r.leadTransferee === to) return;
  r.abortLeaderTransfer();
  r.leadTransferee = to;
  // The transfer must finish within an election timeout or it is abandoned (thesis 3.10).
  r.electionElapsed = 0;
  const pr = r.prs.get(to) as Progress;
  if (pr.match === r.log.lastIndex()) sendTimeoutNow(r, to);
  else sendAppend(r, to);
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.leaseRevoked = true;
  r.send(to, { type: 'TimeoutNow', term: r.term });
}
