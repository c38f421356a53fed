import { MemoryStorage, type LogEntry } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { RaftLog } from './raft-log';

const e = (index: number, term: number): LogEntry => ({ index, term, type: 'command', data: new Uint8Array([index]) });
const ents = (from: number, terms: number[]) => terms.map((t, i) => e(from + i, t));

function logWith(stored: number[], unstable: number[] = []): RaftLog {
  const s = new MemoryStorage();
  if (stored.length > 0) s.saveNow({ entries: ents(1, stored) });
  const log = new RaftLog(s);
  if (unstable.length > 0) log.append(ents(stored.length + 1, unstable));
  return log;
}

describe('RaftLog', () => {
  it('reads terms across storage and unstable, -1 outside', () => {
    const log = logWith([1, 1, 2], [2, 3]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => log.term(i))).toEqual([0, 1, 1, 2, 2, 3, -1]);
    expect(log.lastIndex()).toBe(5);
    expect(log.slice(2, 6, 1e9)?.map((x) => x.index)).toEqual([2, 3, 4, 5]);
    expect(log.slice(2, 6, 1)?.map((x) => x.index)).toEqual([2]);
  });

  it('maybeAppend: rejects on prev mismatch, truncates conflicts, keeps matching entries, commits to min', () => {
    const log = logWith([1, 1, 2, 2]);
    expect(log.maybeAppend(4, 3, 4, [])).toBeUndefined();
    expect(log.maybeAppend(2, 1, 10, ents(3, [3, 3]))).toBe(4);
    expect([3, 4].map((i) => log.term(i))).toEqual([3, 3]);
    expect(log.committed).toBe(4);
    expect(log.unstable.offset).toBe(3);
    // A duplicate of what we hold changes nothing.
    expect(log.maybeAppend(2, 1, 4, ents(3, [3]))).toBe(3);
    expect(log.lastIndex()).toBe(4);
    // Rewriting a committed entry is refused.
    expect(log.maybeAppend(1, 1, 4, ents(2, [5]))).toBe(-1);
  });

  it('findConflictByTerm skips whole terms', () => {
    const log = logWith([1, 1, 2, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(7, 3)).toEqual([5, 2]);
    expect(log.findConflictByTerm(7, 1)).toEqual([2, 1]);
    expect(log.findConflictByTerm(7, 9)).toEqual([7, 5]);
  });

  it('election restriction: up-to-date compares last term, then length (thesis 3.6.1)', () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it('commits by counting only entries of the given term (Figure 8)', () => {
    const log = logWith([1, 2, 4]);
    expect(log.maybeCommit(2, 4)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(3, 4)).toBe(true);
    expect(log.committed).toBe(3);
  });
});
