import { afterEach, describe, expect, it } from 'vitest';
import { describeTransportConformance } from './testing/transport-conformance';
import { collector, startTcpCluster, type TcpCluster } from './testing';
import { tcpTransport, type TcpTransport } from './transport';
import type { Transport } from '@consensus-kit/core';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describeTransportConformance('tcpTransport', () => {
  const created: TcpTransport[] = [];
  return {
    async create(ids) {
      // Reserve ports first (listeners on port 0), then wire every transport to every other.
      const probes = ids.map((id) => tcpTransport({ id, clusterId: 'conformance', listen: { host: '127.0.0.1', port: 0 }, peers: {} }));
      const out: Record<string, Transport> = {};
      for (const [i, id] of ids.entries()) {
        const t = probes[i]!;
        created.push(t);
        out[id] = wrapStartWithPeers(t, () => Object.fromEntries(created.filter((c) => started.has(c)).map((c) => [c.id, c.endpoint()])));
      }
      return out;
    },
  };
});

const started = new WeakSet<TcpTransport>();

/** Starting a transport also tells every already-started one about it (ports are only known after start). */
function wrapStartWithPeers(t: TcpTransport, peers: () => Record<string, string>): Transport {
  return {
    async start(handler) {
      await t.start(handler);
      started.add(t);
      for (const other of allStarted) other.setPeers({ ...peers() });
      t.setPeers(peers());
      allStarted.add(t);
    },
    send: (envs) => t.send(envs),
    async stop() {
      allStarted.delete(t);
      await t.stop();
    },
  };
}
const allStarted = new Set<TcpTransport>();

describe('tcpTransport', () => {
  let cluster: TcpCluster | undefined;
  const extra: Array<{ stop(): Promise<void> }> = [];
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    for (const t of extra.splice(0)) await t.stop();
  });

  it('keeps per-link order on a healthy connection', async () => {
    cluster = await startTcpCluster(['a', 'b']);
    const n = 2000;
    for (let i = 0; i < n; i++) cluster.transports.a!.send([{ from: 'a', to: 'b', msg: { i } }]);
    const got = await cluster.handlers.b!.waitFor(n);
    expect(got.map((e) => (e.msg as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('reports an unreachable peer and picks it up again after it restarts on the same port', async () => {
    cluster = await startTcpCluster(['a', 'b'], 'c1', () => ({ backoff: { baseMs: 10, capMs: 50 } }));
    const { transports, handlers, endpoints } = cluster;
    transports.a!.send([{ from: 'a', to: 'b', msg: 'first' }]);
    await handlers.b!.waitFor(1);
    await transports.b!.stop();
    const port = Number(endpoints.b!.split(':')[1]);
    // While b is down, a keeps sending (as a leader's heartbeats would) and is told b is unreachable.
    const ha = handlers.a!;
    const pump = setInterval(() => transports.a!.send([{ from: 'a', to: 'b', msg: 'tick' }]), 5);
    try {
      await ha.waitUnreachable('b');
      const b2 = tcpTransport({ id: 'b', clusterId: 'c1', listen: { host: '127.0.0.1', port }, peers: { a: endpoints.a! } });
      extra.push(b2);
      const hb2 = collector();
      await b2.start(hb2);
      await hb2.waitFor(1);
      expect(hb2.received[0]!.from).toBe('a');
      expect(transports.a!.peerStats().b!.connects).toBeGreaterThanOrEqual(2);
    } finally {
      clearInterval(pump);
    }
  });

  it('drops traffic to and from chosen peers, one way or both (fault injection)', async () => {
    cluster = await startTcpCluster(['a', 'b', 'c']);
    const { transports: t, handlers: h } = cluster;
    t.a!.faults.block('b', 'outbound');
    t.a!.send([{ from: 'a', to: 'b', msg: 'blocked' }, { from: 'a', to: 'c', msg: 'to-c' }]);
    t.b!.send([{ from: 'b', to: 'a', msg: 'b-to-a' }]);
    await h.c!.waitFor(1);
    await h.a!.waitFor(1);
    expect(h.a!.received.map((e) => e.msg)).toEqual(['b-to-a']);
    // inbound: a ignores what c sends, c still hears a.
    t.a!.faults.heal();
    t.a!.faults.block('c', 'inbound');
    t.c!.send([{ from: 'c', to: 'a', msg: 'ignored' }]);
    t.a!.send([{ from: 'a', to: 'c', msg: 'still-heard' }, { from: 'a', to: 'b', msg: 'healed' }]);
    await h.c!.waitFor(2);
    await h.b!.waitFor(1);
    expect(h.b!.received.map((e) => e.msg)).toEqual(['healed']);
    t.b!.send([{ from: 'b', to: 'a', msg: 'marker' }]);
    await h.a!.waitFor(2);
    expect(h.a!.received.map((e) => e.msg)).toEqual(['b-to-a', 'marker']);
    expect(t.a!.faults.droppedOutbound).toBe(1);
    expect(t.a!.faults.droppedInbound).toBe(1);
    expect(t.a!.faults.blocked()).toEqual({ outbound: [], inbound: ['c'] });
  });

  it('delivers a 16 MiB message in 64 KiB parts with memory at most about twice the message', async () => {
    cluster = await startTcpCluster(['a', 'b'], 'big', () => ({ partSize: 64 * 1024, maxMessageSize: 20 * 1024 * 1024 }));
    const size = 16 * 1024 * 1024;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) data[i] = (i / 4096) & 0xff;
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    // Live memory: collect garbage (socket read chunks already copied) before each sample.
    const sample = () => {
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    };
    const timer = setInterval(sample, 5);
    cluster.transports.a!.send([{ from: 'a', to: 'b', msg: { type: 'SnapshotChunk', offset: 0, data } }]);
    sample();
    const [env] = await cluster.handlers.b!.waitFor(1, 30_000);
    sample();
    clearInterval(timer);
    const got = (env!.msg as { data: Uint8Array }).data;
    expect(got.byteLength).toBe(size);
    expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(data))).toBe(0);
    // Sender's encoded copy + receiver's reassembly buffer; socket chunks are freed as they are copied.
    expect(peak).toBeLessThan(2.5 * size);
    // The body crossed the wire as parts of at most 64 KiB each.
    expect(cluster.transports.a!.peerStats().b!.queuedBytes).toBe(0);
  });
});
