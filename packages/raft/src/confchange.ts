import { applyConfigChange, isJoint, type ClusterConfig, type ConfigChange } from '@consensus-kit/core';

/**
 * Raft's membership-change policy (thesis chapter 4), the counterpart of etcd's `confchange/`. Core computes
 * the target configuration of a change (`applyConfigChange`) and validates it; how the cluster gets there is
 * Raft's business:
 *
 * - a change that adds or removes at most one voter is applied in one step (thesis 4.1: any two majorities of
 *   configurations that differ by one server overlap);
 * - anything larger passes through the joint configuration C_old,new (thesis 4.3), in which every decision
 *   needs a majority of both halves, and which the leader leaves on its own once it is committed.
 */

/**
 * Whether moving from `from` to `to` must pass through a joint configuration (thesis 4.3): true unless the
 * voter sets differ by at most one node (the single-server change of thesis 4.1 is safe on its own).
 * Learner changes never need one: learners take no part in any quorum.
 */
export function needsJointConsensus(from: ClusterConfig, to: ClusterConfig): boolean {
  const a = new Set(from.voters);
  const b = new Set(to.voters);
  let diff = 0;
  for (const id of a) if (!b.has(id)) diff++;
  for (const id of b) if (!a.has(id)) diff++;
  return diff > 1;
}

/**
 * The configuration a Raft leader writes into its log for `change`: the target itself for a single-server
 * change, or the joint configuration C_old,new (`voters` = C_new, `outgoing` = C_old) otherwise. Throws
 * `ConfigError` (from core's validation) for a change that makes no sense, or while a joint configuration is
 * in force.
 */
export function nextConfigEntry(current: ClusterConfig, change: ConfigChange): ClusterConfig {
  const next = applyConfigChange(current, change);
  if (!needsJointConsensus(current, next)) return next;
  return { voters: next.voters, outgoing: [...current.voters].sort(), learners: next.learners };
}

/**
 * Thesis 4.3: once C_old,new is committed the leader appends C_new on its own. Returns the configuration to
 * append (the joint configuration without its outgoing half), or undefined when `config` is not joint.
 */
export function leaveJoint(config: ClusterConfig): ClusterConfig | undefined {
  if (!isJoint(config)) return undefined;
  return { voters: [...config.voters], learners: [...config.learners] };
}
