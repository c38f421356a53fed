import { describe, expect, it } from 'vitest';
import { acceptAhead } from '../src/acceptor';
import { parseMessage } from '../src/messages';
import { TestNetwork } from './network';

const enc = new TextEncoder();
const ok = (index: number, term: number) => ({ index, term, type: 'command', data: enc.encode(`v${index}`) });

function cluster(): TestNetwork {
  const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1 });
  net.get('a').node.campaign(true);
  net.deliver();
  for (let i = 0; i < 3; i++) {
    net.tickAll();
    net.deliver();
  }
  expect(net.get('a').node.status().role).toBe('leader');
  return net;
}

describe('break-it: hostile frames', () => {
  it('parseMessage refuses ill-typed entry lists: wrong types, NaN, negative and fractional numbers, gaps, other binary types', () => {
    const bad: unknown[] = [
      [{ ...ok(1, 1), index: Number.NaN }],
      [{ ...ok(1, 1), index: -1 }],
      [{ ...ok(1, 1), index: 1.5 }],
      [{ ...ok(1, 1), index: 0 }],
      [{ ...ok(1, 1), term: -3 }],
      [{ ...ok(1, 1), term: Number.POSITIVE_INFINITY }],
      [{ ...ok(1, 1), term: 2 ** 53 }],
      [{ ...ok(1, 1), term: '1' }],
      [{ ...ok(1, 1), type: 'Command' }],
      [{ ...ok(1, 1), type: 'toString' }],
      [{ ...ok(1, 1), data: 'abc' }],
      [{ ...ok(1, 1), data: [1, 2, 3] }],
      [{ ...ok(1, 1), data: new ArrayBuffer(3) }],
      [{ ...ok(1, 1), data: new DataView(new ArrayBuffer(3)) }],
      [{ ...ok(1, 1), data: new Uint16Array(3) }],
      [{ ...ok(1, 1), data: null }],
      [ok(1, 1), ok(3, 1)],
      [ok(2, 1), ok(1, 1)],
      [ok(1, 1), null],
      [ok(1, 1), 7],
      { 0: ok(1, 1), length: 1 },
      'entries',
    ];
    for (const entries of bad) {
      expect(parseMessage({ type: 'Accept', ballot: 1, commit: 0, entries })).toBeUndefined();
      expect(parseMessage({ type: 'Promise', ballot: 1, commit: 0, first: 1, entries })).toBeUndefined();
      expect(parseMessage({ type: 'Learn', commit: 1, entries })).toBeUndefined();
    }
    expect(parseMessage({ type: 'Accept', ballot: 1, commit: 0, entries: [] })).toBeUndefined();
    // A Node Buffer is a Uint8Array: accepted, as msgpack decoders may hand one out.
    expect(parseMessage({ type: 'Accept', ballot: 1, commit: 0, entries: [{ ...ok(1, 1), data: Buffer.from('x') }] })).toBeDefined();
  });

  it('a replica fed hostile but well-typed frames throws nothing, keeps the invariants and the cluster keeps deciding', () => {
    const net = cluster();
    const b = net.get('b').node;
    const ballot = b.promised;
    const frames: unknown[] = [
      // A term above the ballot of the Accept carrying it: no acceptor records a vote it was not asked for.
      { type: 'Accept', ballot, commit: 0, entries: [ok(b.log.lastIndex + 1, ballot + 100)] },
      // Extra fields on the message and on an entry.
      { type: 'Heartbeat', ballot, commit: 0, seq: 1, extra: { deep: [1, 2, 3] } },
      // A commit point far beyond anything proposed.
      { type: 'Heartbeat', ballot, commit: 2 ** 40, seq: 2 },
      // Replies for rounds and slots that never were, and Nacks for ballots nobody used.
      { type: 'Accepted', ballot, from: 1, to: 2 ** 40, commit: 2 ** 40 },
      { type: 'HeartbeatReply', ballot, seq: 2 ** 40, commit: 2 ** 40 },
      { type: 'Nack', ballot: 0, promised: 0 },
      { type: 'Learned', commit: 2 ** 40 },
      { type: 'CatchupRequest', from: 2 ** 40 },
      { type: 'TimeoutNow', ballot: 2 ** 40 },
      { type: 'Snapshot', index: 1, term: 1, config: { voters: ['a'] }, data: new Uint8Array(0), membership: { c: 'x', r: [] } },
      { type: 'Snapshot', index: 2 ** 40, term: 1, config: { voters: [] }, data: new Uint8Array(0), membership: null },
      { type: 'Learn', commit: 2 ** 40, entries: [ok(2 ** 40, 1)] },
      { type: 'Promise', ballot: 2 ** 40, commit: 0, first: 1, entries: [] },
    ];
    for (const msg of frames) {
      for (const [to, from] of [['b', 'a'], ['a', 'b'], ['b', 'zz']] as const) {
        expect(() => net.get(to).node.step({ from, to, msg })).not.toThrow();
        net.deliver();
      }
    }
    for (let i = 0; i < 40; i++) {
      net.tickAll();
      net.deliver();
    }
    const l = net.leader();
    expect(l).toBeDefined();
    l?.node.propose(enc.encode('after'));
    for (let i = 0; i < 10; i++) {
      net.tickAll();
      net.deliver();
    }
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.at(-1)).toBe('after');
  });

  it('an Accept far above the acceptor\'s log takes no memory for the gap; a lagging acceptor still catches up through Learn', () => {
    const net = cluster();
    const b = net.get('b').node;
    const ballot = b.promised;
    const before = b.log.lastIndex;
    // From the leader itself, at its own ballot: slot 2^40, and a slot just past the bound.
    for (const slot of [before + 50_000, 2 ** 40]) {
      b.step({ from: 'a', to: 'b', msg: { type: 'Accept', ballot, commit: 0, entries: [ok(slot, ballot)] } });
      expect(b.log.lastIndex).toBe(before);
      net.process('b');
      const reply = net.queue.find((e) => e.from === 'b' && (e.msg as { type: string }).type === 'Accepted');
      expect(reply?.msg).toMatchObject({ type: 'Accepted', from: slot, to: slot - 1 });
      net.deliver();
    }

    // A replica that lags by more than the bound: c is cut off while the leader decides far ahead.
    const a = net.get('a').node;
    net.partition(['c']);
    const burst = 5_000;
    expect(acceptAhead(a)).toBeLessThan(burst - 1_000);
    for (let i = 0; i < burst; i += 100) {
      for (let k = 0; k < 100; k++) a.propose(enc.encode(`x${i + k}`));
      net.deliver();
    }
    // The leader released the decided slots c lacks from memory (paxos-log.ts): the Learn stream reads them back.
    expect(a.log.memOffset).toBeGreaterThan(net.get('c').node.commit);
    net.heal();
    for (let i = 0; i < 200 && net.get('c').node.commit < a.commit; i++) {
      net.tickAll();
      net.deliver();
    }
    expect(net.get('c').node.commit).toBe(a.commit);
    a.propose(enc.encode('after'));
    for (let i = 0; i < 10; i++) {
      net.tickAll();
      net.deliver();
    }
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.at(-1)).toBe('after');
  });
});
