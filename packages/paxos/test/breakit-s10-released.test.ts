import type { NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { Promise as PromiseMsg } from '../src/messages';
import type { TestNetwork } from './network';
import { cluster, elect, enc, leaderOf, settle, steal, type, until } from './helpers';

/**
 * Break-it s10: decided slots released from memory (paxos-log.ts `release`, logChunkBits 1: every other slot) and
 * read back from the storage for lagging peers: a proposer far behind, an acceptor far behind the Accept bound
 * (`acceptAhead`), a compaction the log hears of only after a Prepare, restarts. TestNetwork checks the Paxos
 * invariants after every Ready; these check state-machine agreement (Paxos Made Simple 2.2, P2c: a chosen value
 * never changes) and progress within bounded rounds.
 */

/** a leads a, b (c cut off): `count` decided values, then two more that only b accepted (undecided). */
function aheadOfC(options: { window: number; maxBatch: number }, count: number): TestNetwork {
  const net = cluster(['a', 'b', 'c'], { ...options, logChunkBits: 1 });
  elect(net, 'a');
  net.partition(['c']);
  const a = net.get('a').node;
  for (let i = 0; i < count; i++) {
    a.propose(enc.encode(`v${i}`));
    net.deliver();
    settle(net, 1);
  }
  net.filter = (e) => !(e.from === 'b' && type(e) === 'Accepted');
  a.propose(enc.encode('t1'));
  a.propose(enc.encode('t2'));
  net.deliver();
  net.filter = undefined;
  return net;
}

const expected = (count: number) => [...Array.from({ length: count }, (_, i) => `v${i}`), 't1', 't2', 'after'];

describe('break-it s10: a proposer far behind runs phase 1 against released slots (Paxos Made Simple 2.2, P2c)', () => {
  for (const compaction of ['none', 'notified', 'between'] as const) {
    it(`c, 20 slots behind, wins phase 1 with b's promise read from b's storage; t1, t2 (accepted by b alone) are re-proposed (compaction: ${compaction})`, () => {
      const net = aheadOfC({ window: 3, maxBatch: 2 }, 20);
      const b = net.get('b');
      // b released most of its decided slots: its promise to c is read back from its storage.
      expect(b.node.log.memOffset).toBeGreaterThanOrEqual(18);
      expect(b.node.log.lastIndex).toBe(b.node.commit + 2); // t1, t2: accepted, undecided at b
      expect(b.node.log.at(b.node.log.lastIndex)?.term).toBeGreaterThan(0);
      net.crash('a');
      net.heal();
      let index = 0;
      if (compaction !== 'none') index = net.snapshot('b');
      if (compaction === 'notified') b.node.compacted(index);
      net.get('c').node.campaign(true);
      net.processAll();
      if (compaction === 'between') {
        // The host's `await storage.compact()` has finished, `compacted()` not yet called: b answers c's Prepare
        // now. Its promise must not claim slots it cannot report (the storage no longer has them).
        const prepare = steal(net, (e) => e.to === 'b' && type(e) === 'Prepare');
        expect(prepare).toHaveLength(1);
        net.queue.unshift(...prepare);
        net.deliverOne();
        const promise = net.queue.find((e) => e.from === 'b' && type(e) === 'Promise');
        const m = promise?.msg as PromiseMsg;
        expect(m.first).toBe(b.node.log.memOffset + 1);
        expect(m.first).toBeGreaterThan(net.get('c').node.base + 1); // c must catch up before counting it
        // Every accepted value in the slots it claims (from `first` on) is reported (Paxos Made Simple 2.2, P2c).
        const held = b.node.log.slice(m.first, b.node.log.lastIndex).filter((e) => e.term > 0);
        expect(held.length).toBeGreaterThanOrEqual(2); // t1, t2 at least
        expect(m.entries.map((e) => `${e.index}/${e.term}`)).toEqual(held.map((e) => `${e.index}/${e.term}`));
        b.node.compacted(index);
      }
      net.deliver();
      until(net, () => leaderOf(net) !== undefined, 60);
      const l = leaderOf(net) as NodeId;
      net.get(l).node.propose(enc.encode('after'));
      until(net, () => net.get('b').applied.at(-1) === 'after' && net.get('c').applied.at(-1) === 'after', 60);
      expect(net.get('b').applied).toEqual(expected(20));
      // c restored b's snapshot when b compacted, else applied everything itself.
      expect(expected(20).slice(-net.get('c').applied.length)).toEqual(net.get('c').applied);
      if (compaction === 'none') expect(net.get('c').applied).toEqual(expected(20));
    });
  }
});

describe('break-it s10: an acceptor further behind than acceptAhead catches up and votes again', () => {
  for (const bits of [1, 12]) {
    it(`window 1, maxBatch 1 (acceptAhead 8), c 40 slots behind; then b crashes and a + c decide (logChunkBits ${bits})`, () => {
      const net = cluster(['a', 'b', 'c'], { window: 1, maxBatch: 1, maxInflight: 1, logChunkBits: bits });
      elect(net, 'a');
      net.partition(['c']);
      const a = net.get('a').node;
      for (let i = 0; i < 40; i++) {
        a.propose(enc.encode(`v${i}`));
        net.deliver();
        settle(net, 1);
      }
      expect(a.commit - net.get('c').node.log.lastIndex).toBeGreaterThan(8);
      net.heal();
      net.crash('b');
      a.propose(enc.encode('after'));
      // Learn brings c within the bound one slot per round trip; its Accepted then counts again.
      until(net, () => net.get('c').applied.at(-1) === 'after', 60);
      expect(net.get('c').applied).toEqual([...Array.from({ length: 40 }, (_, i) => `v${i}`), 'after']);
      expect(net.get('a').applied).toEqual(net.get('c').applied);
    });
  }

  it('a clamped Accepted never counts as a vote for the slots above the bound (the leader cannot commit on it)', () => {
    const net = cluster(['a', 'b', 'c'], { window: 1, maxBatch: 1, maxInflight: 1, logChunkBits: 1 });
    elect(net, 'a');
    net.partition(['c']);
    const a = net.get('a').node;
    for (let i = 0; i < 20; i++) {
      a.propose(enc.encode(`v${i}`));
      net.deliver();
      settle(net, 1);
    }
    net.heal();
    net.crash('b');
    // No Learn reaches c: only Accepts (far above its bound) and Heartbeats. a must not decide anything new.
    net.filter = (e) => type(e) !== 'Learn' && type(e) !== 'SnapshotChunk';
    const commit = a.commit;
    a.propose(enc.encode('after'));
    settle(net, 30, ['a', 'c']);
    expect(a.commit).toBe(commit);
    expect(net.get('c').node.log.lastIndex).toBeLessThan(commit);
    net.filter = undefined;
    until(net, () => net.get('c').applied.at(-1) === 'after', 60);
  });
});

describe('break-it s10: restarts with released slots', () => {
  it('the leader restarts (its log loaded whole from storage, released again once decided again) and still streams the decided slots to a replica that lost its log', () => {
    const net = cluster(['a', 'b', 'c'], { window: 3, maxBatch: 2, logChunkBits: 1 });
    elect(net, 'a');
    const a = net.get('a');
    for (let i = 0; i < 15; i++) {
      a.node.propose(enc.encode(`v${i}`));
      net.deliver();
      settle(net, 1);
    }
    expect(a.node.log.memOffset).toBeGreaterThan(10);
    net.crash('a');
    net.restart('a');
    // Straight after the restart every stored slot is in memory; the first advanced Ready releases them again.
    // Its stored commit point is older than the one it knew (learner.ts `decide`): every slot above it is in memory
    // again, undecided, until the cluster decides it again.
    expect(a.node.log.memOffset).toBe(a.node.log.offset);
    expect(a.node.log.length).toBe(a.node.log.lastIndex);
    // c loses everything (a new disk) and rejoins: everything comes back to it from the others' storage.
    net.crash('c');
    net.get('c').storage = new (net.get('c').storage.constructor as new () => typeof a.storage)();
    net.restart('c');
    until(net, () => leaderOf(net) !== undefined, 60);
    const l = leaderOf(net) as NodeId;
    net.get(l).node.propose(enc.encode('after'));
    until(net, () => net.get('c').applied.at(-1) === 'after', 80);
    expect(net.get('c').applied).toEqual([...Array.from({ length: 15 }, (_, i) => `v${i}`), 'after']);
    for (const id of ['a', 'b', 'c'] as NodeId[]) expect(net.get(id).node.log.memOffset, id).toBeGreaterThan(10);
  });
});
