import type { LockInfo } from '@consensus-kit/lock';
import { describe, expect, it } from 'vitest';
import type { StatusRow } from '../src/render';
import { LIVE_VIEW_COLUMNS, LIVE_VIEW_LOCKS, renderLiveView, renderLockLines } from '../src/render';

const lock = (name: string, o: Partial<Omit<LockInfo, 'holders'>> & { holders?: [session: number, token: number, count?: number][]; waiting?: number } = {}): LockInfo => ({
  name,
  kind: o.kind ?? 'mutex',
  permits: o.permits ?? 1,
  holders: (o.holders ?? []).map(([session, token, count]) => ({ session, token, reqs: [1], mode: o.kind === 'semaphore' ? 'semaphore' : 'mutex', count: count ?? 1 })),
  waiters: Array.from({ length: o.waiting ?? 0 }, (_, i) => ({ session: 100 + i, req: 1, mode: 'mutex', count: 1, index: 1000 + i })),
  delayUntil: o.delayUntil ?? 0,
});

const row = (node: string): StatusRow => ({
  node,
  role: 'follower',
  term: 1,
  leader: 'n1',
  commit: 9,
  applied: 9,
  lag: 0,
  pid: 1234,
  address: '127.0.0.1:7101',
  http: '127.0.0.1:7201',
  details: null,
});

describe("start's live view shows lock holders and queue lengths", () => {
  it('one compact line per lock: holder session and fencing token (or tokens), semaphore permits in use, queue length', () => {
    const lines = renderLockLines([
      lock('jobs/nightly', { holders: [[5, 6]], waiting: 2 }),
      lock('pool', { kind: 'semaphore', permits: 4, holders: [[7, 9, 2], [8, 12]], waiting: 0 }),
      lock('config', { kind: 'rwlock', holders: [], delayUntil: 1234, waiting: 1 }),
    ]);
    expect(lines[0]).toBe('locks: 3 held or awaited, 3 waiting');
    // Longest queues first.
    expect(lines.slice(1).map((l) => l.replace(/ +/g, ' ').trim())).toEqual([
      'jobs/nightly mutex s5 token 6 2 waiting',
      'config rw free (lock-delay) 1 waiting',
      'pool sem 3/4 2 holders, tokens 9,12 0 waiting',
    ]);
    expect(renderLockLines([])).toEqual(['locks: none held']);
  });

  it('is bounded to a few lines, counting the rest, and every line of the view fits LIVE_VIEW_COLUMNS', () => {
    const many = Array.from({ length: 30 }, (_, i) => lock(`queue/${'x'.repeat(i * 3)}${i}`, { holders: [[1_000_000 + i, 9_999_999_999 + i]], waiting: i }));
    const lines = renderLockLines(many);
    expect(lines).toHaveLength(1 + LIVE_VIEW_LOCKS + 1);
    expect(lines.at(-1)).toBe(`  … and ${30 - LIVE_VIEW_LOCKS} more (consensus-cli lock list)`);
    const view = renderLiveView('title', ['n1', 'n2', 'n3'].map(row), ['12:00:00 leader is n1 (term 1)'], { json: false, color: false }, many);
    for (const line of view.split('\n')) expect([...line].length).toBeLessThanOrEqual(LIVE_VIEW_COLUMNS);
    expect(view).toContain('locks: 30 held or awaited, 435 waiting');
    expect(view).toContain('29 waiting');
    // Without lock information (no node answered) the view has no lock lines.
    expect(renderLiveView('title', [row('n1')], [], { json: false, color: false })).not.toContain('locks');
  });
});
