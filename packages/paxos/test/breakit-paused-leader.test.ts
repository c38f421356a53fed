import { describe, expect, it } from 'vitest';
import { parseMessage } from '../src/messages';
import { TestNetwork } from './network';

const enc = new TextEncoder();

describe('break-it: an old leader paused past an election timeout', () => {
  it('rejoins as a follower without making the leader elected meanwhile run phase 1 again', () => {
    const ids = ['a', 'b', 'c'];
    const net = new TestNetwork(ids, { electionTicks: 10, heartbeatTicks: 1 });
    let paused: string | undefined;
    const round = (k = 1) => {
      for (let i = 0; i < k; i++) {
        for (const id of ids) if (id !== paused) net.tick(id);
        net.deliver();
      }
    };
    net.get('a').node.campaign(true);
    net.deliver();
    round(5);
    expect(net.get('a').node.status().role).toBe('leader');
    net.get('a').node.propose(enc.encode('x'));
    round(3);
    // a pauses (a stop-the-world pause: it neither ticks nor hears nor speaks); b or c takes over.
    paused = 'a';
    for (const x of ['b', 'c']) {
      net.block('a', x);
      net.block(x, 'a');
    }
    for (let t = 0; t < 60 && net.leader()?.id === 'a'; t++) round();
    round(5);
    const l = net.leader();
    expect(l?.id).not.toBe('a');
    const leader = l?.id as string;
    const term = net.get(leader).node.status().term;
    // a resumes: its first heartbeats meet Nacks, while the replies it got before the pause still look recent.
    paused = undefined;
    net.heal();
    // It ticks before anything else reaches it (its timer fires first on waking).
    net.tick('a');
    net.deliver();
    round(30);
    expect(net.get('a').node.status().role).toBe('follower');
    expect(net.leader()?.id).toBe(leader);
    // The leader elected meanwhile kept its ballot: nothing it was doing (waiting proposals, reads, its lease) was dropped.
    expect(net.get(leader).node.status().term).toBe(term);
  });

  it('a Nack says whether its sender follows an elected leader; parseMessage keeps only a boolean there', () => {
    expect(parseMessage({ type: 'Nack', ballot: 1, promised: 2, led: true })).toEqual({ type: 'Nack', ballot: 1, promised: 2, led: true });
    expect(parseMessage({ type: 'Nack', ballot: 1, promised: 2 })).toEqual({ type: 'Nack', ballot: 1, promised: 2 });
    expect(parseMessage({ type: 'Nack', ballot: 1, promised: 2, led: false })).toEqual({ type: 'Nack', ballot: 1, promised: 2 });
    expect(parseMessage({ type: 'Nack', ballot: 1, promised: 2, led: 'yes' })).toBeUndefined();
  });
});
