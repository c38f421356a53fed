import { assertNodeId, ConfigError, NotLeaderError, type NodeId } from '@consensus-kit/core';
import { broadcastPing } from './broadcast';
import { becomeFollowing } from './discovery';
import { notification } from './election';
import type { ZabNode } from './zab';

/**
 * Leadership transfer. ZooKeeper has none; the rule followed is Raft thesis 3.10's, adapted (see
 * `transferCatchingUp`): the target joins and answers, the leader brings it up to date, then hands over.
 */

/** How many election timeouts a leadership transfer waits for its target to join and synchronise (see tickTransfer). */
export const TRANSFER_JOIN_ELECTIONS = 10;

/** A transfer request: see `transferCatchingUp` for the rule followed. */
export function startTransfer(z: ZabNode, to: NodeId): void {
  assertNodeId(to, 'transfer target');
  if (!z.isLeader()) throw new NotLeaderError(z.leaderHint());
  if (to === z.id) return;
  if (!z.log.config.voters.includes(to)) throw new ConfigError(`${to} is not a voter: leadership goes to voters only`);
  z.transferTo = to;
  z.transferElapsed = z.transferCatchUp = 0;
  // The leader does not know a server died: it hands over only once the target answered a PING sent now (a
  // handoff to a dead server would leave the ensemble leaderless until an election, which the target cannot win).
  z.transferSeq = ++z.seq;
  broadcastPing(z);
  // A target with no session yet (still starting, or looking) is invited at once.
  if (z.peers.get(to)?.stage !== 'synced') z.send(to, notification(z));
}

/**
 * ZooKeeper has no leadership transfer; we follow Raft thesis 3.10, adapted to ZAB's sessions. Raft's leader
 * brings the target up to date (pausing client requests) and aborts after an election timeout. Here the target
 * may have no synchronised session yet: right after a cluster starts, FLE elects a leader from the first servers
 * up while the target is still starting or looking (the CLI's `leader transfer` after `start` failed so), and a
 * target that crashed still looks synchronised to the leader. Until the target is synchronised and has answered
 * a PING sent after the request, the leader keeps serving and waits for it up to TRANSFER_JOIN_ELECTIONS election
 * timeouts; from then on proposals pause while it catches up, for at most one election timeout (3.10).
 */
export function transferCatchingUp(z: ZabNode): boolean {
  if (z.transferTo === undefined) return false;
  const p = z.peers.get(z.transferTo);
  return p !== undefined && p.stage === 'synced' && p.seq >= z.transferSeq;
}

export function tickTransfer(z: ZabNode): void {
  if (z.transferTo === undefined) return;
  z.transferElapsed++;
  const expired = transferCatchingUp(z) ? ++z.transferCatchUp > z.electionTicks : z.transferElapsed > TRANSFER_JOIN_ELECTIONS * z.electionTicks;
  if (expired || !z.voters().includes(z.transferTo)) z.transferTo = undefined;
}

/** Leadership transfer: once the target holds the whole log, everyone is told to follow it; it leads a new epoch. */
export function maybeHandoff(z: ZabNode): void {
  const to = z.transferTo;
  if (to === undefined || !z.isLeader()) return;
  const p = z.peers.get(to);
  if (!transferCatchingUp(z) || p === undefined || p.match < z.log.lastIndex) return;
  for (const [id, q] of z.peers) if (q.stage === 'synced') z.send(id, { type: 'Handoff', nonce: q.nonce, epoch: z.epoch, to });
  z.round++;
  becomeFollowing(z, to);
}
