import { watchKeys, type KvEvent } from '@consensus-kit/kv';
import { createRpcClient } from '@consensus-kit/transport-tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { connectKv } from '../src/connect';
import { dirTarget } from '../src/target';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, leaderOf, spawnCli, statusOf, tempDir, useSourceNodes, useStartedCluster, waitFor } from './helpers';

useSourceNodes();

describe('watch on a real 3-node cluster', () => {
  const dir = useStartedCluster();

  it('consensus-cli watch --prefix --rev 1 --json prints history then live events, one JSON line each, and exits 0 on SIGTERM', async () => {
    const { kv } = connectKv(dir());
    try {
      const first = await kv.put('cli/a', '1');
      const w = spawnCli(['watch', 'cli/', '--prefix', '--rev', String(first.revision), '--json', '--prev-kv', '--dir', dir()]);
      try {
        await waitFor('the replayed event', async () => (w.lines().length >= 1 ? true : undefined), 30_000);
        await kv.put('cli/b', '2');
        await kv.put('other', 'x');
        await kv.put('cli/a', '3');
        await kv.delete('cli/a');
        await waitFor('the live events', async () => (w.lines().length >= 4 ? true : undefined), 30_000);
        w.signal('SIGTERM');
        expect(await w.exited).toBe(0);
      } finally {
        w.signal('SIGKILL');
      }
      const events = w.lines().map((l) => JSON.parse(l) as { type: string; key: string; value?: string; revision: number; prev?: { value: string } });
      expect(events.map((e) => [e.type, e.key, e.value])).toEqual([
        ['put', 'cli/a', '1'],
        ['put', 'cli/b', '2'],
        ['put', 'cli/a', '3'],
        ['delete', 'cli/a', undefined],
      ]);
      expect(events[2]!.prev?.value).toBe('1');
      expect(events[3]!.prev?.value).toBe('3');
      const revisions = events.map((e) => e.revision);
      expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
    } finally {
      await kv.close();
    }
  });

  it('a wrong cluster id ends the watch with the refusal and exit code 1 (no endless reconnecting)', async () => {
    const endpoints = dirTarget(dir()).endpoints.join(',');
    const w = await cli('watch', 'k', '--endpoints', endpoints, '--cluster-id', 'not-this-cluster');
    expect(w.code).toBe(1);
    expect(w.err).toMatch(/watch k: .*cluster-mismatch/);
  });

  it('a compacted --rev ends the watch with a clear message and a non-zero exit', async () => {
    const { kv } = connectKv(dir());
    try {
      await kv.put('gone', '1');
      const r = await kv.put('gone', '2');
      expect((await cli('compact', String(r.revision), '--dir', dir())).code).toBe(0);
      // Any node may serve the watch: wait until every one has applied the compaction.
      await waitFor('every node to apply the compaction', async () => {
        const s = await statusOf(dir());
        const applied = s.nodes.map((n) => n.applied ?? -1);
        return applied.every((a) => a === applied[0] && a > 0) ? true : undefined;
      });
      const w = await cli('watch', 'gone', '--rev', '1', '--dir', dir());
      expect(w.code).toBe(1);
      expect(w.err).toMatch(/watch gone: .*revision 1 has been compacted/);
    } finally {
      await kv.close();
    }
  });
});

describe.each(PROTOCOLS_UNDER_TEST)('watch across a leader crash (%s)', (protocol) => {
  let d = '';
  beforeAll(async () => {
    d = tempDir();
    expect((await cli('start', '--protocol', protocol, '--dir', d, '--port', String(await freeBase()), '--detach', '--json')).code).toBe(0);
  });
  afterAll(async () => {
    await cleanup(d);
  });

  it('a watcher across a kill -9 of the leader receives every event exactly once, in revision order, while a writer keeps writing', async () => {
    const leader = await leaderOf(d);
    const nodes = new ClusterDir(d).read().nodes;
    const endpointOf = (id: string) => {
      const n = nodes.find((x) => x.id === id)!;
      return `${n.host}:${n.port}`;
    };
    // The watch is served by the leader first, so killing the leader kills the watcher's node too.
    const endpoints = [endpointOf(leader), ...nodes.filter((n) => n.id !== leader).map((n) => endpointOf(n.id))];
    const target = dirTarget(d);
    const rpc = createRpcClient({ endpoints, clusterId: target.clusterId, connectTimeoutMs: 300 });
    const { kv } = connectKv(d, { timeoutMs: 30_000 });
    const seen: KvEvent[] = [];
    const reconnects: string[] = [];
    try {
      const start = await kv.put('e2e-start', 'x');
      const watch = watchKeys(rpc, 'e2e/', { prefix: true, startRevision: start.revision + 1, onReconnect: (i) => reconnects.push(i.error.message) });
      await watch.created;
      expect(rpc.subscribeEndpoint).toBe(endpointOf(leader));
      const reading = (async () => {
        for await (const batch of watch) seen.push(...batch.events);
      })();
      const written: { key: string; value: string; revision: number }[] = [];
      const writer = (async () => {
        for (let i = 0; i < 120; i++) {
          const key = `e2e/${i % 7}`;
          const value = `v${i}`;
          const r = await kv.put(key, value);
          written.push({ key, value, revision: r.revision });
        }
      })();
      await waitFor('the watcher to see some events', async () => (seen.length >= 30 ? true : undefined), 30_000);
      expect((await cli('kill', leader, '--dir', d)).code).toBe(0);
      const beforeKill = written.length;
      await writer;
      expect(written.length).toBeGreaterThan(beforeKill); // writes went on after the crash
      const last = written[written.length - 1]!.revision;
      await waitFor('the watcher to catch up with the last write', async () => (watch.revision >= last ? true : undefined), 30_000);
      watch.cancel();
      await reading;
      // Exactly the committed writes, each once, in revision order.
      expect(seen.map((e) => e.revision)).toEqual(written.map((w) => w.revision));
      expect(seen.map((e) => (e.type === 'put' ? [e.kv.key, e.kv.value] : [e.key, null]))).toEqual(written.map((w) => [w.key, w.value]));
      expect(watch.reconnects).toBeGreaterThanOrEqual(1);
      expect(reconnects.length).toBeGreaterThanOrEqual(1);
    } finally {
      await rpc.close();
      await kv.close();
    }
  });
});
