import { ProposalDroppedError, type NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { TestNetwork } from './network';
import { cluster, elect, enc, leaderOf, settle, type, until } from './helpers';

/**
 * Break-it s10: a leader that a configuration in force no longer names hands leadership over (phase2.ts
 * `handOffIfRemoved`, as Raft thesis 4.2.2; PMMC section 4 for the activation slot). TestNetwork checks the Paxos
 * invariants after every Ready; these check agreement, the target choice and progress within bounded rounds.
 */

/** `id` proposes each value (it must lead), then the network settles. */
function proposeAll(net: TestNetwork, id: NodeId, values: string[]): void {
  for (const v of values) net.get(id).node.propose(enc.encode(v));
  net.deliver();
}

/** Rounds until the change proposed by `a` is in force at its commit point. */
function untilRemoved(net: TestNetwork, id: NodeId): void {
  const n = net.get(id).node;
  until(net, () => !n.membership.configAt(n.commit + 1).voters.includes(id), 30);
}

describe('break-it s10: a removed leader hands over leadership', () => {
  it('2 nodes: a removes itself from {a, b}; b leads alone and decides', () => {
    const net = cluster(['a', 'b'], { window: 3 });
    elect(net, 'a');
    proposeAll(net, 'a', ['x']);
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    until(net, () => leaderOf(net) === 'b', 30);
    expect(net.get('b').node.status().config.voters).toEqual(['b']);
    net.crash('a');
    proposeAll(net, 'b', ['y']);
    settle(net, 2, ['b']);
    expect(net.get('b').applied).toEqual(['x', 'y']);
  });

  it('never picks a learner: a leaves {a, b, c} + learner d (caught up like the others); the target is a voter', () => {
    const net = cluster(['a', 'b', 'c'], { window: 3 });
    net.addNode('d', []);
    elect(net, 'a');
    const a = net.get('a').node;
    a.proposeConfigChange({ changes: [{ op: 'addLearner', node: 'd' }] });
    until(net, () => a.status().config.learners.includes('d'), 30);
    proposeAll(net, 'a', ['x']);
    settle(net, 2);
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    const targets = new Set<NodeId>();
    for (let i = 0; i < 40 && leaderOf(net) === 'a'; i++) {
      settle(net, 1);
      if (a.transferTo !== undefined) targets.add(a.transferTo);
    }
    expect([...targets].every((t) => t === 'b' || t === 'c')).toBe(true);
    const l = leaderOf(net) as NodeId;
    expect(['b', 'c']).toContain(l);
    proposeAll(net, l, ['y']);
    settle(net, 3);
    for (const id of ['b', 'c', 'd'] as NodeId[]) expect(net.get(id).applied, id).toEqual(['x', 'y']);
  });

  it('no handoff before the change is in force at the commit point (what status().config reports): a leads and takes proposals until then', () => {
    const net = cluster(['a', 'b', 'c'], { window: 4, maxBatch: 1 });
    elect(net, 'a');
    const a = net.get('a').node;
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    // a ticks between every two deliveries, so it meets every intermediate state: the change decided, its slots
    // assigned up to the activation slot (the next slot governed by the new configuration), the commit point not there yet.
    let sawDecidedNotInForce = false;
    for (let i = 0; i < 2_000 && a.role === 'leader'; i++) {
      net.deliverOne();
      net.tick('a');
      if (a.role !== 'leader') break;
      const inForce = !a.status().config.voters.includes('a');
      if (!inForce && !a.membership.configAt(a.nextSlot).voters.includes('a')) sawDecidedNotInForce = true;
      if (!inForce) {
        expect(a.transferTo, `a hands off while ${a.status().config.voters.join()} is in force`).toBeUndefined();
        a.propose(enc.encode(`p${i}`));
      }
    }
    expect(sawDecidedNotInForce).toBe(true);
    expect(a.role).not.toBe('leader');
    settle(net, 5);
    expect(leaderOf(net)).not.toBe('a');
  });

  it('proposals during the handoff are refused with transfer-in-progress; those taken before are decided once', () => {
    const net = cluster(['a', 'b', 'c'], { window: 2 });
    elect(net, 'a');
    const a = net.get('a').node;
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    // Proposals keep coming while the change comes into force; the ones taken wait in the window or the queue.
    const taken: string[] = [];
    let refused = 0;
    for (let i = 0; i < 30 && leaderOf(net) === 'a'; i++) {
      // Between a's tick (which starts the handoff) and the delivery of its TimeoutNow.
      for (const id of net.ids()) net.tick(id);
      if (a.role !== 'leader') break;
      try {
        a.propose(enc.encode(`p${i}`));
        taken.push(`p${i}`);
      } catch (e) {
        expect(e).toBeInstanceOf(ProposalDroppedError);
        expect((e as ProposalDroppedError).message).toMatch(/transfer-in-progress/);
        refused++;
      }
      net.deliver();
    }
    expect(refused).toBeGreaterThan(0);
    expect(taken.length).toBeGreaterThan(0);
    const l = leaderOf(net) as NodeId;
    expect(['b', 'c']).toContain(l);
    settle(net, 5);
    expect(net.get('b').applied).toEqual(taken);
    expect(net.get('c').applied).toEqual(taken);
  });

  it('the best target cut off for a while: once it is back the handoff completes and the remaining voters decide', () => {
    const net = cluster(['a', 'b', 'c', 'd', 'e'], { window: 4 });
    elect(net, 'a');
    const a = net.get('a').node;
    proposeAll(net, 'a', ['x']);
    settle(net, 2);
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    untilRemoved(net, 'a');
    // Everyone holds as much as b: b is the target (ties go to the first voter). Cut b off for 3 election timeouts.
    net.block('a', 'b');
    net.block('b', 'a');
    // (Whether someone else takes over meanwhile is not pinned: see the break-it s10 report on a target that stays down.)
    settle(net, 30);
    net.heal();
    until(net, () => leaderOf(net) !== undefined && leaderOf(net) !== 'a', 30);
    const l = leaderOf(net) as NodeId;
    proposeAll(net, l, ['y']);
    settle(net, 3);
    for (const id of ['b', 'c', 'd', 'e'] as NodeId[]) expect(net.get(id).applied, id).toEqual(['x', 'y']);
  });

  it('removed, then added back by the next leader: a votes again and can lead again', () => {
    const net = cluster(['a', 'b', 'c'], { window: 2 });
    elect(net, 'a');
    proposeAll(net, 'a', ['x']);
    net.get('a').node.proposeConfigChange({ changes: [{ op: 'remove', node: 'a' }] });
    until(net, () => leaderOf(net) !== undefined && leaderOf(net) !== 'a', 30);
    const l = leaderOf(net) as NodeId;
    net.get(l).node.proposeConfigChange({ changes: [{ op: 'addVoter', node: 'a' }] });
    until(net, () => net.get(l).node.status().config.voters.includes('a'), 30);
    // The new leader stays (it is a voter); a, a voter again, takes over on request and decides.
    settle(net, 5);
    expect(leaderOf(net)).toBe(l);
    net.get(l).node.transferLeadership('a');
    until(net, () => leaderOf(net) === 'a', 30);
    proposeAll(net, 'a', ['y']);
    settle(net, 3);
    for (const id of ['a', 'b', 'c'] as NodeId[]) expect(net.get(id).applied, id).toEqual(['x', 'y']);
    expect(net.queue.filter((e) => type(e) === 'TimeoutNow')).toHaveLength(0);
  });
});
