import type { NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { TestNetwork } from '../test/network';
import { settle } from '../test/helpers';

const enc = new TextEncoder();

describe('reconfiguration fills its window with proposals first, no-ops only when idle (PMMC section 4)', () => {
  it('proposals waiting behind a full window take the slots before the activation point; no-ops fill the rest', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1, window: 4 });
    net.addNode('d', []);
    net.get('a').node.campaign(true);
    net.deliver();
    settle(net, 3);
    const a = net.get('a').node;
    expect(a.status().role).toBe('leader');
    const base = a.commit;
    // Fill the window (slots base+1 .. base+4) without delivering, then queue c5, the change and c6 behind it.
    for (const c of ['c1', 'c2', 'c3', 'c4', 'c5']) a.propose(enc.encode(c));
    a.proposeConfigChange({ changes: [{ op: 'addVoter', node: 'd' }] });
    a.propose(enc.encode('c6'));
    expect(a.status().details.waiting).toBe(3);
    settle(net, 6);
    const types = [];
    for (let s = base + 5; s <= base + 9; s++) types.push(a.entryAt(s)?.type);
    // c5, the change in slot base+6 (in force from base+10), c6 in the next slot, then no-ops up to base+9.
    expect(types).toEqual(['command', 'config', 'command', 'noop', 'noop']);
    expect(a.entryAt(base + 10)).toBeUndefined();
    for (const id of ['a', 'b', 'c', 'd'] as NodeId[]) {
      expect(net.get(id).applied).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
      expect(net.get(id).node.status().config.voters).toEqual(['a', 'b', 'c', 'd']);
    }
  });

  it('an idle leader fills up to the activation point with no-ops, so the change takes effect without traffic', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1, window: 6 });
    net.addNode('d', []);
    net.get('a').node.campaign(true);
    net.deliver();
    settle(net, 3);
    const a = net.get('a').node;
    const slot = a.nextSlot;
    a.proposeConfigChange({ changes: [{ op: 'addVoter', node: 'd' }] });
    settle(net, 4);
    expect(a.entryAt(slot)?.type).toBe('config');
    for (let s = slot + 1; s < slot + 6; s++) expect(a.entryAt(s)?.type).toBe('noop');
    expect(a.log.lastIndex).toBe(slot + 5);
    expect(a.status().config.voters).toEqual(['a', 'b', 'c', 'd']);
  });
});
