import { createServer, type Server, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePlain } from './codec';
import { FrameParser, FrameType, encodeFrame } from './frame';
import { startTcpCluster, type TcpCluster } from './testing';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A peer that completes the handshake as `id`, then never reads again. */
async function stalledPeer(id: string): Promise<{ address: string; sockets: Socket[]; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    const parser = new FrameParser(1 << 20);
    s.on('data', (d) => {
      for (const f of parser.push(d)) {
        if (f.type === FrameType.Hello) {
          s.write(encodeFrame(FrameType.Welcome, encodePlain({ id })));
          s.pause();
          s.removeAllListeners('data');
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('a stalled peer', () => {
  let cluster: TcpCluster | undefined;
  let stalled: Awaited<ReturnType<typeof stalledPeer>> | undefined;
  afterEach(async () => {
    await cluster?.stop();
    await stalled?.close();
    cluster = undefined;
    stalled = undefined;
  });

  it('leaves the sender\'s memory flat and heartbeats to other peers flowing', async () => {
    stalled = await stalledPeer('s');
    cluster = await startTcpCluster(['a', 'c'], 'test-cluster', () => ({ maxQueueBytes: 1 << 20, maxQueueMessages: 1024 }));
    const { transports: t, handlers: h } = cluster;
    t.a!.setPeers({ ...cluster.endpoints, s: stalled.address });
    const payload = new Uint8Array(1000).fill(5);
    // V8 releases ArrayBuffer memory on a background thread after a GC, so let it settle before reading.
    const memory = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const m = process.memoryUsage();
      return { heap: m.heapUsed, buffers: m.arrayBuffers };
    };
    // Warm up: the connection to s is open and its queues are full.
    for (let i = 0; i < 3000; i++) t.a!.send([{ from: 'a', to: 's', msg: { type: 'Append', i, payload } }]);
    await h.a!.waitUnreachable('s');
    const before = await memory();
    let heartbeats = 0;
    for (let round = 0; round < 40; round++) {
      const batch = [];
      for (let i = 0; i < 1000; i++) batch.push({ from: 'a', to: 's', msg: { type: 'Append', i, payload } });
      t.a!.send(batch); // ~1 MB per round, 40 MB in all, to a peer that reads nothing
      t.a!.send([{ from: 'a', to: 'c', msg: { type: 'Heartbeat', round } }]);
      heartbeats++;
      await h.c!.waitUntil((e) => (e.msg as { round?: number }).round === round);
    }
    const after = await memory();
    expect(h.c!.received.filter((e) => (e.msg as { type: string }).type === 'Heartbeat')).toHaveLength(heartbeats);
    expect(t.a!.peerStats().s!.queuedBytes).toBeLessThanOrEqual((1 << 20) + 64 * 1024);
    expect(t.a!.peerStats().s!.dropped).toBeGreaterThan(30_000);
    // 40 MB offered: encoded messages (buffers) grew by about one queue bound at most, and the JS heap by
    // no more than JIT and bookkeeping noise.
    expect(after.buffers - before.buffers).toBeLessThan(4 * 1024 * 1024);
    expect(after.heap - before.heap).toBeLessThan(16 * 1024 * 1024);
  });
});
