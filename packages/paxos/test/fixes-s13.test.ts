import type { Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { decodeHardState } from '../src/hard-state';
import type { Accept } from '../src/messages';
import { cluster, elect, enc, settle, type, until } from './helpers';

/**
 * Session 13, lock sim paxos seed 9717 ("n2 committed 120/0 noop at index 120, where 120/53251 command 58B was
 * committed before"). A follower holding a ballot-0 placeholder (a later slot was accepted first) is sent the
 * leader's snapshot and then a `Learn` that decides the placeholder's slot. The install's first Ready writes its
 * marks alone (learner.ts `PendingInstall`), not the learned slots, and stored the in-memory commit point with
 * them; the next Ready (the learned values) was lost in a crash, and the restart took the placeholder as decided
 * and applied it in place of the chosen value. The stored commit must stop below slots no save has carried yet
 * (ready.ts `storedCommit`; DESIGN r2 "Crash order inside one save": entries before the hard state).
 */
describe('s13: a commit point learned during a snapshot install is not stored ahead of the learned values', () => {
  it('a crash that loses the learned values after the marks-only Ready does not apply the ballot-0 placeholder as chosen', () => {
    const net = cluster(['a', 'b', 'c'], { window: 4 });
    elect(net, 'a');
    const a = net.get('a').node;
    const c = net.get('c');
    const values = ['v0', 'v1', 'x', 'y', 'z'];
    for (const v of values.slice(0, 2)) {
      a.propose(enc.encode(v));
      net.deliver();
    }
    settle(net, 2);
    // c never sees slot `gap` (x) by Accept, nor any Learn or Snapshot until the script hands them over: its
    // Accept for y lands past a gap, which c fills with a ballot-0 placeholder.
    const gap = a.nextSlot;
    const held: Envelope[] = [];
    net.filter = (e) => {
      if (e.to !== 'c') return true;
      const t = type(e);
      if (t === 'Learn' || t === 'SnapshotChunk' || (t === 'Accept' && (e.msg as Accept).entries.some((x) => x.index === gap))) {
        held.push(e);
        return false;
      }
      return true;
    };
    for (const v of values.slice(2)) {
      a.propose(enc.encode(v));
      net.deliver();
    }
    settle(net, 3);
    expect(a.commit).toBeGreaterThanOrEqual(gap + 2);
    expect(c.node.log.at(gap)).toMatchObject({ term: 0, type: 'noop' });
    expect(c.node.log.at(gap + 1)?.term).toBeGreaterThan(0);
    expect(c.node.commit).toBe(gap - 1);
    expect(c.storage.term(gap)).toBe(0);
    // A Learn from the placeholder's slot on (sent before a compacts), then a's snapshot past it.
    const learn = held.find((e) => type(e) === 'Learn') as Envelope;
    expect(learn).toBeDefined();
    const index = net.snapshot('a');
    a.compacted(index);
    expect(index).toBeGreaterThanOrEqual(gap + 2);
    for (let i = 0; i < 30 && !held.some((e) => type(e) === 'SnapshotChunk'); i++) settle(net, 1);
    const snapshot = held.find((e) => type(e) === 'SnapshotChunk') as Envelope;
    expect(snapshot).toBeDefined();
    net.filter = undefined;

    // As n2 in seed 9717: the snapshot, then the Learn that decides the placeholder's slot and on past the snapshot.
    c.node.step(snapshot);
    c.node.step(learn);
    expect(c.node.commit).toBeGreaterThanOrEqual(index);
    // The install's marks alone: the learned values are not in this save.
    const marks = c.driver.take() as NonNullable<ReturnType<typeof c.driver.take>>;
    expect(marks.hardState).toBeDefined();
    expect(marks.entries).toHaveLength(0);
    c.driver.persist(marks);
    c.driver.complete(marks);
    // Stored: the marks, and a commit point the durable log backs (the placeholder's slot is not decided on disk).
    expect(decodeHardState(c.storage.initialState().hardState as Uint8Array).commit).toBeLessThan(gap);
    // The next save carries the learned values (the install was dropped: c learned past the snapshot); it is lost.
    expect(net.crashMidSave('c', 0)).toBe(true);
    expect(c.storage.term(gap)).toBe(0);
    expect(c.storage.snapshot()).toBeUndefined();

    net.restart('c');
    // The placeholder is an empty slot, never a decided one: c learns slot `gap` again instead of applying it.
    expect(c.node.commit).toBeLessThan(gap);
    // a compacted past the gap: c is caught up by a's snapshot (sent at most once per election timeout).
    until(net, () => c.node.commit >= gap + 2 && c.appliedIndex >= gap + 2, 40);
    expect(c.applied).toEqual(values);
  });
});
