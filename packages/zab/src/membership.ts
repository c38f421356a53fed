import { applyConfigChange, ConfigError, encodeClusterConfig, NotLeaderError, ProposalDroppedError, type ConfigChange } from '@consensus-kit/core';
import { proposeEntry } from './broadcast';
import type { ZabNode } from './zab';

/**
 * Membership changes: one voter at a time, in one proposal (see `proposeMembershipChange`); observers come and go
 * freely. The sessions of removed servers end where the configuration entry is proposed (broadcast.ts).
 */

/** A change of the voters or observers, one voter at a time (see below). */
export function proposeMembershipChange(z: ZabNode, change: ConfigChange): void {
  if (!z.isLeader()) throw new NotLeaderError(z.leaderHint());
  // Refused for the whole transfer: a change could remove its target.
  if (z.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
  const configs = z.log.configs;
  if ((configs[configs.length - 1] as { index: number }).index > z.commit) throw new ProposalDroppedError('config-change-in-progress');
  const current = z.log.config;
  const target = applyConfigChange(current, change);
  // One voter at a time (Raft thesis 4.1; ZooKeeper's incremental reconfig adds or removes servers in one
  // proposal acknowledged by quorums of both configurations, Shraer et al., USENIX ATC 2012): any majority of
  // the old voters meets any majority of the new, so the election and discovery quorums of either intersect.
  const added = target.voters.filter((v) => !current.voters.includes(v));
  const removed = current.voters.filter((v) => !target.voters.includes(v));
  if (added.length + removed.length > 1) throw new ConfigError('zab changes its voters one server at a time: add or remove one voter per change');
  proposeEntry(z, 'config', encodeClusterConfig(target));
}

