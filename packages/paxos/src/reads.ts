import { assertBytes, type NodeId } from '@consensus-kit/core';
import type { PaxosNode } from './paxos';
import { covered } from './phase1';
import { q1, soleVoter } from './quorums';

/**
 * Reads: `readIndex` as a quorum-confirmed heartbeat round (the default barrier), or locally while the leader's
 * lease holds (Paxos Made Live 5.2, `leaseReads`). Functions over the `PaxosNode` state.
 */

/** A heartbeat round: when it left and who answered (read barriers and leases count on it). */
export interface Round {
  tick: number;
  acks: Set<NodeId>;
}

export function readIndex(n: PaxosNode, ctx: Uint8Array): void {
  assertBytes(ctx, 'read context');
  n.mustLead();
  // Every value that may have been chosen before this read lies in a slot the leader has proposed or will
  // re-propose (phase 1 reported it): the read waits for all of them to be applied.
  const index = readFloor(n);
  if (phase1Complete(n) && (soleVoter(n) || (n.o.leaseReads && n.now < n.leaseUntil && n.transferTo === undefined))) {
    n.readsOut.push({ ctx, index });
    return;
  }
  n.reads.push({ ctx, index, seq: n.seq + 1 });
  n.needHeartbeat = true;
}

/** A heartbeat round answered by enough voters that no other proposer can have won phase 1 meanwhile. */
export function maybeConfirm(n: PaxosNode, seq: number, round: Round): void {
  if (!phase1Complete(n)) return;
  for (const cfg of n.membership.configsIn(n.commit + 1, n.commit + n.o.window)) {
    const need = cfg.voters.length - q1(n, cfg) + 1;
    if (cfg.voters.filter((v) => round.acks.has(v)).length < need) return;
  }
  // PML 5.2: followers that answered ignore other proposers for an election timeout of their own clock; the
  // lease is shorter by the drift margin, counted from when the round left.
  const d = n.o.leaseDriftBound;
  const lease = Math.floor((n.electionTicks * (1 - d)) / (1 + d)) - 1;
  if (n.o.leaseReads && lease > 0 && n.leaseUntil >= 0) n.leaseUntil = Math.max(n.leaseUntil, round.tick + lease);
  while (n.reads.length > 0 && (n.reads[0] as { seq: number }).seq <= seq) {
    const r = n.reads.shift() as { ctx: Uint8Array; index: number };
    n.readsOut.push({ ctx: r.ctx, index: Math.max(r.index, readFloor(n)) });
  }
  for (const s of n.rounds.keys()) if (s <= seq) n.rounds.delete(s);
}

/** Every slot the leader has proposed or learned of in phase 1 (or knows decided). */
function readFloor(n: PaxosNode): number {
  return Math.max(n.nextSlot - 1, n.maxAdopt, n.commit);
}

/**
 * Whether the leader knows every value that may have been chosen before now (so `readFloor` covers them): every
 * slot reported in phase 1 is decided, so every configuration that may govern a slot an earlier leader proposed
 * is known (PMMC section 4: a leader proposes slot s only once s - WINDOW is decided), and a phase-1 quorum of
 * each configuration governing slots up to commit + WINDOW promised. Before that, a value chosen by an earlier
 * leader under a configuration this leader has not decided yet may lie above everything it knows of: a read
 * must not be released, nor a lease serve one. Induction on slots: a value chosen in slot s > maxAdopt needs
 * s <= commit + WINDOW (then a covered configuration's quorum reported it) or a decided slot s - WINDOW >
 * maxAdopt (a smaller such slot).
 */
export function phase1Complete(n: PaxosNode): boolean {
  if (n.commit < n.maxAdopt || !covered(n, n.commit + 1)) return false;
  const hi = n.commit + n.o.window;
  for (const c of n.membership.configs) if (c.from > n.commit + 1 && c.from <= hi && !covered(n, c.from)) return false;
  return true;
}
