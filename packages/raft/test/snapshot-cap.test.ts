import { ConfigError, MemoryStorage } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { raft } from '../src/index';
import type { InstallSnapshot, RaftMessage } from '../src/messages';
import type { Raft } from '../src/raft';
import { RaftNode } from '../src/rawnode';
import { TestNetwork } from './network';

const enc = new TextEncoder();

/** a leads {a, b, c}; c is cut off while a commits 40 values, snapshots and compacts: c is behind a snapshot. */
function behindSnapshot(maxSnapshotBytes?: number): { net: TestNetwork; index: number; total: number } {
  const net = new TestNetwork(['a', 'b', 'c'], { snapshotChunkBytes: 64, ...(maxSnapshotBytes === undefined ? {} : { maxSnapshotBytes }) });
  net.get('a').node.campaign();
  net.deliver();
  expect(net.get('a').node.status().role).toBe('leader');
  net.partition(['c']);
  for (let i = 0; i < 40; i++) net.get('a').node.propose(enc.encode(`value-${i}`));
  net.deliver();
  net.tickAll(1);
  net.deliver();
  const index = net.snapshot('a');
  const total = (net.get('a').storage.snapshot()?.data.length ?? 0) as number;
  return { net, index, total };
}

/** The node's Raft state (private to RaftNode). */
const inner = (node: unknown): Raft => (node as { raft: Raft }).raft;

function settle(net: TestNetwork, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    net.tickAll(1);
    net.deliver();
  }
}

describe('maxSnapshotBytes (thesis 5.3 InstallSnapshot, Figure 5.3)', () => {
  it('a snapshot larger than the limit is refused before anything is allocated: the follower keeps its state, says why, stays a follower, and the others go on', () => {
    const { net, index, total } = behindSnapshot(200);
    expect(total).toBeGreaterThan(200);
    const c = net.get('c');
    const before = { term: c.node.status().term, commit: c.node.status().commitIndex, last: c.node.status().lastIndex, applied: [...c.applied] };
    const declared: number[] = [];
    const fromC: string[] = [];
    net.filter = (e) => {
      const m = e.msg as RaftMessage;
      if (e.to === 'c' && m.type === 'InstallSnapshot') declared.push((m as InstallSnapshot).total);
      if (e.from === 'c') fromC.push(m.type);
      return true;
    };
    net.heal();
    settle(net, 60);
    // The leader streamed it (and, stalled, streamed it again); every chunk was refused unanswered.
    expect(declared.length).toBeGreaterThan(4);
    expect(new Set(declared)).toEqual(new Set([total]));
    expect(fromC).not.toContain('InstallSnapshotResponse');
    const raw = inner(c.node);
    expect(raw.incoming).toBeUndefined();
    const s = c.node.status();
    expect(s.details.snapshotRefused).toBe(`snapshot ${index} from a: snapshot of ${total} bytes over the 200-byte limit`);
    expect(s.commitIndex).toBe(before.commit);
    expect(s.commitIndex).toBeLessThan(index);
    expect(s.lastIndex).toBe(before.last);
    expect(c.applied).toEqual(before.applied);
    // Figure 5.3 rule 1 / thesis 3.4: the chunks still come from the current leader, so c neither campaigns nor
    // disturbs it.
    expect(s.role).toBe('follower');
    expect(s.term).toBe(before.term);
    expect(s.leader).toBe('a');
    expect(net.get('a').node.status().details.progress?.c?.state).toBe('snapshot');
    net.get('a').node.propose(enc.encode('on'));
    settle(net, 5);
    for (const id of ['a', 'b']) expect(net.get(id).applied.at(-1)).toBe('on');
    expect(net.get('a').node.status().term).toBe(before.term);
  });

  it('a snapshot of exactly the limit is installed, and no refusal is reported', () => {
    const probe = behindSnapshot();
    const { net, index, total } = behindSnapshot(probe.total);
    expect(total).toBe(probe.total);
    net.heal();
    settle(net, 60);
    const c = net.get('c');
    expect(c.node.status().commitIndex).toBeGreaterThanOrEqual(index);
    expect(c.applied).toEqual(net.get('a').applied);
    expect(c.node.status().details.snapshotRefused).toBeUndefined();
  });

  it('a refused transfer leaves a partial transfer held in place', () => {
    const { net, index, total } = behindSnapshot(1000);
    const c = net.get('c');
    const snap = net.get('a').storage.snapshot();
    if (snap === undefined) throw new Error('no snapshot');
    const term = c.node.status().term;
    const chunk = (over: number, offset: number, data: Uint8Array): void => {
      const msg: InstallSnapshot = { type: 'InstallSnapshot', term: net.get('a').node.status().term, index: snap.index, snapTerm: snap.term, config: snap.config, total: over, offset, data };
      c.node.step({ from: 'a', to: 'c', msg });
    };
    chunk(total, 0, snap.data.subarray(0, 64));
    const raw = inner(c.node);
    expect(raw.incoming?.received).toBe(64);
    chunk(5000, 0, new Uint8Array(64));
    expect(raw.incoming?.received).toBe(64);
    expect(raw.incoming?.buf.length).toBe(total);
    expect(c.node.status().details.snapshotRefused).toBe(`snapshot ${index} from a: snapshot of 5000 bytes over the 1000-byte limit`);
    expect(c.node.status().term).toBe(term);
  });

  it('maxSnapshotBytes is validated: a positive integer up to 2^32 - 1; 2 GiB by default', () => {
    expect(raft.parseOptions({ maxSnapshotBytes: 1 << 20 })).toEqual({ maxSnapshotBytes: 1 << 20 });
    expect(raft.parseOptions({ maxSnapshotBytes: 0xffffffff })).toEqual({ maxSnapshotBytes: 0xffffffff });
    for (const bad of [0, -1, 1.5, 'big', 2 ** 32]) expect(() => raft.parseOptions({ maxSnapshotBytes: bad })).toThrow(ConfigError);
    expect(() => raft.parseOptions({ maxSnapshotBytes: 2 ** 32 })).toThrow(/maxSnapshotBytes/);
    const node = new RaftNode({ id: 'a', peers: ['a'], storage: new MemoryStorage() });
    expect(inner(node).maxSnapshotBytes).toBe(2 ** 31);
  });
});
