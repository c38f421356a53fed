import { InvalidArgumentError, type NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { TestNetwork } from './network';
import { settle } from './helpers';

const enc = new TextEncoder();

function cluster(window: number): TestNetwork {
  const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1, window });
  net.addNode('d', []);
  net.get('a').node.campaign(true);
  net.deliver();
  settle(net, 3);
  expect(net.get('a').node.status().role).toBe('leader');
  return net;
}

const leaders = (net: TestNetwork): NodeId[] => net.ids().filter((id) => net.get(id).up && net.get(id).node.status().role === 'leader');

describe('break-it: leadership transfer targets', () => {
  it('refuses a learner, and a node whose removal is decided', () => {
    const net = cluster(3);
    const a = net.get('a').node;
    a.proposeConfigChange({ changes: [{ op: 'addLearner', node: 'd' }] });
    settle(net, 10);
    expect(a.status().config.learners).toEqual(['d']);
    expect(() => a.transferLeadership('d')).toThrow(InvalidArgumentError);
    expect(() => a.transferLeadership('zz')).toThrow(InvalidArgumentError);
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'c' }] });
    settle(net, 10);
    expect(a.status().config.voters).toEqual(['a', 'b']);
    expect(() => a.transferLeadership('c')).toThrow(InvalidArgumentError);
  });

  for (const early of [true, false]) {
  it(`a transfer to a voter whose removal is ${early ? 'proposed' : 'decided'} but not yet in force leaves, once it is, one leader of the new configuration that decides`, () => {
    const net = cluster(6);
    const a = net.get('a').node;
    a.propose(enc.encode('x'));
    settle(net, 3);
    // Decide the removal of c without letting the activation slots fill: block every Accept after it.
    a.proposeConfigChange({ changes: [{ op: 'remove', node: 'c' }] });
    if (!early) net.deliver();
    let transferred = false;
    try {
      a.transferLeadership('c');
      transferred = true;
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
    }
    for (let i = 0; i < 200; i++) {
      settle(net, 1);
      const ls = leaders(net);
      const n = ls.length === 1 ? net.get(ls[0] as NodeId).node : undefined;
      if (n !== undefined && ls[0] !== 'c' && n.status().config.voters.join() === 'a,b' && n.transferTo === undefined) break;
    }
    const ls = leaders(net);
    expect(ls.length, `transferred=${transferred}`).toBe(1);
    const l = ls[0] as NodeId;
    expect(l).not.toBe('c');
    net.get(l).node.propose(enc.encode('y'));
    settle(net, 10);
    for (const id of ['a', 'b']) expect(net.get(id).applied).toEqual(['x', 'y']);
  });
  }
});
