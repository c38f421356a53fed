import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { connectKv } from '../src/connect';
import { sleep } from '../src/supervisor';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, leaderOf, statusOf, tempDir, useSourceNodes, waitFor } from './helpers';

useSourceNodes();




describe.each(PROTOCOLS_UNDER_TEST)('consensus-cli on %s: a real 3-node cluster (processes, sockets, disk)', (protocol) => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('starts, replicates, fails over, catches up, and keeps its data across a full restart', async () => {
    const port = await freeBase();
    const started = await cli('start', '--protocol', protocol, '--dir', dir, '--port', String(port), '--detach', '--json');
    expect(started.err).toBe('');
    expect(started.code).toBe(0);
    const first = JSON.parse(started.out) as { leader: string };
    expect(['n1', 'n2', 'n3']).toContain(first.leader);

    expect((await cli('put', 'greeting', 'hello', '--dir', dir)).out).toMatch(/^OK \(revision 1\)/);
    expect((await cli('get', 'greeting', '--dir', dir)).out.trim()).toBe('hello');

    // kill -9 the leader: a new one is elected and writes continue.
    expect((await cli('kill', first.leader, '--dir', dir)).code).toBe(0);
    const second = await waitFor('a new leader', async () => {
      const s = await statusOf(dir);
      return s.leader !== null && s.leader !== first.leader ? s.leader : undefined;
    });
    expect(second).not.toBe(first.leader);
    for (let i = 0; i < 5; i++) expect((await cli('put', `k${i}`, `v${i}`, '--dir', dir)).code).toBe(0);
    expect((await cli('get', 'k4', '--dir', dir)).out.trim()).toBe('v4');

    // The old leader restarts from its disk and catches up.
    expect((await cli('restart', first.leader, '--dir', dir)).code).toBe(0);
    await waitFor('the restarted node to catch up', async () => {
      const s = await statusOf(dir);
      const leaderApplied = s.nodes.find((n) => n.node === s.leader)?.applied ?? -1;
      const old = s.nodes.find((n) => n.node === first.leader);
      return old?.role === 'follower' && old.applied === leaderApplied && leaderApplied > 0 ? true : undefined;
    });
    const local = await cli('get', 'k4', '--dir', dir, '--serializable', '--json');
    expect(JSON.parse(local.out)).toMatchObject({ key: 'k4', value: 'v4' });

    // Stop everything and start again: all data is still there.
    expect((await cli('stop', '--dir', dir)).out).toMatch(/stopped n1, n2, n3/);
    const again = await cli('start', '--dir', dir, '--detach', '--json');
    expect(again.code).toBe(0);
    expect((await cli('get', 'greeting', '--dir', dir)).out.trim()).toBe('hello');
    const all = await cli('range', 'k', '--dir', dir, '--json');
    expect((JSON.parse(all.out) as { key: string }[]).map((r) => r.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  });

  it('a client retrying after the leader is killed mid-request never applies a command twice', async () => {
    const leader = await leaderOf(dir);
    const { kv } = connectKv(dir);
    const { kv: reader } = connectKv(dir, { timeoutMs: 10_000 });
    try {
      const writes = Array.from({ length: 40 }, (_, i) => kv.put(`once/${i}`, `v${i}`));
      await sleep(5);
      expect((await cli('kill', leader, '--dir', dir)).code).toBe(0);
      const results = await Promise.allSettled(writes);
      // Every write either succeeded or reported an unknown outcome; none was applied twice.
      for (let i = 0; i < 40; i++) {
        const kvPair = await reader.get(`once/${i}`);
        if (results[i]?.status === 'fulfilled') expect(kvPair).toBeDefined();
        if (kvPair !== undefined) expect(kvPair.version).toBe(1);
      }
      expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);
    } finally {
      await kv.close();
      await reader.close();
    }
    await cli('restart', leader, '--dir', dir);
  });
});

describe('consensus-cli: bad input gets one line and a non-zero exit, and writes nothing', () => {
  it('unknown command or flag', async () => {
    const a = await cli('explode');
    expect(a.code).toBe(2);
    expect(a.err.trim().split('\n')).toHaveLength(1);
    const d = tempDir();
    const b = await cli('start', '--nodes', 'many', '--dir', d);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--nodes/);
    const c = await cli('status', '--colour');
    expect(c.code).toBe(2);
    await cleanup(d);
  });

  it('a --dir with no cluster', async () => {
    const d = tempDir();
    const r = await cli('get', 'k', '--dir', d);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no cluster in/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    await cleanup(d);
  });

  it('a port in use', async () => {
    const { createServer } = await import('node:net');
    const port = await freeBase();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port + 2, '127.0.0.1', () => r()));
    const d = tempDir();
    try {
      const r = await cli('start', '--dir', d, '--port', String(port), '--detach');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`port ${port + 2} .*in use`));
      expect(new ClusterDir(d).exists()).toBe(false);
    } finally {
      blocker.close();
      await cleanup(d);
    }
  });

  it('a malformed config file', async () => {
    const { rmSync, writeFileSync } = await import('node:fs');
    const d = tempDir();
    const file = `${d}/node.json`;
    writeFileSync(file, '{ "clusterId": "x", "id": "n1", ');
    const r = await cli('node', '--config', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not valid JSON/);
    writeFileSync(file, JSON.stringify({ clusterId: 'x', id: 'n1', protocol: 'raft', dataDir: 'data', listen: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 'x' }, peers: { n1: '127.0.0.1:1' } }));
    const r2 = await cli('node', '--config', file);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/http.port must be/);
    writeFileSync(file, JSON.stringify({ clusterId: 'x', id: 'n1', protocol: 'raft', dataDir: 'data', listen: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 2 }, peers: { n1: '127.0.0.1:1' }, blockingWrites: 'yes' }));
    const r3 = await cli('node', '--config', file);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/blockingWrites must be true or false/);
    // Node's timers take at most 2^31-1 ms and fire at once past it: a tick that long is refused.
    writeFileSync(file, JSON.stringify({ clusterId: 'x', id: 'n1', protocol: 'raft', dataDir: 'data', listen: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 2 }, peers: { n1: '127.0.0.1:1' }, tickMs: 3_000_000_000 }));
    const r4 = await cli('node', '--config', file);
    expect(r4.code).toBe(1);
    expect(r4.err).toMatch(/tickMs must be an integer from 1 to 60000/);
    // A misspelt field is refused, not dropped in favour of its default.
    writeFileSync(file, JSON.stringify({ clusterId: 'x', id: 'n1', protocol: 'raft', dataDir: 'data', listen: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 2 }, peers: { n1: '127.0.0.1:1' }, snapshotevery: 5 }));
    const r5 = await cli('node', '--config', file);
    expect(r5.code).toBe(1);
    expect(r5.err).toMatch(/unknown field "snapshotevery"/);
    // A cluster file that lists a node twice, or none, is refused by every command.
    writeFileSync(`${d}/cluster.json`, JSON.stringify({ version: 1, clusterId: 'x', protocol: 'raft', nodes: [{ id: 'n1', host: '127.0.0.1', port: 9001, httpPort: 9101 }, { id: 'n1', host: '127.0.0.1', port: 9002, httpPort: 9102 }] }));
    const dup = await cli('start', '--dir', d, '--detach');
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/node n1 is listed twice/);
    writeFileSync(`${d}/cluster.json`, JSON.stringify({ version: 1, clusterId: 'x', protocol: 'raft', nodes: [] }));
    expect((await cli('status', '--dir', d)).err).toMatch(/lists no nodes/);
    rmSync(`${d}/cluster.json`);
    const { existsSync } = await import('node:fs');
    expect(existsSync(`${d}/data`)).toBe(false);
    await cleanup(d);
  });

  it('a value too large', async () => {
    const d = tempDir();
    const port = await freeBase();
    try {
      expect((await cli('start', '--dir', d, '--port', String(port), '--detach', '--json')).code).toBe(0);
      const r = await cli('put', 'big', 'x'.repeat(5 * 1024 * 1024), '--dir', d);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/larger than/);
      // Nothing was stored: a missing key prints nothing (exit 0, as etcdctl).
      expect(await cli('get', 'big', '--dir', d)).toMatchObject({ code: 0, out: '' });
      // Started again with options of a new cluster: it keeps its own, and says so.
      expect((await cli('stop', '--dir', d)).code).toBe(0);
      const again = await cli('start', '--dir', d, '--port', String(port + 1000), '--nodes', '5', '--detach', '--json');
      expect(again.code).toBe(0);
      expect(again.err).toMatch(/--nodes, --port ignored/);
      expect((await cli('put', 'small', 'x', '--dir', d)).code).toBe(0);
    } finally {
      await cleanup(d);
    }
  });
});
