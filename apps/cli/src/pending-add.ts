/**
 * Members whose add gave up with its outcome unknown, and what the configuration in force says of the nodes on
 * record: shared by `status`, the page's actions (ui-actions.ts) and its live source (ui-live.ts).
 */
import { hasQuorum, type NodeId } from '@consensus-kit/core';
import { ClusterDir, type ClusterFile, type ClusterNode } from './cluster-file';
import { CliError } from './errors';
import type { NodeReport } from './node-runner';

/** What these helpers read of a node's report (a `/status` report, or the `/ui` answer the page's source polls). */
export type ReportView = Pick<NodeReport, 'id' | 'status'>;

/**
 * An add whose outcome was not known when it gave up (the page's add-member timed out, or no leader answered after
 * the change was sent), as the cluster file marks the node: recorded (so `members remove` and `stop` reach it) and
 * stopped. Only the configuration in force can tell whether the change committed; `status` and the page ask it.
 */
export interface PendingAdd {
  /** When the add gave up (ISO 8601). */
  since: string;
  /** Why it gave up, as the add said. */
  reason: string;
}

/** The pending-add mark of a node of the cluster file, when it carries a well-formed one. */
export function pendingAddOf(n: ClusterNode): PendingAdd | undefined {
  const p = (n as ClusterNode & { addPending?: unknown }).addPending;
  if (typeof p !== 'object' || p === null) return undefined;
  const { since, reason } = p as Partial<PendingAdd>;
  return typeof since === 'string' && typeof reason === 'string' ? { since, reason } : undefined;
}

/** Marks (or, with `undefined`, unmarks) node `id` of the cluster file in `dir`; whether the file lists `id`. */
export function setPendingAdd(dir: string, id: NodeId, pending: PendingAdd | undefined): boolean {
  const cd = new ClusterDir(dir);
  const cluster = cd.read();
  if (!cluster.nodes.some((n) => n.id === id)) return false;
  const nodes = cluster.nodes.map((n) => {
    if (n.id !== id) return n;
    const { addPending: _, ...rest } = n as ClusterNode & { addPending?: unknown };
    return pending === undefined ? rest : { ...rest, addPending: pending };
  });
  cd.write({ ...cluster, nodes });
  return true;
}

/** What the configuration in force says of a node: a voter, a learner, not a member, or unknown (no leader answered). */
export type Membership = 'voter' | 'learner' | 'none' | 'unknown';

/**
 * The configuration in force: that of a node leading whose term and leadership a quorum of its own configuration's
 * voters report (a pending node on record must not be needed for that majority); the newest term among such.
 */
export function configInForce(reports: readonly (ReportView | undefined)[]): { leader: NodeId; term: number; config: NodeReport['status']['config'] } | undefined {
  let best: { leader: NodeId; term: number; config: NodeReport['status']['config'] } | undefined;
  for (const l of reports) {
    if (l === undefined || l.status.role !== 'leader' || (best !== undefined && best.term >= l.status.term)) continue;
    const agree = new Set(reports.filter((r): r is ReportView => r !== undefined && r.status.leader === l.id && r.status.term === l.status.term).map((r) => r.id));
    if (hasQuorum(l.status.config, agree)) best = { leader: l.id, term: l.status.term, config: l.status.config };
  }
  return best;
}

/**
 * One line per node whose membership the operator must be told of: a node carrying a pending-add mark (its add
 * gave up before its outcome was known), with what the configuration in force says of it now; and a node on
 * record that the configuration in force does not list. etcd's `member list` shows a member added but not
 * started as "unstarted"; here the file and the configuration are compared the same way.
 */
export function membershipNotes(cluster: ClusterFile, reports: readonly (ReportView | undefined)[]): { node: NodeId; membership: Membership; pending?: PendingAdd; text: string }[] {
  const inForce = configInForce(reports);
  const notes: { node: NodeId; membership: Membership; pending?: PendingAdd; text: string }[] = [];
  for (const n of cluster.nodes) {
    const pending = pendingAddOf(n);
    const c = inForce?.config;
    const membership: Membership =
      c === undefined ? 'unknown' : c.voters.includes(n.id) || (c.outgoing ?? []).includes(n.id) ? 'voter' : c.learners.includes(n.id) ? 'learner' : 'none';
    if (pending === undefined && membership !== 'none') continue;
    const where = inForce === undefined ? '' : ` (leader ${inForce.leader}, term ${inForce.term})`;
    const now =
      membership === 'unknown'
        ? 'no leader answers to tell whether it is a member'
        : membership === 'none'
          ? `the configuration in force${where} does not list it: not a member (a change already sent may still add it)`
          : `the configuration in force${where} lists it as a ${membership}: the add took effect`;
    const text = pending === undefined ? `${n.id}: on record here, but ${now}` : `${n.id}: its add gave up at ${pending.since.slice(11, 19)} (${pending.reason}) with the outcome unknown; ${now}`;
    notes.push({ node: n.id, membership, ...(pending !== undefined ? { pending } : {}), text });
  }
  return notes;
}

/**
 * Takes a node marked pending off the record when the configuration in force does not list it: stops its process,
 * drops it from the cluster file and from the other nodes' configs. Undefined when it is a member after all (then
 * it is removed through the log, as any member). Safe though the add's change might still commit later: a pending
 * add is always the learner step (members add makes a node a voter only after it joined as a learner, Raft thesis
 * 4.2.1), and a learner counts in no quorum. Throws a `CliError` when no leader answers to tell.
 */
export async function forgetPendingAdd(dir: string, id: NodeId, stop: (cd: ClusterDir, id: NodeId) => Promise<unknown>, reports: (c: ClusterFile) => Promise<(ReportView | undefined)[]>): Promise<{ forgotten: NodeId; leader: NodeId; term: number } | undefined> {
  const cd = new ClusterDir(dir);
  const cluster = cd.read();
  const inForce = configInForce(await reports(cluster));
  if (inForce === undefined) throw new CliError(`no leader answers to tell whether ${id} became a member: remove it when the cluster has a leader`);
  const c = inForce.config;
  if (c.voters.includes(id) || c.learners.includes(id) || (c.outgoing ?? []).includes(id)) return undefined;
  await stop(cd, id);
  const now = cd.read();
  const rest = now.nodes.filter((n) => n.id !== id);
  cd.write({ ...now, nodes: rest });
  cd.setPeerAddress(rest.map((n) => n.id), id, undefined);
  return { forgotten: id, leader: inForce.leader, term: inForce.term };
}
