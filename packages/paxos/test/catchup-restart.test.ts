import { describe, expect, it } from 'vitest';
import { TestNetwork } from './network';

const enc = new TextEncoder();

/** Every node ticks once, then every message in flight is delivered. */
function round(net: TestNetwork, rounds = 1): void {
  for (let i = 0; i < rounds; i++) {
    for (const id of net.ids()) net.tick(id);
    net.deliver();
  }
}

describe('a restarted replica catches up without deposing the live leader', () => {
  it('an old leader restarted from disk that campaigns before the leader reaches it ends a follower of a leader it does not displace, with every decided value', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { electionTicks: 10, heartbeatTicks: 1 });
    net.get('c').node.campaign(true);
    net.deliver();
    round(net, 3);
    const c = () => net.get('c').node;
    expect(c().status().role).toBe('leader');
    for (let i = 0; i < 3; i++) c().propose(enc.encode(`x${i}`));
    round(net, 3);
    // c crashes (kill -9); a takes over and decides more values without it.
    net.crash('c');
    for (let t = 0; t < 60 && net.leader() === undefined; t++) round(net);
    const l = net.leader()?.id as string;
    expect(['a', 'b']).toContain(l);
    const a = net.get(l).node;
    for (let i = 0; i < 5; i++) a.propose(enc.encode(`y${i}`));
    round(net, 3);
    const ballot = a.status().term;
    // c restarts; the leader's messages do not reach it yet (its connection to c comes back later, as a reconnect
    // after a restart can on a busy machine), so c's election timer runs out and it asks for promises.
    net.block(l, 'c');
    net.restart('c');
    let campaigned = false;
    for (let t = 0; t < 40 && !campaigned; t++) {
      round(net);
      campaigned = c().status().role === 'candidate' || c().promised > ballot;
    }
    expect(campaigned).toBe(true);
    // The other follower hears a live leader, so it promises c nothing (stickiness); the leader's messages reach c again.
    net.unblock(l, 'c');
    round(net, 30);
    const leader = net.leader();
    expect(leader?.id).toBe(l);
    expect(c().status().role).toBe('follower');
    expect(c().status().leader).toBe(l);
    expect(c().commit).toBe(a.commit);
    expect(net.get('c').applied).toEqual(['x0', 'x1', 'x2', 'y0', 'y1', 'y2', 'y3', 'y4']);
    // And the leader still takes proposals.
    a.propose(enc.encode('z'));
    round(net, 3);
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.at(-1)).toBe('z');
  });
});
