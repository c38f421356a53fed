import { describe, expect, it } from 'vitest';
import { committedIndex, hasQuorum, jointCommittedIndex, jointVoteResult, majority, voteResult, type VoteResult } from './quorum';

const matchOf = (m: Record<string, number>) => (id: string) => m[id];

describe('majority', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [7, 4],
  ])('of %i voters is %i', (n, want) => expect(majority(n)).toBe(want));
});

describe('committedIndex: the highest index a majority has acknowledged', () => {
  it.each<[string, string[], Record<string, number>, number]>([
    ['single voter', ['a'], { a: 7 }, 7],
    ['three voters, one behind', ['a', 'b', 'c'], { a: 10, b: 8, c: 3 }, 8],
    ['three voters, two behind', ['a', 'b', 'c'], { a: 10, b: 2, c: 3 }, 3],
    ['unknown voters count as 0', ['a', 'b', 'c'], { a: 10 }, 0],
    ['even cluster needs n/2+1', ['a', 'b', 'c', 'd'], { a: 9, b: 9, c: 1, d: 1 }, 1],
    ['five voters', ['a', 'b', 'c', 'd', 'e'], { a: 5, b: 4, c: 3, d: 2, e: 1 }, 3],
    ['acks from non-voters are ignored', ['a', 'b', 'c'], { a: 5, x: 9, y: 9 }, 0],
  ])('%s', (_name, voters, match, want) => expect(committedIndex(voters, matchOf(match))).toBe(want));

  it('empty config places no constraint', () => {
    expect(committedIndex([], () => 0)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('jointCommittedIndex: a majority of each half (thesis 4.3)', () => {
  it.each<[string, string[], string[] | undefined, Record<string, number>, number]>([
    ['not joint', ['a', 'b', 'c'], undefined, { a: 5, b: 5, c: 1 }, 5],
    ['new half behind', ['c', 'd', 'e'], ['a', 'b', 'c'], { a: 9, b: 9, c: 9, d: 2, e: 1 }, 2],
    ['old half behind', ['c', 'd', 'e'], ['a', 'b', 'c'], { a: 1, b: 2, c: 9, d: 9, e: 9 }, 2],
    ['both caught up', ['c', 'd', 'e'], ['a', 'b', 'c'], { a: 7, b: 7, c: 7, d: 7, e: 7 }, 7],
  ])('%s', (_n, voters, outgoing, match, want) => {
    expect(jointCommittedIndex(outgoing ? { voters, outgoing } : { voters }, matchOf(match))).toBe(want);
  });
});

describe('voteResult', () => {
  const votes = (v: Record<string, boolean>) => new Map(Object.entries(v));
  it.each<[string, string[], Record<string, boolean>, VoteResult]>([
    ['single voter votes for itself', ['a'], { a: true }, 'won'],
    ['no votes yet', ['a', 'b', 'c'], {}, 'pending'],
    ['one of three', ['a', 'b', 'c'], { a: true }, 'pending'],
    ['two of three', ['a', 'b', 'c'], { a: true, c: true }, 'won'],
    ['two rejections of three', ['a', 'b', 'c'], { a: true, b: false, c: false }, 'lost'],
    ['split in four stays pending', ['a', 'b', 'c', 'd'], { a: true, b: true, c: false }, 'pending'],
    ['two rejections of four lose', ['a', 'b', 'c', 'd'], { a: true, c: false, d: false }, 'lost'],
    ['non-voter grants do not count', ['a', 'b', 'c'], { a: true, x: true, y: true }, 'pending'],
    ['empty config', [], {}, 'won'],
  ])('%s', (_n, voters, v, want) => expect(voteResult(voters, votes(v))).toBe(want));

  it('joint: won only with both halves, lost when either is lost', () => {
    const cfg = { voters: ['c', 'd', 'e'], outgoing: ['a', 'b', 'c'] };
    expect(jointVoteResult(cfg, votes({ a: true, b: true, c: true }))).toBe('pending');
    expect(jointVoteResult(cfg, votes({ a: true, c: true, d: true }))).toBe('won');
    expect(jointVoteResult(cfg, votes({ d: false, e: false, a: true, b: true }))).toBe('lost');
    expect(jointVoteResult({ voters: ['a'] }, votes({ a: true }))).toBe('won');
  });

  it('hasQuorum over a set of acknowledgements', () => {
    expect(hasQuorum({ voters: ['a', 'b', 'c'] }, new Set(['a', 'b']))).toBe(true);
    expect(hasQuorum({ voters: ['a', 'b', 'c'] }, new Set(['a']))).toBe(false);
    expect(hasQuorum({ voters: ['c', 'd', 'e'], outgoing: ['a', 'b', 'c'] }, new Set(['c', 'd']))).toBe(false);
    expect(hasQuorum({ voters: ['c', 'd', 'e'], outgoing: ['a', 'b', 'c'] }, new Set(['c', 'd', 'a']))).toBe(true);
  });
});
