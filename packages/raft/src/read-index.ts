import { hasQuorum, type NodeId } from '@consensus-kit/core';
import type { Raft } from './raft';

/**
 * Linearizable reads on the leader (thesis 6.4 ReadIndex, 6.4.1 lease reads): the read index is the commit
 * index once an entry of the leader's term committed, released after a heartbeat round confirms leadership
 * (or at once within a valid lease). The per-round bookkeeping is `ReadOnly`'s.
 */

/** Thesis 6.4 ReadIndex on the leader, for itself or for a follower that forwarded the read. */
export function handleReadIndex(r: Raft, from: NodeId, ctx: Uint8Array): void {
  const committed = r.log.committed;
  // Step 1: the leader must have committed an entry of its term to know the commit index is current.
  if (r.log.term(committed) !== r.term) {
    r.pendingReads.push({ from, ctx });
    return;
  }
  if (hasQuorum(r.config, new Set([r.id]))) {
    respondRead(r, from, ctx, committed);
    return;
  }
  // Thesis 6.4.1: within the lease no other leader can exist; no round trip needed.
  if (r.readOnlyOption === 'lease' && leaseValid(r)) {
    respondRead(r, from, ctx, committed);
    return;
  }
  // Steps 2-3: remember the read index, confirm leadership with a heartbeat round (sent at the flush).
  r.readOnly.add(from, ctx, committed);
}

export function leaseValid(r: Raft): boolean {
  return r.checkQuorum && !r.leaseRevoked && r.leadTransferee === undefined && r.ticks < r.leaseExpiry;
}

export function maybeReleaseReads(r: Raft): void {
  const q = r.readOnly.quorumSeq(r.config, r.id);
  if (q === 0) return;
  if (r.readOnlyOption === 'lease') {
    // Every follower that acknowledged round q heard from us at or after its send tick and ignores vote
    // requests for an election timeout of its own clock after that (thesis 4.2.3). Measured on our clock, that
    // timeout may be as short as electionTicks * (1 - d) / (1 + d) when our clock runs slow and theirs fast by
    // the drift bound d; one tick less again for the tick in progress.
    const sent = r.readOnly.sentTick(q);
    if (sent !== undefined && r.leaseTicks > 0) r.leaseExpiry = Math.max(r.leaseExpiry, sent + r.leaseTicks);
  }
  r.readOnly.prune(q);
  if (r.readOnly.pending === 0) return;
  for (const rd of r.readOnly.release(q)) respondRead(r, rd.from, rd.ctx, rd.index);
}

export function respondRead(r: Raft, from: NodeId, ctx: Uint8Array, index: number): void {
  if (from === r.id) r.readStates.push({ ctx, index });
  else r.send(from, { type: 'ReadIndexResponse', term: r.term, ctx, index });
}
