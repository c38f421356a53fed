import type { Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { Learn } from '../src/messages';
import { cluster, elect, enc, settle, steal, type } from './helpers';

/**
 * Break-it s10: a snapshot install racing the release of decided slots (ready.ts `advance`, paxos-log.ts
 * `release`). The install's first Ready writes the marks alone (learner.ts `PendingInstall`), not the slots
 * learned meanwhile: they are decided but not durable, and must stay in memory. If the replica then learns past
 * the snapshot, the install is dropped and the next Ready writes them and hands them to the state machine.
 */

describe('break-it s10: a snapshot install dropped after its marks were written', () => {
  it('slots learned while a Ready was in flight stay in memory through the marks-only Ready and are written by the next one', () => {
    const net = cluster(['a', 'b', 'c'], { window: 4, maxBatch: 2, logChunkBits: 1 });
    elect(net, 'a');
    net.partition(['c']);
    const a = net.get('a').node;
    const values = Array.from({ length: 30 }, (_, i) => `v${i}`);
    for (const v of values) {
      a.propose(enc.encode(v));
      net.deliver();
    }
    settle(net, 2);
    net.heal();
    // Hold what a streams to c: first a Learn (before a compacts), then, once a compacted, its snapshot.
    const held: Envelope[] = [];
    net.filter = (e) => {
      if (e.to === 'c' && (type(e) === 'Learn' || type(e) === 'SnapshotChunk')) {
        held.push(e);
        return false;
      }
      return true;
    };
    for (let i = 0; i < 10 && !held.some((e) => type(e) === 'Learn'); i++) settle(net, 1);
    const learn = held.find((e) => type(e) === 'Learn') as Envelope;
    expect((learn.msg as Learn).entries[0]?.index).toBe(2);
    const index = net.snapshot('a');
    a.compacted(index);
    for (let i = 0; i < 30 && !held.some((e) => type(e) === 'SnapshotChunk'); i++) settle(net, 1);
    const snapshot = held.find((e) => type(e) === 'SnapshotChunk') as Envelope;
    expect(snapshot).toBeDefined();
    net.filter = undefined;
    settle(net, 0);

    const c = net.get('c');
    net.tick('a');
    const hb = steal(net, (e) => e.to === 'c' && type(e) === 'Heartbeat')[0] as Envelope;
    // c's Ready (its heartbeat reply) is being written when the Learn and then the snapshot arrive.
    c.node.step(hb);
    const rd0 = c.driver.take() as NonNullable<ReturnType<typeof c.driver.take>>;
    c.node.step(learn);
    const learned = c.node.commit;
    expect(learned).toBeGreaterThan(1);
    c.node.step(snapshot);
    c.driver.persist(rd0);
    c.driver.complete(rd0);
    // The install's marks alone: the learned slots are neither written nor handed to the state machine yet.
    const rd1 = c.driver.take() as NonNullable<ReturnType<typeof c.driver.take>>;
    expect(rd1.hardState).toBeDefined();
    expect(rd1.entries).toHaveLength(0);
    expect(rd1.committed).toHaveLength(0);
    c.driver.persist(rd1);
    c.driver.complete(rd1);
    expect(c.node.log.memOffset).toBeLessThan(2);
    // Before the install's second Ready, b streams c everything up to past the snapshot: the install is dropped.
    const b = net.get('b').node;
    c.node.step({ from: 'b', to: 'c', msg: { type: 'Learn', commit: b.commit, entries: b.log.slice(learned + 1, b.commit) } });
    expect(c.node.commit).toBeGreaterThanOrEqual(index);
    net.processAll();
    // Every decided slot is in c's storage, the ones learned during the first write included.
    expect(c.storage.firstIndex()).toBe(1);
    expect(c.storage.lastIndex()).toBeGreaterThanOrEqual(c.node.commit);
    for (let s = 2; s <= c.node.commit; s++) expect(c.storage.entries(s, s + 1)[0]?.term, `slot ${s}`).toBeGreaterThan(0);
    settle(net, 3);
    expect(c.applied).toEqual(values);
    net.crash('c');
    net.restart('c');
    settle(net, 5);
    expect(c.applied).toEqual(values);
  });
});
