import type { Envelope } from '@consensus-kit/core';
import { saveSteps } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { decodeHardState } from '../src/hard-state';
import { cluster, dec, elect, enc, settle, steal, type, value } from './helpers';

/**
 * Break-it scenarios (B3): each one drives the network into the corner a Paxos rule exists for and asserts what
 * the rule promises. TestNetwork checks Multi-Paxos' invariants (a chosen value never changes, one value per
 * slot and ballot, promises kept, one leader per ballot) after every Ready, so a violation throws mid-scenario.
 */

describe('acceptor: promises bind phase 2 (Paxos Made Simple 2.2, P1a)', () => {
  it('an Accept of an old leader that arrives after a higher promise is refused, so no second value is chosen', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    // a proposes x in slot 2; its Accepts are held back in the network.
    net.get('a').node.propose(enc.encode('x'));
    net.processAll();
    const stale = steal(net, (e) => e.from === 'a' && type(e) === 'Accept');
    expect(stale.map((e) => e.to).sort()).toEqual(['b', 'c']);
    // c wins phase 1 with b while a is cut off; b reported nothing for slot 2.
    net.partition(['a']);
    net.get('c').node.campaign(true);
    net.deliver();
    expect(net.get('c').node.status().role).toBe('leader');
    net.heal();
    // The old leader's Accept reaches b now: b promised c's higher ballot and must refuse it.
    net.queue.push(...stale.filter((e) => e.to === 'b'));
    const replies = net.deliver().filter((d) => d.env.from === 'b' && d.env.to === 'a');
    expect(replies.map((d) => type(d.env))).toEqual(['Nack']);
    expect(value(net.get('b').node.entryAt(2))).toBeUndefined();
    // c fills slot 2 with y: the only value ever chosen there (the invariants would throw otherwise).
    net.get('c').node.propose(enc.encode('y'));
    net.deliver();
    settle(net, 3);
    for (const id of net.ids()) expect(net.get(id).applied).toEqual(['y']);
  });
});

describe('acceptor: a torn save (Paxos Made Simple 2.3)', () => {
  it('a restarted acceptor whose hard state tore after the accepted values keeps the promise those values imply', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    // c campaigns; its Prepare and heartbeats to b are lost, so b first hears c's ballot in an Accept (phase 2
    // implies the promise).
    net.filter = (e) => !(e.from === 'c' && e.to === 'b');
    net.get('c').node.campaign(true);
    net.deliver();
    net.filter = undefined;
    const c = net.get('c').node;
    expect(c.status().role).toBe('leader');
    const ballot = c.ballot;
    c.propose(enc.encode('z'));
    net.processAll();
    const accept = steal(net, (e) => e.from === 'c' && e.to === 'b' && type(e) === 'Accept');
    expect(accept).toHaveLength(1);
    // b accepts, and crashes with the accepted values durable but not the hard state that follows them.
    const b = net.get('b');
    b.node.step(accept[0] as Envelope);
    const rd = b.driver.take();
    expect(rd).toBeDefined();
    expect(rd?.hardState).toBeDefined();
    b.driver.persist(rd!, saveSteps(rd!) - 1);
    net.crash('b');
    expect(decodeHardState(b.storage.raw.hardState as Uint8Array).promised).toBeLessThan(ballot);
    net.restart('b');
    expect(net.get('b').node.promised).toBe(ballot);
    // A Prepare between the stored promise and the accepted ballot is refused.
    net.queue.push({ from: 'a', to: 'b', msg: { type: 'Prepare', ballot: ballot - 1, commit: 1 } });
    const out = net.deliver().filter((d) => d.env.from === 'b');
    expect(out.map((d) => type(d.env))).toEqual(['Nack']);
  });
});

describe('reads across a reconfiguration (PMMC section 4 and the read barrier)', () => {
  it('a new leader that has not decided a configuration change serves no read that misses a value chosen under the new configuration', () => {
    const net = cluster(['a', 'b', 'c'], { window: 3 });
    net.addNode('d', []);
    net.addNode('e', []);
    elect(net, 'a');
    // a replaces b and c by d and e: the config entry in slot 2 governs slots from 2 + WINDOW = 5 on.
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'remove', node: 'b' }, { op: 'remove', node: 'c' }, { op: 'addVoter', node: 'd' }, { op: 'addVoter', node: 'e' }] });
    net.deliver();
    const a = net.get('a').node;
    expect(a.commit).toBe(4);
    // b and c accepted slots 2..4 but never heard they were decided: they are cut off now.
    expect(net.get('b').node.commit).toBe(1);
    expect(net.get('c').node.commit).toBe(1);
    net.partition(['b', 'c']);
    // a writes x in slot 5 with the new configuration's quorum (a, d, e), and applies it: a client saw it.
    a.propose(enc.encode('x'));
    net.deliver();
    expect(net.get('a').applied).toEqual(['x']);
    // c wins phase 1 for slots 2.. with b (the old configuration's quorum) and is asked for a read at once.
    net.get('c').node.campaign(true);
    net.processAll();
    for (let d = net.deliverOne(); d !== undefined && net.get('c').node.status().role !== 'leader'; d = net.deliverOne());
    expect(net.get('c').node.status().role).toBe('leader');
    net.get('c').node.readIndex(enc.encode('r'));
    net.processAll();
    // Its re-proposals of slots 2..4 are slower than the heartbeat round of the read.
    const accepts = steal(net, (e) => e.from === 'c' && type(e) === 'Accept');
    expect(accepts.length).toBeGreaterThan(0);
    net.deliver();
    net.queue.push(...accepts);
    net.deliver();
    settle(net, 5);
    // A read released at c must see x (slot 5): c cannot know slot 5 before the new configuration's quorum
    // answers its phase 1, so it must not release the read before then.
    for (const r of net.get('c').reads) expect(r.index).toBeGreaterThanOrEqual(5);
  });
});

describe('leases (Paxos Made Live 5.2) and leadership transfer', () => {
  it('a TimeoutNow delayed past the transfer timeout cannot elect a new leader while the old one serves lease reads', () => {
    const net = cluster(['a', 'b', 'c'], { leaseReads: true });
    elect(net, 'a');
    const a = net.get('a');
    a.node.readIndex(enc.encode('before'));
    net.processAll();
    expect(a.reads.map((r) => dec.decode(r.ctx))).toEqual(['before']); // served on the lease
    // a starts a transfer to b; its TimeoutNow is held up in the network.
    const timeoutNow: Envelope[] = [];
    net.filter = (e) => {
      if (type(e) !== 'TimeoutNow') return true;
      timeoutNow.push(e);
      return false;
    };
    a.node.transferLeadership('b');
    // The transfer times out; a goes on leading.
    settle(net, 12);
    net.filter = undefined;
    expect(timeoutNow.length).toBeGreaterThan(0);
    expect(a.node.status().role).toBe('leader');
    expect(a.node.status().details.transferringTo).toBeUndefined();
    // The stale TimeoutNow arrives: b runs a forced phase 1 with c; b's messages to a are lost.
    net.block('b', 'a');
    net.queue.push(timeoutNow[0] as Envelope);
    net.deliver();
    const b = net.get('b').node;
    if (b.status().role === 'leader') {
      b.propose(enc.encode('y'));
      net.deliver();
    }
    const chosen = b.commit;
    // a is asked for a read before its next tick: a lease read must not miss y.
    a.node.readIndex(enc.encode('after'));
    net.processAll();
    for (const r of a.reads) if (dec.decode(r.ctx) === 'after') expect(r.index).toBeGreaterThanOrEqual(chosen);
  });
});

describe('a leader that lost its quorum mid-phase-2', () => {
  it('decides nothing more, serves no read, and its unacknowledged proposals are never applied twice', () => {
    const net = cluster(['a', 'b', 'c', 'd', 'e']);
    elect(net, 'a');
    // a's Accept for p reaches only b; then a and b are cut off from the majority.
    net.filter = (e) => !(e.from === 'a' && type(e) === 'Accept' && e.to !== 'b');
    net.get('a').node.propose(enc.encode('p'));
    net.deliver();
    net.filter = undefined;
    net.partition(['a', 'b']);
    net.get('a').node.propose(enc.encode('q'));
    net.get('a').node.readIndex(enc.encode('r'));
    net.deliver();
    // The majority elects c and writes y.
    elect(net, 'c', 1);
    net.get('c').node.propose(enc.encode('y'));
    net.deliver();
    settle(net, 2);
    expect(net.get('c').applied).toContain('y');
    // a, still believing it leads (or not), released no read and decided nothing past slot 1.
    expect(net.get('a').reads).toEqual([]);
    expect(net.get('a').node.commit).toBe(1);
    net.heal();
    settle(net, 25);
    const applied = net.get('c').applied;
    for (const id of net.ids()) expect(net.get(id).applied).toEqual(applied);
    expect(applied.filter((x) => x === 'y')).toHaveLength(1);
    expect(applied.filter((x) => x === 'p').length).toBeLessThanOrEqual(1);
    expect(applied).not.toContain('q');
  });
});

describe('the read barrier (a quorum-confirmed heartbeat round)', () => {
  it('a deposed leader in a minority releases no read, even one its applied state already covers', () => {
    const net = cluster(['a', 'b', 'c', 'd', 'e']);
    elect(net, 'a');
    net.partition(['a', 'b']);
    elect(net, 'c', 1);
    net.get('c').node.propose(enc.encode('y'));
    net.deliver();
    expect(net.get('c').applied).toEqual(['y']);
    const a = net.get('a');
    expect(a.node.status().role).toBe('leader'); // it has not noticed yet
    a.node.readIndex(enc.encode('r'));
    net.deliver(); // b answers the heartbeat round: two of five
    expect(a.reads).toEqual([]);
  });
});

describe('reconfiguration takes effect WINDOW slots after its decision (PMMC section 4)', () => {
  it('slots up to s + WINDOW - 1 stay under the old configuration, on the leader and on every follower', () => {
    const net = cluster(['a', 'b', 'c'], { window: 3 });
    net.addNode('d', []);
    elect(net, 'a');
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'addVoter', node: 'd' }] });
    net.deliver();
    settle(net, 3);
    for (const id of ['a', 'b', 'c']) {
      const m = net.get(id).node.membership;
      expect(value(net.get(id).node.entryAt(2))).toBe('config');
      expect(m.configAt(4).voters).toEqual(['a', 'b', 'c']);
      expect(m.configAt(5).voters).toEqual(['a', 'b', 'c', 'd']);
    }
  });
});
