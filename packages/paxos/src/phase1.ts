import type { LogEntry, NodeId } from '@consensus-kit/core';
import { nextBallot } from './ballot';
import type { Nack, Prepare, Promise } from './messages';
import type { PaxosNode } from './paxos';
import { fill, syncPeers } from './phase2';
import { q1, q2 } from './quorums';
import { WaitingQueue } from './waiting-queue';

/**
 * The proposer's phase 1 (Paxos Made Simple section 3; PMMC's scout) and the role changes around it: a node
 * that suspects the leader asks every voter of every configuration above its commit point for a promise, merges
 * the values they report (P2c), and leads once a phase-1 quorum of each configuration promised. Functions over
 * the `PaxosNode` state.
 */

export function canCampaign(n: PaxosNode): boolean {
  return (
    n.amnesiaUntil === 0 &&
    n.snap === undefined &&
    !n.installing &&
    n.membership.rank(n.id) !== undefined &&
    n.membership.configAt(n.commit + 1).voters.includes(n.id)
  );
}

/** Phase 1a for every slot above the commit point (Paxos Made Simple section 3; PMMC's scout). */
export function campaign(n: PaxosNode, force: boolean): void {
  const rank = n.membership.rank(n.id);
  if (rank === undefined) return;
  const b = nextBallot(Math.max(n.promised, n.maxSeen), rank);
  becomeFollower(n, undefined);
  n.role = 'candidate';
  n.ballot = n.promised = n.maxSeen = b;
  n.hsDirty = true;
  n.base = n.commit;
  n.promisers = new Set([n.id]);
  n.asked = new Set([n.id]);
  n.adopt = new Map();
  n.maxAdopt = 0;
  mergeReport(n, n.log.slice(n.base + 1, n.log.lastIndex));
  const prepare: Prepare = { type: 'Prepare', ballot: b, commit: n.base };
  if (force) prepare.force = true;
  for (const cfg of n.membership.configsIn(n.base + 1, n.base + n.o.window)) {
    for (const v of cfg.voters) {
      if (n.asked.has(v)) continue;
      n.asked.add(v);
      n.send(v, prepare);
    }
  }
  if (covered(n, n.base + 1)) becomeLeader(n);
}

export function handlePromise(n: PaxosNode, from: NodeId, m: Promise): void {
  if (n.role === 'follower' || m.ballot !== n.ballot) return;
  const floor = n.role === 'leader' ? n.nextSlot - 1 : n.base;
  if (m.first > floor + 1) {
    // The acceptor compacted slots we have not decided: catch up first, try again later.
    n.send(from, { type: 'CatchupRequest', from: n.commit + 1 });
    return;
  }
  mergeReport(n, m.entries.filter((e) => e.index > floor));
  n.promisers.add(from);
  if (n.role === 'candidate') {
    if (covered(n, n.base + 1)) becomeLeader(n);
  } else {
    fill(n);
  }
}

/** Keep, per slot, the value accepted at the highest ballot (Paxos Made Simple 2.2, P2c). */
export function mergeReport(n: PaxosNode, entries: readonly LogEntry[]): void {
  for (const e of entries) {
    if (e.term === 0) continue;
    const cur = n.adopt.get(e.index);
    if (cur === undefined || e.term > cur.term) n.adopt.set(e.index, e);
    if (e.index > n.maxAdopt) n.maxAdopt = e.index;
  }
}

/** Whether a phase-1 quorum of the configuration governing `slot` promised our ballot (Flexible Paxos 3). */
export function covered(n: PaxosNode, slot: number): boolean {
  const cfg = n.membership.configAt(slot);
  if (cfg.voters.length === 0) return false;
  let promised = 0;
  for (const v of cfg.voters) if (n.promisers.has(v)) promised++;
  return promised >= q1(n, cfg);
}

export function prepareMissing(n: PaxosNode, slot: number): void {
  const prepare: Prepare = { type: 'Prepare', ballot: n.ballot, commit: n.nextSlot - 1 };
  for (const v of n.membership.configAt(slot).voters) {
    if (n.asked.has(v)) continue;
    n.asked.add(v);
    n.send(v, prepare);
  }
}

export function becomeLeader(n: PaxosNode): void {
  n.role = 'leader';
  n.leaderId = n.id;
  n.leaderBallot = n.ballot;
  n.nextSlot = n.base + 1;
  n.selfMatch = n.base;
  n.peers = new Map();
  syncPeers(n);
  n.hbElapsed = n.cqElapsed = 0;
  n.recentActive.clear();
  n.rounds.clear();
  n.needHeartbeat = true;
  // A configuration decided but not yet in force: fill up to its activation slot when idle (PMMC section 4).
  n.noopsUntil = 0;
  for (const c of n.membership.configs) n.noopsUntil = Math.max(n.noopsUntil, c.from - 1);
  fill(n);
}

export function becomeFollower(n: PaxosNode, leader: NodeId | undefined): void {
  n.role = 'follower';
  n.leaderId = leader;
  n.leaderBallot = leader === undefined ? 0 : n.promised;
  n.peers = new Map();
  n.waiting = new WaitingQueue();
  n.noopsUntil = 0;
  n.reads = [];
  n.rounds.clear();
  n.adopt = new Map();
  n.maxAdopt = 0;
  n.transferTo = undefined;
  n.needBroadcast = n.needHeartbeat = false;
  n.leaseUntil = 0;
  n.elapsed = 0;
  resetElectionTimer(n);
}

/** Election timeouts and preemption backoff, randomised in [E, 2E) ticks (PMMC section 3, liveness). */
export function resetElectionTimer(n: PaxosNode): void {
  n.timeout = n.electionTicks + Math.floor(n.random() * n.electionTicks);
}

/**
 * PMMC section 3 ("preempted"): a proposer whose ballot was overtaken gives up and backs off for a random time
 * before trying again, so dueling proposers converge.
 *
 * Except a leader that a phase-2 quorum still follows: it runs phase 1 again at once, above the ballot it met
 * (PMMC's leader, preempted, spawns a scout with a higher ballot; its followers promise it, since they follow it).
 * Such a Nack comes from an acceptor that promised a proposer no quorum follows: a replica restarted or cut off
 * that campaigned before the leader reached it, which the others ignore while they hear the leader (stickiness,
 * `handlePrepare`). Stepping down let that replica depose a live leader and lead in its place; and a leader that
 * kept its ballot would never be accepted by that replica again. A leader preempted by a proposer a quorum did
 * promise has stopped hearing from that quorum (its followers ignore others while they hear it), so it backs off;
 * so does a leader handing over leadership (its target campaigns with `force`, which passes stickiness).
 * A Nack from an acceptor that follows an elected leader at its promise (`led`) always deposes: the counting of
 * replies here is by heartbeat round, which does not advance while this process is paused, so a leader resuming
 * from a pause would otherwise still believe itself followed and outbid the leader elected meanwhile.
 */
export function handleNack(n: PaxosNode, m: Nack): void {
  if (m.promised > n.maxSeen) n.maxSeen = m.promised;
  if (n.role === 'follower' || m.ballot !== n.ballot || m.promised <= n.ballot) return;
  if (n.role === 'leader' && n.transferTo === undefined && m.led !== true && followedByQuorum(n)) return campaign(n, false);
  becomeFollower(n, undefined);
}

/** Whether a phase-2 quorum of the configuration in force answered one of the leader's last heartbeats (an election timeout's worth). */
function followedByQuorum(n: PaxosNode): boolean {
  const cfg = n.membership.configAt(n.commit + 1);
  const recent = Math.max(0, n.seq - Math.ceil(n.electionTicks / n.heartbeatTicks));
  let live = 0;
  for (const v of cfg.voters) if (v === n.id || (n.peers.get(v)?.replySeq ?? 0) > recent) live++;
  return live >= q2(n, cfg);
}
