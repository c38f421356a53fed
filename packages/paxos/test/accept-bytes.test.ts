import { ConfigError, type Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { Accept } from '../src/messages';
import { paxos } from '../src/index';
import { cluster, elect, enc, settle, type, until } from './helpers';
import type { TestNetwork } from './network';

/**
 * Phase 2a batches (`Accept`) carry at most `maxAcceptBytes` of values (always at least one slot), as etcd's raft
 * bounds its appends (`MaxSizePerMsg`). Each slot's phase 2 is independent (Paxos Made Simple, section 3), so where a
 * batch ends changes nothing but the size of the messages.
 */

const value = (i: number) => `v${String(i).padStart(2, '0')}-${'x'.repeat(36)}`; // 40 bytes
const bytesOf = (m: Accept) => m.entries.reduce((s, e) => s + e.data.length, 0);

/** Records every Accept the leader sends, by acceptor. */
function recordAccepts(net: TestNetwork): Map<string, Accept[]> {
  const seen = new Map<string, Accept[]>();
  net.filter = (e: Envelope) => {
    if (type(e) === 'Accept') seen.set(e.to, [...(seen.get(e.to) ?? []), e.msg as Accept]);
    return true;
  };
  return seen;
}

describe('maxAcceptBytes', () => {
  it('30 values proposed at once go out in Accepts of at most maxAcceptBytes of values, in slot order, and are decided everywhere in order', () => {
    const net = cluster(['a', 'b', 'c'], { maxAcceptBytes: 100 });
    elect(net, 'a');
    const seen = recordAccepts(net);
    const a = net.get('a').node;
    const before = a.commit;
    for (let i = 0; i < 30; i++) a.propose(enc.encode(value(i)));
    until(net, () => ['a', 'b', 'c'].every((id) => net.get(id).applied.length >= 30), 100);
    const want = Array.from({ length: 30 }, (_, i) => value(i));
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.slice(-30), id).toEqual(want);
    expect(a.commit).toBe(before + 30);
    for (const id of ['b', 'c']) {
      const accepts = (seen.get(id) ?? []).filter((m) => m.entries.some((e) => e.data.length > 0));
      expect(accepts.length, id).toBeGreaterThanOrEqual(15); // two 40-byte values per message at most
      let next = (accepts[0]?.entries[0]?.index ?? 0) as number;
      for (const m of accepts) {
        expect(bytesOf(m)).toBeLessThanOrEqual(100);
        expect(m.entries[0]?.index, id).toBe(next); // consecutive batches, nothing skipped or repeated
        next = (m.entries.at(-1)?.index ?? 0) + 1;
      }
    }
  });

  it('a value larger than maxAcceptBytes goes alone, between batches of smaller ones, and is decided', () => {
    const net = cluster(['a', 'b', 'c'], { maxAcceptBytes: 100 });
    elect(net, 'a');
    const seen = recordAccepts(net);
    const a = net.get('a').node;
    const big = 'B'.repeat(300);
    for (const v of [value(1), value(2), big, value(3), value(4)]) a.propose(enc.encode(v));
    settle(net, 5);
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.slice(-5), id).toEqual([value(1), value(2), big, value(3), value(4)]);
    const toB = (seen.get('b') ?? []).filter((m) => m.entries.some((e) => e.data.length > 0));
    const withBig = toB.filter((m) => m.entries.some((e) => e.data.length === 300));
    expect(withBig.length).toBeGreaterThan(0);
    for (const m of withBig) expect(m.entries.length).toBe(1);
    for (const m of toB) if (m.entries.length > 1) expect(bytesOf(m)).toBeLessThanOrEqual(100);
  });

  it('by default an Accept carries at most 1 MiB of values: 24 values of 64 KiB are not one 1.5 MiB message', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a').node;
    const first = a.status().lastIndex + 1;
    const v = new Uint8Array(64 * 1024).fill(7);
    for (let i = 0; i < 24; i++) a.propose(v);
    net.process('a');
    // What the leader sent (not delivered: the test network checks every replica's log after each step).
    for (const id of ['b', 'c']) {
      const accepts = net.queue.filter((e) => e.to === id && type(e) === 'Accept').map((e) => e.msg as Accept);
      expect(accepts.length, id).toBeGreaterThanOrEqual(2);
      let next = first;
      for (const m of accepts) {
        expect(bytesOf(m)).toBeLessThanOrEqual(1 << 20);
        expect(m.entries[0]?.index).toBe(next);
        next = (m.entries.at(-1)?.index ?? 0) + 1;
      }
      expect(next, id).toBe(first + 24);
    }
  });

  it('maxAcceptBytes must be a positive integer of at most 16 MiB', () => {
    for (const bad of [0, -1, 1.5, '64', 32 << 20]) expect(() => paxos.parseOptions({ maxAcceptBytes: bad }), String(bad)).toThrow(ConfigError);
    expect(paxos.parseOptions({ maxAcceptBytes: 4096 })).toEqual({ maxAcceptBytes: 4096 });
  });
});
