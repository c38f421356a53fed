import { describe, expect, it } from 'vitest';
import { compareVotes, type Vote } from './vote';

const v = (leader: string, epoch: number, term: number, index: number): Vote => ({ leader, epoch, term, index });

describe('FastLeaderElection.totalOrderPredicate', () => {
  it('the higher peer epoch wins, whatever the zxid and id', () => {
    expect(compareVotes(v('a', 3, 1, 1), v('z', 2, 9, 99))).toBeGreaterThan(0);
  });
  it('at the same epoch the higher zxid wins: (epoch of the last entry, counter) as (term, index)', () => {
    expect(compareVotes(v('a', 2, 2, 5), v('z', 2, 1, 90))).toBeGreaterThan(0);
    expect(compareVotes(v('a', 2, 2, 6), v('z', 2, 2, 5))).toBeGreaterThan(0);
  });
  it('a tie on epoch and zxid goes to the higher server id', () => {
    expect(compareVotes(v('c', 1, 1, 4), v('b', 1, 1, 4))).toBeGreaterThan(0);
    expect(compareVotes(v('b', 1, 1, 4), v('c', 1, 1, 4))).toBeLessThan(0);
    expect(compareVotes(v('b', 1, 1, 4), v('b', 1, 1, 4))).toBe(0);
  });
});
