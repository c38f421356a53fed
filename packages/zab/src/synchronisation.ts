import { CompactedError, type LogEntry, type NodeId, type Snapshot } from '@consensus-kit/core';
import { maybeCommit } from './broadcast';
import { ackEpoch } from './discovery';
import { startLooking } from './election';
import { sendSnapshot, stopSnapshot } from './snapshot-chunks';
import type { AckEpoch, Segment, ZabMessage } from './messages';
import type { ZabNode, Peer } from './zab';

/**
 * Phase 2, synchronisation (DSN 2011 IV-B; ZooKeeper's LearnerHandler.syncFollower and Learner.syncWithLeader):
 * DIFF, TRUNC or SNAP per follower, the follower's strict persist order (history, then currentEpoch, then the
 * NEWLEADER ack), and UPTODATE once a quorum acknowledged NEWLEADER.
 */

/**
 * Phase 2 on the follower (DSN 2011 IV-B; ZooKeeper Learner.syncWithLeader): take the leader's history (TRUNC,
 * SNAP, DIFF), and then, each step in its own Ready so that a crash never leaves a later one durable without
 * the earlier: (1) the history is durable, (2) currentEpoch <- e is durable, (3) ACK(NEWLEADER) leaves.
 * ZOOKEEPER-3911, 4643, 4646 and 4785 are each a violation of z order.
 */
export function handleSync(z: ZabNode, mode: 'diff' | 'trunc' | 'snap', truncateTo: number | undefined, snapshot: Snapshot | undefined, entries: LogEntry[], base: number): void {
  if (mode === 'snap') {
    if (snapshot === undefined) return;
    // A snapshot at or below the commit point holds nothing z follower lacks (a duplicated or stale SNAP, e.g.
    // answering an old ACKEPOCH): the entries after it are then a DIFF.
    if (snapshot.index > z.commit) z.log.installSnapshot(snapshot);
  } else if (mode === 'trunc') {
    if (truncateTo === undefined || truncateTo < z.commit || truncateTo < z.log.base) return startLooking(z);
    z.log.truncate(truncateTo);
  }
  const first = entries[0];
  if (first !== undefined) {
    if (first.index > z.log.lastIndex + 1) return startLooking(z);
    const fresh = entries.filter((e) => e.index > z.log.lastIndex);
    for (const e of entries) {
      if (e.index <= z.log.lastIndex && e.index > z.commit && z.log.term(e.index) !== e.term) return startLooking(z);
    }
    z.log.append(fresh);
  }
  if (z.log.lastIndex < base) {
    // Only part of the leader's initial history so far: currentEpoch = epoch would claim the whole of it (the
    // hazard of ZOOKEEPER-4646). Ask for the rest, once z part is durable (the ACKEPOCH leaves with it).
    z.syncReq++;
    z.send(z.leaderId as NodeId, ackEpoch(z));
    return;
  }
  z.stage = 'syncing';
  const nonce = z.nonce;
  const epoch = z.leaderEpoch;
  const same = () => z.phase === 'following' && z.nonce === nonce && z.stage === 'syncing';
  // (1) This Ready carries the history; once it is durable:
  z.afterNext.push(() => {
    if (!same()) return;
    // (2) currentEpoch, alone in the next Ready (DSN 2011: "f.a <- e" on NEWLEADER, after accepting the history).
    z.currentEpoch = epoch;
    z.hsDirty = true;
    z.afterNext.push(() => {
      if (!same()) return;
      // (3) the ACK of NEWLEADER, in the Ready after that.
      z.stage = 'synced';
      z.send(z.leaderId as NodeId, { type: 'AckNewLeader', nonce, epoch, index: z.log.lastIndex });
    });
  });
}

/**
 * Synchronisation, chosen as LearnerHandler.syncFollower does: DIFF when the follower's history is a prefix of
 * the leader's, TRUNC (then DIFF) when it holds entries the leader does not, SNAP (then DIFF) when what it misses
 * is no longer in the leader's log. The common prefix is found from the follower's term runs: with one leader per
 * epoch, two logs that hold the same (term, index) agree up to it.
 */
export function sendSync(z: ZabNode, id: NodeId, p: Peer): void {
  const a = p.ack as AckEpoch;
  let match = 0;
  const segs = a.segments as Segment[];
  for (let k = segs.length - 1; k >= 0; k--) {
    const [term, from, to] = segs[k] as Segment;
    const i = z.log.lastAtOrBelow(term, to);
    if (i !== undefined && i >= from && z.log.term(i) === term) {
      match = i;
      break;
    }
  }
  // Entries the follower knows committed are in the leader's history too (DSN 2011, Lemma: the leader's initial
  // history holds every committed transaction).
  match = Math.max(match, Math.min(a.commit, a.index));
  match = Math.min(match, z.log.lastIndex);
  const last = z.log.lastIndex;
  const hi = Math.min(last, match + z.o.maxBatch);
  let msg: ZabMessage | undefined;
  let entries: LogEntry[] = [];
  try {
    if (match < z.log.base) throw new CompactedError(match + 1, z.log.base + 1);
    entries = z.log.entriesWithin(match + 1, hi, z.o.maxBatchBytes);
    msg = a.index > match ? { type: 'Sync', nonce: p.nonce, req: a.req, epoch: z.epoch, base: z.epochBase, mode: 'trunc', truncateTo: match, entries } : { type: 'Sync', nonce: p.nonce, req: a.req, epoch: z.epoch, base: z.epochBase, mode: 'diff', entries };
  } catch (e) {
    if (!CompactedError.is(e)) throw e;
  }
  if (msg === undefined) {
    // SNAP, in chunks (snapshot-chunks.ts); the DIFF after it answers the follower's next ACKEPOCH, sent once it
    // installed the whole snapshot.
    const snap = z.log.snapshot();
    if (snap === undefined) return;
    p.stage = 'sync';
    p.next = snap.index + 1;
    sendSnapshot(z, id, p, a.req, snap);
    return;
  }
  stopSnapshot(p);
  p.stage = 'sync';
  p.next = match + entries.length + 1;
  z.send(id, msg);
}

/** End of phase 2: a quorum (the leader included) acknowledged NEWLEADER with the whole initial history. */
export function maybeEstablish(z: ZabNode): void {
  if (z.leaderStage !== 'sync' || !z.selfSynced) return;
  const ok = [z.id, ...[...z.peers].filter(([, p]) => p.stage === 'synced' && p.match >= z.epochBase).map(([id]) => id)];
  if (!z.quorumOf(ok)) return;
  z.leaderStage = 'established';
  z.elapsed = 0;
  z.active.clear();
  maybeCommit(z);
  for (const [id, p] of z.peers) if (p.stage === 'synced') sendUpToDate(z, id, p);
}

export function sendUpToDate(z: ZabNode, id: NodeId, p: Peer): void {
  p.upToDateSent = true;
  p.sentCommit = z.commit;
  z.send(id, { type: 'UpToDate', nonce: p.nonce, epoch: z.epoch, commit: z.commit });
}
