import { describe, expect, it } from 'vitest';
import { MemoryStorage, type Envelope } from '@consensus-kit/core';
import { ZabNode, encodeHardState } from '../src/index';
import type { ZabMessage } from '../src/messages';

/** Phase 1 on a prospective leader, message by message (DSN 2011 IV-B; ZooKeeper Leader.getEpochToPropose / waitForEpochAck). */

function drain(n: ZabNode): Envelope[] {
  const out: Envelope[] = [];
  while (n.hasReady()) {
    const rd = n.ready();
    out.push(...rd.messages);
    n.advance(rd);
  }
  return out;
}

function prospectiveLeader(): ZabNode {
  const c = new ZabNode({ id: 'c', peers: ['a', 'b', 'c'], storage: new MemoryStorage() });
  drain(c);
  for (const from of ['a', 'b']) c.step({ from, to: 'c', msg: { type: 'Notification', round: 1, state: 'looking', leader: 'c', epoch: 0, term: 0, index: 0 } });
  c.tick();
  drain(c);
  expect(c.phase).toBe('leading');
  return c;
}

const sent = (out: Envelope[], type: ZabMessage['type']) => out.filter((e) => (e.msg as ZabMessage).type === type);

describe('discovery', () => {
  it('proposes one more than every acceptedEpoch of a quorum, and accepts it itself before counting itself', () => {
    const c = prospectiveLeader();
    c.step({ from: 'a', to: 'c', msg: { type: 'FollowerInfo', nonce: 7, acceptedEpoch: 4 } });
    const rd = c.ready();
    // LEADERINFO(5) leaves with the Ready that makes acceptedEpoch 5 durable.
    expect(rd.hardState).toBeDefined();
    expect(sent(rd.messages, 'LeaderInfo').map((e) => e.msg)).toEqual([{ type: 'LeaderInfo', nonce: 7, epoch: 5 }]);
    expect(c.acceptedEpoch).toBe(5);
    c.advance(rd);
  });

  it('gives up leadership when a follower that acknowledged the epoch is ahead of it ("Follower is ahead of the leader")', () => {
    const c = prospectiveLeader();
    c.step({ from: 'a', to: 'c', msg: { type: 'FollowerInfo', nonce: 7, acceptedEpoch: 0 } });
    drain(c);
    c.step({ from: 'a', to: 'c', msg: { type: 'AckEpoch', nonce: 7, req: 0, epoch: 1, currentEpoch: 0, term: 0, index: 3, commit: 0, segments: [[0, 0, 3]] } });
    drain(c);
    expect(c.phase).toBe('looking');
    expect(c.currentEpoch).toBe(0);
  });

  it('moves to synchronisation once a quorum acknowledged an epoch from no one ahead of it: currentEpoch durable before NEWLEADER leaves', () => {
    const c = prospectiveLeader();
    c.step({ from: 'a', to: 'c', msg: { type: 'FollowerInfo', nonce: 7, acceptedEpoch: 0 } });
    drain(c);
    c.step({ from: 'a', to: 'c', msg: { type: 'AckEpoch', nonce: 7, req: 0, epoch: 1, currentEpoch: 0, term: 0, index: 0, commit: 0, segments: [[0, 0, 0]] } });
    const rd = c.ready();
    expect(rd.hardState).toBeDefined();
    expect(c.currentEpoch).toBe(1);
    expect(sent(rd.messages, 'Sync').map((e) => e.msg)).toEqual([{ type: 'Sync', nonce: 7, req: 0, epoch: 1, base: 0, mode: 'diff', entries: [] }]);
    c.advance(rd);
    expect(c.status().role).toBe('candidate');
    c.step({ from: 'a', to: 'c', msg: { type: 'AckNewLeader', nonce: 7, epoch: 1, index: 0 } });
    expect(c.status().role).toBe('leader');
  });

  it('ignores a session it does not know, and a follower acknowledges an epoch to one leader only', () => {
    const c = prospectiveLeader();
    c.step({ from: 'a', to: 'c', msg: { type: 'AckEpoch', nonce: 99, req: 0, epoch: 1, currentEpoch: 0, term: 0, index: 9, commit: 0, segments: [] } });
    expect(c.phase).toBe('leading');
    // a acknowledged epoch 3 to c before it restarted.
    const restarted = () => {
      const storage = new MemoryStorage();
      storage.saveNow({ hardState: encodeHardState({ acceptedEpoch: 3, acceptedBy: 'c', currentEpoch: 0, boot: ['a', 'b', 'c'], sessions: 1 }), entries: [] });
      const a = new ZabNode({ id: 'a', peers: ['a', 'b', 'c'], storage });
      drain(a);
      return a;
    };
    const epochTo = (leader: string) => {
      const a = restarted();
      a.step({ from: leader, to: 'a', msg: { type: 'Notification', round: 1, state: 'leading', leader, epoch: 3, term: 0, index: 0 } });
      const info = sent(drain(a), 'FollowerInfo')[0]?.msg as { nonce: number };
      a.step({ from: leader, to: 'a', msg: { type: 'LeaderInfo', nonce: info.nonce, epoch: 3 } });
      return { a, acks: sent(drain(a), 'AckEpoch') };
    };
    // The same leader again (ZOOKEEPER-335's re-acknowledgement): acknowledged.
    expect(epochTo('c').acks).toHaveLength(1);
    // Another prospective leader with the same epoch: refused, a looks again (one leader per epoch).
    const other = epochTo('b');
    expect(other.acks).toHaveLength(0);
    expect(other.a.phase).toBe('looking');
  });
});
