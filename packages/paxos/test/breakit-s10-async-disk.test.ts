import type { Envelope, NodeId } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { cluster, elect, enc, settle, steal, type } from './helpers';

/**
 * Break-it s10: `advance` releases decided slots from memory (ready.ts, paxos-log.ts `release`) only once they are
 * durable. With a slow disk (core's host, the simulator: take the Ready, write it, then complete it) messages are
 * stepped while a Ready's write is in flight: slots learned then are decided but not yet written, and must stay in
 * memory until a later Ready carries them (DESIGN: the Ready contract, persist before advance).
 */

describe('break-it s10: slots decided while a Ready is being written stay in memory until written', () => {
  for (const bits of [1, 2]) {
    it(`a Learn stepped between take() and complete() (logChunkBits ${bits}): c writes, applies and keeps every learned slot`, () => {
      const net = cluster(['a', 'b', 'c'], { window: 4, maxBatch: 3, logChunkBits: bits });
      elect(net, 'a');
      net.partition(['c']);
      const a = net.get('a').node;
      const values = Array.from({ length: 12 }, (_, i) => `v${i}`);
      for (const v of values) {
        a.propose(enc.encode(v));
        net.deliver();
      }
      net.heal();
      // Catch a Learn for c (its commit point stalls: heartbeats make a stream from it).
      const learns: Envelope[] = [];
      net.filter = (e) => {
        if (e.to === 'c' && type(e) === 'Learn') {
          learns.push(e);
          return false;
        }
        return true;
      };
      for (let i = 0; i < 10 && learns.length === 0; i++) settle(net, 1);
      net.filter = undefined;
      expect(learns.length).toBeGreaterThan(0);
      const c = net.get('c');
      const commitBefore = c.node.commit;
      // c has a Ready in flight (its reply to a heartbeat) when the Learn arrives.
      net.tick('a');
      const hb = steal(net, (e) => e.to === 'c' && type(e) === 'Heartbeat');
      expect(hb.length).toBeGreaterThan(0);
      c.node.step(hb[0] as Envelope);
      const rd = c.driver.take();
      expect(rd).toBeDefined();
      c.node.step(learns[0] as Envelope);
      expect(c.node.commit).toBeGreaterThan(commitBefore);
      c.driver.persist(rd as NonNullable<typeof rd>);
      c.driver.complete(rd as NonNullable<typeof rd>);
      // Nothing learned but unwritten left memory.
      expect(c.node.log.memOffset).toBeLessThan(c.node.log.dirtyFrom);
      net.processAll();
      expect(c.storage.lastIndex()).toBeGreaterThanOrEqual(c.node.commit);
      for (let s = commitBefore + 1; s <= c.node.commit; s++) expect(c.storage.entries(s, s + 1)[0]?.term, `slot ${s}`).toBeGreaterThan(0);
      for (let i = 0; i < 40 && c.applied.length < values.length; i++) settle(net, 1);
      expect(c.applied).toEqual(values);
      for (const id of ['a', 'b'] as NodeId[]) expect(net.get(id).applied, id).toEqual(values);
    });
  }
});
