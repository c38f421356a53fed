import { afterEach, describe, expect, it } from 'vitest';
import { LocalNetwork } from './local-network';
import type { Envelope, Transport } from '../types';

const wait = () => new Promise((r) => setImmediate(r));
const started: Transport[] = [];
afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});

async function attach(net: LocalNetwork, id: string) {
  const got: Envelope[] = [];
  const unreachable: string[] = [];
  const t = net.transport(id);
  await t.start({ deliver: (e) => got.push(e), unreachable: (p) => unreachable.push(p) });
  started.push(t);
  return { t, got, unreachable };
}

describe('LocalNetwork', () => {
  it('delivers asynchronously, as a copy of the message', async () => {
    const net = new LocalNetwork();
    const a = await attach(net, 'a');
    const b = await attach(net, 'b');
    const msg = { type: 'Ping', data: Uint8Array.of(1, 2) };
    a.t.send([{ from: 'a', to: 'b', msg }]);
    expect(b.got).toHaveLength(0);
    await wait();
    expect(b.got).toHaveLength(1);
    const got = b.got[0]?.msg as typeof msg;
    expect(got).not.toBe(msg);
    expect(got.type).toBe('Ping');
    expect(got.data).toBeInstanceOf(Uint8Array);
    expect([...got.data]).toEqual([1, 2]);
  });

  it('blocks links one way, isolates nodes, and heals', async () => {
    const net = new LocalNetwork();
    const a = await attach(net, 'a');
    const b = await attach(net, 'b');
    net.block('a', 'b');
    a.t.send([{ from: 'a', to: 'b', msg: 1 }]);
    b.t.send([{ from: 'b', to: 'a', msg: 2 }]);
    await wait();
    expect(b.got).toHaveLength(0);
    expect(a.got).toHaveLength(1);
    net.heal();
    net.isolate('b');
    a.t.send([{ from: 'a', to: 'b', msg: 3 }]);
    b.t.send([{ from: 'b', to: 'a', msg: 4 }]);
    await wait();
    expect(b.got).toHaveLength(0);
    expect(a.got).toHaveLength(1);
    net.heal();
    a.t.send([{ from: 'a', to: 'b', msg: 5 }]);
    await wait();
    expect(b.got.map((e) => e.msg)).toEqual([5]);
  });

  it('reports a peer that is not on the network as unreachable', async () => {
    const net = new LocalNetwork();
    const a = await attach(net, 'a');
    a.t.send([{ from: 'a', to: 'ghost', msg: 1 }]);
    await wait();
    expect(a.unreachable).toEqual(['ghost']);
  });

  it('drops envelopes forged with another sender, without throwing', async () => {
    const net = new LocalNetwork();
    const a = await attach(net, 'a');
    const b = await attach(net, 'b');
    expect(() => a.t.send([{ from: 'b', to: 'a', msg: 1 }, { from: 'a', to: 'b', msg: 2 }])).not.toThrow();
    await wait();
    expect(a.got).toHaveLength(0);
    expect(b.got.map((e) => e.msg)).toEqual([2]);
    expect(net.refused).toBe(1);
  });
});
