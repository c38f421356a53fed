import type { Envelope, LogEntry, NodeId, Ready } from '@consensus-kit/core';
import { saveSteps } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { TestNetwork } from './network';
import { cluster, dec, elect, enc, settle, steal, type, value } from './helpers';

/**
 * Issue #18: one test per mutant of src/ that survived the last break-it pass. Each drives the network into the
 * corner the rule exists for and asserts what the rule promises; TestNetwork also checks Multi-Paxos'
 * invariants (a chosen value never changes, one value per slot and ballot, promises kept) after every Ready.
 */

/** Steps `env` into its target and persists only the first `keep` save steps of the Ready it makes, then crashes it. */
function tornAfter(net: TestNetwork, env: Envelope, keep: (rd: Ready) => number): Ready {
  const r = net.get(env.to);
  r.node.step(env);
  const rd = r.driver.take();
  if (rd === undefined) throw new Error(`${env.to} made no Ready`);
  r.driver.persist(rd, keep(rd));
  net.crash(env.to);
  return rd;
}

describe('mutant 1: handleLearn keeps the higher ballot of the same value (Paxos Made Simple 2.3)', () => {
  it('a Learn at a lower ballot does not erase the only durable evidence of a higher acceptance, so the promise survives a restart', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    const b1 = net.get('a').node.ballot;
    // x is chosen in slot 2 at a's ballot by a and b; b never hears that it was decided.
    net.block('a', 'c');
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    expect(net.get('a').node.commit).toBe(2);
    expect(net.get('b').node.commit).toBe(1);
    // c takes over with a (b never sees c's Prepare): c re-proposes x in slot 2 at its own ballot.
    net.heal();
    net.block('a', 'b');
    net.block('b', 'a');
    net.filter = (e) => !(e.from === 'c' && e.to === 'b' && type(e) === 'Prepare');
    net.get('c').node.campaign(true);
    net.processAll();
    const toB: Envelope[] = [];
    for (let guard = 0; net.queue.length > 0 && guard < 1000; guard++) {
      const env = net.queue[0] as Envelope;
      if (env.from === 'c' && env.to === 'b') toB.push(...steal(net, (e) => e === env));
      else net.deliverOne();
    }
    net.filter = undefined;
    const c = net.get('c').node;
    expect(c.status().role).toBe('leader');
    const b3 = c.ballot;
    expect(b3).toBeGreaterThan(b1 + 1);
    // b accepts x at c's ballot (phase 2 implies the promise) and crashes with the value durable, not the hard state.
    const accept = toB.find((e) => type(e) === 'Accept' && (e.msg as { entries: LogEntry[] }).entries.some((x) => x.index === 2)) as Envelope;
    tornAfter(net, accept, (rd) => {
      expect(rd.hardState).toBeDefined();
      return saveSteps(rd) - 1;
    });
    net.restart('b');
    expect(net.get('b').node.promised).toBe(b3);
    expect(net.get('b').node.entryAt(2)?.term).toBe(b3);
    // a knows slot 2 decided (x at its own ballot) and streams it to b; c's messages to b are lost meanwhile.
    net.heal();
    net.block('c', 'b');
    net.queue.push({ from: 'b', to: 'a', msg: { type: 'CatchupRequest', from: 2 } });
    net.deliver();
    expect(net.get('b').node.commit).toBeGreaterThanOrEqual(2);
    expect(value(net.get('b').node.entryAt(2))).toBe('x');
    // b keeps its vote at the higher ballot: after another restart it still refuses a ballot between the two.
    net.restart('b');
    expect(net.get('b').node.promised).toBeGreaterThanOrEqual(b3);
    net.queue.push({ from: 'a', to: 'b', msg: { type: 'Prepare', ballot: b1 + 1, commit: 1 } });
    const out = net.deliver().filter((d) => d.env.from === 'b' && !d.dropped);
    expect(out.map((d) => type(d.env))).toEqual(['Nack']);
  });
});

describe('mutant 2: an acceptor never rewrites a slot at or below its commit point (core Ready contract; PMMC 3)', () => {
  it('a new leader whose phase 1 started below the acceptor\'s commit point re-proposes a decided slot: the acceptor keeps it', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    const b1 = net.get('a').node.ballot;
    // x is decided in slot 2 on a and b; c never hears of it.
    net.partition(['c']);
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    settle(net, 2, ['a', 'b']);
    expect(net.get('b').node.commit).toBe(2);
    expect(net.get('c').node.commit).toBe(1);
    // a crashes; c's phase 1 starts from its own commit point (1), so it re-proposes x in slot 2 at its ballot.
    net.crash('a');
    net.heal();
    const writes: LogEntry[] = [];
    const b = net.get('b');
    net.filter = (e) => {
      if (e.to === 'b' && type(e) === 'Accept') for (const x of (e.msg as { entries: LogEntry[] }).entries) if (x.index <= b.node.commit) writes.push(x);
      return true;
    };
    net.get('c').node.campaign(true);
    net.deliver();
    net.filter = undefined;
    expect(net.get('c').node.status().role).toBe('leader');
    expect(writes.map((e) => e.index)).toContain(2); // the corner was reached: b was asked to accept its decided slot 2
    // The decided slot keeps the value and the ballot it was decided with (a Ready never rewrites it).
    expect(value(b.node.entryAt(2))).toBe('x');
    expect(b.node.entryAt(2)?.term).toBe(b1);
    expect(b.storage.entries(2, 3)[0]?.term).toBe(b1);
  });

  it('an Accept at a higher ballot carrying another value for a decided slot changes nothing the replica applied, even across a restart', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    settle(net, 2);
    const b = net.get('b');
    expect(b.node.commit).toBe(2);
    // A faulty proposer (a bug, a corrupted disk) sends a well-formed Accept above b's promise for slot 2.
    const ballot = b.node.promised + 4096;
    net.queue.push({ from: 'c', to: 'b', msg: { type: 'Accept', ballot, commit: 0, entries: [{ index: 2, term: ballot, type: 'command', data: enc.encode('w') }] } });
    net.deliver();
    expect(value(b.node.entryAt(2))).toBe('x');
    net.restart('b');
    net.deliver();
    expect(b.applied).toEqual(['x']);
  });
});

describe('mutant 3: a snapshot install that may drop accepted values marks amnesia first (Paxos Made Live 5.1)', () => {
  it('an install torn after the snapshot, before the values above it: the restarted acceptor makes no promise, so a chosen value is not lost', () => {
    const net = cluster(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a');
    // c misses slots 2..5; a and b decide them, and a compacts them into a snapshot.
    net.partition(['c']);
    for (const x of ['x2', 'x3', 'x4', 'x5']) a.node.propose(enc.encode(x));
    net.deliver();
    settle(net, 2, ['a', 'b']);
    expect(a.node.commit).toBe(5);
    const at = net.snapshot('a');
    a.node.compacted(at);
    expect(at).toBe(5);
    // v is chosen in slot 6 by a and c (b misses it): c accepts slot 6 while it still lacks 2..5.
    net.heal();
    net.block('a', 'b');
    net.block('b', 'a');
    const snapshots: Envelope[] = [];
    net.filter = (e) => {
      if (type(e) !== 'SnapshotChunk') return true;
      snapshots.push(e);
      return false;
    };
    a.node.propose(enc.encode('v'));
    net.deliver();
    expect(a.node.commit).toBe(6);
    expect(a.applied).toContain('v');
    expect(value(net.get('c').node.entryAt(6))).toBe('v');
    // c's stalled commit point gets it a's snapshot (slots up to 5); c holds a vote above it.
    settle(net, 2, ['a']);
    net.filter = undefined;
    expect(snapshots.length).toBeGreaterThan(0);
    const c = net.get('c');
    c.node.step(snapshots[0] as Envelope);
    net.process('c'); // the marks
    // The install's save tears right after the snapshot: the accepted value in slot 6 is gone from c's disk.
    const rd = c.driver.take() as Ready;
    expect(rd.snapshot?.index).toBe(5);
    c.driver.persist(rd, 1);
    net.crash('c');
    expect(c.storage.lastIndex()).toBe(5);
    // a, the only other holder of v, crashes; b and c must not choose another value in slot 6.
    net.crash('a');
    net.restart('c');
    net.heal();
    net.get('b').node.campaign(true);
    net.deliver();
    settle(net, 3, ['b', 'c']);
    if (net.get('b').node.status().role === 'leader') {
      try {
        net.get('b').node.propose(enc.encode('w'));
      } catch {
        // not leading: nothing proposed
      }
      net.deliver();
    }
    expect(net.get('b').node.commit).toBeLessThan(6);
    // Liveness once a is back: v stays in slot 6 everywhere.
    net.restart('a');
    settle(net, 30);
    for (const id of ['a', 'b', 'c'] as NodeId[]) {
      expect(net.get(id).node.commit).toBeGreaterThanOrEqual(6);
      expect(net.get(id).applied).toEqual(['x2', 'x3', 'x4', 'x5', 'v']);
    }
  });
});

describe('mutant 4: a slot is chosen by a phase-2 quorum of the configuration that governs it (PMMC 4; Flexible Paxos 3)', () => {
  it('one acknowledgement that spans a configuration\'s activation point commits only the slots before it', () => {
    const net = cluster(['a', 'b', 'c'], { window: 3, maxBatch: 2, maxInflight: 1 });
    net.addNode('d', []);
    net.addNode('e', []);
    elect(net, 'a');
    const a = net.get('a').node;
    expect(a.commit).toBe(1);
    // {a, b, c} -> {a, d, e}: the change in slot 2 governs slots from 2 + WINDOW = 5 on. Only b accepts now; d
    // only answers phase 1 (so a may propose slot 5), its Accepts are lost; c and e hear nothing.
    const acks: [number, number][] = [];
    let dropped4 = false;
    net.filter = (e) => {
      const t = type(e);
      if ([e.from, e.to].some((x) => x === 'c' || x === 'e')) return false;
      if (e.from === 'a' && e.to === 'd') return t === 'Prepare';
      if (e.from === 'd') return t === 'Promise';
      if (e.from === 'a' && e.to === 'b' && t === 'Accept' && !dropped4) {
        const ents = (e.msg as { entries: LogEntry[] }).entries;
        if (ents.length === 1 && ents[0]?.index === 4) return !(dropped4 = true);
      }
      if (e.from === 'b' && t === 'Accepted') acks.push([(e.msg as { from: number }).from, (e.msg as { to: number }).to]);
      return true;
    };
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'b' }, { op: 'remove', node: 'c' }, { op: 'addVoter', node: 'd' }, { op: 'addVoter', node: 'e' }] });
    for (const x of ['x', 'y', 'z']) a.propose(enc.encode(x));
    // Slots 2 (the change), 3 and 4 (no-ops: proposeConfigChange fills the window at once); x, y, z wait. Batches
    // of two, one in flight: b acknowledges 2..3, a decides the change; its Accept of 4 alone is lost; d's promise
    // lets a put x in slot 5 (the new configuration's first slot); the
    // retransmission after a heartbeat carries 4..5 in one batch, acknowledged by b in one message.
    net.deliver();
    settle(net, 3, ['a']);
    net.filter = undefined;
    expect(acks).toContainEqual([4, 5]);
    expect(a.membership.configAt(5).voters).toEqual(['a', 'd', 'e']);
    // Slot 4 is the old configuration's (a and b suffice); slot 5 needs two of a, d, e.
    expect(a.commit).toBe(4);
    expect(value(a.entryAt(5))).toBe('x');
    net.heal();
    settle(net, 10);
    for (const id of ['a', 'd', 'e'] as NodeId[]) expect(net.get(id).applied).toEqual(['x', 'y', 'z']);
  });
});

/**
 * The leader's next Ready that writes `slot`: a Ready that sends its Accepts ahead of the write (ready.ts, Raft
 * thesis 10.2.1) is completed on the way, as a host would.
 */
function takeWriting(net: TestNetwork, id: NodeId, slot: number): Ready {
  const r = net.get(id);
  for (let i = 0; i < 3; i++) {
    const rd = r.driver.take() as Ready;
    if (rd.entries.some((e) => e.index === slot)) return rd;
    r.driver.persist(rd);
    r.driver.complete(rd);
  }
  throw new Error(`no Ready of ${id} writes slot ${slot}`);
}

describe('mutant 5: the leader counts its own acceptance only once it is durable (Paxos Made Simple 2.3; PMMC 3)', () => {
  it('with a phase-2 quorum of one, a slot whose only vote is the leader\'s own write still at the disk is not chosen', () => {
    // Flexible Paxos 3: Q2 = 1 (the leader alone), Q1 = 3. The host hands a Ready to a slow disk and goes on
    // stepping messages meanwhile, as the simulator does.
    const net = cluster(['a', 'b', 'c'], { phase1Quorum: 3, phase2Quorum: 1 });
    elect(net, 'a');
    const a = net.get('a');
    a.node.propose(enc.encode('w'));
    net.processAll();
    // b's acknowledgement of w is on its way back when a proposes x.
    while (net.queue.length > 0 && !(net.queue[0]?.to === 'b' && type(net.queue[0]) === 'Accept')) net.deliverOne();
    const acceptW = net.queue.shift() as Envelope;
    net.get('b').node.step(acceptW);
    net.process('b');
    const ack = steal(net, (e) => e.from === 'b' && e.to === 'a' && type(e) === 'Accepted')[0] as Envelope;
    expect(ack).toBeDefined();
    const xSlot = a.node.nextSlot;
    a.node.propose(enc.encode('x'));
    const rd = takeWriting(net, 'a', xSlot); // x's slot, at the disk
    a.node.step(ack);
    net.check();
    expect(a.node.commit).toBe(xSlot - 1);
    // The disk loses the save and a crashes: x was never chosen, so the next leader may put y there.
    a.driver.persist(rd, 0);
    net.crash('a');
    net.restart('a');
    net.queue = [];
    elect(net, 'b');
    net.get('b').node.propose(enc.encode('y'));
    net.deliver();
    settle(net, 3);
    for (const id of net.ids()) expect(net.get(id).applied).toEqual(['w', 'y']);
  });

  it('a proposal taken while the previous Ready is at the disk is not counted when that Ready completes', () => {
    const net = cluster(['a', 'b', 'c'], { phase1Quorum: 3, phase2Quorum: 1 });
    elect(net, 'a');
    const a = net.get('a');
    const xSlot = a.node.nextSlot;
    a.node.propose(enc.encode('x'));
    const r1 = takeWriting(net, 'a', xSlot); // x at the disk
    a.node.propose(enc.encode('lost')); // arrives meanwhile: in the next Ready, not in this one
    expect(r1.entries.map((e) => e.index)).not.toContain(xSlot + 1);
    a.driver.persist(r1);
    a.driver.complete(r1);
    net.check();
    expect(a.node.commit).toBe(xSlot);
    // The next save is lost with a crash: 'lost' was never chosen; the next leader may put y in its slot.
    const r2 = a.driver.take() as Ready;
    a.driver.persist(r2, 0);
    net.crash('a');
    net.restart('a');
    net.queue = net.queue.filter((e) => e.from !== 'a');
    elect(net, 'b');
    net.get('b').node.propose(enc.encode('y'));
    net.deliver();
    settle(net, 3);
    for (const id of net.ids()) expect(net.get(id).applied).toEqual(['x', 'y']);
  });
});

describe('mutant 6: a leader lease is shorter than the followers\' stickiness by the clock-drift margin (Paxos Made Live 5.2)', () => {
  for (const [seed, phase] of [[1, 0], [11, 6]] as const) {
    it(`followers whose clocks run 13/7 times as fast elect a new leader; the old one serves no lease read that misses its write (seed ${seed})`, () => {
      // The default drift bound, 0.3: clock rates in [0.7, 1.3], so a follower's clock may run up to 13/7 times the
      // leader's. Seed 11 and a phase of 6/7 tick are the tightest case: b's election timeout is the shortest (E),
      // and the followers' E-th tick falls 5 + 5/13 leader ticks after the round (E * 0.7 / 1.3 leader ticks).
      const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1, leaseReads: true }, seed);
      elect(net, 'a');
      const a = net.get('a');
      a.node.readIndex(enc.encode('warm'));
      net.processAll();
      expect(a.reads.map((r) => dec.decode(r.ctx))).toEqual(['warm']); // served on the lease
      // a is cut off right after a heartbeat round the followers answered. Their clocks run at 1.3 / 0.7 times a's
      // rate (13 of their ticks for 7 of a's): b or c times out, wins phase 1 and decides y.
      net.partition(['a']);
      if (seed === 11) expect(net.get('b').node.timeout).toBe(10);
      const t0 = a.node.now;
      let chosen = 0;
      let credit: number = phase;
      for (let i = 0; i < 20 && chosen === 0; i++) {
        net.tick('a');
        for (credit += 13; credit >= 7; credit -= 7) {
          for (const id of ['b', 'c'] as NodeId[]) net.tick(id);
          net.deliver();
        }
        const leader = (['b', 'c'] as NodeId[]).find((id) => net.get(id).node.status().role === 'leader');
        if (leader !== undefined) {
          const l = net.get(leader).node;
          l.propose(enc.encode('y'));
          net.deliver();
          net.tick(leader);
          net.deliver();
          expect(net.get(leader).applied).toContain('y');
          chosen = l.commit;
        }
      }
      expect(chosen).toBeGreaterThan(0); // the corner was reached
      // a, still leading in its own eyes, is asked for a read before it notices: a lease read must not miss y.
      if (seed === 11) expect(a.node.now - t0).toBe(5); // decided before a's 6th tick since the round
      a.node.readIndex(enc.encode('after'));
      net.processAll();
      for (const r of a.reads) if (dec.decode(r.ctx) === 'after') expect(r.index).toBeGreaterThanOrEqual(chosen);
    });
  }
});

describe('mutant 7: a new leader\'s reads cover what phase 1 reported (PMMC 3; Paxos Made Simple 2.2, P2c)', () => {
  it('re-proposals beyond the window: no read is released with an index below the highest slot phase 1 reported', () => {
    const net = cluster(['a', 'b', 'c'], { window: 2 });
    elect(net, 'a');
    // a and b decide x2..x5 while c is cut off; a's clients saw them.
    net.partition(['c']);
    for (const x of ['x2', 'x3', 'x4', 'x5']) net.get('a').node.propose(enc.encode(x));
    net.deliver();
    settle(net, 3, ['a', 'b']);
    expect(net.get('a').applied).toEqual(['x2', 'x3', 'x4', 'x5']);
    net.crash('a');
    net.heal();
    // c wins phase 1 with b (reported: slots 2..5) and may re-propose only 2..3 (window 2 above its commit 1).
    const c = net.get('c');
    c.node.campaign(true);
    net.processAll();
    for (let d = net.deliverOne(); d !== undefined && c.node.status().role !== 'leader'; d = net.deliverOne());
    expect(c.node.status().role).toBe('leader');
    expect(c.node.nextSlot - 1).toBeLessThan(5);
    c.node.readIndex(enc.encode('r'));
    net.processAll();
    // Its heartbeat round is answered before any of its re-proposals is accepted.
    const accepts = steal(net, (e) => e.from === 'c' && type(e) === 'Accept');
    net.deliver();
    net.queue.push(...accepts);
    net.deliver();
    settle(net, 5);
    expect(c.applied).toEqual(['x2', 'x3', 'x4', 'x5']);
    expect(c.reads.map((r) => dec.decode(r.ctx))).toEqual(['r']);
    for (const r of c.reads) expect(r.index).toBeGreaterThanOrEqual(5);
  });
});
