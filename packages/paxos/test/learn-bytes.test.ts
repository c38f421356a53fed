import { ConfigError, type Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { Learn } from '../src/messages';
import { paxos } from '../src/index';
import { cluster, elect, enc, settle, type, until } from './helpers';

/**
 * The catch-up stream (`Learn`, Paxos Made Simple 2.4) carries at most `maxLearnBytes` of decided values per message
 * (always at least one), as etcd's raft bounds its messages (`MaxSizePerMsg`): a replica lagging on large values gets
 * them in bounded messages, each answered (`Learned`) before the next.
 */

const value = (i: number) => `v${String(i).padStart(2, '0')}-${'x'.repeat(36)}`; // 40 bytes

describe('maxLearnBytes', () => {
  it('a replica 30 values behind catches up through Learn messages of at most maxLearnBytes of values', () => {
    const net = cluster(['a', 'b', 'c'], { maxLearnBytes: 100 });
    elect(net, 'a');
    net.partition(['a', 'b']);
    for (let i = 0; i < 30; i++) net.get('a').node.propose(enc.encode(value(i)));
    settle(net, 3, ['a', 'b']);
    expect(net.get('a').node.commit).toBeGreaterThanOrEqual(30);
    const learns: Learn[] = [];
    net.filter = (e: Envelope) => {
      if (e.to === 'c' && type(e) === 'Learn') learns.push(e.msg as Learn);
      return true;
    };
    net.heal();
    const c = net.get('c');
    until(net, () => c.node.commit >= net.get('a').node.commit && c.applied.length >= 30, 200);
    expect(c.applied.slice(-30)).toEqual(Array.from({ length: 30 }, (_, i) => value(i)));
    expect(learns.length).toBeGreaterThanOrEqual(10);
    for (const m of learns) {
      expect(m.entries.length).toBeGreaterThan(0);
      if (m.entries.length > 1) expect(m.entries.reduce((s, e) => s + e.data.length, 0)).toBeLessThanOrEqual(100);
    }
  });

  it('maxLearnBytes must be a positive integer of at most 16 MiB', () => {
    for (const bad of [0, -1, 1.5, '64', 32 << 20]) expect(() => paxos.parseOptions({ maxLearnBytes: bad }), String(bad)).toThrow(ConfigError);
    expect(paxos.parseOptions({ maxLearnBytes: 4096 })).toEqual({ maxLearnBytes: 4096 });
  });
});
