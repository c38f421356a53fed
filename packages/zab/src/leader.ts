import { configMembers, type NodeId } from '@consensus-kit/core';
import { broadcastPing, maybeCommit, maybeReleaseReads } from './broadcast';
import { handleFollowerInfo, maybeEstablishEpoch } from './discovery';
import { notification, startLooking } from './election';
import type { ZabMessage } from './messages';
import { maybeEstablish, sendSync, sendUpToDate } from './synchronisation';
import { handleSnapAck, stopSnapshot, tickSnapshots } from './snapshot-chunks';
import { maybeHandoff, tickTransfer } from './transfer';
import type { ZabNode } from './zab';

/**
 * The leader's side of each session (ZooKeeper's LearnerHandler): what it does with each message from a follower,
 * and on each tick its heartbeats, invitations and the quorum check by which it abandons leadership (Leader.lead).
 */

export function stepLeader(z: ZabNode, from: NodeId, m: ZabMessage): void {
  if (!configMembers(z.log.config).includes(from)) return;
  if (m.type === 'FollowerInfo') return handleFollowerInfo(z, from, m.nonce, m.acceptedEpoch);
  const p = z.peers.get(from);
  if (p === undefined || !('nonce' in m) || m.nonce !== p.nonce) return;
  z.active.add(from);
  switch (m.type) {
    case 'AckEpoch':
      if (m.epoch !== z.epoch || z.epoch === 0) return;
      if (p.stage === 'info') {
        p.stage = 'acked';
        p.ack = m;
        if (z.leaderStage === 'discovery') maybeEstablishEpoch(z);
        else sendSync(z, from, p);
      } else if (p.stage === 'acked' && z.leaderStage === 'discovery') {
        // Still waiting for a quorum: answer the retransmission so the follower knows the leader is alive.
        z.send(from, { type: 'LeaderInfo', nonce: p.nonce, epoch: z.epoch });
      } else if (p.stage === 'sync' && z.leaderStage !== 'discovery') {
        // A retransmitted ACKEPOCH, or the follower asking for the rest of the history after a partial Sync. One
        // from before its latest (a delay or a duplicate) describes a log it no longer has: the answer would go
        // unheard, and a SNAP under way would resend its chunks under that old `req`.
        if (m.req < (p.ack?.req ?? 0)) return;
        p.ack = m;
        sendSync(z, from, p);
      }
      return;
    case 'AckNewLeader':
      if (m.epoch !== z.epoch) return;
      if (p.stage === 'sync') {
        p.stage = 'synced';
        stopSnapshot(p);
        p.match = Math.min(m.index, z.log.lastIndex);
        p.next = Math.max(p.next, p.match + 1);
        z.needBroadcast = true;
        if (z.leaderStage === 'established') sendUpToDate(z, from, p);
        else maybeEstablish(z);
        maybeCommit(z);
        if (z.transferTo === from) maybeHandoff(z);
      } else if (p.stage === 'synced' && z.leaderStage === 'established') sendUpToDate(z, from, p);
      return;
    case 'SnapAck':
      if (m.epoch !== z.epoch) return;
      return handleSnapAck(z, from, p, m);
    case 'Ack':
    case 'Pong': {
      if (m.epoch !== z.epoch || p.stage !== 'synced') return;
      const index = m.index;
      if (m.type === 'Ack' && m.gap === true) p.next = Math.min(p.next, index + 1);
      if (m.type === 'Pong') {
        if (index + 1 < p.next) p.next = index + 1;
        p.seq = Math.max(p.seq, m.seq);
      }
      if (index > p.match) p.match = Math.min(index, z.log.lastIndex);
      if (p.next <= z.log.lastIndex) z.needBroadcast = true;
      maybeCommit(z);
      maybeReleaseReads(z);
      if (z.transferTo === from) maybeHandoff(z);
      return;
    }
    default:
      return;
  }
}

export function tickLeading(z: ZabNode): void {
  tickSnapshots(z);
  if (z.leaderStage !== 'established') {
    // ZooKeeper's initLimit: a prospective leader that cannot establish its epoch goes back to LOOKING.
    if (z.elapsed > 2 * z.electionTicks) return startLooking(z);
    // Followers already synchronised hear from it while the rest of the quorum comes.
    if (z.elapsed % z.heartbeatTicks === 0) broadcastPing(z);
    return;
  }
  z.hbElapsed++;
  if (z.hbElapsed >= z.heartbeatTicks) {
    z.hbElapsed = 0;
    broadcastPing(z);
    z.needBroadcast = true;
  }
  if (z.elapsed % z.electionTicks === 0) {
    // Invite members with no session: joining or rejoining servers that are LOOKING.
    for (const m of z.members()) if (!z.peers.has(m) || z.peers.get(m)?.stage === 'info') z.send(m, notification(z));
  }
  tickTransfer(z);
  if (z.elapsed >= z.electionTicks) {
    // Leader.lead's syncLimit check: without a quorum of followers heard from in the last period, the leader
    // abandons leadership (it may be in a minority partition).
    const ok = z.quorumOf([z.id, ...z.active]);
    z.active.clear();
    z.elapsed = 0;
    if (!ok) startLooking(z);
  }
}
