import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, leaderOf, tempDir, useSourceNodes, waitFor } from './helpers';

useSourceNodes();

interface Probe {
  code: number;
  body: { status: string; reason?: string; message?: string; role?: string; leader?: string | null; barrier?: string };
}

/** One GET of a node's health endpoint: the HTTP status and the JSON body. */
async function probe(dir: string, id: string, path: '/health' | '/livez' | '/readyz'): Promise<Probe> {
  const cd = new ClusterDir(dir);
  const n = cd.node(cd.read(), id);
  const res = await fetch(`http://${n.host}:${n.httpPort}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { code: res.status, body: (await res.json()) as Probe['body'] };
}

async function statusRun(dir: string): Promise<{ code: number; health: string; reason: string; line: string }> {
  const json = await cli('status', '--dir', dir, '--json');
  const text = await cli('status', '--dir', dir);
  const parsed = JSON.parse(json.out) as { health: string; reason: string };
  const lines = text.out.trim().split('\n');
  // The text form says why in its last line, with the same exit code.
  expect(text.code).toBe(json.code);
  return { code: json.code, health: parsed.health, reason: parsed.reason, line: lines[lines.length - 1] ?? '' };
}

const IDS = ['n1', 'n2', 'n3'];

describe.each(PROTOCOLS_UNDER_TEST)('health on %s: a real 3-node cluster', (protocol) => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('healthy: 200 everywhere, status exits 0; one node down: degraded, exit 3; two down: the survivor answers 503 on /health and /readyz within seconds, 200 on /livez, status exits 4', async () => {
    const port = await freeBase();
    expect((await cli('start', '--protocol', protocol, '--dir', dir, '--port', String(port), '--detach', '--json')).code).toBe(0);
    const leader = await leaderOf(dir);

    // Every node hears from its leader within moments of the election: then all three endpoints say 200.
    await waitFor('every node healthy', async () => ((await Promise.all(IDS.map((id) => probe(dir, id, '/health')))).every((p) => p.code === 200) ? true : undefined), 15_000);
    for (const id of IDS) {
      for (const path of ['/health', '/livez', '/readyz'] as const) {
        const p = await probe(dir, id, path);
        expect({ id, path, code: p.code, status: p.body.status }).toEqual({ id, path, code: 200, status: 'ok' });
      }
    }
    // Readiness: the leader completes a read barrier itself; a raft follower has the leader confirm one (thesis
    // 6.4), a Paxos follower answers none and counts as ready while its leader is heard from.
    const barriers = await Promise.all(IDS.map(async (id) => [id, (await probe(dir, id, '/readyz')).body.barrier] as const));
    for (const [id, barrier] of barriers) expect({ id, barrier }).toEqual({ id, barrier: id === leader || protocol === 'raft' ? 'read-index' : 'leader-contact' });
    const healthy = await statusRun(dir);
    expect(healthy).toMatchObject({ code: 0, health: 'healthy' });
    expect(healthy.line).toBe(`healthy: all 3 nodes, leader ${leader}`);

    // One follower down: the other two still form a quorum, and say so.
    const [first, survivor] = IDS.filter((id) => id !== leader) as [string, string];
    expect((await cli('kill', first, '--dir', dir)).code).toBe(0);
    for (const id of [leader, survivor]) expect((await probe(dir, id, '/health')).code).toBe(200);
    expect((await probe(dir, leader, '/readyz')).code).toBe(200);
    const degraded = await statusRun(dir);
    expect(degraded).toMatchObject({ code: 3, health: 'degraded' });
    expect(degraded.line).toBe(`degraded: ${first} down`);

    // The leader down too: the survivor alone is no working cluster.
    expect((await cli('kill', leader, '--dir', dir)).code).toBe(0);
    const since = Date.now();
    const unhealthy = await waitFor('the survivor to report unhealthy', async () => {
      const p = await probe(dir, survivor, '/health');
      return p.code === 503 ? p : undefined;
    }, 10_000);
    const took = Date.now() - since;
    expect(took).toBeLessThan(5_000);
    expect(unhealthy.body.status).toBe('unavailable');
    expect(['no-leader', 'leader-silent']).toContain(unhealthy.body.reason);
    const ready = await probe(dir, survivor, '/readyz');
    expect(ready.code).toBe(503);
    expect(ready.body.status).toBe('unavailable');
    expect((await probe(dir, survivor, '/livez')).code).toBe(200);
    const lost = await statusRun(dir);
    expect(lost).toMatchObject({ code: 4, health: 'no-quorum' });
    expect(lost.line).toMatch(new RegExp(`^no quorum: no leader agreed on by a majority: .*${leader} down`));
    // The one-line reason names every node's problem, the survivor's own included.
    expect(lost.reason).toContain(`${first} down`);
    expect(lost.reason).toContain(`${survivor} unhealthy`);
  });
});

describe('health on raft without CheckQuorum: a leader cut off from its quorum still calls itself leader', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('its /health and /readyz answer 503 (no quorum heard), the others elect a leader, status exits 3', async () => {
    const port = await freeBase();
    const started = await cli('start', '--dir', dir, '--port', String(port), '--protocol-option', 'checkQuorum=false', '--detach', '--json');
    expect(started.code).toBe(0);
    const leader = await leaderOf(dir);
    await waitFor('the leader healthy', async () => ((await probe(dir, leader, '/health')).code === 200 ? true : undefined), 15_000);

    const cut = await cli('partition', leader, '--dir', dir);
    expect(cut.err).toBe('');
    expect(cut.code).toBe(0);
    const since = Date.now();
    const alone = await waitFor('the cut-off leader to report no quorum', async () => {
      const p = await probe(dir, leader, '/health');
      return p.code === 503 ? p : undefined;
    }, 10_000);
    expect(Date.now() - since).toBeLessThan(5_000);
    // Without CheckQuorum it never steps down: the status alone would call it a healthy leader.
    expect(alone.body).toMatchObject({ status: 'unavailable', reason: 'no-quorum', role: 'leader', leader });
    expect(alone.body.message).toMatch(/heard from 1 of 3 voters/);
    const ready = await probe(dir, leader, '/readyz');
    expect(ready.code).toBe(503);
    expect(ready.body.role).toBe('leader');
    expect((await probe(dir, leader, '/livez')).code).toBe(200);

    // The two others elect one of themselves and are healthy; the cluster is degraded, not down.
    const others = IDS.filter((id) => id !== leader);
    await waitFor('a new leader among the others', async () => {
      const p = await Promise.all(others.map((id) => probe(dir, id, '/health')));
      return p.every((x) => x.code === 200 && x.body.leader !== leader) ? true : undefined;
    }, 20_000);
    const s = await statusRun(dir);
    expect(s).toMatchObject({ code: 3, health: 'degraded' });
    expect(s.line).toMatch(new RegExp(`^degraded: ${leader} unhealthy \\(leader of term \\d+ heard from 1 of 3 voters`));
    expect((await cli('heal', '--dir', dir)).code).toBe(0);
  });
});
