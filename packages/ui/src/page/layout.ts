/** Geometry and colours of the picture: pure, no DOM (tested under node). */
import type { UiFrame, UiLink, UiLogEntry, UiMembers, UiMessage, UiNodeState } from '../model';

export interface Point {
  x: number;
  y: number;
}

export const VIEW_SIZE = 400;
export const NODE_RADIUS = 30;

/**
 * Places `ids` on a circle, the first at the top and the rest clockwise at equal angles, inside a square
 * of `size`, leaving room for the node circles and their labels.
 */
export function ringLayout(ids: readonly string[], size = VIEW_SIZE, nodeRadius = NODE_RADIUS): Map<string, Point> {
  const out = new Map<string, Point>();
  const centre = size / 2;
  if (ids.length === 1) {
    out.set(ids[0] as string, { x: centre, y: centre });
    return out;
  }
  const radius = centre - nodeRadius - 34;
  ids.forEach((id, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
    out.set(id, { x: round(centre + radius * Math.cos(angle)), y: round(centre + radius * Math.sin(angle)) });
  });
  return out;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Golden-angle hue steps: consecutive terms get far-apart hues, the same term always the same colour. */
export function termHue(term: number): number {
  if (!Number.isFinite(term) || term < 0) return 0;
  return Math.round((term * 137.508) % 360);
}

export function termColor(term: number): string {
  return `hsl(${termHue(term)} 65% 52%)`;
}

/** Every node id the frame names: node states first (their order), then members not reporting. */
export function nodeIds(frame: UiFrame): string[] {
  const ids: string[] = [];
  const seen = new Set<string>();
  const add = (id: string): void => {
    if (!seen.has(id)) {
      seen.add(id);
      ids.push(id);
    }
  };
  for (const node of frame.nodes) add(node.id);
  for (const id of [...frame.members.voters, ...frame.members.learners, ...frame.members.observers]) add(id);
  return ids;
}

export type Membership = 'voter' | 'learner' | 'observer' | 'none';

export function membershipOf(members: UiMembers, id: string): Membership {
  if (members.voters.includes(id)) return 'voter';
  if (members.learners.includes(id)) return 'learner';
  if (members.observers.includes(id)) return 'observer';
  return 'none';
}

/** The role the page shows: the node's role, `down` while it does not answer, `unknown` without one. */
export function shownRole(node: UiNodeState | undefined): string {
  if (!node || !node.up) return 'down';
  return node.role ?? 'unknown';
}

/** The leader: the up node calling itself leader with the highest term, or the one up nodes agree on. */
export function leaderOf(frame: UiFrame): string | undefined {
  let best: UiNodeState | undefined;
  for (const node of frame.nodes) {
    if (node.up && node.role === 'leader' && (best === undefined || (node.term ?? -1) > (best.term ?? -1))) best = node;
  }
  if (best) return best.id;
  const votes = new Map<string, number>();
  let up = 0;
  for (const node of frame.nodes) {
    if (!node.up) continue;
    up++;
    if (node.leader) votes.set(node.leader, (votes.get(node.leader) ?? 0) + 1);
  }
  for (const [id, count] of votes) if (count * 2 > up && frame.nodes.some((n) => n.id === id && n.up)) return id;
  return undefined;
}

export interface DrawnLink {
  from: string;
  to: string;
  rate: number;
  blocked: boolean;
}

/**
 * The directed links to draw: the frame's links, plus a blocked one for each peer a node reports itself
 * partitioned from when the frame has no link for it. Only links between known nodes.
 */
export function drawnLinks(frame: UiFrame, ids: ReadonlySet<string>): DrawnLink[] {
  const out = new Map<string, DrawnLink>();
  const key = (l: { from: string; to: string }): string => `${l.from}\u0000${l.to}`;
  for (const link of frame.links as UiLink[]) {
    if (!ids.has(link.from) || !ids.has(link.to) || link.from === link.to) continue;
    out.set(key(link), { from: link.from, to: link.to, rate: Number.isFinite(link.rate) ? link.rate : 0, blocked: link.blocked === true });
  }
  for (const node of frame.nodes) {
    for (const peer of node.partitioned ?? []) {
      if (!ids.has(peer) || peer === node.id) continue;
      for (const l of [
        { from: node.id, to: peer },
        { from: peer, to: node.id },
      ]) {
        const existing = out.get(key(l));
        if (existing) existing.blocked = true;
        else out.set(key(l), { ...l, rate: 0, blocked: true });
      }
    }
  }
  return [...out.values()];
}

/** A point `t` of the way from `a` to `b`, moved `offset` to the right of the direction of travel. */
export function along(a: Point, b: Point, t: number, offset = 0): Point {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  return { x: round(a.x + dx * t - (dy / len) * offset), y: round(a.y + dy * t + (dx / len) * offset) };
}

export function formatRate(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0) return '0/s';
  if (rate >= 1000) return `${(rate / 1000).toFixed(rate >= 10_000 ? 0 : 1)}k/s`;
  return rate >= 10 ? `${Math.round(rate)}/s` : `${Number(rate.toFixed(1))}/s`;
}

export interface LogWindow {
  /** The first index drawn (column 0). */
  start: number;
  /** Columns drawn. */
  width: number;
}

/** Columns aligned by log index over all nodes: the last `width` indexes up to the highest any node has. */
export function logWindow(nodes: readonly UiNodeState[], width: number): LogWindow {
  let top = 0;
  for (const node of nodes) {
    top = Math.max(top, node.lastIndex ?? 0, node.log.at(-1)?.index ?? 0, node.commitIndex ?? 0);
  }
  return { start: Math.max(1, top - width + 1), width };
}

export interface LogCell {
  index: number;
  column: number;
  term: number;
  committed: boolean;
  type?: UiLogEntry['type'];
}

export interface LogStrip {
  cells: LogCell[];
  /** Columns [0, compactedColumns) are indexes inside the snapshot (compacted away). */
  compactedColumns: number;
  /** Column right after the last committed entry shown, or undefined when the commit point is off the window. */
  commitColumn: number | undefined;
}

/** One node's strip over `window`: cells by index, the compacted prefix, the commit mark. */
export function logStrip(node: UiNodeState, window: LogWindow): LogStrip {
  const commit = node.commitIndex ?? 0;
  const cells: LogCell[] = [];
  for (const entry of node.log) {
    const column = entry.index - window.start;
    if (column < 0 || column >= window.width) continue;
    const cell: LogCell = { index: entry.index, column, term: entry.term, committed: entry.index <= commit };
    if (entry.type) cell.type = entry.type;
    cells.push(cell);
  }
  const firstKept = node.firstIndex ?? (node.snapshotIndex !== undefined ? node.snapshotIndex + 1 : 1);
  const compactedColumns = Math.min(window.width, Math.max(0, firstKept - window.start));
  const commitColumnRaw = commit - window.start + 1;
  const commitColumn = commit > 0 && commitColumnRaw >= 0 && commitColumnRaw <= window.width ? commitColumnRaw : undefined;
  return { cells, compactedColumns, commitColumn };
}

/** At most `max` messages, spread over the list (first, last and evenly between), in order. */
export function sampleMessages<T>(messages: readonly T[], max: number): T[] {
  if (messages.length <= max) return [...messages];
  if (max <= 0) return [];
  if (max === 1) return [messages[0] as T];
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(messages[Math.round((i * (messages.length - 1)) / (max - 1))] as T);
  return out;
}

/** Where a message stops, as a share of its link: a dropped one at the middle, where the cut mark is drawn. */
export const DROPPED_STOP = 0.5;

/**
 * How far along its link a message is drawn, `t` (0 to 1) of the way through its travel time: a delivered one
 * all the way, a dropped one (`dropped` set) moves as fast but stops at the cut and stays there.
 */
export function messageProgress(message: Pick<UiMessage, 'dropped'>, t: number): number {
  const clamped = Math.min(1, Math.max(0, t));
  return message.dropped === undefined ? clamped : Math.min(clamped, DROPPED_STOP);
}

/** The points of a five-pointed star of outer radius `r` centred on (`cx`, `cy`), for an SVG polygon. */
export function starPoints(cx: number, cy: number, r: number): string {
  const points: string[] = [];
  for (let i = 0; i < 10; i++) {
    const radius = i % 2 === 0 ? r : r * 0.45;
    const angle = -Math.PI / 2 + (i * Math.PI) / 5;
    points.push(`${round(cx + radius * Math.cos(angle))},${round(cy + radius * Math.sin(angle))}`);
  }
  return points.join(' ');
}

/** How long a message dot travels, given the milliseconds since the previous frame was shown. */
export function travelTime(sincePrevious: number): number {
  if (!Number.isFinite(sincePrevious) || sincePrevious <= 0) return 700;
  return Math.round(Math.min(900, Math.max(250, sincePrevious * 0.9)));
}

/** A frame's or event's time: a clock time (live, ms since the epoch) or a tick (replay, two decimals at most). */
export function formatTime(at: number, unit: 'ms' | 'tick'): string {
  if (unit === 'tick') return `tick ${Number.isInteger(at) ? at : at.toFixed(2)}`;
  return new Date(at).toLocaleTimeString();
}
