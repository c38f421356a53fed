import type { LogEntry, NodeId } from '@consensus-kit/core';
import { decide } from './learner';
import type { Accept, Heartbeat, Nack, Prepare } from './messages';
import type { PaxosNode } from './paxos';
import { becomeFollower } from './phase1';

/**
 * The acceptor (Paxos Made Simple 2.2, phases 1b and 2b): promises, accepted values written in place, and the
 * leader's commit point learned from its Accept and Heartbeat messages. Every promise and acceptance is in the
 * Ready's hard state or entries, durable before the reply leaves. Functions over the `PaxosNode` state.
 */

export function handlePrepare(n: PaxosNode, from: NodeId, m: Prepare): void {
  if (m.ballot > n.maxSeen) n.maxSeen = m.ballot;
  // Paxos Made Live 5.1: an acceptor that may have lost accepted values makes no promise.
  if (n.amnesiaUntil > 0 || n.snap !== undefined) return;
  // Stickiness (PML 5.2 master leases; Raft thesis 4.2.3): while a live leader is heard, ignore other
  // proposers, unless a leadership transfer forces the election.
  if (!m.force && n.role === 'leader') return;
  if (!m.force && n.leaderId !== undefined && n.leaderId !== from && n.elapsed < n.electionTicks) return;
  if (!m.force && n.o.leaseReads && n.leaderId === undefined && n.now < n.electionTicks) return;
  if (m.ballot < n.promised) return n.send(from, nack(n, m.ballot));
  if (m.ballot > n.promised) {
    n.promised = m.ballot;
    n.hsDirty = true;
    if (n.role !== 'follower' || n.leaderId !== undefined) becomeFollower(n, undefined);
  }
  // Phase 1b for every slot above the proposer's commit point at once (Paxos Made Simple section 3).
  let first = Math.max(m.commit + 1, n.log.offset + 1);
  let held = n.log.slice(first, n.log.lastIndex);
  if (held.length === 0 && first <= n.log.memOffset) {
    // The storage compacted those decided slots before the log heard of it (paxos-log.ts `slice`): report from
    // the first slot in memory, as for compacted ones; the proposer catches up before counting this promise.
    first = n.log.memOffset + 1;
    held = n.log.slice(first, n.log.lastIndex);
  }
  const entries = held.filter((e) => e.term > 0);
  n.send(from, { type: 'Promise', ballot: m.ballot, commit: n.commit, first, entries });
}

export function handleAccept(n: PaxosNode, from: NodeId, m: Accept): void {
  if (m.ballot < n.promised) return n.send(from, nack(n, m.ballot));
  followLeader(n, from, m.ballot);
  // Phase 2b: accept every slot of the batch (overwriting a lower ballot's value in place, DESIGN r2; the
  // slots above stay). Decided slots are never rewritten. After a restart the commit point may be older than the
  // one this acceptor knew (see `decide` in learner.ts), so a slot it once knew decided can be accepted again:
  // only at a ballot >= its promise, which covers every ballot it holds, and every ballot from the one that
  // chose the slot on proposes the chosen value there (one value per slot and ballot; for higher ballots Paxos
  // Made Simple 2.2, P2c, and section 3: a new leader re-proposes what phase 1 reports): the value stays.
  //
  // Slots far above what this acceptor holds are not accepted (their gap would be filled with empty slots, one
  // object each: an Accept naming slot 2^40 would exhaust memory). A leader only proposes within WINDOW of its
  // commit point, so such slots reach only an acceptor that lags by more than `acceptAhead`: it acknowledges up
  // to the bound, and the leader's Learn stream (learner.ts) brings it up to where Accepts apply again.
  const first = (m.entries[0] as LogEntry).index;
  const last = Math.min((m.entries.at(-1) as LogEntry).index, Math.max(n.log.lastIndex, n.commit) + acceptAhead(n));
  for (const e of m.entries) {
    if (e.index > last) break; // parseMessage checked the entries are consecutive
    if (e.index <= n.commit || e.index <= n.log.offset || e.term !== m.ballot) continue;
    n.log.put(e); // entries are immutable: holding the parsed (or, in process, the sender's) object is safe
  }
  learnCommit(n, m.commit, m.ballot);
  n.send(from, { type: 'Accepted', ballot: m.ballot, from: first, to: Math.max(last, first - 1), commit: n.commit });
}

/** How far above its log (or commit point) an acceptor takes slots from one Accept: every slot a leader may have undecided, four times over. */
export function acceptAhead(n: PaxosNode): number {
  return 4 * (n.o.window + n.o.maxBatch);
}

export function handleHeartbeat(n: PaxosNode, from: NodeId, m: Heartbeat): void {
  if (m.ballot < n.promised) return n.send(from, nack(n, m.ballot));
  followLeader(n, from, m.ballot);
  learnCommit(n, m.commit, m.ballot);
  n.send(from, { type: 'HeartbeatReply', ballot: m.ballot, seq: m.seq, commit: n.commit });
}

/** A message of the leader in force: follow it, and promise its ballot if not yet (phase 2 implies it). */
export function followLeader(n: PaxosNode, from: NodeId, ballot: number): void {
  if (ballot > n.maxSeen) n.maxSeen = ballot;
  if (ballot > n.promised) {
    n.promised = ballot;
    n.hsDirty = true;
  }
  if (n.role !== 'follower') becomeFollower(n, from);
  n.leaderId = from;
  n.leaderBallot = ballot;
  n.elapsed = 0;
}

/** The leader says slots <= commit are decided: those whose value we hold at its ballot are (its value). */
export function learnCommit(n: PaxosNode, leaderCommit: number, ballot: number): void {
  let c = n.commit;
  while (c < leaderCommit && n.log.at(c + 1)?.term === ballot) c++;
  if (c > n.commit) decide(n, c);
}

/**
 * A refusal (PMMC's "preempted"), saying whether this acceptor follows a leader at the ballot it promised: the
 * proposer's `handleNack` steps down for an elected leader, and may outbid only a bare candidacy.
 */
function nack(n: PaxosNode, ballot: number): Nack {
  const led = n.leaderId !== undefined && n.leaderBallot === n.promised;
  return led ? { type: 'Nack', ballot, promised: n.promised, led: true } : { type: 'Nack', ballot, promised: n.promised };
}
