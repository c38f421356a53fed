import type { LogEntry, Role } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { encodeHardState } from './hard-state';
import { checkLogMatching, RaftInvariants, type RaftReplicaView } from './invariants';

function view(id: string, role: Role, term: number, terms: number[], commit: number, vote?: string): RaftReplicaView {
  const log: LogEntry[] = terms.map((t, i) => ({ index: i + 1, term: t, type: 'command', data: new Uint8Array([i, t]) }));
  return {
    id,
    role,
    term,
    commitIndex: commit,
    firstIndex: 1,
    lastIndex: log.length,
    entryAt: (i) => log[i - 1],
    persistedHardState: encodeHardState({ term, commit, vote }),
  };
}

describe('invariants', () => {
  it('accept a healthy cluster', () => {
    const inv = new RaftInvariants();
    const v = [view('a', 'leader', 2, [1, 1, 2], 3, 'a'), view('b', 'follower', 2, [1, 1, 2], 2, 'a'), view('c', 'follower', 2, [1, 1], 1)];
    expect(inv.observe(v)).toEqual([]);
  });

  it('election safety: two leaders in one term', () => {
    const inv = new RaftInvariants();
    expect(inv.observe([view('a', 'leader', 3, [1], 0)])).toEqual([]);
    expect(inv.observe([view('b', 'leader', 3, [1], 0)]).map((x) => x.invariant)).toEqual(['election-safety']);
  });

  it('log matching: same index and term, different history', () => {
    const a = view('a', 'follower', 3, [1, 2, 3], 0);
    const b = view('b', 'follower', 3, [1, 1, 3], 0);
    expect(checkLogMatching([a, b]).map((x) => x.invariant)).toEqual(['log-matching']);
    expect(checkLogMatching([a, view('c', 'follower', 3, [1, 2, 2], 0)])).toEqual([]);
  });

  it('state machine safety: different entries committed at one index', () => {
    const inv = new RaftInvariants();
    expect(inv.observe([view('a', 'follower', 2, [1, 1], 2)])).toEqual([]);
    expect(inv.observe([view('b', 'follower', 2, [1, 2], 2)]).map((x) => x.invariant)).toContain('state-machine-safety');
  });

  it('agreement compares entry identity (index, type, data), never terms (DESIGN r2)', () => {
    const inv = new RaftInvariants();
    const entry = (term: number): LogEntry => ({ index: 1, term, type: 'command', data: new Uint8Array([7]) });
    const at = (id: string, term: number, e: LogEntry): RaftReplicaView => ({ id, role: 'follower', term, commitIndex: 1, firstIndex: 1, lastIndex: 1, entryAt: (i) => (i === 1 ? e : undefined) });
    expect(inv.observe([at('a', 1, entry(1))])).toEqual([]);
    expect(inv.observe([at('b', 2, entry(2))])).toEqual([]);
    const other: LogEntry = { ...entry(1), data: new Uint8Array([8]) };
    expect(inv.observe([at('c', 2, other)]).map((x) => x.invariant)).toEqual(['state-machine-safety']);
  });

  it('leader completeness: a later leader lacks a committed entry', () => {
    const inv = new RaftInvariants();
    expect(inv.observe([view('a', 'follower', 1, [1, 1], 2)])).toEqual([]);
    expect(inv.observe([view('b', 'leader', 2, [1], 1)]).map((x) => x.invariant)).toEqual(['leader-completeness']);
  });

  it('vote stability: a persisted vote changes within a term, or the term goes back', () => {
    const inv = new RaftInvariants();
    expect(inv.observe([view('a', 'follower', 4, [1], 0, 'b')])).toEqual([]);
    expect(inv.observe([view('a', 'follower', 4, [1], 0, 'c')]).map((x) => x.invariant)).toEqual(['vote-stability']);
    expect(inv.observe([view('a', 'follower', 3, [1], 0, 'c')]).map((x) => x.invariant)).toEqual(['vote-stability']);
  });
});

describe('raftInvariants (simulator hooks)', () => {
  it('hold over a live cluster with a crashed replica, and catch a forged leader', async () => {
    const { TestNetwork } = await import('../test/network');
    const { raftInvariants } = await import('./invariants');
    const net = new TestNetwork(['a', 'b', 'c']);
    const [hook] = raftInvariants();
    const simView = () => ({
      replicas: [...net.replicas.values()].map((r) => ({ id: r.id, state: r.up ? ('up' as const) : ('crashed' as const), incarnation: 1, protocol: r.node, storage: r.storage })),
    });
    net.get('a').node.campaign();
    net.deliver();
    net.get('a').node.propose(new Uint8Array([1]));
    net.deliver();
    net.crash('c');
    expect(hook?.check(simView())).toBeUndefined();
    // A forged replica claiming leadership of term 1 as well.
    const forged = {
      status: () => ({ role: 'leader' as const, term: 1, commitIndex: 0, lastIndex: 0 }),
      firstIndex: () => 1,
      entryAt: () => undefined,
    };
    const v = simView();
    v.replicas.push({ id: 'z', state: 'up', incarnation: 1, protocol: forged as never, storage: net.get('c').storage });
    expect(hook?.check(v)).toMatch(/election-safety: two leaders in term 1/);
  });
});
