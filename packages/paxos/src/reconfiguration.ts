import { ProposalDroppedError, applyConfigChange, encodeClusterConfig, type ConfigChange } from '@consensus-kit/core';
import type { PaxosNode } from './paxos';
import { fill } from './phase2';

/**
 * Reconfiguration as a log command (PMMC section 4): a configuration decided in slot s governs slots from
 * s + WINDOW on, so no slot is decided under two configurations. One change at a time. Functions over the
 * `PaxosNode` state; the configurations by slot and the ranks live in `Membership`.
 */

export function proposeConfigChange(n: PaxosNode, change: ConfigChange): void {
  n.mustLead();
  if (n.transferTo !== undefined) throw new ProposalDroppedError('transfer-in-progress');
  if (configPending(n)) throw new ProposalDroppedError('config-change-in-progress');
  const target = applyConfigChange(n.membership.latest(), change);
  // PMMC section 4: the configuration governs slots from its own slot + WINDOW. `fill` gives the slots in between
  // to waiting proposals first and, while none is waiting, to no-ops (`noopsUntil`), so the change takes effect
  // without waiting for traffic and proposals never queue behind the no-ops.
  n.waiting.push('config', encodeClusterConfig(target));
  fill(n);
}

export function configPending(n: PaxosNode): boolean {
  if (n.membership.configs.some((c) => c.from > n.commit + 1)) return true;
  if (n.waiting.has('config')) return true;
  for (let s = n.commit + 1; s < n.nextSlot; s++) if (n.log.at(s)?.type === 'config') return true;
  return false;
}
