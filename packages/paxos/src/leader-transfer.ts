import { InvalidArgumentError, type NodeId } from '@consensus-kit/core';
import type { TimeoutNow } from './messages';
import type { PaxosNode } from './paxos';
import { campaign, canCampaign } from './phase1';

/**
 * Leadership transfer (as Raft thesis 3.10): the leader stops taking proposals, waits until the target holds
 * every slot, then sends it `TimeoutNow`; the target runs a forced phase 1. Functions over the `PaxosNode` state.
 */

export function transferLeadership(n: PaxosNode, to: NodeId): void {
  n.mustLead();
  if (to === n.id) return;
  const voters = n.membership.configAt(n.nextSlot).voters;
  if (!voters.includes(to)) throw new InvalidArgumentError(`cannot transfer leadership to ${to}: not a voter`);
  n.transferTo = to;
  n.transferElapsed = 0;
  n.leaseUntil = Math.min(n.leaseUntil, 0); // no lease while transferring (-1 stays: see maybeTimeoutNow)
  maybeTimeoutNow(n, to);
}

export function maybeTimeoutNow(n: PaxosNode, to: NodeId): void {
  if (n.transferTo !== to || n.role !== 'leader') return;
  const pr = n.peers.get(to);
  // The target holds every slot once it accepted them at this ballot (match) or learned them decided (its commit
  // point, from a Learn stream or a snapshot: Paxos Made Simple 2.4). Counting match alone, a target that caught
  // up by learning was never ready while the cluster sat idle, and the transfer always timed out.
  if (pr === undefined || Math.max(pr.match, pr.commit) < n.nextSlot - 1 || pr.commit < n.commit) return;
  // A TimeoutNow lets its target run a phase 1 that ignores the acceptors' stickiness, i.e. the lease, for as
  // long as the target still follows this ballot: delayed past the transfer's timeout it may still elect a new
  // leader. So this leader holds no lease again in this ballot (-1: none, never renewed; reads use the barrier).
  n.leaseUntil = -1;
  n.send(to, { type: 'TimeoutNow', ballot: n.ballot });
}

/** The leader in force asks us to take over: a forced phase 1, past the acceptors' stickiness. */
export function handleTimeoutNow(n: PaxosNode, from: NodeId, m: TimeoutNow): void {
  if (m.ballot === n.promised && n.leaderId === from && n.role === 'follower' && canCampaign(n)) campaign(n, true);
}
