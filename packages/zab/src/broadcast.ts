import { assertBytes, CompactedError, jointCommittedIndex, NotLeaderError, ProposalDroppedError, type ClusterConfig, type LogEntry, type NodeId } from '@consensus-kit/core';
import { notification, startLooking } from './election';
import type { Proposal } from './messages';
import { transferCatchingUp } from './transfer';
import type { ZabNode, ReadRound } from './zab';

/**
 * Phase 3, broadcast (DSN 2011 IV-B; ZooKeeper's Leader.propose / processAck and Follower.processPacket):
 * PROPOSAL to followers, INFORM to observers, ACK, COMMIT on a quorum, pipelined; and the read barrier, released
 * once a quorum answered a PING of the current epoch.
 */

/** A read barrier (see `ZabNode.readIndex`). */
export function startRead(z: ZabNode, ctx: Uint8Array): void {
  assertBytes(ctx, 'read context');
  if (!z.isLeader()) throw new NotLeaderError(z.leaderHint());
  // A read barrier (ZooKeeper's `sync` alone is not linearizable): the commit point now, released once a quorum
  // answered a PING sent after the request in z epoch, so no newer leader can have committed past it.
  z.seq++;
  z.reads.push({ ctx, index: z.commit, seq: z.seq });
  broadcastPing(z);
  maybeReleaseReads(z);
}

/** Phase 3 on the follower: log the proposal, ACK once durable (the ACK leaves with the Ready that writes it). */
export function handleProposal(z: ZabNode, m: Proposal): void {
  const first = m.entries[0];
  if (first !== undefined) {
    if (first.index > z.log.lastIndex + 1) {
      z.send(z.leaderId as NodeId, { type: 'Ack', nonce: z.nonce, epoch: z.leaderEpoch, index: z.log.lastIndex, gap: true });
      return;
    }
    const fresh = m.entries.filter((e) => e.index > z.log.lastIndex);
    z.log.append(fresh);
  }
  if (m.type === 'Proposal') z.send(z.leaderId as NodeId, { type: 'Ack', nonce: z.nonce, epoch: z.leaderEpoch, index: z.log.lastIndex });
  learnCommit(z, m.commit);
}

export function learnCommit(z: ZabNode, c: number): void {
  const to = Math.min(c, z.log.lastIndex);
  if (to > z.commit) z.commit = to;
}

export function matchOf(z: ZabNode, id: NodeId): number {
  if (id === z.id) return z.selfSynced ? z.selfMatch : 0;
  const p = z.peers.get(id);
  return p !== undefined && p.stage === 'synced' ? p.match : 0;
}

/**
 * Phase 3 (DSN 2011 IV-B): COMMIT once a quorum acknowledged, in order. The quorum is one of the configuration in
 * force, the latest in the log (one voter changes at a time, so it meets every quorum of the one before: Raft
 * thesis 4.1). Asking the configuration before it to acknowledge too, until the change commits, would leave a
 * leader that inherited the change uncommitted (its remover stepped down first) waiting for a removed server.
 */
export function maybeCommit(z: ZabNode): void {
  if (!z.isLeader()) return;
  const configs = z.log.configs;
  const latest = configs[configs.length - 1] as { index: number; config: ClusterConfig };
  const q = jointCommittedIndex({ voters: latest.config.voters }, (id) => matchOf(z, id));
  if (q <= z.commit || q < z.epochBase) return;
  z.commit = Math.min(q, z.log.lastIndex);
  z.needBroadcast = true;
  // A leader that the committed configuration removed leaves (ZooKeeper: the leader of a reconfig that removes
  // it stops leading once it commits).
  if (latest.index <= z.commit && !latest.config.voters.includes(z.id)) startLooking(z);
}

export function proposeEntry(z: ZabNode, type: 'command' | 'config', data: Uint8Array): void {
  if (!z.isLeader()) throw new NotLeaderError(z.leaderHint());
  if (type === 'config' ? z.transferTo !== undefined : transferCatchingUp(z)) throw new ProposalDroppedError('transfer-in-progress');
  // ZOOKEEPER-1277: the counter (the low 32 bits of the zxid) must not roll over into the epoch: the leader
  // gives up leadership instead, and the next leader starts a new epoch with the counter back at 1.
  if (z.log.lastIndex - z.epochBase >= z.o.counterLimit) {
    startLooking(z);
    throw new NotLeaderError(undefined, `zxid counter of epoch ${z.epoch} reached ${z.o.counterLimit}: a new epoch is being elected`);
  }
  const index = z.log.lastIndex + 1;
  z.log.appendOne({ index, term: z.epoch, type, data });
  z.needBroadcast = true;
  if (type === 'config') {
    // Sessions of servers that are no longer members end: one that is added back later (perhaps with a wiped data
    // directory, whose first session nonce is the same again) starts a fresh session.
    const members = new Set(z.members());
    for (const id of [...z.peers.keys()]) if (!members.has(id)) z.peers.delete(id);
    // New members are invited at once (a joining server is LOOKING and does not know the leader yet).
    for (const m of members) if (!z.peers.has(m)) z.send(m, notification(z));
  }
}

/** PROPOSAL to followers from their next index, INFORM of committed entries to observers, COMMIT otherwise. */
export function broadcastEntries(z: ZabNode): void {
  if (!z.isLeader()) return;
  const voters = z.voters();
  for (const [id, p] of z.peers) {
    if (p.stage !== 'synced') continue;
    const observer = !voters.includes(id);
    const upTo = observer ? Math.min(z.commit, z.log.lastIndex) : z.log.lastIndex;
    let sent = false;
    let dropped = false;
    let bytes = 0;
    while (p.next <= upTo) {
      const hi = Math.min(upTo, p.next + z.o.maxBatch - 1);
      let entries: LogEntry[];
      try {
        entries = z.log.entriesWithin(p.next, hi, z.o.maxBatchBytes);
      } catch (e) {
        if (!CompactedError.is(e)) throw e;
        // What the follower misses left the leader's log: its session ends here, and RESYNC has it register again
        // at once, so the new session synchronises it with SNAP then DIFF (LearnerHandler.syncFollower) instead of
        // after its own election timeout. If RESYNC is lost, the follower stops hearing from the leader and looks.
        z.send(id, { type: 'Resync', nonce: p.nonce, epoch: z.epoch });
        z.peers.delete(id);
        dropped = true;
        break;
      }
      z.send(id, { type: observer ? 'Inform' : 'Proposal', nonce: p.nonce, epoch: z.epoch, entries, commit: z.commit });
      p.sentCommit = z.commit;
      p.next = (entries.at(-1) as LogEntry).index + 1;
      sent = true;
      for (const e of entries) bytes += e.data.length;
      // At most 8 batches ahead of the follower, and 8 x maxBatchBytes per call: the rest goes as it acknowledges.
      if (p.next - p.match > 8 * z.o.maxBatch || bytes >= 8 * z.o.maxBatchBytes) break;
    }
    if (!dropped && !sent && p.sentCommit < z.commit && p.upToDateSent) {
      p.sentCommit = z.commit;
      z.send(id, { type: 'Commit', nonce: p.nonce, epoch: z.epoch, commit: z.commit });
    }
  }
}

export function broadcastPing(z: ZabNode): void {
  for (const [id, p] of z.peers) {
    if (p.stage === 'synced') z.send(id, { type: 'Ping', nonce: p.nonce, epoch: z.epoch, commit: z.commit, seq: z.seq });
  }
}

export function maybeReleaseReads(z: ZabNode): void {
  if (z.reads.length === 0) return;
  const voters = z.voters();
  while (z.reads.length > 0) {
    const r = z.reads[0] as ReadRound;
    const acks = [z.id, ...voters.filter((v) => v !== z.id && (z.peers.get(v)?.seq ?? 0) >= r.seq && z.peers.get(v)?.stage === 'synced')];
    if (!z.quorumOf(acks)) return;
    z.reads.shift();
    z.readsOut.push({ ctx: r.ctx, index: r.index });
  }
}
