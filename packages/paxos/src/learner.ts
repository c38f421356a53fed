import type { LogEntry, NodeId, Snapshot } from '@consensus-kit/core';
import { Membership } from './membership';
import type { CatchupRequest, Learn, Learned, SnapshotMessage } from './messages';
import type { PaxosNode } from './paxos';
import { maybeTimeoutNow } from './leader-transfer';
import { syncPeers, type Peer } from './phase2';

/**
 * The learner (Paxos Made Simple 2.4): decisions in slot order, and catch-up of a lagging or restarted replica
 * through a stream of decided values (`Learn`) or, once the leader's log was compacted, its snapshot. Functions
 * over the `PaxosNode` state.
 */

/**
 * A snapshot install in progress: 'mark' writes the marks (installing, amnesia) alone, 'marking' waits for them
 * to be durable, 'install' replaces the log (Paxos Made Live 5.1 if the save tears between the two).
 */
export interface PendingInstall {
  stage: 'mark' | 'marking' | 'install';
  snapshot: Snapshot;
  membership: Membership;
  amnesia: number;
  from: NodeId;
}

const sameValue = (a: LogEntry, b: LogEntry) => a.type === b.type && a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);

/** Decided values streamed by a peer (the learners of Paxos Made Simple 2.4, catching up). */
export function handleLearn(n: PaxosNode, from: NodeId, m: Learn): void {
  let c = n.commit;
  for (const e of m.entries) {
    if (e.index <= c || e.index <= n.log.offset) continue;
    if (e.index > c + 1 || e.term === 0) break;
    const held = n.log.at(e.index);
    // Keep the higher of the two ballots when the value is the same: a lower one would hide, from a later
    // phase 1, that this acceptor voted for the value at the higher ballot.
    const term = held !== undefined && sameValue(held, e) ? Math.max(held.term, e.term) : e.term;
    if (held === undefined || held.term !== term || !sameValue(held, e)) n.log.put({ index: e.index, term, type: e.type, data: e.data });
    if (term > n.promised) {
      n.promised = term;
      n.hsDirty = true;
    }
    c = e.index;
  }
  if (c > n.commit) decide(n, c);
  n.send(from, { type: 'Learned', commit: n.commit });
}

export function handleSnapshot(n: PaxosNode, from: NodeId, m: SnapshotMessage): void {
  if (m.index <= n.commit || n.snap !== undefined || n.role === 'leader') {
    if (n.snap === undefined) n.send(from, { type: 'Learned', commit: n.commit });
    return;
  }
  const membership = Membership.fromWire(m.membership);
  if (membership === undefined) return;
  // Accepted values above the snapshot survive the install (written right after it); should the save tear
  // between the two, Paxos Made Live 5.1 applies: no promises until those slots are decided.
  const votes = n.log.slice(m.index + 1, n.log.lastIndex).some((e) => e.term > 0);
  n.snap = {
    stage: 'mark',
    snapshot: { index: m.index, term: m.term, config: m.config, data: m.data },
    membership,
    amnesia: votes ? n.log.lastIndex : 0,
    from,
  };
}

/**
 * Slots up to `to` are decided: follow configurations in slot order (PMMC section 4).
 *
 * The commit point alone does not dirty the hard state: knowing a slot decided is re-learnable (Paxos Made Simple
 * 2.4: a learner may always find out again), and a replica that restarts with an older commit is no different from
 * one that never heard of the later decisions. Every slot above its stored commit is undecided to it, so it keeps
 * what it holds there as accepted values (durable in the log) and lets the leader's commit point (Accept,
 * Heartbeat) or a `Learn` stream decide them again; a proposer of a higher ballot re-proposes the chosen value of
 * every such slot (P2c, Paxos Made Simple 2.2 and section 3), so an acceptance there never changes a chosen
 * value, and this replica promised at least every ballot it holds (its promise is rebuilt from the log). The
 * stored commit is only ever at or below the true one. Writing it costs every replica a synchronous durable write
 * per commit (storage-fs: temp file, fsync, rename, fsync dir), so it rides along whenever the hard state is
 * written for another reason: a promise, a snapshot install, or the two cases below, which must be exact.
 * - A configuration decided (its slot, activation and ranks): the stored membership must hold every
 *   configuration decided at or below any slot a restart may take as decided, i.e. the stored commit, the host's
 *   applied index and a compaction point; those slots may no longer be in the log to decide again.
 * - The amnesia mark cleared (Paxos Made Live 5.1): left stored, a restarted replica would refuse every promise
 *   until it learns that slot again, and a cluster whose every replica did so would elect no leader to learn it from.
 */
export function decide(n: PaxosNode, to: number): void {
  // No configuration above `lastConfigSlot` (paxos-log.ts): most decisions have none to look for.
  const last = Math.min(to, n.log.lastConfigSlot);
  for (let s = n.commit + 1; s <= last; s++) {
    const e = n.log.at(s);
    if (e !== undefined && e.type === 'config') {
      n.membership.decideEntry(e, n.o.window);
      n.hsDirty = true;
    }
  }
  n.commit = to;
  if (n.amnesiaUntil > 0 && n.commit >= n.amnesiaUntil) {
    n.amnesiaUntil = 0;
    n.hsDirty = true;
  }
  if (n.role === 'leader') syncPeers(n);
}

/** Decided values from slot `from` on, or the snapshot when they were compacted. */
export function sendLearn(n: PaxosNode, to: NodeId, from: number, pr?: Peer): void {
  if (from <= n.log.compactedThrough()) {
    const snap = n.storage.snapshot();
    if (snap === undefined || snap.index < from - 1 || snap.index > n.commit) return;
    if (pr !== undefined) {
      if (n.now - pr.snapshotAt < n.electionTicks) return;
      pr.snapshotAt = n.now;
    }
    const membership = n.membership.asOf(snap.index).toWire();
    n.send(to, { type: 'Snapshot', index: snap.index, term: snap.term, config: snap.config, data: snap.data, membership });
    return;
  }
  const hi = Math.min(n.commit, from + n.o.maxBatch - 1);
  if (hi < from) return;
  const entries = n.log.slice(from, hi);
  if (entries.length > 0) n.send(to, { type: 'Learn', commit: n.commit, entries });
}

/** A peer reports its commit point after a Learn or a snapshot: stream on while it lags. */
export function handleLearned(n: PaxosNode, from: NodeId, m: Learned): void {
  const pr = n.role === 'leader' ? n.peers.get(from) : undefined;
  if (pr === undefined) return;
  const progress = m.commit > pr.commit;
  pr.commit = Math.max(pr.commit, m.commit);
  // Only while it makes progress: a peer that restarted with an older commit point (it is not written on every
  // decision, see `decide`) cannot use the slots above its gap, and would answer each such Learn alike, forever.
  // Its heartbeat replies report where it stands, and the stall check there streams from that point.
  if (progress && pr.commit < n.commit) sendLearn(n, from, pr.commit + 1);
  maybeTimeoutNow(n, from);
}

/** A proposer whose phase 1 met compacted slots asks for the decided values it lacks. */
export function handleCatchupRequest(n: PaxosNode, from: NodeId, m: CatchupRequest): void {
  if (m.from <= n.commit) sendLearn(n, from, m.from);
}
