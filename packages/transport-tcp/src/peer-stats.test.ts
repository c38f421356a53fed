import { afterEach, describe, expect, it } from 'vitest';
import { PEER_CAPABILITIES } from './handshake';
import { startTcpCluster, type TcpCluster } from './testing';

let cluster: TcpCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('peerStats(): bytes and send failures (for metrics)', () => {
  it('counts message bytes sent and received per peer, and messages that could not be sent', async () => {
    cluster = await startTcpCluster(['a', 'b'], 'stats', () => ({ backoff: { baseMs: 10, capMs: 50 } }));
    const { transports, handlers } = cluster;
    for (let i = 0; i < 20; i++) transports.a!.send([{ from: 'a', to: 'b', msg: `message ${i} ${'x'.repeat(100)}` }]);
    await handlers.b!.waitFor(20);
    const sent = transports.a!.peerStats().b!;
    const received = transports.b!.peerStats().a!;
    // Each message body carries at least its 100-character payload.
    expect(sent.bytesSent).toBeGreaterThanOrEqual(20 * 100);
    expect(received.bytesReceived).toBe(sent.bytesSent);
    expect(sent.sendFailures).toBe(0);
    expect(transports.b!.peerStats().a!.bytesSent).toBe(0);

    // b goes away: what a sends now is lost, and counted.
    await transports.b!.stop();
    const deadline = Date.now() + 10_000;
    while (transports.a!.peerStats().b!.sendFailures === 0 && Date.now() < deadline) {
      transports.a!.send([{ from: 'a', to: 'b', msg: 'lost' }]);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(transports.a!.peerStats().b!.sendFailures).toBeGreaterThan(0);
    expect(transports.a!.peerStats().b!.sendFailures).toBe(transports.a!.peerStats().b!.dropped);
  });
});

describe('round-trip probes (Ping/Pong) between peers', () => {
  it('measure the round trip to a peer that announced them, reported per probe and in peerStats()', async () => {
    const seen: { peer: string; ms: number }[] = [];
    cluster = await startTcpCluster(['a', 'b'], 'rtt', (id) => ({ pingIntervalMs: 20, ...(id === 'a' ? { onRoundTrip: (peer: string, ms: number) => seen.push({ peer, ms }) } : {}) }));
    const { transports, handlers } = cluster;
    transports.a!.send([{ from: 'a', to: 'b', msg: 'open' }]);
    await handlers.b!.waitFor(1);
    const deadline = Date.now() + 10_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const s of seen) {
      expect(s.peer).toBe('b');
      expect(s.ms).toBeGreaterThan(0);
      expect(s.ms).toBeLessThan(5_000);
    }
    expect(transports.a!.peerStats().b!.rttMs).toBeGreaterThan(0);
    // Probes are not messages: b delivered only the one message, and nothing was counted as message bytes.
    expect(handlers.b!.received.length).toBe(1);
    expect(transports.a!.peerStats().b!.connects).toBe(1);
  });

  it('are never sent to a peer whose welcome did not announce them (a node of an older version)', async () => {
    const caps = PEER_CAPABILITIES as string[];
    const saved = [...caps];
    caps.length = 0; // b welcomes like a node from before the capability
    try {
      const seen: number[] = [];
      cluster = await startTcpCluster(['a', 'b'], 'rtt-old', (id) => ({ pingIntervalMs: 10, ...(id === 'a' ? { onRoundTrip: (_: string, ms: number) => seen.push(ms) } : {}) }));
      const { transports, handlers } = cluster;
      transports.a!.send([{ from: 'a', to: 'b', msg: 'one' }]);
      await handlers.b!.waitFor(1);
      await new Promise((r) => setTimeout(r, 150));
      transports.a!.send([{ from: 'a', to: 'b', msg: 'two' }]);
      await handlers.b!.waitFor(2);
      expect(seen).toEqual([]);
      expect(transports.a!.peerStats().b!.rttMs).toBeUndefined();
      expect(transports.a!.peerStats().b!.connects).toBe(1);
    } finally {
      caps.length = 0;
      caps.push(...saved);
    }
  });
});
