import type { LockInfo } from '@consensus-kit/lock';
import { describe, expect, it } from 'vitest';
import { diffLock } from '../src/lock-watch';

const lock = (holders: [session: number, token: number, reqs: number[]][], waiters: [session: number, req: number][] = []): LockInfo => ({
  name: 'm',
  kind: 'mutex',
  permits: 1,
  holders: holders.map(([session, token, reqs]) => ({ session, token, reqs, mode: 'mutex', count: 1 })),
  waiters: waiters.map(([session, req], i) => ({ session, req, mode: 'mutex', count: 1, index: 100 + i })),
  delayUntil: 0,
});

describe('diffLock: what lock watch pushes for one applied entry', () => {
  it('a grant from the queue is a release (or expiry) and a grant, not the waiter leaving', () => {
    expect(diffLock(lock([[1, 5, [1]]], [[2, 1]]), lock([[2, 9, [1]]]), new Set())).toEqual([
      { type: 'released', session: 1, token: 5 },
      { type: 'granted', session: 2, token: 9, mode: 'mutex', count: 1 },
    ]);
    expect(diffLock(lock([[1, 5, [1]]], [[2, 1]]), lock([], [[2, 1]]), new Set([5]))).toEqual([{ type: 'expired', session: 1, token: 5 }]);
  });

  it('queue changes: a new waiter with its FIFO position, and one that left without a grant', () => {
    expect(diffLock(lock([[1, 5, [1]]], [[2, 1]]), lock([[1, 5, [1]]], [[2, 1], [3, 4]]), new Set())).toEqual([{ type: 'waiting', session: 3, req: 4, mode: 'mutex', position: 2 }]);
    expect(diffLock(lock([[1, 5, [1]]], [[2, 1], [3, 4]]), lock([[1, 5, [1]]], [[3, 4]]), new Set())).toEqual([{ type: 'left', session: 2, req: 1 }]);
  });

  it('a lock that appears or vanishes', () => {
    expect(diffLock(undefined, lock([[1, 5, [1]]]), new Set())).toEqual([{ type: 'granted', session: 1, token: 5, mode: 'mutex', count: 1 }]);
    expect(diffLock(lock([[1, 5, [1]]]), undefined, new Set())).toEqual([{ type: 'released', session: 1, token: 5 }]);
    expect(diffLock(undefined, undefined, new Set())).toEqual([]);
  });
});
