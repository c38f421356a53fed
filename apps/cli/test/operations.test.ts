import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, leaderOf, statusOf, tempDir, useSourceNodes, waitFor } from './helpers';

useSourceNodes();




/** `members list --json` as the agreed leader reports it (the command falls back to any node when none is agreed). */
async function membersFromLeader(dir: string): Promise<{ voters: string[] }> {
  return waitFor('a member list from the leader', async () => {
    const r = await cli('members', 'list', '--dir', dir, '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.out) as { voters: string[]; leader: string | null };
    return list.leader !== null ? list : undefined;
  });
}

describe.each(PROTOCOLS_UNDER_TEST)('consensus-cli on %s: operating a running cluster', (protocol) => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const started = await cli('start', '--protocol', protocol, '--dir', dir, '--port', String(await freeBase()), '--detach', '--json');
    expect(started.code, started.err).toBe(0);
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('bench measures puts, gets, a mix and transactions against the running cluster, warm-up not counted', async () => {
    for (const op of ['put', 'get', 'mixed', 'txn']) {
      const r = await cli('bench', '--dir', dir, '--clients', '4', '--duration', '300ms', '--warmup', '100ms', '--op', op, '--json');
      expect(r.code).toBe(0);
      const res = JSON.parse(r.out.trim().split('\n').at(-1) as string) as {
        op: string; clients: number; ops: number; errors: number; opsPerSec: number; durationMs: number; warmupMs: number;
        latencyMs: { p50: number; p90: number; p99: number; max: number };
        diskSyncUs: { p50: number; p99: number };
      };
      expect(res).toMatchObject({ op, clients: 4, errors: 0, warmupMs: 100 });
      expect(res.ops).toBeGreaterThan(0);
      expect(res.durationMs).toBeGreaterThanOrEqual(300);
      const rate = (res.ops / res.durationMs) * 1000; // durationMs is rounded: allow for it
      expect(Math.abs(res.opsPerSec - rate)).toBeLessThanOrEqual(rate * 0.002 + 1);
      const l = res.latencyMs;
      expect(0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max).toBe(true);
      expect(res.diskSyncUs.p50).toBeGreaterThan(0);
      expect(res.diskSyncUs.p99).toBeGreaterThanOrEqual(res.diskSyncUs.p50);
    }
    const bad = await cli('bench', '--dir', dir, '--warmup', 'soon');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/invalid duration/);
  });

  it('leader transfer hands leadership to the named node', async () => {
    const leader = await leaderOf(dir);
    const target = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    const r = await cli('leader', 'transfer', target, '--dir', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    await waitFor('the new leader', async () => ((await statusOf(dir)).leader === target ? true : undefined));
    // To the node that already leads: done at once (it used to wait out the 10 s transfer timeout).
    const again = await cli('leader', 'transfer', target, '--dir', dir, '--json');
    expect(again.code).toBe(0);
    expect((await statusOf(dir)).leader).toBe(target);
  });

  it('refuses node ids that are not nodes of the cluster, or that would name a directory outside it', async () => {
    const typo = await cli('partition', 'n2', 'n9', '--dir', dir);
    expect(typo.code).toBe(2);
    expect(typo.err).toMatch(/no node "n9"/);
    const self = await cli('partition', 'n2', 'n2', '--dir', dir);
    expect(self.code).toBe(2);
    for (const id of ['..', '.', '.hidden']) {
      const r = await cli('members', 'add', id, '--dir', dir);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/must be 1-64 letters/);
    }
    const { existsSync } = await import('node:fs');
    expect(existsSync(`${dir}/../node.json`)).toBe(false);
    expect((await statusOf(dir)).nodes.map((n) => n.node)).toEqual(['n1', 'n2', 'n3']);
  });

  it('members add provisions and adds a voter that receives the log; members remove takes it out', async () => {
    expect((await cli('put', 'before', 'x', '--dir', dir)).code).toBe(0);
    const added = await cli('members', 'add', 'n4', '--dir', dir, '--json');
    expect(added.err).toBe('');
    expect(JSON.parse(added.out)).toMatchObject({ added: 'n4', learner: false });
    // `members add` returns once the leader applied the change; a follower may not have yet.
    const list = await membersFromLeader(dir);
    expect(list.voters.sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    await waitFor('n4 to catch up', async () => {
      const r = await cli('get', 'before', '--dir', dir, '--serializable', '--json');
      const s = await statusOf(dir);
      const n4 = s.nodes.find((n) => n.node === 'n4');
      return r.code === 0 && r.out !== '' && n4?.role === 'follower' && (n4.applied ?? 0) >= 3 ? true : undefined;
    });
    expect((await cli('members', 'remove', 'n4', '--dir', dir)).code).toBe(0);
    const after = await membersFromLeader(dir);
    expect(after.voters.sort()).toEqual(['n1', 'n2', 'n3']);
    expect((await cli('put', 'after', 'y', '--dir', dir)).code).toBe(0);
  });

  it('a member added later is written into every config, so nodes restarted afterwards still reach it', async () => {
    const cd = new ClusterDir(dir);
    const added = await cli('members', 'add', 'n5', '--dir', dir, '--json');
    expect(added.err).toBe('');
    const { address } = JSON.parse(added.out) as { address: string };
    const peersOf = (id: string) => (JSON.parse(readFileSync(cd.configFile(id), 'utf8')) as { peers: Record<string, string> }).peers;
    for (const id of ['n1', 'n2', 'n3']) expect(peersOf(id).n5).toBe(address);
    // Restart every original node from its config file, one at a time: none of them has n5's address in
    // memory any more, so whichever leads next knows where n5 is only from its file.
    for (const id of ['n1', 'n2', 'n3']) {
      expect((await cli('kill', id, '--dir', dir)).code).toBe(0);
      expect((await cli('restart', id, '--dir', dir)).code).toBe(0);
    }
    await waitFor('a put after the restarts', async () => ((await cli('put', 'late', 'v', '--dir', dir)).code === 0 ? true : undefined));
    // n5 (leader or follower) has what the leader applied: replication to or from it works both ways.
    await waitFor('n5 to apply it', async () => {
      const s = await statusOf(dir);
      const leaderApplied = s.nodes.find((n) => n.node === s.leader)?.applied ?? 0;
      const n5 = s.nodes.find((n) => n.node === 'n5');
      return leaderApplied > 0 && n5?.applied === leaderApplied ? true : undefined;
    });
    const late = await cli('get', 'late', '--dir', dir, '--json');
    expect(JSON.parse(late.out)).toMatchObject({ key: 'late', value: 'v' });
    expect((await cli('members', 'remove', 'n5', '--dir', dir)).code).toBe(0);
    for (const id of ['n1', 'n2', 'n3']) expect(peersOf(id).n5).toBeUndefined();
  });

  it('partition isolates a node (the rest keep a leader and commit), heal lets it catch up', async () => {
    const leader = await leaderOf(dir);
    const victim = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    expect((await cli('partition', victim, '--dir', dir)).code).toBe(0);
    for (let i = 0; i < 3; i++) expect((await cli('put', `p${i}`, 'v', '--dir', dir)).code).toBe(0);
    // A status in which both the leader and the victim answered (either can be slow to answer on a busy machine).
    const during = await waitFor('the leader and the isolated node to report', async () => {
      const s = await statusOf(dir);
      const reported = (id: string | null) => s.nodes.find((n) => n.node === id)?.applied != null;
      return reported(s.leader) && reported(victim) ? s : undefined;
    });
    const leaderApplied = during.nodes.find((n) => n.node === during.leader)?.applied ?? 0;
    expect(during.nodes.find((n) => n.node === victim)?.applied ?? 0).toBeLessThan(leaderApplied);
    const healed = await cli('heal', '--dir', dir);
    expect(healed.code).toBe(0);
    expect(healed.out).toContain('every link restored (n1, n2, n3)');
    await waitFor('the isolated node to catch up', async () => {
      const s = await statusOf(dir);
      const l = s.nodes.find((n) => n.node === s.leader)?.applied ?? -1;
      return s.nodes.find((n) => n.node === victim)?.applied === l ? true : undefined;
    });
  });

  it("inspect verifies a node's data directory", async () => {
    for (let i = 0; i < 3; i++) expect((await cli('put', `i${i}`, 'v', '--dir', dir)).code).toBe(0);
    // A put returns once the leader applied it; n2 may still be writing those entries, and inspect would then see
    // a record half written. Inspect once n2 has applied (so persisted) everything the leader has.
    await waitFor('n2 to catch up', async () => {
      const s = await statusOf(dir);
      const l = s.nodes.find((n) => n.node === s.leader)?.applied;
      return l != null && s.nodes.find((n) => n.node === 'n2')?.applied === l ? true : undefined;
    });
    const r = await cli('inspect', 'n2', '--dir', dir, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { ok: boolean; problems: string[]; segments: unknown[]; log: { lastIndex: number } };
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.segments.length).toBeGreaterThan(0);
    expect(report.log.lastIndex).toBeGreaterThan(3);
    const text = await cli('inspect', 'n2', '--dir', dir);
    expect(text.out.length).toBeGreaterThan(0);
    expect(text.code).toBe(0);
  });

  it('grows a 1-node cluster (the new member joins as a learner, then votes), removes the leader, adds it back and promotes it', async () => {
    const d = tempDir();
    try {
      const started = await cli('start', '--protocol', protocol, '--dir', d, '--nodes', '1', '--port', String(await freeBase()), '--detach', '--json');
      expect(started.code, started.err).toBe(0);
      for (let i = 0; i < 30; i++) expect((await cli('put', `k${i}`, 'v', '--dir', d)).code).toBe(0);
      // The second member of a 1-node cluster is needed for every commit once it votes: it must be up and
      // caught up first, or the cluster loses its quorum (it used to, and the CLI then stopped the new node).
      const add = await cli('members', 'add', 'n2', '--dir', d, '--json');
      expect(add.err).toBe('');
      expect(JSON.parse(add.out)).toMatchObject({ added: 'n2', learner: false });
      const members = async () => JSON.parse((await cli('members', 'list', '--dir', d, '--json')).out) as { voters: string[]; learners: string[]; leader: string | null };
      expect((await members()).voters).toEqual(['n1', 'n2']);
      expect((await cli('put', 'two', 'v', '--dir', d)).code).toBe(0);
      // Removing the leader: it steps down as the change commits, and the answer may be lost; the
      // configuration tells the CLI that the removal went through.
      const leader = await leaderOf(d);
      const removed = await cli('members', 'remove', leader, '--dir', d);
      expect(removed.err).toBe('');
      expect(removed.code).toBe(0);
      expect(new ClusterDir(d).livePid(leader)).toBeUndefined();
      expect((await members()).voters).toEqual([leader === 'n1' ? 'n2' : 'n1']);
      expect((await cli('put', 'one', 'v', '--dir', d)).code).toBe(0);
      expect((await cli('members', 'add', leader, '--dir', d, '--learner')).code).toBe(0);
      expect((await members()).learners).toEqual([leader]);
      const promoted = await cli('members', 'add', leader, '--dir', d, '--json');
      expect(JSON.parse(promoted.out)).toEqual({ promoted: leader });
      expect((await members()).voters).toEqual(['n1', 'n2']);
      expect((await cli('get', 'two', '--dir', d)).code).toBe(0);
    } finally {
      await cleanup(d);
    }
  });

  it('serves /health and Prometheus /metrics', async () => {
    const s = JSON.parse((await cli('status', '--dir', dir, '--json')).out) as { nodes: { http: string }[] };
    const http = s.nodes[0]?.http as string;
    const health = (await (await fetch(`http://${http}/health`)).json()) as { status: string };
    expect(health.status).toBe('ok');
    const metrics = await (await fetch(`http://${http}/metrics`)).text();
    for (const name of ['consensus_term', 'consensus_commit_index', 'consensus_applied_index', 'consensus_storage_save_seconds_bucket', 'consensus_proposals_total']) {
      expect(metrics).toContain(name);
    }
    // Successful writes are counted where they were proposed, and the count only grows from scrape to scrape.
    const okWrites = async () => {
      let sum = 0;
      for (const n of s.nodes) {
        const m = /^consensus_proposals_total\{outcome="ok"[^}]*\} (\d+)$/m.exec(await (await fetch(`http://${n.http}/metrics`)).text());
        sum += m === null ? 0 : Number(m[1]);
      }
      return sum;
    };
    const before = await okWrites();
    expect((await cli('put', 'metrics/a', '1', '--dir', dir)).code).toBe(0);
    expect((await cli('put', 'metrics/b', '2', '--dir', dir)).code).toBe(0);
    expect(await okWrites()).toBe(before + 2);
  });

  it('a voter removed and added back keeps its address and catches up', async () => {
    const cd = new ClusterDir(dir);
    const was = cd.read().nodes.find((n) => n.id === 'n3');
    expect((await cli('members', 'remove', 'n3', '--dir', dir)).code).toBe(0);
    expect((await cli('put', 'while-away', 'x', '--dir', dir)).code).toBe(0);
    const added = await cli('members', 'add', 'n3', '--dir', dir, '--json');
    expect(added.err).toBe('');
    expect(JSON.parse(added.out)).toMatchObject({ added: 'n3', address: `${was?.host}:${was?.port}`, http: `${was?.host}:${was?.httpPort}` });
    await waitFor('n3 to catch up', async () => {
      const s = await statusOf(dir);
      const leaderApplied = s.nodes.find((n) => n.node === s.leader)?.applied ?? 0;
      const n3 = s.nodes.find((n) => n.node === 'n3');
      return leaderApplied > 0 && n3?.role === 'follower' && n3.applied === leaderApplied ? true : undefined;
    });
    expect((await membersFromLeader(dir)).voters.sort()).toEqual(['n1', 'n2', 'n3']);
  });

  // The last three take the shared cluster apart (a wiped node, a node down and removed, then a stop and a damaged
  // log), each from where the one before left it: they run after every test that needs three healthy voters.
  it('a node whose data directory was wiped is not started empty; it comes back as a new member', async () => {
    const { rmSync } = await import('node:fs');
    for (let i = 0; i < 5; i++) expect((await cli('put', `w${i}`, 'v', '--dir', dir)).code).toBe(0);
    expect((await cli('kill', 'n2', '--dir', dir)).code).toBe(0);
    rmSync(new ClusterDir(dir).dataDir('n2'), { recursive: true, force: true });
    // Started empty it would vote again and count for a majority without the entries it acknowledged.
    const r = await cli('restart', 'n2', '--dir', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/n2: no term and vote stored .* members remove n2 .* members add n2/);
    expect(new ClusterDir(dir).livePid('n2')).toBeUndefined();
    expect((await cli('members', 'remove', 'n2', '--dir', dir)).code).toBe(0);
    expect((await cli('members', 'add', 'n2', '--dir', dir)).code).toBe(0);
    expect((await cli('put', 'after', 'v', '--dir', dir)).code).toBe(0);
    await waitFor('n2 to catch up', async () => {
      const s = await statusOf(dir);
      const leaderApplied = s.nodes.find((n) => n.node === s.leader)?.applied;
      return leaderApplied != null && s.nodes.find((n) => n.node === 'n2')?.applied === leaderApplied ? true : undefined;
    });
  });

  it('refuses a removal that would cost the majority, and a second membership change while one runs', async () => {
    const { spawn } = await import('node:child_process');
    const { writeFileSync } = await import('node:fs');
    expect((await membersFromLeader(dir)).voters.sort()).toEqual(['n1', 'n2', 'n3']);
    // n3 leads, then dies: the check must wait for the next leader rather than skip itself.
    expect((await cli('leader', 'transfer', 'n3', '--dir', dir)).code).toBe(0);
    expect((await cli('kill', 'n3', '--dir', dir)).code).toBe(0);
    // With n3 down, {n1, n3} would have one voter running of two: the cluster would stop.
    const r = await cli('members', 'remove', 'n2', '--dir', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/removing n2 would leave 2 voters of which only 1 run \(n3 is down\)/);
    expect((await cli('put', 'still', 'up', '--dir', dir)).code).toBe(0);
    // Removing the node that is down is how to shrink around it.
    expect((await cli('members', 'remove', 'n3', '--dir', dir)).code).toBe(0);
    expect((await cli('put', 'two', 'left', '--dir', dir)).code).toBe(0);
    // Another change in progress (its process alive): refused at once, the cluster untouched.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(`${dir}/members.lock`, String(other.pid));
      const busy = await cli('members', 'add', 'n4', '--dir', dir);
      expect(busy.code).toBe(1);
      expect(busy.err).toMatch(/another membership change is in progress/);
      expect(new ClusterDir(dir).read().nodes.map((n) => n.id)).toEqual(['n1', 'n2']);
    } finally {
      other.kill();
    }
  });

  it('inspect exits 1 when it finds damage, as fsck does', async () => {
    const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
    for (let i = 0; i < 20; i++) expect((await cli('put', `d${i}`, 'v'.repeat(100), '--dir', dir)).code).toBe(0);
    expect((await cli('stop', '--dir', dir)).code).toBe(0);
    const data = new ClusterDir(dir).dataDir('n1');
    const wal = readdirSync(data).find((f) => f.startsWith('wal-')) as string;
    const bytes = readFileSync(`${data}/${wal}`);
    bytes[600] = (bytes[600] as number) ^ 0xff; // inside an early record, not the tail
    writeFileSync(`${data}/${wal}`, bytes);
    const r = await cli('inspect', 'n1', '--dir', dir, '--json');
    expect((JSON.parse(r.out) as { ok: boolean }).ok).toBe(false);
    expect(r.code).toBe(1);
  });
});
