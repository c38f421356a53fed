import { encodeClusterConfig, type EntryType, type LogEntry, type NodeId } from '@consensus-kit/core';
import { decide, sendLearn, snapshotCaughtUp } from './learner';
import { maybeTimeoutNow, transferLeadership } from './leader-transfer';
import type { Accepted, HeartbeatReply } from './messages';
import type { PaxosNode } from './paxos';
import { becomeFollower, covered, prepareMissing } from './phase1';
import { q2, soleVoter } from './quorums';
import { maybeConfirm, type Round } from './reads';
import type { ConfigRecord } from './membership';

/**
 * The leader's phase 2 (PMMC's commander, pipelined within WINDOW): slot assignment (re-proposals, no-op fill,
 * new proposals), batched Accepts with flow control per acceptor, the commit rule per configuration, heartbeats
 * and check-quorum. Functions over the `PaxosNode` state.
 */

const EMPTY = new Uint8Array(0);

/** The leader's view of one peer (PMMC's per-acceptor state for phase 2, with Raft-style flow control). */
export interface Peer {
  /** Accepted every slot in (phase-1 base, match] at the leader's ballot. */
  match: number;
  next: number;
  commit: number;
  /** Last slot of each Accept in flight. */
  inflight: number[];
  matchAtHeartbeat: number;
  commitAtHeartbeat: number;
  /** The newest heartbeat this peer answered: its reply reports the peer's commit point now, even a lower one. */
  replySeq: number;
}

export function tickLeader(n: PaxosNode): void {
  if (++n.hbElapsed >= n.heartbeatTicks) {
    n.hbElapsed = 0;
    n.needHeartbeat = true;
    // Ask again the voters of a configuration whose phase 1 is still missing (their Prepare may be lost).
    if (!covered(n, n.nextSlot)) {
      n.asked = new Set(n.promisers);
      prepareMissing(n, n.nextSlot);
    }
  }
  if (n.transferTo !== undefined && ++n.transferElapsed >= n.electionTicks) n.transferTo = undefined;
  if (n.transferTo === undefined) handOffIfRemoved(n);
  // Check quorum (as Raft thesis 6.2): a leader that heard from no phase-2 quorum for an election timeout
  // steps down, so a partitioned leader stops claiming leadership.
  if (++n.cqElapsed >= n.electionTicks) {
    n.cqElapsed = 0;
    const cfg = n.membership.configAt(n.commit + 1);
    const active = cfg.voters.filter((v) => v === n.id || n.recentActive.has(v)).length;
    n.recentActive.clear();
    if (active < q2(n, cfg)) becomeFollower(n, undefined);
  }
}

/**
 * A leader that a configuration in force for its next slot no longer names as a voter hands leadership to the
 * remaining voter that holds the most (as Raft thesis 4.2.2: a removed leader steps down once the change is
 * committed; here once its commit point passed PMMC section 4's activation slot). It could go on assigning slots, counted by
 * the others' votes alone, but it would lead a cluster it is not part of until it is stopped. A transfer that
 * times out is retried on the next tick, to a voter that answered since the last check-quorum round.
 */
function handOffIfRemoved(n: PaxosNode): void {
  // In force at the commit point (what `status().config` reports, so a host waiting for the change has seen it),
  // and still for the next slot (no later change names it again); the target is a voter of the latter.
  if (n.membership.configAt(n.commit + 1).voters.includes(n.id)) return;
  const voters = n.membership.configAt(n.nextSlot).voters;
  if (voters.length === 0 || voters.includes(n.id)) return;
  let best: NodeId | undefined;
  let held = -1;
  for (const v of voters) {
    // Only a voter heard from in this check-quorum period: a crashed or cut-off one would take every retry.
    const pr = n.recentActive.has(v) ? n.peers.get(v) : undefined;
    const h = pr === undefined ? -1 : Math.max(pr.match, pr.commit);
    if (pr !== undefined && h > held) {
      best = v;
      held = h;
    }
  }
  if (best !== undefined) transferLeadership(n, best);
}

/** Assigns slots: re-proposals first (P2c), then no-ops for gaps, then waiting proposals, within the window. */
export function fill(n: PaxosNode): void {
  if (n.role !== 'leader') return;
  // The commit point may have passed the phase-1 base meanwhile (values learned while campaigning): those
  // slots are decided and are never proposed again.
  if (n.nextSlot <= n.commit) n.nextSlot = n.commit + 1;
  const limit = n.commit + n.o.window;
  // Slots up to here are governed by a configuration whose phase-1 quorum promised. `fill` decides nothing, so
  // the membership stays as it is meanwhile: one check per configuration, not one per slot.
  let coveredTo = 0;
  while (n.nextSlot <= limit) {
    const s = n.nextSlot;
    if (s > coveredTo) {
      coveredTo = coveredThrough(n, s);
      if (coveredTo < s) {
        // A configuration whose voters have not all been asked yet: phase 1 with them, then go on.
        prepareMissing(n, s);
        break;
      }
    }
    let type: EntryType;
    let data: Uint8Array;
    const adopted = n.adopt.size === 0 ? undefined : n.adopt.get(s);
    if (adopted !== undefined) {
      type = adopted.type;
      data = adopted.data;
      n.adopt.delete(s);
    } else if (s === 1) {
      type = 'config';
      data = encodeClusterConfig(n.membership.configAt(1));
    } else if (s <= n.maxAdopt) {
      type = 'noop';
      data = EMPTY;
    } else {
      const waiting = n.waiting.peekType();
      if (waiting !== undefined) {
        type = waiting;
        data = n.waiting.take();
      } else if (s <= n.noopsUntil) {
        // A configuration is waiting for its activation slot and nothing else is proposed: no-ops bring it on.
        type = 'noop';
        data = EMPTY;
      } else break;
    }
    // PMMC section 4: a configuration in slot s governs slots from s + WINDOW; fill up to there when idle.
    if (type === 'config' && s > 1) n.noopsUntil = Math.max(n.noopsUntil, s + n.o.window - 1);
    n.log.put({ index: s, term: n.ballot, type, data });
    n.nextSlot++;
    n.needBroadcast = true;
  }
}

/**
 * What `fill` remembers of the phase-1 coverage between calls: the slots [from, to] are governed by one
 * configuration whose phase-1 quorum promised `ballot`. It holds while the ballot, the promisers and the known
 * configurations are the ones it was computed with (a promise adds to `promisers`; a decided, pruned or installed
 * configuration replaces or grows `membership.configs`). Without it, every proposal into an open window paid for
 * the configuration lookup and the quorum count (bench/throughput.bench.ts, bursts of 100).
 */
export interface CoverMemo {
  ballot: number;
  promisers: number;
  configs: readonly ConfigRecord[];
  count: number;
  from: number;
  to: number;
}

/** The last slot from `s` on that phase 1 covers without a break (governed by one promised configuration), or s - 1. */
function coveredThrough(n: PaxosNode, s: number): number {
  const m = n.coverMemo;
  const configs = n.membership.configs;
  if (m !== undefined && m.ballot === n.ballot && m.promisers === n.promisers.size && m.configs === configs && m.count === configs.length && s >= m.from && s <= m.to) return m.to;
  if (!covered(n, s)) return s - 1;
  const to = n.membership.nextChange(s) - 1;
  n.coverMemo = { ballot: n.ballot, promisers: n.promisers.size, configs, count: configs.length, from: s, to };
  return to;
}

/** Every member of every known configuration has a peer entry. */
export function syncPeers(n: PaxosNode): void {
  for (const id of n.membership.members()) {
    if (id === n.id || n.peers.has(id)) continue;
    n.peers.set(id, { match: n.base, next: Math.max(n.base, n.commit) + 1, commit: 0, inflight: [], matchAtHeartbeat: -1, commitAtHeartbeat: -1, replySeq: 0 });
  }
}

export function isVoterAnywhere(n: PaxosNode, id: NodeId): boolean {
  return n.membership.configs.some((c) => c.config.voters.includes(id));
}

/**
 * Phase 2a to one acceptor: batches of consecutive slots, each at most `maxBatch` slots and `maxAcceptBytes` of
 * values (a single larger value goes alone), at most `maxInflight` batches unanswered.
 */
export function sendAccepts(n: PaxosNode, id: NodeId, pr: Peer): void {
  if (!isVoterAnywhere(n, id)) return;
  if (pr.next <= n.log.offset) pr.next = n.log.offset + 1;
  while (pr.inflight.length < n.o.maxInflight && pr.next < n.nextSlot) {
    const hi = Math.min(pr.next + n.o.maxBatch - 1, n.nextSlot - 1);
    const entries = acceptBatch(n, pr.next, hi);
    if (entries.length === 0) return; // decided slots the storage just compacted: the Learn stream takes over
    // The batch may end below `hi` (its bytes, or slots the storage compacted meanwhile): the next one starts after
    // its last slot, and the acceptor's Accepted [from, to] names what it carried.
    const last = (entries.at(-1) as LogEntry).index;
    n.send(id, { type: 'Accept', ballot: n.ballot, commit: n.commit, entries });
    pr.inflight.push(last);
    pr.next = last + 1;
  }
}

/**
 * Slots [from, hi] for one Accept, at most `maxAcceptBytes` of values (always the first slot), read a few slots at
 * a time so a batch of large values is neither read nor encoded whole. Splitting a batch anywhere is safe: phase 2
 * runs for each slot independently (Paxos Made Simple, section 3: "an infinite number of separate instances of the
 * Paxos consensus algorithm"; PMMC section 3, one commander per slot), a batch is only a way to carry several slots'
 * 2a messages at once, and an acceptor accepts each slot of it on its own (acceptor.ts). Consecutive batches keep
 * the slots in order, so the acceptor's log and the leader's match/commit bookkeeping are unchanged.
 */
function acceptBatch(n: PaxosNode, from: number, hi: number): LogEntry[] {
  const out: LogEntry[] = [];
  let bytes = 0;
  for (let lo = from; lo <= hi; lo += 16) {
    const top = Math.min(hi, lo + 15);
    const part = n.log.slice(lo, top);
    for (const e of part) {
      if (out.length > 0 && bytes + e.data.length > n.o.maxAcceptBytes) return out;
      out.push(e);
      bytes += e.data.length;
    }
    if (part.length < top - lo + 1) return out; // compacted or not there: what was read, in order
  }
  return out;
}

export function handleAccepted(n: PaxosNode, from: NodeId, m: Accepted): void {
  const pr = n.role === 'leader' && m.ballot === n.ballot ? n.peers.get(from) : undefined;
  if (pr === undefined) return;
  n.recentActive.add(from);
  pr.commit = Math.max(pr.commit, m.commit);
  // Slots at or below the commit point need no more votes, so an ack that starts just above counts.
  if (m.from <= Math.max(pr.match, n.commit) + 1 && m.to > pr.match) pr.match = m.to;
  // `inflight` ascends (sendAccepts appends ever higher slots): the acknowledged batches are a prefix.
  let acked = 0;
  while (acked < pr.inflight.length && (pr.inflight[acked] as number) <= m.to) acked++;
  if (acked > 0) pr.inflight.splice(0, acked);
  maybeCommit(n);
  sendAccepts(n, from, pr);
  maybeTimeoutNow(n, from);
}

/** A slot is chosen once a phase-2 quorum of its configuration accepted it (Flexible Paxos section 3). */
export function maybeCommit(n: PaxosNode): void {
  if (n.role !== 'leader') return;
  let c = n.commit;
  while (c + 1 < n.nextSlot) {
    const s = c + 1;
    const cfg = n.membership.configAt(s);
    const segEnd = Math.min(n.membership.nextChange(s) - 1, n.nextSlot - 1);
    const matches = cfg.voters.map((v) => (v === n.id ? n.selfMatch : (n.peers.get(v)?.match ?? 0))).sort((a, b) => b - a);
    const q = q2(n, cfg);
    const reached = cfg.voters.length === 0 ? 0 : Math.min(matches[q - 1] ?? 0, segEnd);
    if (reached < s) break;
    c = reached;
    if (reached < segEnd) break;
  }
  if (c > n.commit) {
    decide(n, c);
    fill(n);
  }
}

export function handleHeartbeatReply(n: PaxosNode, from: NodeId, m: HeartbeatReply): void {
  const pr = n.role === 'leader' && m.ballot === n.ballot ? n.peers.get(from) : undefined;
  if (pr === undefined) return;
  n.recentActive.add(from);
  // A restarted acceptor may report an older commit point than before (it is not written on every decision, see
  // `decide` in learner.ts): the answer to a newer heartbeat is believed, so the Learn stream below restarts from
  // where it stands instead of above a gap it cannot fill. A reordered reply only costs a Learn it already has.
  if (m.seq > pr.replySeq) {
    pr.replySeq = m.seq;
    pr.commit = m.commit;
  } else pr.commit = Math.max(pr.commit, m.commit);
  snapshotCaughtUp(n, from, pr.commit);
  const round = n.rounds.get(m.seq);
  if (round !== undefined) {
    round.acks.add(from);
    maybeConfirm(n, m.seq, round);
  }
  // Retransmit when an acceptor made no progress since the previous heartbeat (a batch was lost).
  const eff = Math.max(pr.match, n.commit);
  if (eff < n.nextSlot - 1 && pr.match === pr.matchAtHeartbeat) {
    pr.next = eff + 1;
    pr.inflight = [];
  }
  pr.matchAtHeartbeat = pr.match;
  sendAccepts(n, from, pr);
  // Stream decided values to a peer whose commit point stalls (it missed them, or joined late).
  if (pr.commit < n.commit && (pr.commit === pr.commitAtHeartbeat || !isVoterAnywhere(n, from))) sendLearn(n, from, pr.commit + 1);
  pr.commitAtHeartbeat = pr.commit;
  maybeTimeoutNow(n, from);
}

export function broadcastHeartbeat(n: PaxosNode): void {
  const seq = ++n.seq;
  n.rounds.set(seq, { tick: n.now, acks: new Set([n.id]) });
  if (n.rounds.size > 4 * n.electionTicks) n.rounds.delete(n.rounds.keys().next().value as number);
  for (const id of n.peers.keys()) n.send(id, { type: 'Heartbeat', ballot: n.ballot, commit: n.commit, seq });
  if (soleVoter(n)) maybeConfirm(n, seq, n.rounds.get(seq) as Round);
}
