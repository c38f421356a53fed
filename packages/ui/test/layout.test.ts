import { describe, expect, it } from 'vitest';
import { NODE_RADIUS, VIEW_SIZE, along, drawnLinks, formatRate, formatTime, leaderOf, logStrip, logWindow, membershipOf, nodeIds, ringLayout, sampleMessages, shownRole, termColor, termHue, travelTime } from '../src/page/layout';
import type { UiNodeState } from '../src/index';
import { frame } from './helpers';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);

describe('ringLayout', () => {
  it.each([3, 5, 7])('places %i nodes on one circle, the first at the top, clockwise, apart and inside the view', (n) => {
    const points = ringLayout(ids(n));
    expect(points.size).toBe(n);
    const list = ids(n).map((id) => points.get(id)!);
    const c = VIEW_SIZE / 2;
    const radii = list.map((p) => Math.hypot(p.x - c, p.y - c));
    for (const r of radii) expect(r).toBeCloseTo(radii[0]!, 1);
    expect(list[0]!.x).toBeCloseTo(c, 5);
    expect(list[0]!.y).toBeLessThan(c);
    // Clockwise on screen (y grows downwards): the second node is right of the first.
    expect(list[1]!.x).toBeGreaterThan(list[0]!.x);
    for (const p of list) {
      expect(p.x - NODE_RADIUS).toBeGreaterThanOrEqual(0);
      expect(p.y - NODE_RADIUS).toBeGreaterThanOrEqual(0);
      expect(p.x + NODE_RADIUS).toBeLessThanOrEqual(VIEW_SIZE);
      expect(p.y + NODE_RADIUS + 28).toBeLessThanOrEqual(VIEW_SIZE); // the two label lines under the circle
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(Math.hypot(list[i]!.x - list[j]!.x, list[i]!.y - list[j]!.y)).toBeGreaterThan(2 * NODE_RADIUS + 10);
  });

  it('puts one node in the middle and none for none', () => {
    expect(ringLayout(['a']).get('a')).toEqual({ x: VIEW_SIZE / 2, y: VIEW_SIZE / 2 });
    expect(ringLayout([]).size).toBe(0);
  });
});

describe('term colours', () => {
  it('gives a term always the same colour and consecutive terms far-apart hues', () => {
    expect(termColor(4)).toBe(termColor(4));
    for (let t = 0; t < 50; t++) {
      const d = Math.abs(termHue(t) - termHue(t + 1));
      expect(Math.min(d, 360 - d)).toBeGreaterThan(90);
    }
    expect(termColor(1)).toMatch(/^hsl\(\d+ 65% 52%\)$/);
    expect(termHue(-1)).toBe(0);
    expect(termHue(Number.NaN)).toBe(0);
  });
});

describe('nodes, roles, leader', () => {
  it('lists reporting nodes, then members that do not report', () => {
    const f = frame(0, { members: { voters: ['n1', 'n2', 'n3', 'n4'], learners: ['n5'], observers: ['n6'] } });
    expect(nodeIds(f)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
    expect(membershipOf(f.members, 'n5')).toBe('learner');
    expect(membershipOf(f.members, 'n6')).toBe('observer');
    expect(membershipOf(f.members, 'n1')).toBe('voter');
    expect(membershipOf(f.members, 'x')).toBe('none');
  });

  it('shows down for a node that does not answer', () => {
    expect(shownRole(undefined)).toBe('down');
    expect(shownRole({ id: 'a', up: false, role: 'leader', log: [] })).toBe('down');
    expect(shownRole({ id: 'a', up: true, log: [] })).toBe('unknown');
    expect(shownRole({ id: 'a', up: true, role: 'candidate', log: [] })).toBe('candidate');
  });

  it('takes the up leader with the highest term, else the one a majority of up nodes names, else none', () => {
    const node = (id: string, up: boolean, role: string, term: number, leader?: string): UiNodeState => ({ id, up, role, term, log: [], ...(leader ? { leader } : {}) });
    expect(leaderOf(frame(0, { nodes: [node('a', true, 'leader', 2), node('b', true, 'leader', 3), node('c', true, 'follower', 3)] }))).toBe('b');
    expect(leaderOf(frame(0, { nodes: [node('a', false, 'leader', 5), node('b', true, 'follower', 3), node('c', true, 'follower', 3)] }))).toBeUndefined();
    expect(leaderOf(frame(0, { nodes: [node('a', true, 'leading', 2), node('b', true, 'following', 2, 'a'), node('c', true, 'following', 2, 'a')] }))).toBe('a');
    expect(leaderOf(frame(0, { nodes: [node('a', false, 'leader', 2), node('b', true, 'follower', 2, 'a'), node('c', true, 'follower', 2, 'a')] }))).toBeUndefined();
  });
});

describe('links and messages', () => {
  it('draws the frame links between known nodes and a cut for each peer a node reports itself partitioned from', () => {
    const f = frame(0, {
      links: [
        { from: 'n1', to: 'n2', rate: 12, blocked: false },
        { from: 'n1', to: 'zz', rate: 1, blocked: false },
        { from: 'n1', to: 'n1', rate: 1, blocked: false },
      ],
    });
    f.nodes[2]!.partitioned = ['n1'];
    const links = drawnLinks(f, new Set(['n1', 'n2', 'n3']));
    expect(links).toEqual([
      { from: 'n1', to: 'n2', rate: 12, blocked: false },
      { from: 'n3', to: 'n1', rate: 0, blocked: true },
      { from: 'n1', to: 'n3', rate: 0, blocked: true },
    ]);
  });

  it('samples at most the cap, spread over the list, in order', () => {
    const list = Array.from({ length: 100 }, (_, i) => i);
    expect(sampleMessages(list, 5)).toEqual([0, 25, 50, 74, 99]);
    expect(sampleMessages([1, 2], 5)).toEqual([1, 2]);
    expect(sampleMessages(list, 0)).toEqual([]);
    expect(sampleMessages(list, 1)).toEqual([0]);
  });

  it('lets a message travel about as long as the time between frames, within 250 to 900 ms', () => {
    expect([Number.POSITIVE_INFINITY, 0, 100, 500, 5000].map(travelTime)).toEqual([700, 700, 250, 450, 900]);
  });

  it('formats ticks with two decimals at most', () => {
    expect(formatTime(190, 'tick')).toBe('tick 190');
    expect(formatTime(190.0374, 'tick')).toBe('tick 190.04');
    expect(formatTime(0, 'ms')).toMatch(/\d/);
  });

  it('formats rates and positions along a link', () => {
    expect([0, 0.25, 3, 12.4, 999, 1500, 25_000, Number.NaN].map(formatRate)).toEqual(['0/s', '0.3/s', '3/s', '12/s', '999/s', '1.5k/s', '25k/s', '0/s']);
    expect(along({ x: 0, y: 0 }, { x: 10, y: 0 }, 0.5)).toEqual({ x: 5, y: 0 });
    // Offset to the right of travel: going +x on screen, right is +y.
    expect(along({ x: 0, y: 0 }, { x: 10, y: 0 }, 0.5, 4)).toEqual({ x: 5, y: 4 });
  });
});

describe('log strips', () => {
  const node = (extra: Partial<UiNodeState>): UiNodeState => ({ id: 'a', up: true, log: [], ...extra });

  it('aligns columns by index over all nodes: the last `width` indexes up to the highest', () => {
    expect(logWindow([node({ lastIndex: 100 }), node({ log: [{ index: 120, term: 1 }] })], 48)).toEqual({ start: 73, width: 48 });
    expect(logWindow([node({ lastIndex: 5 })], 48)).toEqual({ start: 1, width: 48 });
    expect(logWindow([], 48)).toEqual({ start: 1, width: 48 });
  });

  it('marks committed entries, the commit point and the compacted prefix', () => {
    const log = Array.from({ length: 6 }, (_, i) => ({ index: 10 + i, term: i < 3 ? 1 : 2 }));
    const strip = logStrip(node({ log, commitIndex: 12, firstIndex: 10, snapshotIndex: 9 }), { start: 5, width: 20 });
    expect(strip.compactedColumns).toBe(5); // indexes 5..9 are in the snapshot
    expect(strip.cells.map((c) => [c.index, c.column, c.term, c.committed])).toEqual([
      [10, 5, 1, true],
      [11, 6, 1, true],
      [12, 7, 1, true],
      [13, 8, 2, false],
      [14, 9, 2, false],
      [15, 10, 2, false],
    ]);
    expect(strip.commitColumn).toBe(8); // the mark sits after index 12
  });

  it('clips entries outside the window and has no commit mark off it', () => {
    const log = [{ index: 1, term: 1 }, { index: 2, term: 1 }, { index: 50, term: 3 }];
    const strip = logStrip(node({ log, commitIndex: 2 }), { start: 10, width: 48 });
    expect(strip.cells.map((c) => c.index)).toEqual([50]);
    expect(strip.commitColumn).toBeUndefined();
    expect(strip.compactedColumns).toBe(0);
    // Without firstIndex, the snapshot index says where the log starts.
    expect(logStrip(node({ snapshotIndex: 14 }), { start: 10, width: 48 }).compactedColumns).toBe(5);
  });
});
