import Table from 'cli-table3';
import pc from 'picocolors';
import type { ClusterFile } from './cluster-file';
import type { NodeReport } from './node-runner';
import type { LockInfo } from '@consensus-kit/lock';

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
  /** `status` only: what the node's /health answered (null: it did not answer). */
  health?: NodeHealth | null;
}

/** A node's /health answer as `status` reports it. */
export interface NodeHealth {
  ok: boolean;
  /** Why not, when not ok: a code (no-leader, no-quorum, leader-silent, stopping, failed, ...) and a sentence. */
  reason?: string;
  message?: string;
}

/**
 * One row per node, each from that node's own status (DESIGN r2: status is protocol-neutral). The lag of a node
 * is read off two statuses, the leader's and its own, rather than from a leader's per-peer progress, which is
 * protocol detail.
 */
export function statusRows(
  c: ClusterFile,
  reports: (NodeReport | undefined)[],
  pids: (number | undefined)[],
  health?: (NodeHealth | undefined)[],
): StatusRow[] {
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
      ...(health !== undefined ? { health: health[i] ?? null } : {}),
    };
  });
}

/**
 * `consensus-cli status` exit codes (besides 1, the command failed, and 2, a usage error): distinct from those
 * two so that a script can tell a sick cluster from a typo.
 */
export const STATUS_EXIT = {
  /** Every node answers and is healthy, and a majority agrees on a leader that hears from a quorum. */
  healthy: 0,
  /** The cluster works (an agreed leader with a quorum), but a node is down, unreachable or unhealthy. */
  degraded: 3,
  /** No leader agreed on by a majority, or the leader has not heard from a quorum recently: writes stall. */
  noQuorum: 4,
} as const;

export interface ClusterVerdict {
  health: 'healthy' | 'degraded' | 'no-quorum';
  exitCode: number;
  /** One line saying why. */
  reason: string;
}

/** The cluster's health, from each node's row (with its /health) and the leader a majority agrees on. */
export function judgeCluster(rows: StatusRow[], leader: string | null): ClusterVerdict {
  const problems: string[] = [];
  for (const r of rows) {
    if (r.role === 'down' || r.role === 'unreachable') problems.push(`${r.node} ${r.role}`);
    else if (r.health === null) problems.push(`${r.node} did not answer /health`);
    else if (r.health !== undefined && !r.health.ok) problems.push(`${r.node} unhealthy (${r.health.message ?? r.health.reason ?? 'no reason given'})`);
  }
  const also = problems.length > 0 ? `: ${problems.join('; ')}` : '';
  if (leader === null) return { health: 'no-quorum', exitCode: STATUS_EXIT.noQuorum, reason: `no quorum: no leader agreed on by a majority${also}` };
  const lead = rows.find((r) => r.node === leader);
  if (lead?.health !== undefined && lead.health !== null && !lead.health.ok) {
    return { health: 'no-quorum', exitCode: STATUS_EXIT.noQuorum, reason: `no quorum: leader ${leader} ${lead.health.message ?? lead.health.reason ?? 'is unhealthy'}` };
  }
  if (problems.length > 0) return { health: 'degraded', exitCode: STATUS_EXIT.degraded, reason: `degraded${also}` };
  return { health: 'healthy', exitCode: STATUS_EXIT.healthy, reason: `healthy: all ${rows.length} nodes, leader ${leader}` };
}

/**
 * The status table. `compact` (the live view of `start`) leaves out the addresses (`status` shows them) and the
 * borders, columns two spaces apart, so that it fits 80 columns: 9 nodes, an 11-letter role, 8-digit indexes
 * and lag and a 7-digit pid take 71.
 */
export function renderStatusTable(rows: StatusRow[], out: Output, compact = false): string {
  const head = ['node', 'role', 'term', 'leader', 'commit', 'applied', 'lag', 'pid', ...(compact ? [] : ['address', 'http'])];
  const body = rows.map((r) => {
    const role = !out.color ? r.role : r.role === 'leader' ? pc.green(r.role) : r.role === 'down' || r.role === 'unreachable' ? pc.red(r.role) : r.role;
    const cells = [r.node, role, r.term ?? '-', r.leader ?? '-', r.commit ?? '-', r.applied ?? '-', r.lag ?? '-', r.pid ?? '-'].map(String);
    return compact ? cells : [...cells, r.address, r.http];
  });
  if (compact) return columns(head.map((h) => (out.color ? pc.cyan(h) : h)), body);
  const table = new Table({ head, style: { head: out.color ? ['cyan'] : [], border: out.color ? ['grey'] : [] } });
  for (const cells of body) table.push(cells);
  return table.toString();
}

/** Rows of cells in columns two spaces apart, each as wide as its widest cell (colour codes take no room). */
function columns(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(visibleLength(h), ...body.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visibleLength(c)))).join('  ');
  return [head, ...body].map(line).join('\n');
}

/** The width the live view keeps to: a standard terminal's. */
export const LIVE_VIEW_COLUMNS = 80;

/** A line cut to `width` columns (ANSI colour codes take none), with '…' where it was cut. */
export function fitLine(line: string, width = LIVE_VIEW_COLUMNS): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; ) {
    const esc = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
    if (esc !== null) {
      out += esc[0];
      i += esc[0].length;
      continue;
    }
    const ch = String.fromCodePoint(line.codePointAt(i) as number);
    if (visible === width - 1 && visibleLength(line.slice(i)) > 1) return `${out}…${line.includes('\x1b[') ? '\x1b[0m' : ''}`;
    out += ch;
    visible++;
    i += ch.length;
  }
  return out;
}

function visibleLength(text: string): number {
  return [...text.replace(/\x1b\[[0-9;]*m/g, '')].length;
}

/**
 * One screen of `start`'s live view: a title, the compact status table and the latest leader changes, every
 * line within 80 columns.
 */
export function renderLiveView(title: string, rows: StatusRow[], events: readonly string[], out: Output, locks?: readonly LockInfo[]): string {
  const lockLines = locks === undefined ? [] : ['', ...renderLockLines(locks)];
  const lines = [title, ...renderStatusTable(rows, out, true).split('\n'), ...lockLines, '', ...events.slice(-8)];
  return lines.map((l) => fitLine(l)).join('\n');
}

/** How many locks the live view lists, one line each; the rest are counted in one more line. */
export const LIVE_VIEW_LOCKS = 4;

/**
 * The live view's lock lines: a summary, then one compact line per lock (its holders with their fencing tokens
 * and the queue's length), those with the longest queues first, at most `max` of them and a line counting the
 * rest. Each line is cut to the view's width by `renderLiveView`.
 */
export function renderLockLines(locks: readonly LockInfo[], max = LIVE_VIEW_LOCKS): string[] {
  if (locks.length === 0) return ['locks: none held'];
  const waiting = locks.reduce((n, l) => n + l.waiters.length, 0);
  const head = `locks: ${locks.length} held or awaited, ${waiting} waiting`;
  const shown = [...locks].sort((a, b) => b.waiters.length - a.waiters.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).slice(0, max);
  const lines = shown.map((l) => {
    const kind = l.kind === 'semaphore' ? `sem ${l.holders.reduce((n, h) => n + h.count, 0)}/${l.permits}` : l.kind === 'rwlock' ? 'rw' : 'mutex';
    const holders =
      l.holders.length === 0
        ? l.delayUntil > 0
          ? 'free (lock-delay)'
          : 'free'
        : l.holders.length === 1
          ? `s${l.holders[0]?.session} token ${l.holders[0]?.token}`
          : `${l.holders.length} holders, tokens ${l.holders.map((h) => h.token).join(',')}`;
    const name = l.name.length > 24 ? `${l.name.slice(0, 23)}…` : l.name;
    return `  ${name.padEnd(24)}  ${kind.padEnd(10)}  ${holders}  ${l.waiters.length} waiting`;
  });
  if (locks.length > shown.length) lines.push(`  … and ${locks.length - shown.length} more (consensus-cli lock list)`);
  return [head, ...lines];
}

/** `status --verbose`: each node's protocol details as one line of compact JSON, verbatim. */
export function renderDetails(rows: StatusRow[]): string {
  return rows.map((r) => `${r.node}\t${r.details === null ? '-' : JSON.stringify(r.details)}`).join('\n');
}
