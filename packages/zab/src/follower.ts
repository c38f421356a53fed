import type { NodeId } from '@consensus-kit/core';
import { handleProposal, learnCommit } from './broadcast';
import { ackEpoch, becomeFollowing, becomeLeading } from './discovery';
import { startLooking } from './election';
import type { ZabMessage } from './messages';
import { handleSnapChunk } from './snapshot-chunks';
import { handleSync } from './synchronisation';
import type { ZabNode } from './zab';

/**
 * A follower's (or observer's) side of its session with the leader (ZooKeeper's Learner / Follower): what it does
 * with each message of the session, and its liveness check and retransmissions on each tick.
 */

export function tickFollowing(z: ZabNode): void {
  const leader = z.leaderId as NodeId;
  if (z.elapsed > z.electionTicks) return startLooking(z);
  // The network may drop: the handshake is repeated until the leader answers (ZooKeeper relies on TCP).
  if (z.elapsed % 2 === 0 && z.elapsed > 0) {
    if (z.stage === 'discovery') z.send(leader, { type: 'FollowerInfo', nonce: z.nonce, acceptedEpoch: z.acceptedEpoch });
    else if (z.stage === 'acked') z.send(leader, ackEpoch(z));
    else if (z.stage === 'synced') z.send(leader, { type: 'AckNewLeader', nonce: z.nonce, epoch: z.leaderEpoch, index: z.log.lastIndex });
  }
}

export function stepFollower(z: ZabNode, m: ZabMessage): void {
  if (!('nonce' in m) || m.nonce !== z.nonce) return;
  const leader = z.leaderId as NodeId;
  // Any message of z session shows the leader alive (ZooKeeper: any packet read within syncLimit).
  z.elapsed = 0;
  switch (m.type) {
    case 'LeaderInfo': {
      if (z.stage !== 'discovery') return;
      z.elapsed = 0;
      // DSN 2011 IV-B phase 1: on NEWEPOCH(e'), if e' > f.p then f.p <- e' and ACK-E; ZooKeeper re-acks the epoch
      // it already accepted (Learner.registerWithLeader) — here only to the same leader, so an epoch has one leader.
      if (m.epoch > z.acceptedEpoch || (m.epoch === z.acceptedEpoch && z.acceptedBy === leader)) {
        if (m.epoch !== z.acceptedEpoch || z.acceptedBy !== leader) {
          z.acceptedEpoch = m.epoch;
          z.acceptedBy = leader;
          z.hsDirty = true;
        }
        z.leaderEpoch = m.epoch;
        z.stage = 'acked';
        // Sent once acceptedEpoch is durable: messages leave after the Ready's hard state.
        z.send(leader, ackEpoch(z));
      } else startLooking(z);
      return;
    }
    case 'Sync':
      if (z.stage !== 'acked' || m.epoch !== z.leaderEpoch || m.req !== z.syncReq) return;
      z.elapsed = 0;
      return handleSync(z, m.mode, m.truncateTo, m.snapshot, m.entries, m.base);
    case 'SnapChunk':
      if (z.stage !== 'acked' || m.epoch !== z.leaderEpoch || m.req !== z.syncReq) return;
      return handleSnapChunk(z, m);
    case 'UpToDate':
      if (m.epoch !== z.leaderEpoch) return;
      z.elapsed = 0;
      if (z.stage === 'synced') z.stage = 'uptodate';
      if (z.stage === 'uptodate') learnCommit(z, m.commit);
      return;
    case 'Proposal':
    case 'Inform':
      if (m.epoch !== z.leaderEpoch || (z.stage !== 'synced' && z.stage !== 'uptodate')) return;
      z.elapsed = 0;
      return handleProposal(z, m);
    case 'Commit':
      if (m.epoch !== z.leaderEpoch || (z.stage !== 'synced' && z.stage !== 'uptodate')) return;
      z.elapsed = 0;
      return learnCommit(z, m.commit);
    case 'Ping':
      if (m.epoch !== z.leaderEpoch || (z.stage !== 'synced' && z.stage !== 'uptodate')) return;
      z.elapsed = 0;
      learnCommit(z, m.commit);
      z.send(leader, { type: 'Pong', nonce: z.nonce, epoch: z.leaderEpoch, seq: m.seq, index: z.log.lastIndex });
      return;
    case 'Handoff':
      if (m.epoch !== z.leaderEpoch || z.stage !== 'uptodate') return;
      z.round++;
      if (m.to === z.id) becomeLeading(z);
      else becomeFollowing(z, m.to);
      return;
    case 'Resync':
      // A new session with the same leader, at once instead of after an election timeout (see messages.ts).
      if (m.epoch !== z.leaderEpoch || (z.stage !== 'synced' && z.stage !== 'uptodate')) return;
      becomeFollowing(z, leader);
      return;
    default:
      return;
  }
}
