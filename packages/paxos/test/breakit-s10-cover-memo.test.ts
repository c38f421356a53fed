import type { NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { Accept } from '../src/messages';
import { cluster, elect, enc, settle, type } from './helpers';

/**
 * Break-it s10: `fill` remembers the phase-1 coverage between calls (phase2.ts `CoverMemo`). The memo must not
 * outlive the configurations it was computed with: a configuration decided later governs the slots from its
 * activation on (PMMC section 4), and the leader may assign none of them before a phase-1 quorum of that
 * configuration promised its ballot (Flexible Paxos section 3).
 */

describe('break-it s10: the phase-1 coverage memo across a configuration change', () => {
  for (const window of [2, 5]) {
    it(`{a, b, c} -> {a, d, e} (window ${window}): no Accept for a slot from the activation on before d or e promised`, () => {
      const net = cluster(['a', 'b', 'c'], { window, maxBatch: 1 });
      net.addNode('d', []);
      net.addNode('e', []);
      elect(net, 'a');
      const a = net.get('a').node;
      // Proposals before the change, so fill's memo of {a, b, c}'s coverage is in place when the change is decided.
      for (const v of ['x', 'y']) a.propose(enc.encode(v));
      net.deliver();
      const slot = a.nextSlot;
      a.proposeConfigChange({ changes: [{ op: 'remove', node: 'b' }, { op: 'remove', node: 'c' }, { op: 'addVoter', node: 'd' }, { op: 'addVoter', node: 'e' }] });
      const activation = slot + window;
      let promised = false;
      let acceptsAbove = 0;
      for (let i = 0; i < 600; i++) {
        const d = net.deliverOne();
        if (d === undefined) {
          // Nothing in flight: a round of ticks (heartbeats, retried Prepares), delivered one by one above.
          for (const id of net.ids()) net.tick(id);
          continue;
        }
        const m = d.env;
        if (d.dropped) continue;
        if (m.to === 'a' && (m.from === 'd' || m.from === 'e') && type(m) === 'Promise') promised = true;
        // Proposals keep coming, so fill runs again and again once the change is decided.
        if (i % 5 === 0 && a.role === 'leader') a.propose(enc.encode(`p${i}`));
        for (const q of net.queue) {
          if (q.from !== 'a' || type(q) !== 'Accept') continue;
          const hi = ((q.msg as Accept).entries.at(-1) as { index: number }).index;
          if (hi >= activation) {
            expect(promised, `a sent an Accept up to slot ${hi} (activation ${activation}) before d or e promised`).toBe(true);
            acceptsAbove++;
          }
        }
      }
      expect(acceptsAbove).toBeGreaterThan(0);
      expect(a.status().config.voters).toEqual(['a', 'd', 'e']);
      settle(net, 5);
      const applied = net.get('a').applied;
      expect(applied.slice(0, 2)).toEqual(['x', 'y']);
      for (const id of ['d', 'e'] as NodeId[]) expect(net.get(id).applied, id).toEqual(applied);
    });
  }
});
