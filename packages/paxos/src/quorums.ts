import { majority, type ClusterConfig } from '@consensus-kit/core';
import type { PaxosNode } from './paxos';

/**
 * Quorum sizes per configuration: majorities, or Flexible Paxos' (Howard et al. 2016, section 3) phase-1 and
 * phase-2 sizes, which need only intersect each other (|Q1| + |Q2| > N).
 */

/** Phase-1 quorum size: always large enough to meet every phase-2 quorum (|Q1| + |Q2| > N). */
export function q1(node: PaxosNode, cfg: ClusterConfig): number {
  const n = cfg.voters.length;
  if (node.o.phase2Quorum === 0 && node.o.phase1Quorum === 0) return majority(n);
  return Math.max(n - q2(node, cfg) + 1, Math.min(node.o.phase1Quorum, n));
}

/** Phase-2 quorum size for `cfg`: a majority, or the Flexible Paxos size (capped by the voters). */
export function q2(node: PaxosNode, cfg: ClusterConfig): number {
  const n = cfg.voters.length;
  if (node.o.phase2Quorum === 0 && node.o.phase1Quorum === 0) return majority(n);
  if (node.o.phase2Quorum === 0) return Math.max(1, n - Math.min(node.o.phase1Quorum, n) + 1);
  return Math.min(node.o.phase2Quorum, n);
}

/** This node is the only voter of every configuration within the window: it needs nobody's answer. */
export function soleVoter(n: PaxosNode): boolean {
  return n.membership.configsIn(n.commit + 1, n.commit + n.o.window).every((c) => c.voters.length === 1 && c.voters[0] === n.id);
}
