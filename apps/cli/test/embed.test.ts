import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, NotLeaderError, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { silentLogger } from '@consensus-kit/core/host';
import { createKvClient } from '@consensus-kit/kv';
import { LockClient } from '@consensus-kit/lock';
import { createRpcClient } from '@consensus-kit/transport-tcp';
import { LeaderRedirectError, startNode, type EmbeddedKvNode, type EmbeddedNode } from '../src/embed';
import { checkPortsFree } from '../src/supervisor';
import { cleanup, cli, freeBase, tempDir, waitFor } from './helpers';

const dirs: string[] = [];
const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});
afterAll(async () => {
  for (const d of dirs.splice(0)) await cleanup(d);
});

function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

function track<T extends { stop(): Promise<void> }>(n: T): T {
  running.push(n);
  return n;
}

/** Peers n1..n3 on base+1..+3 of 127.0.0.1. */
function peersAt(base: number): Record<string, string> {
  return { n1: `127.0.0.1:${base + 1}`, n2: `127.0.0.1:${base + 2}`, n3: `127.0.0.1:${base + 3}` };
}

async function leaderOf<T extends { status(): { role: string } }>(nodes: T[]): Promise<T> {
  return waitFor('a leader', async () => nodes.find((n) => n.status().role === 'leader'), 15_000);
}

/** GET on an HTTP server: status and parsed JSON (or text). */
async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text
  }
  return { status: res.status, body };
}

function listenOn(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('startNode: a kv cluster of three embedded nodes', () => {
  it('writes through the clients on leader and follower, interoperates with createKvClient, serves metrics and health, and frees its ports on stop', async () => {
    const d = dir();
    const base = await freeBase();
    const peers = peersAt(base);
    const start = (id: string, extra: { http?: string } = {}) =>
      startNode({ protocol: 'raft', protocolOptions: { preVote: true }, id, dir: join(d, id), peers, clusterId: 'embed-test', logger: silentLogger, ...extra });
    let nodes: EmbeddedKvNode[] = (await Promise.all([start('n1', { http: `127.0.0.1:${base + 101}` }), start('n2'), start('n3')])).map(track);
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader) as EmbeddedKvNode;

    // The leader's client, in process.
    const put = await leader.client.put('greeting', 'hello');
    expect(put.revision).toBeGreaterThan(0);
    expect((await leader.client.get('greeting'))?.value).toBe('hello');
    // A follower's client forwards to the leader; the node itself redirects.
    await follower.client.put('from-follower', 'yes');
    expect((await follower.client.get('from-follower'))?.value).toBe('yes');
    const redirected = await follower.node.propose({ cmd: { op: 'put', key: 'k', value: 'v' } }).catch((e: unknown) => e);
    expect(NotLeaderError.is(redirected)).toBe(true);
    expect((redirected as NotLeaderError).leaderHint).toBe(leader.id);
    expect(follower.leader()).toEqual({ id: leader.id, address: peers[leader.id] });
    // The answer is a copy: editing it leaves the store alone.
    const kv = await leader.client.get('greeting');
    (kv as { value: string }).value = 'changed';
    expect((await leader.client.get('greeting'))?.value).toBe('hello');

    // Interop: a TCP client of the CLI's kind against the embedded cluster, both ways.
    const tcp = createKvClient({ endpoints: Object.values(peers), clusterId: 'embed-test' });
    try {
      expect((await tcp.get('from-follower'))?.value).toBe('yes');
      await tcp.put('from-tcp', 'ok');
      expect((await follower.client.get('from-tcp'))?.value).toBe('ok');
    } finally {
      await tcp.close();
    }
    // The lock service runs beside kv, as on the CLI's nodes.
    const locks = new LockClient({ channel: createRpcClient({ endpoints: Object.values(peers), clusterId: 'embed-test' }), ttlMs: 5_000 });
    try {
      const held = await locks.acquire('jobs');
      expect(held.token).toBeGreaterThan(0);
      await held.release();
    } finally {
      await locks.close();
    }
    // ... and the CLI's own commands, with --endpoints and --cluster-id.
    const got = await cli('get', 'from-tcp', '--endpoints', Object.values(peers).join(','), '--cluster-id', 'embed-test');
    expect(got).toMatchObject({ code: 0, out: 'ok\n' });

    // A watch through the in-process client, served by the follower from its own state.
    const watch = follower.client.watch('jobs/', { prefix: true });
    const seen = (async () => {
      for await (const batch of watch) {
        const e = batch.events.find((ev) => ev.type === 'put');
        if (e !== undefined && e.type === 'put') return e.kv.key;
      }
      return undefined;
    })();
    await watch.created;
    await leader.client.put('jobs/1', 'run');
    expect(await seen).toBe('jobs/1');

    // Metrics: the etcd-named series, with the in-process requests counted.
    const text = await leader.metrics.text();
    for (const series of [
      /^consensus_server_has_leader\{node="n\d"\} 1$/m,
      /^consensus_server_leader_changes_seen_total\{node="n\d"\} 1$/m,
      /^consensus_server_proposals_committed_total\{node="n\d"\} [1-9]\d*$/m,
      /^consensus_disk_wal_fsync_duration_seconds_bucket\{/m,
      // The in-process client's requests are counted as TCP clients' are.
      /^consensus_server_client_request_duration_seconds_count\{op="put",node="n\d"\} [1-9]\d*$/m,
      /^consensus_server_version\{server_version="[^"]+",protocol="raft",/m,
    ]) {
      expect(text).toMatch(series);
    }
    expect(leader.metrics.contentType).toMatch(/text\/plain/);

    // Health: the handlers in a server of our own, and n1's own HTTP server.
    const own = createServer(follower.handlers);
    const port = await listenOn(own);
    const mounted = createServer((req, res) => (req.url === '/ready' ? follower.handlers.readyz(req, res) : res.end('app')));
    const mountedPort = await listenOn(mounted);
    try {
      expect((await get(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      expect(await get(`http://127.0.0.1:${port}/readyz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      expect((await get(`http://127.0.0.1:${port}/status`)).body).toMatchObject({ id: follower.id, status: { leader: leader.id } });
      expect((await get(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
      expect((await get(`http://127.0.0.1:${mountedPort}/ready`)).status).toBe(200);
      expect(typeof follower.handlers.ui).toBe('function');
      const n1 = nodes[0] as EmbeddedKvNode;
      expect(n1.httpAddress).toBe(`127.0.0.1:${base + 101}`);
      expect((await get(`http://127.0.0.1:${base + 101}/health`)).status).toBe(200);
      expect((await get(`http://127.0.0.1:${base + 101}/metrics`)).body).toMatch(/^consensus_server_has_leader\{node="n1"\} 1$/m);

      // Two of three stopped: the survivor's health fails (503), liveness holds (200).
      const survivor = follower;
      await Promise.all(nodes.filter((n) => n !== survivor).map((n) => n.stop()));
      await waitFor('503 on /health', async () => ((await get(`http://127.0.0.1:${port}/health`)).status === 503 ? true : undefined), 15_000);
      expect(survivor.health.health().ok).toBe(false);
      expect((await get(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
      expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      await survivor.stop();
      await survivor.stop(); // idempotent
      expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200); // stopping is not a failure
      expect((await get(`http://127.0.0.1:${port}/health`)).status).toBe(503);
    } finally {
      own.close();
      mounted.close();
    }

    // Every port is free again: the same cluster starts on the same ports and still holds its keys.
    await checkPortsFree('127.0.0.1', [base + 1, base + 2, base + 3, base + 101]);
    nodes = (await Promise.all([start('n1', { http: `127.0.0.1:${base + 101}` }), start('n2'), start('n3')])).map(track);
    const again = await leaderOf(nodes);
    expect((await again.client.get('from-tcp'))?.value).toBe('ok');
  });
});

/** A counter: commands add to it, queries read it; the snapshot is the number. */
class Counter implements StateMachine<{ add: number }, number, 'value', number> {
  value = 0;
  apply(_entry: LogEntry, command: { add: number }): number {
    this.value += command.add;
    return this.value;
  }
  query(): number {
    return this.value;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.value));
  }
  restore(data: Uint8Array): void {
    this.value = Number(new TextDecoder().decode(data));
  }
}

describe('startNode: growing an embedded cluster', () => {
  it('addMember on the leader adds a node started with join (it catches up); on a follower it redirects; removeMember takes it out', async () => {
    const d = dir();
    const base = await freeBase();
    const at = (i: number) => `127.0.0.1:${base + i}`;
    const n1 = track(await startNode({ id: 'n1', dir: join(d, 'n1'), listen: at(1), clusterId: 'grow', logger: silentLogger }));
    await n1.node.waitForLeader({ timeoutMs: 10_000 });
    await n1.client.put('k', 'before');
    const n2 = track(await startNode({ id: 'n2', dir: join(d, 'n2'), join: true, peers: { n1: at(1), n2: at(2) }, clusterId: 'grow', logger: silentLogger }));
    expect(() => n1.setPeers({ n2: 'nope' })).toThrow(/the address of n2 must be "host:port"/);
    await n1.addMember('n2', at(2));
    expect(n1.status().config.voters).toEqual(['n1', 'n2']);
    await waitFor('n2 caught up', async () => ((await n2.client.get('k', { consistency: 'serializable' }))?.value === 'before' ? true : undefined), 10_000);
    await n1.client.put('k', 'after');
    await waitFor('n2 applies new writes', async () => ((await n2.client.get('k', { consistency: 'serializable' }))?.value === 'after' ? true : undefined), 10_000);
    const e = await n2.addMember('n3', at(3)).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LeaderRedirectError);
    expect(e).toMatchObject({ leaderHint: 'n1', leaderAddress: at(1) });
    await n1.removeMember('n2');
    expect(n1.status().config.voters).toEqual(['n1']);
    await n1.client.put('k', 'alone again');
  });
});

describe('startNode: a state machine of your own', () => {
  it('a counter replicates to every node; a follower redirects to the leader with its address', async () => {
    const d = dir();
    const base = await freeBase();
    const peers = peersAt(base);
    const counters = { n1: new Counter(), n2: new Counter(), n3: new Counter() };
    const nodes: EmbeddedNode<{ add: number }, number, 'value', number>[] = (
      await Promise.all(
        (['n1', 'n2', 'n3'] as const).map((id) => startNode({ id, dir: join(d, id), peers, stateMachine: counters[id], logger: silentLogger, tickMs: 50 })),
      )
    ).map(track);
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader) as (typeof nodes)[number];
    expect(await leader.client.propose({ add: 2 })).toBe(2);
    expect(await leader.client.propose({ add: 3 })).toBe(5);
    expect(await leader.client.read('value')).toBe(5);
    for (const c of Object.values(counters)) await waitFor('the counter on every node', async () => (c.value === 5 ? true : undefined), 10_000);
    expect(await follower.client.read('value', { consistency: 'serializable' })).toBe(5);

    const e = await follower.client.propose({ add: 1 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LeaderRedirectError);
    expect(NotLeaderError.is(e)).toBe(true);
    expect(e).toMatchObject({ leaderHint: leader.id, leaderAddress: peers[leader.id] });
    expect((e as Error).message).toContain(`the leader is ${leader.id} at ${peers[leader.id]}`);
    expect(leader.health.health().ok).toBe(true);
    expect((await leader.health.ready()).ok).toBe(true);
    expect(leader.mode).toBe('custom');
    // The node times and wraps a state machine of its own making: yours keeps its methods.
    for (const c of Object.values(counters)) expect(Object.keys(c)).toEqual(['value']);
  });

  it('an incremental snapshot of your machine (beginSnapshot) is the one the node takes, and a restart restores it', async () => {
    const d = dir();
    class Stepped extends Counter {
      begun = 0;
      beginSnapshot() {
        this.begun++;
        const bytes = this.snapshot();
        return { step: () => bytes, cancel: () => undefined };
      }
    }
    const sm = new Stepped();
    const n = track(await startNode({ id: 'solo', dir: join(d, 'solo'), stateMachine: sm, snapshotEvery: 3, logger: silentLogger }));
    await n.node.waitForLeader({ timeoutMs: 10_000 });
    for (let i = 0; i < 7; i++) await n.client.propose({ add: 1 });
    await waitFor('a snapshot through beginSnapshot', async () => (sm.begun >= 1 ? true : undefined), 10_000);
    await n.stop();
    const again = new Stepped();
    const m = track(await startNode({ id: 'solo', dir: join(d, 'solo'), stateMachine: again, logger: silentLogger }));
    await m.node.waitForLeader({ timeoutMs: 10_000 });
    expect(await m.client.read('value')).toBe(7);
  });

  it('a node alone without listen runs in process on paxos and zab with their typed options', async () => {
    const d = dir();
    const paxos = track(await startNode({ id: 'solo', dir: join(d, 'paxos'), protocol: 'paxos', protocolOptions: { maxBatch: 8 }, logger: silentLogger }));
    const zab = track(await startNode({ id: 'solo', dir: join(d, 'zab'), protocol: 'zab', protocolOptions: { maxBatch: 4 }, stateMachine: new Counter(), logger: silentLogger }));
    expect(paxos.address).toBeUndefined();
    await paxos.node.waitForLeader({ timeoutMs: 10_000 });
    await paxos.client.put('a', '1');
    expect((await paxos.client.get('a'))?.value).toBe('1');
    // A watch left open does not hold stop() up: it ends with the client.
    const watch = paxos.client.watch('a');
    await watch.created;
    const ended = (async () => {
      try {
        for await (const _ of watch) {
          // nothing more is written
        }
        return 'done';
      } catch (e) {
        return (e as Error).name;
      }
    })();
    await paxos.stop();
    expect(await ended).toBe('done');
    await zab.node.waitForLeader({ timeoutMs: 10_000 });
    expect(await zab.client.propose({ add: 7 })).toBe(7);
    expect(zab.protocol).toBe('zab');
  });
});

describe('startNode: bad options are typed errors before anything starts', () => {
  it('refuses a misspelt option, a misspelt protocol option and bad values, naming them, with nothing listening and nothing written', async () => {
    const d = dir();
    const base = await freeBase();
    const at = { dir: join(d, 'n1'), id: 'n1', listen: `127.0.0.1:${base + 1}`, http: `127.0.0.1:${base + 101}`, logger: silentLogger };
    const refused = async (options: unknown, message: RegExp) => {
      const e = await startNode(options as never).catch((err: unknown) => err);
      expect(ConfigError.is(e), String(e)).toBe(true);
      expect((e as Error).message).toMatch(message);
    };
    await refused({ ...at, snapshotevery: 5 }, /^startNode: unknown option "snapshotevery" \(did you mean "snapshotEvery"\?\)/);
    await refused({ ...at, protocolOptions: { prevote: false } }, /startNode: protocolOptions: unknown raft option "prevote" \(did you mean "preVote"\?\)/);
    await refused({ ...at, protocol: 'zab', protocolOptions: { preVote: true } }, /unknown zab option "preVote"/);
    await refused({ ...at, protocol: 'pbft' }, /startNode: option protocol must be one of raft, paxos, zab/);
    await refused({ ...at, tickMs: 0 }, /tickMs must be an integer >= 1/);
    await refused({ ...at, electionTicks: 2, heartbeatTicks: 2 }, /electionTicks must be greater than heartbeatTicks/);
    await refused({ ...at, listen: '127.0.0.1' }, /listen must be "host:port"/);
    await refused({ ...at, peers: { n2: '127.0.0.1:1' } }, /peers must include this node \(n1\)/);
    await refused({ ...at, listen: undefined, peers: { n1: '', n2: '127.0.0.1:1' } }, /peers\.n1 must be "host:port"/);
    await refused({ ...at, dir: '' }, /dir must be a non-empty path/);
    await refused({ ...at, id: 'a b' }, /id must be a non-empty string/);
    await refused({ ...at, stateMachine: new Counter(), kv: true }, /either stateMachine .* or kv\/lock/);
    await refused({ ...at, stateMachine: { apply() {} } }, /stateMachine must implement apply, query, snapshot and restore/);
    await refused({ ...at, logger: { level: 'loud' } }, /logger\.level must be one of debug, info, warn, error/);
    await refused({ ...at, tls: { cert: 'x' } }, /tls\.key is needed/);
    await refused({ ...at, secret: 'short' }, /secret must be a string of at least 8 characters/);
    await refused({ ...at, kv: { historyRevisions: -1 } }, /^startNode: kv: historyRevisions must be/);
    await refused({ ...at, http: at.listen }, /http and listen are both 127\.0\.0\.1:\d+/);
    // Nothing listens and nothing was written.
    await checkPortsFree('127.0.0.1', [base + 1, base + 101]);
    expect(existsSync(join(d, 'n1'))).toBe(false);
  });

  it('one node per data directory in a process: a second start on it is refused by name, at once or after the first, and allowed once it stopped', async () => {
    const d = join(dir(), 'n1');
    const both = await Promise.allSettled([startNode({ id: 'n1', dir: d, logger: silentLogger }), startNode({ id: 'n1', dir: `${d}/`, logger: silentLogger })]);
    const started = both.flatMap((r) => (r.status === 'fulfilled' ? [track(r.value)] : []));
    const refusals = both.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    expect(started).toHaveLength(1);
    expect(refusals).toHaveLength(1);
    expect(ConfigError.is(refusals[0])).toBe(true);
    expect(refusals[0]?.message).toMatch(/is the data directory of a node this process already runs/);
    await expect(startNode({ id: 'n1', dir: d, logger: silentLogger })).rejects.toThrow(/already runs/);
    await started[0]?.stop();
    const again = track(await startNode({ id: 'n1', dir: d, logger: silentLogger }));
    await again.node.waitForLeader({ timeoutMs: 10_000 });
  });

  it('a peer port in use rejects with everything it opened closed: the http port is free, and the same options start once the port is', async () => {
    const d = dir();
    const base = await freeBase();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(base + 1, '127.0.0.1', resolve));
    const options = { id: 'n1', dir: join(d, 'n1'), listen: `127.0.0.1:${base + 1}`, http: `127.0.0.1:${base + 101}`, logger: silentLogger };
    try {
      await expect(startNode(options)).rejects.toThrow(/EADDRINUSE|in use/);
      await checkPortsFree('127.0.0.1', [base + 101]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const n = track(await startNode(options));
    await n.node.waitForLeader({ timeoutMs: 10_000 });
    expect((await get(`http://127.0.0.1:${base + 101}/health`)).status).toBe(200);
    // The http port taken: a ConfigError naming it, the peer port left free.
    await n.stop();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(base + 101, '127.0.0.1', resolve));
    try {
      const e = await startNode(options).catch((err: unknown) => err);
      expect(ConfigError.is(e)).toBe(true);
      expect((e as Error).message).toMatch(/http port 127\.0\.0\.1:\d+ is already in use/);
      await checkPortsFree('127.0.0.1', [base + 1]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('protocol options are typed per protocol', () => {
    // Compile-time only: tsc checks these lines (the test typecheck), nothing runs.
    const typed = (): unknown[] => [
      // @ts-expect-error raft has no option "prevote"
      startNode({ id: 'n1', dir: 'x', protocolOptions: { prevote: true } }),
      // @ts-expect-error preVote is raft's, not zab's
      startNode({ id: 'n1', dir: 'x', protocol: 'zab', protocolOptions: { preVote: true } }),
      // @ts-expect-error readOnly takes 'safe' or 'lease'
      startNode({ id: 'n1', dir: 'x', protocol: 'raft', protocolOptions: { readOnly: 'fast' } }),
      // @ts-expect-error a state machine of your own, or kv: not both
      startNode({ id: 'n1', dir: 'x', kv: true, stateMachine: new Counter() }),
      startNode({ id: 'n1', dir: 'x', protocol: 'raft', protocolOptions: { preVote: false, readOnly: 'lease' } }),
    ];
    expect(typeof typed).toBe('function');
  });
});
