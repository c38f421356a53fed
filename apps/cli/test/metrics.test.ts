import { describe, expect, it } from 'vitest';
import { silentLogger } from '@consensus-kit/core/host';
import { ClusterDir } from '../src/cluster-file';
import { parseNodeConfig } from '../src/config';
import { runNode } from '../src/node-runner';
import { cleanup, cli, freeBase, leaderOf, tempDir, useSourceNodes, useStartedCluster, waitFor } from './helpers';

useSourceNodes();

/** One sample line of the Prometheus text format: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** GET /metrics of one node, over HTTP. */
async function scrape(dir: string, id: string): Promise<Sample[]> {
  const cd = new ClusterDir(dir);
  const n = cd.node(cd.read(), id);
  const res = await fetch(`http://${n.host}:${n.httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
  expect(res.status).toBe(200);
  return parse(await res.text());
}

/** The value of the one sample named `name` whose labels include `labels` (fails when there is none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return (hits[0] as Sample).value;
}

const IDS = ['n1', 'n2', 'n3'];
const PUTS = 25;

describe('/metrics at etcd level on a real 3-node raft cluster', () => {
  const dir = useStartedCluster('raft');

  it('after some puts every node exposes the server, disk, network, client and version series with sane values', async () => {
    const leader = await leaderOf(dir());
    for (let i = 0; i < PUTS; i++) expect((await cli('put', `key-${i}`, `value ${i}`, '--dir', dir())).code).toBe(0);
    expect((await cli('get', 'key-3', '--dir', dir())).code).toBe(0);
    // Followers apply a commit one heartbeat later: wait until every node applied the puts.
    const all = await waitFor(
      'every node applied the puts',
      async () => {
        const s = await Promise.all(IDS.map((id) => scrape(dir(), id)));
        return s.every((x) => value(x, 'consensus_server_proposals_applied_total') >= PUTS) ? s : undefined;
      },
      20_000,
    );
    const byId = Object.fromEntries(IDS.map((id, i) => [id, all[i] as Sample[]]));
    for (const id of IDS) {
      const m = byId[id] as Sample[];
      const about = { id };
      expect({ ...about, hasLeader: value(m, 'consensus_server_has_leader') }).toEqual({ ...about, hasLeader: 1 });
      expect(value(m, 'consensus_server_version', { server_version: '0.1.0', protocol: 'raft', node_version: process.version })).toBe(1);
      expect(value(m, 'consensus_server_leader_changes_seen_total')).toBeGreaterThanOrEqual(1);
      const committed = value(m, 'consensus_server_proposals_committed_total');
      expect(committed).toBeGreaterThanOrEqual(PUTS);
      expect(value(m, 'consensus_server_proposals_applied_total')).toBeLessThanOrEqual(committed);
      expect(value(m, 'consensus_server_proposals_pending')).toBe(0);
      expect(value(m, 'consensus_server_proposals_failed_total')).toBe(0);
      // Every node wrote each entry to its WAL: fsync and whole-write times, the first within the second.
      const syncs = value(m, 'consensus_disk_wal_fsync_duration_seconds_count');
      expect(syncs).toBeGreaterThan(0);
      expect(value(m, 'consensus_disk_wal_write_duration_seconds_count')).toBe(syncs);
      const fsyncSum = value(m, 'consensus_disk_wal_fsync_duration_seconds_sum');
      expect(fsyncSum).toBeGreaterThan(0);
      expect(value(m, 'consensus_disk_wal_write_duration_seconds_sum')).toBeGreaterThanOrEqual(fsyncSum);
      expect(value(m, 'consensus_disk_wal_fsync_duration_seconds_bucket', { le: '+Inf' })).toBe(syncs);
      expect(value(m, 'consensus_disk_wal_write_bytes_total')).toBeGreaterThan(PUTS * 10);
      // One apply per command entry at least (the puts; noops and config entries are not commands).
      expect(value(m, 'consensus_server_apply_duration_seconds_count')).toBeGreaterThanOrEqual(PUTS);
      expect(value(m, 'consensus_server_apply_duration_seconds_sum')).toBeGreaterThan(0);
      // No snapshot yet (one is taken every 10,000 entries): the series are there, empty.
      expect(value(m, 'consensus_snap_save_total_duration_seconds_count')).toBe(0);
      expect(value(m, 'consensus_snap_capture_duration_seconds_count')).toBe(0);
      for (const peer of IDS.filter((p) => p !== id)) {
        expect(value(m, 'consensus_network_peer_sent_failures_total', { To: peer })).toBeGreaterThanOrEqual(0);
        expect(value(m, 'consensus_network_peer_received_bytes_total', { From: peer })).toBeGreaterThanOrEqual(0);
      }
      expect(m.some((s) => s.name.startsWith('consensus_network_peer_') && (s.labels.To === id || s.labels.From === id))).toBe(false);
    }
    // A node probes the round trip on each connection it opened (every 2 s, the first at connect): the leader's
    // to each follower, and each follower's to the leader (followers need not talk to each other).
    for (const id of IDS) {
      for (const peer of id === leader ? IDS.filter((p) => p !== id) : [leader]) {
        const m = byId[id] as Sample[];
        expect(value(m, 'consensus_network_peer_round_trip_time_seconds_count', { To: peer })).toBeGreaterThanOrEqual(1);
        const sum = value(m, 'consensus_network_peer_round_trip_time_seconds_sum', { To: peer });
        expect(sum).toBeGreaterThan(0);
        expect(sum).toBeLessThan(60);
      }
    }
    // The leader sent each follower the entries (25 puts of > 10 bytes each) and heard their answers.
    for (const f of IDS.filter((p) => p !== leader)) {
      expect(value(byId[leader] as Sample[], 'consensus_network_peer_sent_bytes_total', { To: f })).toBeGreaterThan(PUTS * 10);
      expect(value(byId[leader] as Sample[], 'consensus_network_peer_received_bytes_total', { From: f })).toBeGreaterThan(0);
      expect(value(byId[f] as Sample[], 'consensus_network_peer_received_bytes_total', { From: leader })).toBeGreaterThan(PUTS * 10);
    }
    // Client latency by op: every put was answered by some node (the leader, or a follower that redirected it).
    const puts = IDS.map((id) => value(byId[id] as Sample[], 'consensus_server_client_request_duration_seconds_count', { op: 'put' })).reduce((a, b) => a + b, 0);
    expect(puts).toBeGreaterThanOrEqual(PUTS);
    const leaderPuts = value(byId[leader] as Sample[], 'consensus_server_client_request_duration_seconds_count', { op: 'put' });
    expect(leaderPuts).toBeGreaterThanOrEqual(PUTS);
    expect(value(byId[leader] as Sample[], 'consensus_server_client_request_duration_seconds_sum', { op: 'put' })).toBeGreaterThan(0);
    const gets = IDS.map((id) => value(byId[id] as Sample[], 'consensus_server_client_request_duration_seconds_count', { op: 'get' })).reduce((a, b) => a + b, 0);
    expect(gets).toBeGreaterThanOrEqual(1);
    expect(value(byId[leader] as Sample[], 'consensus_server_client_request_duration_seconds_count', { op: 'txn' })).toBe(0);
  });

  it('counts a leader change on every node after a leader transfer', async () => {
    const leader = await leaderOf(dir());
    const before = await Promise.all(IDS.map(async (id) => value(await scrape(dir(), id), 'consensus_server_leader_changes_seen_total')));
    const target = IDS.find((id) => id !== leader) as string;
    expect((await cli('leader', 'transfer', target, '--dir', dir())).code).toBe(0);
    await waitFor('the new leader', async () => ((await leaderOf(dir())) === target ? true : undefined), 20_000);
    await waitFor(
      'every node to count the change',
      async () => {
        const after = await Promise.all(IDS.map(async (id) => value(await scrape(dir(), id), 'consensus_server_leader_changes_seen_total')));
        return after.every((a, i) => a >= (before[i] as number) + 1) ? true : undefined;
      },
      20_000,
    );
    const m = await scrape(dir(), target);
    expect(value(m, 'consensus_server_has_leader')).toBe(1);
    expect(value(m, 'consensus_is_leader')).toBe(1);
  });
});

/** The node's metrics once they count two snapshots saved (waits up to 10 s). */
function twoSnapshotsSaved(httpPort: number) {
  return waitFor(
    'two snapshots',
    async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const samples = parse(await res.text());
      return value(samples, 'consensus_snap_save_total_duration_seconds_count') >= 2 ? samples : undefined;
    },
    10_000,
  );
}

describe('/metrics of a node that snapshots', () => {
  it('times snapshot capture and save once entries pass snapshotEvery', async () => {
    const dir = tempDir();
    const base = await freeBase();
    const address = `127.0.0.1:${base + 1}`;
    const running = await runNode(
      {
        clusterId: 'metrics-snap',
        id: 'n1',
        protocol: 'raft',
        dataDir: `${dir}/n1`,
        listen: { host: '127.0.0.1', port: base + 1 },
        http: { host: '127.0.0.1', port: base + 101 },
        peers: { n1: address },
        snapshotEvery: 5,
      },
      silentLogger,
    );
    try {
      await running.node.waitForLeader({ timeoutMs: 10_000 });
      for (let i = 0; i < 12; i++) await running.node.propose({ cmd: { op: 'put', key: `k${i}`, value: `v${i}` } });
      const m = await twoSnapshotsSaved(base + 101);
      expect(value(m, 'consensus_snap_capture_duration_seconds_count')).toBeGreaterThanOrEqual(2);
      expect(value(m, 'consensus_snap_capture_duration_seconds_sum')).toBeGreaterThan(0);
      expect(value(m, 'consensus_snap_save_total_duration_seconds_sum')).toBeGreaterThan(0);
      expect(value(m, 'consensus_server_has_leader')).toBe(1);
      expect(value(m, 'consensus_server_leader_changes_seen_total')).toBe(1);
    } finally {
      await running.stop();
      await cleanup(dir);
    }
  });

  it('snapshots by applied bytes (snapshotBytes in the node config) long before snapshotEvery entries', async () => {
    const dir = tempDir();
    const base = await freeBase();
    const address = `127.0.0.1:${base + 1}`;
    const config = parseNodeConfig(
      JSON.stringify({
        clusterId: 'metrics-snap-bytes',
        id: 'n1',
        protocol: 'raft',
        dataDir: `${dir}/n1`,
        listen: { host: '127.0.0.1', port: base + 1 },
        http: { host: '127.0.0.1', port: base + 101 },
        peers: { n1: address },
        snapshotEvery: 1_000_000,
        snapshotBytes: 4_000,
      }),
      'node.json',
    );
    expect(config.snapshotBytes).toBe(4_000);
    expect(() => parseNodeConfig(JSON.stringify({ ...config, snapshotBytes: -1 }), 'node.json')).toThrow(/snapshotBytes/);
    const running = await runNode(config, silentLogger);
    try {
      await running.node.waitForLeader({ timeoutMs: 10_000 });
      // 12 values of 1,000 bytes: about three snapshots' worth of applied bytes, 12 entries of a million.
      for (let i = 0; i < 12; i++) await running.node.propose({ cmd: { op: 'put', key: `k${i}`, value: 'x'.repeat(1_000) } });
      const m = await twoSnapshotsSaved(base + 101);
      expect(value(m, 'consensus_snap_save_total_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    } finally {
      await running.stop();
      await cleanup(dir);
    }
  });
});
