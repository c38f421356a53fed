import { afterEach, describe, expect, it } from 'vitest';
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
