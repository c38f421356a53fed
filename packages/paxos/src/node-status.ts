import type { Status } from '@consensus-kit/core';
import { describeBallot } from './ballot';
import type { PaxosNode } from './paxos';
import type { PaxosStatusDetails } from './status-details';

/** The neutral `Status` of a `PaxosNode`, with Multi-Paxos' own `details`. */

export function status(n: PaxosNode): Status & { details: PaxosStatusDetails } {
  const details: PaxosStatusDetails = { promised: n.promised, ballot: describeBallot(term(n)), window: n.o.window };
  const rank = n.membership.rank(n.id);
  if (rank !== undefined) details.rank = rank;
  if (n.amnesiaUntil > 0) details.amnesiaUntil = n.amnesiaUntil;
  if (n.snapRefused !== undefined) details.snapshotRefused = n.snapRefused;
  if (n.role === 'leader') {
    details.nextSlot = n.nextSlot;
    details.waiting = n.waiting.length;
    details.phase1Base = n.base;
    if (n.transferTo !== undefined) details.transferringTo = n.transferTo;
    if (n.o.leaseReads) details.leaseReads = true;
    details.peers = {};
    for (const [id, pr] of n.peers) details.peers[id] = { match: pr.match, next: pr.next, commit: pr.commit, inflight: pr.inflight.length };
  }
  const s: Status & { details: PaxosStatusDetails } = {
    id: n.id,
    role: neutralRole(n),
    term: term(n),
    commitIndex: n.commit,
    appliedIndex: n.emitted,
    lastIndex: n.log.lastIndex,
    config: n.membership.configAt(n.commit + 1),
    details,
  };
  if (n.leaderId !== undefined) s.leader = n.leaderId;
  return s;
}

/** Whether role, term or leader changed since the last `Ready.status` (pure: compares, builds nothing). */
export function statusChanged(n: PaxosNode): boolean {
  const last = n.lastStatus;
  return n.leaderId !== last.leader || term(n) !== last.term || neutralRole(n) !== last.role;
}

/** What `statusChanged` compares against from now on. */
export function markStatus(n: PaxosNode): void {
  n.lastStatus = { role: neutralRole(n), term: term(n), leader: n.leaderId };
}

export function term(n: PaxosNode): number {
  if (n.role === 'leader') return n.ballot;
  return n.leaderId !== undefined ? n.leaderBallot : n.promised;
}

export function neutralRole(n: PaxosNode): Status['role'] {
  if (n.role !== 'follower') return n.role;
  return n.membership.configAt(n.commit + 1).voters.includes(n.id) ? 'follower' : 'learner';
}
