import {
  ConfigError,
  InvalidArgumentError,
  InvariantError,
  MemoryStorage,
  NotLeaderError,
  ProposalDroppedError,
  type Envelope,
  type LogEntry,
  type Ready,
} from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { TestNetwork, type Replica } from '../test/network';
import { decodeHardState, encodeHardState } from './hard-state';
import type { RaftMessage } from './messages';
import { RaftNode } from './rawnode';

const enc = new TextEncoder();

function elect(net: TestNetwork, id: string): void {
  net.get(id).node.campaign();
  net.deliver();
  expect(net.get(id).node.status().role).toBe('leader');
}

function drain(node: RaftNode): Ready[] {
  const out: Ready[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    out.push(rd);
    node.advance(rd);
  }
  return out;
}

function msgsOf(rds: Ready[]): Envelope<RaftMessage>[] {
  return rds.flatMap((r) => r.messages as Envelope<RaftMessage>[]);
}

describe('elections (thesis 3.4)', () => {
  it('election timeouts are drawn from [electionTicks, 2 * electionTicks)', () => {
    for (const [r, expected] of [
      [0, 10],
      [0.5, 15],
      [0.9999, 19],
    ] as const) {
      const node = new RaftNode({ id: 'a', peers: ['a', 'b', 'c'], storage: new MemoryStorage(), random: () => r, preVote: false });
      let ticks = 0;
      while (node.status().role === 'follower' && ticks < 100) {
        node.tick();
        ticks++;
      }
      expect(ticks).toBe(expected);
      expect(node.status().role).toBe('candidate');
    }
  });

  it('a single-voter cluster elects itself and commits alone', () => {
    const storage = new MemoryStorage();
    const node = new RaftNode({ id: 'a', peers: ['a'], storage });
    node.campaign();
    expect(node.status().role).toBe('leader');
    node.propose(enc.encode('x'));
    const committed: LogEntry[] = [];
    for (let i = 0; i < 5 && node.hasReady(); i++) {
      const rd = node.ready();
      storage.saveNow(rd);
      committed.push(...rd.committed);
      node.advance(rd);
    }
    expect(committed.map((e) => e.type)).toEqual(['noop', 'command']);
  });

  it('regression: a granted vote is in the hard state of the same Ready (persisted before the reply)', () => {
    const node = new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage: new MemoryStorage() });
    node.step({ from: 'a', to: 'b', msg: { type: 'RequestVote', term: 5, lastIndex: 0, lastTerm: 0 } });
    const rd = node.ready();
    const reply = rd.messages[0]?.msg as RaftMessage;
    expect(reply).toMatchObject({ type: 'RequestVoteResponse', term: 5, reject: false });
    expect(rd.hardState).toBeDefined();
    expect(decodeHardState(rd.hardState as Uint8Array)).toMatchObject({ term: 5, vote: 'a' });
  });

  it('regression: a restarted node does not vote twice in a term', () => {
    const storage = new MemoryStorage();
    const b = new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage });
    b.step({ from: 'a', to: 'b', msg: { type: 'RequestVote', term: 5, lastIndex: 0, lastTerm: 0 } });
    const rd = b.ready();
    storage.saveNow(rd);
    b.advance(rd);
    const b2 = new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage: new MemoryStorage(storage.raw) });
    expect(b2.votedFor).toBe('a');
    b2.step({ from: 'c', to: 'b', msg: { type: 'RequestVote', term: 5, lastIndex: 9, lastTerm: 4 } });
    const replies = msgsOf(drain(b2));
    expect(replies.map((m) => m.msg)).toEqual([{ type: 'RequestVoteResponse', term: 5, reject: true }]);
  });

  it('a joint configuration needs a majority of both halves to elect (thesis 4.3)', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    elect(net, 'a');
    net.addNode('d', []);
    net.addNode('e', []);
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'addVoter', node: 'd' }, { op: 'addVoter', node: 'e' }, { op: 'remove', node: 'b' }, { op: 'remove', node: 'c' }] });
    // Keep the joint entry from committing so everyone stays joint: cut the old members b and c off a first.
    net.block('a', 'b');
    net.block('a', 'c');
    net.deliver();
    expect(net.get('d').node.status().config.outgoing).toEqual(['a', 'b', 'c']);
    // d can gather a, d, e (a new-majority) but not an old majority (b, c hold no joint entry? they vote on logs).
    net.crash('a');
    net.heal();
    net.crash('b');
    net.crash('c');
    net.get('d').node.campaign();
    net.deliver();
    expect(net.get('d').node.status().role).toBe('candidate');
  });
});

describe('replication (thesis 3.5, 3.6)', () => {
  it('batches many proposals into one AppendEntries per follower', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a').node;
    for (let i = 0; i < 100; i++) a.propose(enc.encode(`p${i}`));
    net.processAll();
    const appends = net.queue.filter((e) => (e.msg as RaftMessage).type === 'AppendEntries');
    expect(appends).toHaveLength(2);
    expect((appends[0]?.msg as { entries: LogEntry[] }).entries).toHaveLength(100);
    net.deliver();
    expect(net.get('a').applied).toHaveLength(100);
    // commitNotify 'next-message': with nothing else to send, the commit index reaches followers with the tick.
    expect(net.get('c').applied).toHaveLength(0);
    net.tick('a');
    net.deliver();
    expect(net.get('c').applied).toHaveLength(100);
  });

  it('followers in step share one AppendEntries object (encoded once); a follower behind gets its own', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd']);
    net.serialize = false; // keep message identity, as an in-process hand-over to the transport does
    elect(net, 'a');
    const a = net.get('a').node;
    const appends = () => net.queue.filter((e) => e.from === 'a' && (e.msg as RaftMessage).type === 'AppendEntries');
    a.propose(enc.encode('first'));
    net.processAll();
    expect(appends().map((e) => e.to).sort()).toEqual(['b', 'c', 'd']);
    expect(new Set(appends().map((e) => e.msg)).size).toBe(1);
    // d misses that batch.
    net.queue = net.queue.filter((e) => e.to !== 'd');
    net.deliver();
    a.propose(enc.encode('second'));
    net.processAll();
    const second = appends();
    expect(second).toHaveLength(3);
    const shared = second[0]!.msg as { prevIndex: number; entries: LogEntry[] };
    expect(second.every((e) => e.msg === shared)).toBe(true);
    expect(shared.entries.map((e) => e.index)).toEqual([3]);
    // d rejects it (it lacks entry 2) and is sent its own AppendEntries from the entry it is missing.
    const delivered = net.deliver().map((d) => d.env);
    const forD = delivered.filter((e) => e.to === 'd' && (e.msg as RaftMessage).type === 'AppendEntries' && e.msg !== shared);
    expect(forD.length).toBeGreaterThan(0);
    expect((forD[0]!.msg as { entries: LogEntry[] }).entries.map((e) => e.index)).toEqual([2, 3]);
    expect(net.get('d').storage.lastIndex()).toBe(3);
  });

  it("commitNotify 'immediate' tells followers of a commit at once", () => {
    const net = new TestNetwork(['a', 'b', 'c'], { commitNotify: 'immediate' });
    elect(net, 'a');
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    expect(net.get('c').applied).toHaveLength(1);
    expect(() => new RaftNode({ id: 'a', peers: ['a'], storage: new MemoryStorage(), commitNotify: 'soon' as 'immediate' })).toThrow(ConfigError);
  });

  it('flow control: a silent follower costs at most maxInflightMsgs appends', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxInflightMsgs: 4, maxSizePerMsg: 1 });
    elect(net, 'a');
    net.block('c', 'a'); // c receives but its acknowledgements are lost
    const a = net.get('a').node;
    for (let i = 0; i < 50; i++) {
      a.propose(enc.encode(`p${i}`));
      net.deliver();
    }
    const pr = a.status().details.progress?.c;
    expect(pr?.state).toBe('replicate');
    expect(pr?.inflight).toBe(4);
    // Each proposal's AppendEntries carried the commit of the one before; the last commit needs a tick.
    expect(net.get('b').applied).toHaveLength(49);
    expect(net.get('c').node.status().lastIndex).toBeLessThan(10);
    // Acknowledgements flow again: c catches up.
    net.heal();
    net.tickAll(2);
    net.deliver();
    net.tickAll(2);
    net.deliver();
    expect(net.get('c').applied).toHaveLength(50);
  });

  it('pipelining: several appends in flight to one follower before any acknowledgement', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxSizePerMsg: 1 });
    elect(net, 'a');
    const a = net.get('a').node;
    for (let i = 0; i < 5; i++) a.propose(enc.encode(`p${i}`));
    net.processAll();
    const toB = net.queue.filter((e) => e.to === 'b' && (e.msg as RaftMessage).type === 'AppendEntries');
    expect(toB.length).toBe(5);
    expect(a.status().details.progress?.b?.inflight).toBe(5);
  });

  it('fast backtracking: one round trip per conflicting term, not per entry', () => {
    // Leader b holds 1/1 then 40 entries of term 2; follower a holds 1/1 then 40 entries of term 1.
    const entries = (term: number): LogEntry[] => [
      { index: 1, term: 1, type: 'noop', data: new Uint8Array() },
      ...Array.from({ length: 40 }, (_, i) => ({ index: i + 2, term, type: 'command' as const, data: enc.encode(`t${term}-${i}`) })),
    ];
    const sb = new MemoryStorage();
    sb.saveNow({ hardState: encodeHardState({ term: 2, commit: 1 }), entries: entries(2) });
    const sa = new MemoryStorage();
    sa.saveNow({ hardState: encodeHardState({ term: 1, commit: 1 }), entries: entries(1) });
    const b = new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage: sb, preVote: false });
    const a = new RaftNode({ id: 'a', peers: ['a', 'b', 'c'], storage: sa, preVote: false });
    b.campaign();
    b.step({ from: 'c', to: 'b', msg: { type: 'RequestVoteResponse', term: 3, reject: false } });
    expect(b.status().role).toBe('leader');
    const pump = (from: RaftNode, to: RaftNode, storage: MemoryStorage): Envelope<RaftMessage>[] => {
      const sent: Envelope<RaftMessage>[] = [];
      while (from.hasReady()) {
        const rd = from.ready();
        (from === a ? sa : sb).saveNow(rd);
        for (const env of rd.messages as Envelope<RaftMessage>[]) {
          if (env.to === to.id) {
            sent.push(env);
            to.step(env);
          }
        }
        from.advance(rd);
      }
      void storage;
      return sent;
    };
    let rejects = 0;
    const trace: string[] = [];
    for (let round = 0; round < 10; round++) {
      trace.push(...pump(b, a, sb).map((e) => JSON.stringify({ ...e.msg, entries: undefined })));
      pump(b, a, sb);
      const fromA = pump(a, b, sa);
      trace.push(...fromA.map((e) => `a: ${JSON.stringify({ ...e.msg, entries: undefined })}`));
      rejects += fromA.filter((e) => e.msg.type === 'AppendEntriesResponse' && (e.msg as { reject: boolean }).reject).length;
    }
    expect(rejects).toBe(1);
    expect(a.termAt(41)).toBe(2);
    expect(a.termAt(42)).toBe(b.status().term);
  });

  it('regression (Figure 8): an entry of an earlier term is not committed by counting replicas', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
    elect(net, 'a');
    net.block('a', 'c');
    net.get('a').node.propose(enc.encode('old'));
    net.block('a', 'b'); // the entry stays on a only
    net.deliver();
    net.heal();
    // a restarts into a new term and wins with b; it sends the old entry to b before its no-op.
    net.crash('a');
    net.restart('a');
    net.get('a').node.campaign();
    net.deliver();
    net.get('a').node.campaign(); // the first attempt may collide with a's old term
    const deliveries = net.deliver();
    const a = net.get('a').node;
    expect(a.status().role).toBe('leader');
    // Every commit index a announced was either its own term's entry or earlier entries after it.
    for (const d of deliveries) {
      const m = d.env.msg as RaftMessage;
      if (d.env.from === 'a' && m.type === 'AppendEntries' && m.commit >= 2) {
        expect(a.termAt(m.commit)).toBe(a.status().term);
      }
    }
    expect(a.status().commitIndex).toBe(a.status().lastIndex);
  });

  it('restart: committed entries after options.applied are emitted again, in order, once the commit index is re-learned', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    for (const x of ['x', 'y', 'z']) net.get('a').node.propose(enc.encode(x));
    net.deliver();
    const b = net.get('b');
    const node = new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage: new MemoryStorage(b.storage.raw), applied: 2 });
    // The commit index is volatile (Figure 3.1): it is not made durable on its own, so nothing past `applied`
    // is known committed until the leader says so.
    expect(node.ready().committed).toEqual([]);
    const term = net.get('a').node.status().term;
    node.step({ from: 'a', to: 'b', msg: { type: 'Heartbeat', term, commit: 4, seq: 1 } });
    expect(node.ready().committed.map((e) => e.index)).toEqual([3, 4]);
    expect(() => new RaftNode({ id: 'b', peers: ['a', 'b', 'c'], storage: new MemoryStorage(b.storage.raw), applied: 99 })).toThrow(ConfigError);
  });
});

describe('the leader writes in parallel with its followers (thesis 10.2.1)', () => {
  function leaderOf3(): { a: RaftNode; storage: MemoryStorage } {
    const storage = new MemoryStorage();
    const a = new RaftNode({ id: 'a', peers: ['a', 'b', 'c'], storage, preVote: false, checkQuorum: false });
    a.campaign();
    let rd = a.ready();
    storage.saveNow(rd);
    a.advance(rd);
    for (const peer of ['b', 'c']) a.step({ from: peer, to: 'a', msg: { type: 'RequestVoteResponse', term: 1, reject: false } });
    expect(a.status().role).toBe('leader');
    while (a.hasReady()) {
      rd = a.ready();
      storage.saveNow(rd);
      a.advance(rd);
    }
    for (const peer of ['b', 'c']) a.step({ from: peer, to: 'a', msg: { type: 'AppendEntriesResponse', term: 1, index: 1, reject: false } });
    drain(a);
    expect(a.status().commitIndex).toBe(1);
    return { a, storage };
  }

  it('hands out AppendEntries in a Ready of their own, then the entries to write', () => {
    const { a, storage } = leaderOf3();
    a.propose(enc.encode('x'));
    const first = a.ready();
    expect(first.entries).toEqual([]);
    expect(first.hardState).toBeUndefined();
    const sent = first.messages.map((m) => m.msg as RaftMessage);
    expect(sent).toHaveLength(2);
    for (const m of sent) expect(m).toMatchObject({ type: 'AppendEntries', entries: [{ index: 2, term: 1, type: 'command' }] });
    a.advance(first);
    expect(a.hasReady()).toBe(true);
    const second = a.ready();
    expect(second.entries.map((e) => e.index)).toEqual([2]);
    expect(second.messages).toEqual([]);
    storage.saveNow(second);
    a.advance(second);
  });

  it('counts itself only once its write is durable, but commits on the followers alone', () => {
    const { a } = leaderOf3();
    a.propose(enc.encode('x'));
    const first = a.ready();
    a.advance(first);
    const write = a.ready(); // the leader's own write is in flight from here on
    a.step({ from: 'b', to: 'a', msg: { type: 'AppendEntriesResponse', term: 1, index: 2, reject: false } });
    expect(a.status().commitIndex).toBe(1); // b and an unwritten leader are not a majority
    a.step({ from: 'c', to: 'a', msg: { type: 'AppendEntriesResponse', term: 1, index: 2, reject: false } });
    expect(a.status().commitIndex).toBe(2); // b and c are
    a.advance(write);
  });

  it('a leader whose write is durable commits with one follower', () => {
    const { a, storage } = leaderOf3();
    a.propose(enc.encode('x'));
    a.advance(a.ready());
    const write = a.ready();
    a.step({ from: 'b', to: 'a', msg: { type: 'AppendEntriesResponse', term: 1, index: 2, reject: false } });
    expect(a.status().commitIndex).toBe(1);
    storage.saveNow(write);
    a.advance(write);
    expect(a.status().commitIndex).toBe(2);
  });

  it('never sends ahead of a hard state change, and never twice in a row', () => {
    const { a } = leaderOf3();
    // Messages that accompany a term change wait for it: the step down to term 2 is one Ready.
    a.propose(enc.encode('x'));
    a.step({ from: 'b', to: 'a', msg: { type: 'RequestVote', term: 2, lastIndex: 9, lastTerm: 1 } });
    const rd = a.ready();
    expect(rd.hardState).toBeDefined();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);

    // A leader with messages pending at every Ready still hands its entries out every other Ready.
    const { a: b, storage: bs } = leaderOf3();
    const written: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.propose(enc.encode(`p${i}`));
      const r = b.ready();
      written.push(...r.entries.map((e) => e.index));
      bs.saveNow(r);
      b.advance(r);
    }
    expect(written).toEqual([2, 3, 4, 5, 6, 7]);
  });
});

describe('proposals that cannot be accepted raise typed errors', () => {
  it('NotLeaderError with the leader hint on a follower', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    try {
      net.get('b').node.propose(enc.encode('x'));
      expect.unreachable();
    } catch (e) {
      expect(NotLeaderError.is(e)).toBe(true);
      expect((e as NotLeaderError).leaderHint).toBe('a');
    }
  });

  it('too-many-uncommitted, transfer-in-progress, config-change-in-progress', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxUncommittedBytes: 1000 });
    elect(net, 'a');
    const a = net.get('a').node;
    net.block('a', 'b');
    net.block('a', 'c');
    a.propose(new Uint8Array(600));
    expect(() => a.propose(new Uint8Array(600))).toThrow(expect.objectContaining({ reason: 'too-many-uncommitted' }));
    net.heal();
    net.deliver();
    net.tickAll(1);
    net.deliver();
    a.propose(new Uint8Array(600)); // committed bytes were released
    net.deliver();
    a.proposeConfigChange({ changes: [{ op: 'addLearner', node: 'd' }] });
    expect(() => a.proposeConfigChange({ changes: [{ op: 'addLearner', node: 'e' }] })).toThrow(
      expect.objectContaining({ reason: 'config-change-in-progress' }),
    );
    net.deliver();
    net.block('a', 'c');
    net.block('c', 'a');
    a.transferLeadership('c');
    expect(() => a.propose(enc.encode('x'))).toThrow(ProposalDroppedError);
    expect(() => a.propose(enc.encode('x'))).toThrow(expect.objectContaining({ reason: 'transfer-in-progress' }));
    expect(() => a.transferLeadership('zz')).toThrow(InvalidArgumentError);
    expect(() => a.proposeConfigChange({ changes: [{ op: 'remove', node: 'zz' }] })).toThrow(ProposalDroppedError);
  });

  it('bad arguments are typed errors', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a').node;
    expect(() => a.propose('x' as unknown as Uint8Array)).toThrow(InvalidArgumentError);
    expect(() => a.proposeConfigChange({ changes: [{ op: 'remove', node: 'zz' }] })).toThrow(ConfigError);
    expect(() => new RaftNode({ id: 'a', peers: ['a'], storage: new MemoryStorage(), readOnly: 'lease', checkQuorum: false })).toThrow(ConfigError);
  });
});

describe('reads (thesis 6.4)', () => {
  it('regression: a stale leader never serves a read, with ReadIndex or with an expired lease', () => {
    for (const readOnly of ['safe', 'lease'] as const) {
      const net = new TestNetwork(['a', 'b', 'c'], { readOnly });
      for (let i = 0; i < 40 && net.leader() === undefined; i++) {
        net.tickAll(1);
        net.deliver();
      }
      const old = net.leader();
      expect(old).toBeDefined();
      const oldId = old?.id as string;
      net.partition([oldId]);
      // The majority moves on and commits a write the old leader does not have.
      for (let i = 0; i < 40; i++) {
        net.tickAll(1);
        net.deliver();
      }
      const fresh = net.leader();
      expect(fresh?.id).not.toBe(oldId);
      fresh?.node.propose(enc.encode('w'));
      net.deliver();
      // The old leader, if it still thinks it leads, must not answer reads.
      const before = old?.reads.length ?? 0;
      try {
        old?.node.readIndex(enc.encode('r'));
      } catch (e) {
        expect(NotLeaderError.is(e)).toBe(true);
      }
      net.processAll();
      for (let i = 0; i < 5; i++) {
        net.tick(oldId);
        net.deliver();
      }
      expect(old?.reads.length).toBe(before);
    }
  });
});

describe('lease reads under clock drift (thesis 6.4.1)', () => {
  it('a lease read is never served once a new leader may exist, with the leader\'s clock 30% slow and the followers\' 30% fast (leaseDriftBound, default 0.3)', () => {
    let stale = 0;
    let exposed = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const net = new TestNetwork(['a', 'b', 'c'], { readOnly: 'lease' }, seed);
      for (let i = 0; i < 60 && net.leader() === undefined; i++) {
        net.tickAll(1);
        net.deliver();
      }
      const a = net.leader() as Replica;
      const others = ['a', 'b', 'c'].filter((x) => x !== a.id);
      a.node.propose(enc.encode('x'));
      net.deliver();
      // A heartbeat round acknowledged by both followers: the lease counts from the tick it left.
      a.node.readIndex(enc.encode('r0'));
      net.deliver();
      net.processAll();
      net.partition([a.id]);
      let wrote = false;
      // Real time in tenths: the leader ticks 7 times, each follower 13 times, per 10 steps.
      for (let k = 1; k <= 400 && a.node.status().role === 'leader'; k++) {
        if (Math.floor((k * 7) / 10) > Math.floor(((k - 1) * 7) / 10)) net.tick(a.id);
        const f = Math.floor((k * 13) / 10) - Math.floor(((k - 1) * 13) / 10);
        for (const id of others) net.tick(id, f);
        net.deliver();
        net.processAll();
        const fresh = net.leader();
        if (!wrote && fresh !== undefined && fresh.id !== a.id) {
          fresh.node.propose(enc.encode('w'));
          net.deliver();
          net.processAll();
          wrote = fresh.node.status().commitIndex >= fresh.node.status().lastIndex;
        }
        if (!wrote) continue;
        // A write the old leader does not have is committed: it must not answer a read locally any more.
        exposed++;
        const before = a.reads.length;
        try {
          a.node.readIndex(enc.encode(`r${k}`));
        } catch (e) {
          expect(NotLeaderError.is(e)).toBe(true);
        }
        net.processAll();
        if (a.reads.length > before) stale++;
      }
    }
    expect(exposed).toBeGreaterThan(0);
    expect(stale).toBe(0);
  });
});

describe('bad remote input is ignored', () => {
  it('malformed, misaddressed, unknown or stale messages never throw nor change state', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    const junk: unknown[] = [
      null,
      42,
      'x',
      {},
      { type: 'AppendEntries' },
      { type: 'AppendEntries', term: 1, prevIndex: 1, prevTerm: 1, entries: [{ index: 7, term: 1, type: 'command', data: new Uint8Array() }], commit: 1 },
      { type: 'AppendEntries', term: 1, prevIndex: 1, prevTerm: 1, entries: [{ index: 2, term: 1, type: 'weird', data: new Uint8Array() }], commit: 1 },
      { type: 'AppendEntries', term: -1, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
      { type: 'AppendEntriesResponse', term: 1, index: 1e9, reject: false },
      { type: 'AppendEntriesResponse', term: 1, index: 1, reject: true },
      { type: 'HeartbeatResponse', term: 1, seq: 1e9 },
      { type: 'InstallSnapshot', term: 1, index: 1, snapTerm: 1, config: { voters: 'a' }, total: 1, offset: 0, data: new Uint8Array(1) },
      { type: 'InstallSnapshot', term: 1, index: 1, snapTerm: 1, config: { voters: [], learners: [] }, total: 1, offset: 5, data: new Uint8Array(1) },
      { type: 'RequestVote', term: 0, lastIndex: 0, lastTerm: 0 },
      { type: 'Nope', term: 1 },
      { type: 'ReadIndexRequest', term: 1, ctx: 'x' },
    ];
    for (const id of ['a', 'b']) {
      const node = net.get(id).node;
      const before = JSON.stringify(node.status());
      for (const msg of junk) {
        expect(() => node.step({ from: 'c', to: id, msg })).not.toThrow();
        expect(() => node.step({ from: 'zz', to: id, msg })).not.toThrow();
      }
      expect(() => node.step(null as unknown as Envelope)).not.toThrow();
      expect(() => node.step({ from: 'c', to: 'someone-else', msg: { type: 'TimeoutNow', term: 9 } })).not.toThrow();
      net.processAll();
      expect(JSON.stringify(node.status())).toBe(before);
    }
    // Responses from a node outside the configuration are ignored by the leader.
    const a = net.get('a').node;
    a.step({ from: 'zz', to: 'a', msg: { type: 'AppendEntriesResponse', term: 1, index: 2, reject: false } });
    expect(a.status().details.progress?.zz).toBeUndefined();
    net.deliver();
    net.tickAll(3);
    net.deliver();
    expect(net.get('c').applied).toEqual(['x']);
  });

  it('regression: a removed node campaigning with higher terms does not disrupt the cluster', () => {
    // PreVote off: the removed node really raises its term. CheckQuorum's lease makes the others ignore it.
    const net = new TestNetwork(['a', 'b', 'c', 'd'], { preVote: false });
    elect(net, 'a');
    net.partition(['d']);
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'remove', node: 'd' }] });
    for (let i = 0; i < 5; i++) {
      net.tickAll(1);
      net.deliver();
    }
    expect(net.get('a').node.status().config.voters).toEqual(['a', 'b', 'c']);
    // d, cut off, never learned it was removed: it keeps campaigning.
    for (let i = 0; i < 60; i++) {
      net.tick('d');
      net.deliver();
    }
    expect(net.get('d').node.status().term).toBeGreaterThan(3);
    net.heal();
    for (let i = 0; i < 60; i++) {
      net.tickAll(1);
      net.deliver();
    }
    const s = net.get('a').node.status();
    expect(s.role).toBe('leader');
    expect(s.term).toBe(1);
  });

  it('regression: a stale snapshot racing with appends never rolls the log back', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { snapshotChunkBytes: 8 });
    elect(net, 'a');
    for (const x of ['x1', 'x2', 'x3']) net.get('a').node.propose(enc.encode(x));
    net.deliver();
    net.snapshot('a');
    const snap = net.get('a').storage.snapshot();
    expect(snap).toBeDefined();
    for (const x of ['y1', 'y2']) net.get('a').node.propose(enc.encode(x));
    net.deliver();
    const c = net.get('c');
    const before = c.node.status();
    // A delayed chunk of an old snapshot arrives after the appends that went further.
    c.node.step({
      from: 'a',
      to: 'c',
      msg: { type: 'InstallSnapshot', term: 1, index: snap?.index, snapTerm: snap?.term, config: snap?.config, total: snap?.data.length, offset: 0, data: snap?.data.subarray(0, 8) },
    });
    const rds = drain(c.node);
    expect(rds.some((r) => r.snapshot !== undefined)).toBe(false);
    expect(c.node.status().lastIndex).toBe(before.lastIndex);
    expect(msgsOf(rds).map((m) => m.msg)).toEqual([{ type: 'AppendEntriesResponse', term: 1, index: before.commitIndex, reject: false }]);
  });

  it('a follower keeps appending entries that arrive while its snapshot is being persisted', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { snapshotChunkBytes: 1 << 20 });
    elect(net, 'a');
    net.partition(['c']);
    for (const x of ['x1', 'x2', 'x3']) net.get('a').node.propose(enc.encode(x));
    net.deliver();
    net.tickAll(1);
    net.deliver();
    net.snapshot('a');
    net.heal();
    // Deliver by hand: c gets the snapshot, and before its Ready is handled, the next append.
    net.tick('a');
    const c = net.get('c');
    let snapReady: Ready | undefined;
    for (let i = 0; i < 50 && snapReady === undefined; i++) {
      const env = net.queue.shift();
      if (env === undefined) break;
      if (env.to !== 'c') {
        net.get(env.to).node.step(env);
        for (const id of ['a', 'b']) net.process(id);
        continue;
      }
      c.node.step(env);
      if (c.node.hasReady()) {
        const rd = c.node.ready();
        if (rd.snapshot !== undefined) snapReady = rd;
        else {
          c.storage.saveNow(rd);
          net.queue.push(...rd.messages);
          c.node.advance(rd);
        }
      }
      for (const id of ['a', 'b']) net.process(id);
    }
    expect(snapReady).toBeDefined();
    const rd = snapReady as Ready;
    // An append right after the snapshot index is accepted though the snapshot is not yet in storage.
    const snapIndex = rd.snapshot?.index as number;
    const entry: LogEntry = { index: snapIndex + 1, term: 1, type: 'command', data: enc.encode('late') };
    c.node.step({ from: 'a', to: 'c', msg: { type: 'AppendEntries', term: 1, prevIndex: snapIndex, prevTerm: 1, entries: [entry], commit: snapIndex } });
    c.storage.installSnapshotNow(rd.snapshot as NonNullable<Ready['snapshot']>);
    c.storage.saveNow(rd);
    c.node.advance(rd);
    const next = c.node.ready();
    expect(next.entries.map((e) => e.index)).toEqual([snapIndex + 1]);
    expect(next.truncateAfter).toBeUndefined();
    expect((next.messages[0]?.msg as RaftMessage).type).toBe('AppendEntriesResponse');
  });
});

describe('membership bookkeeping', () => {
  it('regression: a duplicated older AppendEntries does not undo a configuration already in the log', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxSizePerMsg: 1 });
    elect(net, 'a');
    const a = net.get('a').node;
    a.propose(enc.encode('x')); // index 2
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'b' }] }); // index 3
    net.processAll();
    const toC = net.queue.filter((e) => e.to === 'c' && (e.msg as RaftMessage).type === 'AppendEntries');
    expect(toC.map((e) => (e.msg as { entries: LogEntry[] }).entries.map((x) => x.index))).toEqual([[2], [3]]);
    net.queue = [];
    const c = net.get('c');
    for (const env of toC) c.node.step(env);
    net.process('c');
    expect(c.node.status().config.voters).toEqual(['a', 'c']);
    expect(c.node.status().commitIndex).toBe(1);
    // The network duplicates the first append (the entry before the config entry) and delivers it late.
    c.node.step(toC[0] as Envelope);
    net.process('c');
    expect(c.node.status().config.voters).toEqual(['a', 'c']);
    expect(c.node.status().lastIndex).toBe(3);
  });
});

describe('role changes', () => {
  it('illegal transitions throw InvariantError', () => {
    const node = new RaftNode({ id: 'a', peers: ['a', 'b', 'c'], storage: new MemoryStorage() });
    expect(() => (node as unknown as { raft: { becomeLeader(): void } }).raft.becomeLeader()).toThrow(InvariantError);
    const single = new RaftNode({ id: 'a', peers: ['a'], storage: new MemoryStorage() });
    single.campaign();
    expect(() => (single as unknown as { raft: { becomeCandidate(): void } }).raft.becomeCandidate()).toThrow(InvariantError);
    expect(() => (single as unknown as { raft: { becomePreCandidate(): void } }).raft.becomePreCandidate()).toThrow(InvariantError);
  });

  it('status reports per-peer progress on the leader', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    net.get('a').node.propose(enc.encode('x'));
    net.deliver();
    const s = net.get('a').node.status();
    expect(s.role).toBe('leader');
    expect(s.details.phase).toBe('leader');
    expect(s.details.progress?.b).toEqual({ match: 2, next: 3, state: 'replicate', inflight: 0, active: true, learner: false });
    expect(net.get('b').node.status().details.progress).toBeUndefined();
  });

  it('a pre-candidate reports the neutral role candidate, with its phase in details (thesis 9.6)', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.partition(['a']);
    net.get('a').node.campaign();
    net.deliver();
    const s = net.get('a').node.status();
    expect(s.role).toBe('candidate');
    expect(s.details.phase).toBe('pre-candidate');
    expect(s.term).toBe(0);
  });

  it('hasReady() is pure: asking, however often, changes nothing', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    elect(net, 'a');
    const a = net.get('a').node;
    a.propose(enc.encode('x'));
    a.readIndex(enc.encode('r'));
    const before = JSON.stringify(a.status());
    for (let i = 0; i < 5; i++) expect(a.hasReady()).toBe(true);
    expect(JSON.stringify(a.status())).toBe(before);
    const rd = a.ready();
    expect(rd.messages.length).toBeGreaterThan(0);
  });
});
