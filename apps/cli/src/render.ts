import Table from 'cli-table3';
import pc from 'picocolors';
import type { ClusterFile } from './cluster-file';
import type { NodeReport } from './node-runner';

export interface Output {
  json: boolean;
  color: boolean;
}

export function outputFor(options: { json?: boolean }): Output {
  return { json: options.json === true, color: process.stdout.isTTY === true && !process.env.NO_COLOR };
}

export interface StatusRow {
  node: string;
  role: string;
  term: number | null;
  leader: string | null;
  commit: number | null;
  applied: number | null;
  /** Entries this node's log is behind the leader's (the leader's lastIndex minus its own). */
  lag: number | null;
  pid: number | null;
  address: string;
  http: string;
  /** The protocol's own detail (raft's progress, ...), verbatim: printed, never interpreted. */
  details: Record<string, unknown> | null;
}

/**
 * One row per node, each from that node's own status (DESIGN r2: status is protocol-neutral). The lag of a node
 * is read off two statuses, the leader's and its own, rather than from a leader's per-peer progress, which is
 * protocol detail.
 */
export function statusRows(c: ClusterFile, reports: (NodeReport | undefined)[], pids: (number | undefined)[]): StatusRow[] {
  // The leader of the newest term that answers (during a leader change two nodes can both say leader).
  let leader: NodeReport['status'] | undefined;
  for (const r of reports) if (r?.status.role === 'leader' && (leader === undefined || r.status.term > leader.term)) leader = r.status;
  return c.nodes.map((n, i) => {
    const r = reports[i];
    const s = r?.status;
    return {
      node: n.id,
      role: s?.role ?? (pids[i] === undefined ? 'down' : 'unreachable'),
      term: s?.term ?? null,
      leader: s?.leader ?? null,
      commit: s?.commitIndex ?? null,
      applied: s?.appliedIndex ?? null,
      lag: s === undefined || leader === undefined ? null : Math.max(0, leader.lastIndex - s.lastIndex),
      pid: r?.pid ?? pids[i] ?? null,
      address: `${n.host}:${n.port}`,
      http: `${n.host}:${n.httpPort}`,
      details: s?.details ?? null,
    };
  });
}

export function renderStatusTable(rows: StatusRow[], out: Output): string {
  const head = ['node', 'role', 'term', 'leader', 'commit', 'applied', 'lag', 'pid', 'address', 'http'];
  const table = new Table({ head, style: { head: out.color ? ['cyan'] : [], border: out.color ? ['grey'] : [] } });
  for (const r of rows) {
    const role = !out.color ? r.role : r.role === 'leader' ? pc.green(r.role) : r.role === 'down' || r.role === 'unreachable' ? pc.red(r.role) : r.role;
    table.push([r.node, role, r.term ?? '-', r.leader ?? '-', r.commit ?? '-', r.applied ?? '-', r.lag ?? '-', r.pid ?? '-', r.address, r.http]);
  }
  return table.toString();
}

/** `status --verbose`: each node's protocol details as one line of compact JSON, verbatim. */
export function renderDetails(rows: StatusRow[]): string {
  return rows.map((r) => `${r.node}\t${r.details === null ? '-' : JSON.stringify(r.details)}`).join('\n');
}
