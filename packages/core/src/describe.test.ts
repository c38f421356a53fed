import { describe, expect, it } from 'vitest';
import { encodeClusterConfig } from './config';
import { describeEntry, describeEnvelope, describeMessage, describeReady, describeStatus } from './describe';

describe('describe* renderers: one stable line each', () => {
  it('entries', () => {
    expect(describeEntry({ index: 3, term: 2, type: 'command', data: new Uint8Array(5) })).toBe('3/2 command 5B');
    expect(describeEntry({ index: 4, term: 2, type: 'noop', data: new Uint8Array(0) })).toBe('4/2 noop');
    expect(describeEntry({ index: 5, term: 2, type: 'config', data: encodeClusterConfig({ voters: ['a', 'b'], outgoing: ['a'], learners: ['l'] }) })).toBe(
      '5/2 config voters=(a b)&&(a) learners=(l)',
    );
    expect(describeEntry({ index: 6, term: 2, type: 'config', data: Uint8Array.of(0xc1) })).toBe('6/2 config <malformed 1B>');
  });

  it('messages and envelopes: type tag first, fields in order, bytes as sizes', () => {
    const msg = {
      type: 'AppendEntries',
      term: 2,
      prevIndex: 3,
      entries: [{ index: 4, term: 2, type: 'command', data: new Uint8Array(2) }],
      ctx: new Uint8Array(8),
      skipped: undefined,
    };
    expect(describeMessage(msg)).toBe('AppendEntries term=2 prevIndex=3 entries=[4/2 command 2B] ctx=<8B>');
    expect(describeEnvelope({ from: 'a', to: 'b', msg: { type: 'Heartbeat' } })).toBe('a->b Heartbeat');
    expect(describeMessage({ type: 'X', note: 'two words', nested: { k: [1, 2] } })).toBe('X note="two words" nested={k=[1 2]}');
    expect(describeMessage(42)).toBe('42');
  });

  it('status and Ready', () => {
    const status = { id: 'a', role: 'leader' as const, term: 3, leader: 'a', commitIndex: 10, appliedIndex: 9, lastIndex: 11, config: { voters: ['a', 'b', 'c'], learners: [] } };
    expect(describeStatus(status)).toBe('a leader term=3 leader=a commit=10 applied=9 last=11 voters=(a b c)');
    const details = { transferringTo: 'b', progress: { b: { match: 10, state: 'replicate' } }, ballot: undefined, preVote: true };
    expect(describeStatus({ ...status, details })).toBe(
      'a leader term=3 leader=a commit=10 applied=9 last=11 voters=(a b c) preVote=true progress={b={match=10 state=replicate}} transferringTo=b',
    );
    expect(
      describeReady({
        hardState: new Uint8Array(4),
        entries: [{ index: 11, term: 3, type: 'noop', data: new Uint8Array(0) }],
        messages: [{ from: 'a', to: 'b', msg: {} }],
        committed: [],
        reads: [{ ctx: new Uint8Array(2), index: 10 }],
      }),
    ).toBe('Ready hardState=<4B> entries=[11/3 noop] messages=1 reads=[<2B>@10]');
  });
});
