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
  lag: number | null;
  pid: number | null;
  address: string;
  http: string;
}

export function statusRows(c: ClusterFile, reports: (NodeReport | undefined)[], pids: (number | undefined)[]): StatusRow[] {
  const leaderCommit = Math.max(0, ...reports.map((r) => (r?.status.role === 'leader' ? r.status.commitIndex : 0)));
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
      lag: s === undefined ? null : Math.max(0, leaderCommit - s.appliedIndex),
      pid: r?.pid ?? pids[i] ?? null,
      address: `${n.host}:${n.port}`,
      http: `${n.host}:${n.httpPort}`,
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
