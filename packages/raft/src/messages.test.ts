import { describe, expect, it } from 'vitest';
import { decodeHardState, encodeHardState } from './hard-state';
import { parseMessage } from './messages';

describe('parseMessage', () => {
  const entry = (index: number, term: number) => ({ index, term, type: 'command', data: new Uint8Array([1]) });
  it.each([
    [{ type: 'PreVote', term: 2, lastIndex: 1, lastTerm: 1 }, true],
    [{ type: 'PreVote', term: 0, lastIndex: 1, lastTerm: 1 }, false],
    [{ type: 'AppendEntries', term: 2, prevIndex: 1, prevTerm: 1, entries: [entry(2, 1), entry(3, 2)], commit: 1 }, true],
    [{ type: 'AppendEntries', term: 2, prevIndex: 1, prevTerm: 1, entries: [entry(3, 1)], commit: 1 }, false],
    [{ type: 'AppendEntries', term: 2, prevIndex: 1, prevTerm: 2, entries: [entry(2, 1)], commit: 1 }, false],
    [{ type: 'AppendEntries', term: 2, prevIndex: 1, prevTerm: 1, entries: 'x', commit: 1 }, false],
    [{ type: 'AppendEntriesResponse', term: 2, index: 3, reject: true }, false],
    [{ type: 'AppendEntriesResponse', term: 2, index: 3, reject: true, hintIndex: 1, hintTerm: 1 }, true],
    [{ type: 'Heartbeat', term: 2, commit: 1.5, seq: 1 }, false],
    [{ type: 'InstallSnapshot', term: 2, index: 5, snapTerm: 1, config: { voters: ['a'], learners: [] }, total: 4, offset: 2, data: new Uint8Array(2) }, true],
    [{ type: 'InstallSnapshot', term: 2, index: 5, snapTerm: 1, config: { voters: ['a'], learners: [] }, total: 4, offset: 3, data: new Uint8Array(2) }, false],
    [{ type: 'ReadIndexResponse', term: 2, ctx: new Uint8Array(1), index: 4 }, true],
    [{ type: 'TimeoutNow', term: -1 }, false],
    [{ type: 'Unknown', term: 1 }, false],
    [null, false],
  ])('%o -> valid=%s', (msg, ok) => {
    expect(parseMessage(msg) !== undefined).toBe(ok);
  });
});

describe('hard state', () => {
  it('round-trips and rejects garbage', () => {
    expect(decodeHardState(encodeHardState({ term: 7, vote: 'b', commit: 3 }))).toEqual({ term: 7, vote: 'b', commit: 3 });
    expect(decodeHardState(encodeHardState({ term: 7, commit: 3 }))).toEqual({ term: 7, commit: 3 });
    expect(() => decodeHardState(new Uint8Array([0xc1]))).toThrow();
    expect(() => decodeHardState(encodeHardState({ term: -1, commit: 0 }))).toThrow();
  });
});
