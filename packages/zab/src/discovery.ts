import type { NodeId } from '@consensus-kit/core';
import { startLooking } from './election';
import type { AckEpoch } from './messages';
import { maybeEstablish, sendSync } from './synchronisation';
import type { ZabNode, Peer } from './zab';
import { compareSummaries } from './zxid';

/**
 * Phase 1, discovery (DSN 2011 IV-B; ZooKeeper's Learner.registerWithLeader and Leader.getEpochToPropose /
 * waitForEpochAck): FOLLOWERINFO with acceptedEpoch, LEADERINFO proposing one more than every acceptedEpoch of a
 * quorum, ACKEPOCH once the new acceptedEpoch is durable. The role changes into FOLLOWING and LEADING start it.
 */

export function becomeFollowing(z: ZabNode, leader: NodeId): void {
  z.resetRoleState();
  z.phase = 'following';
  z.leaderId = leader;
  z.stage = 'discovery';
  // A fresh session: durable before FOLLOWERINFO leaves (same Ready), so no restart reuses it.
  z.sessions++;
  z.hsDirty = true;
  z.nonce = z.sessions * 1024 + Math.floor(z.random() * 1024);
  z.syncReq = 0;
  z.elapsed = 0;
  // Phase 1: FOLLOWERINFO with the acceptedEpoch (DSN 2011 IV-B: CEPOCH(f.p)).
  z.send(leader, { type: 'FollowerInfo', nonce: z.nonce, acceptedEpoch: z.acceptedEpoch });
}

export function ackEpoch(z: ZabNode): AckEpoch {
  return {
    type: 'AckEpoch',
    nonce: z.nonce,
    req: z.syncReq,
    epoch: z.leaderEpoch,
    currentEpoch: z.currentEpoch,
    term: z.log.lastTerm,
    index: z.log.lastIndex,
    commit: z.commit,
    segments: z.log.segments(),
  };
}

export function becomeLeading(z: ZabNode): void {
  z.resetRoleState();
  z.phase = 'leading';
  z.leaderStage = 'discovery';
  // A SNAP half received from another leader is of no use to a leader.
  z.snapIn.reset();
  z.snapFrom = undefined;
  z.leaderId = z.id;
  z.epoch = 0;
  z.elapsed = 0;
  z.hbElapsed = 0;
  maybeProposeEpoch(z);
}

/**
 * Phase 1 (DSN 2011 IV-B; Leader.getEpochToPropose): once a quorum (z peer included) sent FOLLOWERINFO, the
 * new epoch is one more than every acceptedEpoch among them; the leader accepts it itself first.
 */
export function maybeProposeEpoch(z: ZabNode): void {
  if (z.leaderStage !== 'discovery' || z.epoch !== 0) return;
  const infos = [z.id, ...[...z.peers.keys()]];
  if (!z.quorumOf(infos)) return;
  let max = z.acceptedEpoch;
  for (const p of z.peers.values()) max = Math.max(max, p.acceptedEpoch);
  z.epoch = max + 1;
  z.acceptedEpoch = z.epoch;
  z.acceptedBy = z.id;
  z.hsDirty = true;
  for (const [id, p] of z.peers) z.send(id, { type: 'LeaderInfo', nonce: p.nonce, epoch: z.epoch });
  const epoch = z.epoch;
  z.afterNext.push(() => {
    if (z.phase !== 'leading' || z.epoch !== epoch) return;
    z.selfAcked = true;
    maybeEstablishEpoch(z);
  });
}

export function handleFollowerInfo(z: ZabNode, from: NodeId, nonce: number, acceptedEpoch: number): void {
  const old = z.peers.get(from);
  if (old !== undefined && old.nonce === nonce) {
    if (old.stage === 'info' && z.epoch !== 0) z.send(from, { type: 'LeaderInfo', nonce, epoch: z.epoch });
    return;
  }
  const p: Peer = { nonce, stage: 'info', acceptedEpoch, next: 0, match: 0, sentCommit: 0, seq: 0, upToDateSent: false, snapReq: 0, snapTotal: 0 };
  z.peers.set(from, p);
  z.active.add(from);
  if (z.epoch !== 0) z.send(from, { type: 'LeaderInfo', nonce, epoch: z.epoch });
  else maybeProposeEpoch(z);
}

/**
 * End of phase 1 (Leader.waitForEpochAck): a quorum, the leader included, acknowledged the epoch. If one of them
 * is ahead of the leader (higher currentEpoch, or same and higher last zxid) the leader gives up, as ZooKeeper
 * does ("Follower is ahead of the leader"): its history must be the most up to date of the quorum (DSN 2011
 * IV-B picks the follower with the highest (currentEpoch, zxid); Fast Leader Election makes that the leader).
 */
export function maybeEstablishEpoch(z: ZabNode): void {
  if (z.leaderStage !== 'discovery' || !z.selfAcked) return;
  const acked = [...z.peers].filter(([, p]) => p.stage === 'acked').map(([id]) => id);
  if (!z.quorumOf([z.id, ...acked])) return;
  const mine = { currentEpoch: z.currentEpoch, last: { term: z.log.lastTerm, index: z.log.lastIndex } };
  for (const id of acked) {
    const a = (z.peers.get(id) as Peer).ack as AckEpoch;
    if (compareSummaries({ currentEpoch: a.currentEpoch, last: { term: a.term, index: a.index } }, mine) > 0) return startLooking(z);
  }
  // Phase 2 begins: the leader's own history becomes the epoch's initial history; currentEpoch <- e durable
  // before any NEWLEADER leaves (the messages of z Ready go after its hard state).
  z.leaderStage = 'sync';
  z.epochBase = z.log.lastIndex;
  z.currentEpoch = z.epoch;
  z.hsDirty = true;
  for (const id of acked) sendSync(z, id, z.peers.get(id) as Peer);
  const epoch = z.epoch;
  z.afterNext.push(() => {
    if (z.phase !== 'leading' || z.epoch !== epoch) return;
    z.selfSynced = true;
    z.selfMatch = Math.min(z.log.stableIndex, z.log.lastIndex);
    maybeEstablish(z);
  });
}
