import type { Ready } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { cluster, elect, enc, type } from './helpers';

describe('the leader sends its Accepts ahead of writing its slots (as Raft thesis 10.2.1)', () => {
  it('hands out the Accepts in a Ready without the new slot, writes the slot in the next, and counts its own vote only then', () => {
    // Flexible Paxos 3: Q2 = 1, so the leader's own durable vote alone decides a slot.
    const net = cluster(['a', 'b', 'c'], { phase1Quorum: 3, phase2Quorum: 1 });
    elect(net, 'a');
    const a = net.get('a');
    const slot = a.node.nextSlot;
    a.node.propose(enc.encode('x'));
    const r1 = a.driver.take() as Ready;
    expect(r1.entries).toEqual([]);
    expect(r1.hardState).toBeUndefined();
    expect(r1.messages.filter((e) => type(e) === 'Accept').map((e) => e.to).sort()).toEqual(['b', 'c']);
    a.driver.persist(r1);
    a.driver.complete(r1);
    net.check();
    // Its own vote is not durable yet: with Q2 = 1 nothing may be decided.
    expect(a.node.commit).toBe(slot - 1);
    const r2 = a.driver.take() as Ready;
    expect(r2.entries.map((e) => e.index)).toContain(slot);
    a.driver.persist(r2);
    a.driver.complete(r2);
    net.check();
    expect(a.node.commit).toBe(slot);
  });

  it('never twice in a row: a stream of proposals cannot keep the slots from being written', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a');
    let written = 0;
    for (let i = 0; i < 6; i++) {
      a.node.propose(enc.encode(`v${i}`));
      const rd = a.driver.take() as Ready;
      if (rd.entries.length > 0) written++;
      else expect(i % 2).toBe(0); // a Ready without the slots is always followed by one with them
      a.driver.persist(rd);
      a.driver.complete(rd);
    }
    expect(written).toBe(3);
  });
});
