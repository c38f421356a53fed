import { describe, expect, it } from 'vitest';
import type { UiAction, UiActionResult } from '@consensus-kit/ui';
import { ClusterDir } from '../src/cluster-file';
import { fetchReports } from '../src/supervisor';
import { createUiActions, type UiActions } from '../src/ui-actions';
import { cli, leaderOf, statusOf, useSourceNodes, useStartedCluster, waitFor } from './helpers';

useSourceNodes();

/**
 * Waits until every voter has applied the configuration that names `id`. A follower that has not yet applied it
 * answers a removal sent to it with "not a member" (ConsensusNode.changeMembership checks the change against its
 * own applied configuration before it finds it is not the leader) instead of redirecting it to the leader, which
 * has the change: a person clicking remove after add is never that fast, a test is.
 */
async function everyVoterApplied(dir: string, id: string): Promise<void> {
  const cluster = new ClusterDir(dir).read();
  await waitFor(`every voter to apply the configuration with ${id}`, async () => {
    const reports = await fetchReports({ ...cluster, nodes: cluster.nodes.filter((n) => n.id !== id) });
    return reports.every((r) => r !== undefined && (r.status.config.learners.includes(id) || r.status.config.voters.includes(id))) ? true : undefined;
  }, 20_000);
}

/** Anything the page (or a forged request) could send: the actions take it as it comes. */
const raw = (x: unknown) => x as UiAction;

describe('ui actions on a real raft cluster: what the page can do, each as the command of the same name', () => {
  const dirOf = useStartedCluster('raft');
  let actions: UiActions;
  const act = async (a: unknown): Promise<UiActionResult> => {
    actions ??= createUiActions({ dir: dirOf(), kvTimeoutMs: 5000 });
    return actions(raw(a));
  };

  it('refuses bad requests with { ok: false, text } and never throws', async () => {
    const cases: [unknown, RegExp][] = [
      [null, /JSON object/],
      ['kill', /JSON object/],
      [{ action: 'explode' }, /unknown action "explode"/],
      [{}, /unknown action null/],
      [{ action: 'kill', node: 'n9' }, /"n9" is not a node of this cluster \(n1, n2, n3\)/],
      [{ action: 'kill' }, /kill needs "node"/],
      [{ action: 'restart', node: 7 }, /"node" must be a string/],
      [{ action: 'put', key: '', value: 'x' }, /needs a key: it is empty/],
      [{ action: 'get' }, /get needs "key"/],
      [{ action: 'put', key: 'k', value: 'x'.repeat(4 * 1024 * 1024 + 1) }, /larger than a key can hold/],
      [{ action: 'put', key: 'k'.repeat(4097), value: 'x' }, /key is longer than 4096 bytes/],
      [{ action: 'partition', node: 'n1', peer: 'n1' }, /cannot cut n1 off from itself/],
      [{ action: 'partition', node: 'n1', peer: 'zz' }, /"zz" is not a node/],
      [{ action: 'transfer', to: 'n0' }, /"n0" is not a node/],
      [{ action: 'remove-member', node: '../etc' }, /is not a node/],
      [{ action: 'add-member', role: 'observer' }, /raft has no observers.*learner/],
      [{ action: 'add-member', role: 'boss' }, /role "boss" is not voter, learner or observer/],
      [{ action: 'add-member', node: '-bad id' }, /node id "-bad id" must be/],
      [{ action: 'add-member', node: 'n1' }, /n1 is already in this cluster/],
      [{ action: 'bench', seconds: 600 }, /"seconds" must be a number from 0.5 to 10/],
      [{ action: 'bench', clients: 65 }, /"clients" must be an integer from 1 to 64/],
      [{ action: 'bench', clients: 2.5 }, /"clients" must be an integer/],
      [{ action: 'bench', seconds: Number.NaN }, /"seconds" must be a number/],
    ];
    for (const [a, text] of cases) {
      const r = await act(a);
      expect(r.ok, JSON.stringify(a)?.slice(0, 80)).toBe(false);
      expect(r.text).toMatch(text);
    }
    // A directory that holds no cluster: an error result as well.
    expect(await createUiActions({ dir: `${dirOf()}/nothing-here` })(raw({ action: 'heal' }))).toMatchObject({ ok: false });
  });

  it('put then get through the cluster', async () => {
    const put = await act({ action: 'put', key: 'greeting', value: 'hello from the page' });
    expect(put).toMatchObject({ ok: true, text: expect.stringMatching(/^put greeting = hello from the page at revision \d+$/) });
    expect(await act({ action: 'get', key: 'greeting' })).toMatchObject({ ok: true, data: { found: true, value: 'hello from the page' } });
    expect(await act({ action: 'get', key: 'never-written' })).toEqual({ ok: true, text: 'never-written is not set', data: { key: 'never-written', found: false } });
    // What the page wrote, the CLI reads.
    expect((await cli('get', 'greeting', '--dir', dirOf())).out).toBe('hello from the page\n');
  });

  it('partition cuts a follower off (it campaigns), one link cuts only that link, heal restores every link', async () => {
    const dir = dirOf();
    const leader = await leaderOf(dir);
    const follower = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    expect(await act({ action: 'partition', node: follower })).toMatchObject({ ok: true, data: { isolated: follower, from: ['n1', 'n2', 'n3'].filter((n) => n !== follower) } });
    // Cut off from every peer, a raft follower stops hearing the leader and campaigns (a pre-candidate reports candidate).
    await waitFor(`${follower} to campaign`, async () => ((await statusOf(dir)).nodes.find((n) => n.node === follower)?.role === 'candidate' ? true : undefined), 20_000);
    const healed = await act({ action: 'heal' });
    expect(healed).toMatchObject({ ok: true, data: { healed: ['n1', 'n2', 'n3'], down: [], failed: [] } });
    await waitFor('every node to follow one leader again', async () => {
      const s = await statusOf(dir);
      return s.leader !== null && s.nodes.every((n) => n.role === 'leader' || n.role === 'follower') ? true : undefined;
    }, 20_000);
    const peer = ['n1', 'n2', 'n3'].find((n) => n !== follower) as string;
    expect(await act({ action: 'partition', node: follower, peer })).toMatchObject({ ok: true, text: `cut ${follower} off from ${peer}`, data: { from: [peer] } });
    expect(await act({ action: 'heal' })).toMatchObject({ ok: true });
  });

  it('transfer hands leadership to the node named', async () => {
    const dir = dirOf();
    const leader = await leaderOf(dir);
    const to = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    const r = await act({ action: 'transfer', to });
    expect(r).toMatchObject({ ok: true, data: { leader: to } });
    expect(await leaderOf(dir)).toBe(to);
  });

  it('kill crashes a node with SIGKILL (the others elect a leader); restart brings it back from its data', async () => {
    const dir = dirOf();
    const cd = new ClusterDir(dir);
    const leader = await leaderOf(dir);
    const pid = cd.livePid(leader);
    expect(await act({ action: 'kill', node: leader })).toMatchObject({ ok: true, data: { killed: leader, pid } });
    expect(cd.livePid(leader)).toBeUndefined();
    expect(await act({ action: 'kill', node: leader })).toMatchObject({ ok: false, text: `node ${leader} is not running` });
    await waitFor('a new leader', async () => {
      const l = (await statusOf(dir)).leader;
      return l !== null && l !== leader ? l : undefined;
    });
    const r = await act({ action: 'restart', node: leader });
    expect(r).toMatchObject({ ok: true, data: { restarted: leader } });
    expect(cd.livePid(leader)).toBe((r.data as { pid: number }).pid);
  });

  it('add-member starts a new node and adds it (a learner here); remove-member takes it out and stops it', async () => {
    const dir = dirOf();
    const added = await act({ action: 'add-member', role: 'learner' });
    expect(added).toMatchObject({ ok: true, text: expect.stringMatching(/^n4 added as a learner at 127\.0\.0\.1:\d+$/), data: { added: 'n4', learner: true } });
    const list = JSON.parse((await cli('members', 'list', '--dir', dir, '--json')).out) as { voters: string[]; learners: string[] };
    expect(list.learners).toEqual(['n4']);
    const cd = new ClusterDir(dir);
    expect(cd.livePid('n4')).toBeDefined();
    await everyVoterApplied(dir, 'n4');
    const removed = await act({ action: 'remove-member', node: 'n4' });
    expect(removed, removed.text).toMatchObject({ ok: true, data: { removed: 'n4' } });
    expect(cd.livePid('n4')).toBeUndefined();
    expect(cd.read().nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
  });

  it('bench runs a short bounded write load, one at a time, and reports ops/s and p50/p99', async () => {
    const first = act({ action: 'bench', seconds: 1, clients: 4 });
    // The second starts while the first runs (the first is still probing the disk or writing).
    const second = await act({ action: 'bench', seconds: 0.5 });
    expect(second).toEqual({ ok: false, text: 'a bench is already running: wait for its result' });
    const r = await first;
    expect(r).toMatchObject({ ok: true, text: expect.stringMatching(/^bench: [\d,]+ writes\/s with 4 in flight for 1\.\d s, p50 [\d.]+ ms, p99 [\d.]+ ms \(0 errors\)$/) });
    const data = r.data as { opsPerSec: number; ops: number; p50: number; p99: number };
    expect(data.ops).toBeGreaterThan(0);
    expect(data.opsPerSec).toBeGreaterThan(0);
    expect(data.p99).toBeGreaterThanOrEqual(data.p50);
    // Done: the next one may run.
    expect(await act({ action: 'bench', seconds: 0.5, clients: 2 })).toMatchObject({ ok: true });
  });
});

describe('ui actions on a real zab cluster: a non-voting member is an observer', () => {
  const dirOf = useStartedCluster('zab');

  it('add-member as an observer joins as ZAB non-voting member; remove-member takes it out', async () => {
    const dir = dirOf();
    const act = createUiActions({ dir });
    const added = await act({ action: 'add-member', node: 'obs1', role: 'observer' });
    expect(added, added.text).toMatchObject({ ok: true, text: expect.stringMatching(/^obs1 added as an observer at 127\.0\.0\.1:\d+$/), data: { added: 'obs1', learner: true } });
    const list = JSON.parse((await cli('members', 'list', '--dir', dir, '--json')).out) as { voters: string[]; learners: string[] };
    expect(list).toMatchObject({ voters: ['n1', 'n2', 'n3'], learners: ['obs1'] });
    await everyVoterApplied(dir, 'obs1');
    const removed = await act({ action: 'remove-member', node: 'obs1' });
    expect(removed, removed.text).toMatchObject({ ok: true, data: { removed: 'obs1' } });
  });
});
