import { majority, type NodeId } from '@consensus-kit/core';
import { becomeFollowing, becomeLeading } from './discovery';
import type { Notification } from './messages';
import { compareVotes, type Vote } from './vote';
import type { ZabNode } from './zab';

/**
 * Fast Leader Election (ZooKeeper's FastLeaderElection; Medeiros 2012, section 3.1): LOOKING servers exchange
 * notifications carrying a vote (peerEpoch, zxid, server id) ordered by the total-order predicate; a quorum agreeing
 * for a whole tick decides. A server that is not looking answers with its leader. Functions over the `ZabNode` state,
 * as raft's election.ts; the role changes they lead to (`becomeFollowing`, `becomeLeading`) are in discovery.ts.
 */

export function myVote(z: ZabNode): Vote {
  return { leader: z.id, epoch: z.currentEpoch, term: z.log.lastTerm, index: z.log.lastIndex };
}

/** Restarts the election countdown, counted in ticks, with a timeout drawn from the injected `random`. */
export function restartElectionCountdown(z: ZabNode): void {
  z.elapsed = 0;
  z.timeout = z.electionTicks + Math.floor(z.random() * z.electionTicks);
}

/** LOOKING: a new electoral round, voting for itself (lookForLeader: `logicalclock++`, `updateProposal(self)`). */
export function startLooking(z: ZabNode): void {
  z.resetRoleState();
  z.phase = 'looking';
  z.round++;
  z.recv.clear();
  z.finalize = false;
  z.vote = z.amVoter() ? myVote(z) : undefined;
  if (z.vote !== undefined) z.recv.set(z.id, z.vote);
  restartElectionCountdown(z);
  broadcastNotification(z);
  maybeDecide(z);
}

export function notification(z: ZabNode): Notification {
  const state = z.phase;
  if (state === 'looking') {
    const v = z.vote ?? myVote(z);
    return { type: 'Notification', round: z.round, state, leader: z.vote === undefined ? '' : v.leader, epoch: v.epoch, term: v.term, index: v.index };
  }
  const leader = state === 'leading' ? z.id : (z.leaderId as NodeId);
  const epoch = state === 'leading' ? z.epoch : z.leaderEpoch;
  return { type: 'Notification', round: z.round, state, leader, epoch, term: z.log.lastTerm, index: z.log.lastIndex };
}

export function broadcastNotification(z: ZabNode): void {
  for (const m of z.members()) z.send(m, notification(z));
}

export function tickLooking(z: ZabNode): void {
  // finalizeWait: the quorum held for a whole tick with no better vote arriving.
  if (z.finalize) {
    z.finalize = false;
    if (maybeDecide(z, true)) return;
  }
  if (z.elapsed % 2 === 0) broadcastNotification(z);
  if (z.elapsed >= z.timeout) startLooking(z);
}

export function handleNotification(z: ZabNode, from: NodeId, n: Notification): void {
  if (z.phase === 'following' && z.stage === 'discovery' && from === z.leaderId && n.state !== 'leading') {
    // The peer z one decided to follow does not lead (it settled on another leader, or still looks).
    return startLooking(z);
  }
  if (z.phase !== 'looking') {
    // "A server that is not looking answers with its leader" (FastLeaderElection.WorkerReceiver): a rejoining
    // server learns who leads and follows it, without starting an election that would disrupt the ensemble.
    if (n.state === 'looking' && canAnswerAsLeaderOrFollower(z)) z.send(from, notification(z));
    return;
  }
  if (n.state !== 'looking') {
    // lookForLeader, FOLLOWING/LEADING notifications: follow a leader that says it leads, unless z peer
    // already acknowledged a newer epoch (that leader is stale).
    if (n.state === 'leading' && n.leader === from && n.epoch >= z.acceptedEpoch) becomeFollowing(z, from);
    return;
  }
  const voters = z.voters();
  if (n.round < z.round) {
    // The sender is behind: send back our notification so it catches up.
    z.send(from, notification(z));
    return;
  }
  const candidate: Vote | undefined = n.leader !== '' && voters.includes(n.leader) ? { leader: n.leader, epoch: n.epoch, term: n.term, index: n.index } : undefined;
  if (n.round > z.round) {
    z.round = n.round;
    z.recv.clear();
    const own = z.amVoter() ? myVote(z) : undefined;
    z.vote = candidate !== undefined && (own === undefined || compareVotes(candidate, own) > 0) ? candidate : own;
    if (z.vote !== undefined) z.recv.set(z.id, z.vote);
    broadcastNotification(z);
  } else if (candidate !== undefined && (z.vote === undefined || compareVotes(candidate, z.vote) > 0)) {
    // totalOrderPredicate: (epoch, zxid, server id), higher wins.
    z.vote = candidate;
    if (z.amVoter()) z.recv.set(z.id, candidate);
    broadcastNotification(z);
  }
  if (voters.includes(from) && candidate !== undefined) z.recv.set(from, candidate);
  maybeDecide(z);
}

/**
 * termPredicate: a quorum of voters in z round votes as z peer does. As lookForLeader's finalizeWait, the
 * decision waits (here until the next tick) for a better vote that may still be on its way; `now` decides.
 */
export function maybeDecide(z: ZabNode, now = false): boolean {
  const v = z.vote;
  if (v === undefined || z.phase !== 'looking') return false;
  let agree = 0;
  for (const id of z.voters()) {
    const w = z.recv.get(id);
    if (w !== undefined && compareVotes(w, v) === 0) agree++;
  }
  if (agree < majority(z.voters().length)) return false;
  if (!now) {
    z.finalize = true;
    return false;
  }
  if (v.leader === z.id) becomeLeading(z);
  else becomeFollowing(z, v.leader);
  return true;
}

export function canAnswerAsLeaderOrFollower(z: ZabNode): boolean {
  return z.isLeader() || (z.phase === 'following' && z.stage === 'uptodate');
}
