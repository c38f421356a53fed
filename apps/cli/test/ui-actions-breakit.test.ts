/**
 * Break-it pass (session 14) on the page's actions under faults: a double-clicked Restart, Kill racing Restart,
 * two Add member clicks. Each answer must be true: no node process the cluster directory has lost track of (its
 * pid file names another, so Kill says "not running" while it runs and `stop` leaves it behind), no pid reported
 * that is not the node's.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { UiAction, UiActionResult } from '@consensus-kit/ui';
import { ClusterDir } from '../src/cluster-file';
import { createUiActions, UI_BENCH_LIMITS } from '../src/ui-actions';
import { leaderOf, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

/** The pids of every process running node `id` of the cluster in `dir` (by its config path on the command line). */
function nodeProcesses(dir: string, id: string): number[] {
  const config = new ClusterDir(dir).configFile(id);
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(` ${config}`))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

const settle = () => new Promise((r) => setTimeout(r, 1500));

describe('ui actions break-it: lifecycle actions racing on one node', () => {
  const dirOf = useStartedCluster('raft');
  const strays: number[] = [];
  afterEach(() => {
    // What the test found running untracked is stopped here (cleanup only knows the pid files).
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  /** Every process of node `id` is the one its pid file names; returns that pid. */
  const check = (dir: string, id: string): number | undefined => {
    const running = nodeProcesses(dir, id);
    const tracked = new ClusterDir(dir).livePid(id);
    strays.push(...running.filter((p) => p !== tracked));
    expect(running, `processes of ${id}: ${running.join(', ')}; pid file: ${tracked}`).toEqual(tracked === undefined ? [] : [tracked]);
    return tracked;
  };

  it('Restart clicked twice: one node process, the one its pid file names, and every ok names it', async () => {
    const dir = dirOf();
    const act = createUiActions({ dir });
    const leader = await leaderOf(dir);
    const id = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    const results = await Promise.all([act({ action: 'restart', node: id }), act({ action: 'restart', node: id })]);
    await settle();
    const tracked = check(dir, id);
    // Both restarts did restart it, one after the other: the process running is the one the later answer names.
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect((results[1] as UiActionResult).data).toMatchObject({ pid: tracked });
  });

  it('Kill of a down node racing its Restart: at most one node process, tracked', async () => {
    const dir = dirOf();
    const act = createUiActions({ dir });
    const leader = await leaderOf(dir);
    const id = ['n1', 'n2', 'n3'].find((n) => n !== leader) as string;
    if (new ClusterDir(dir).livePid(id) === undefined) expect(await act({ action: 'restart', node: id })).toMatchObject({ ok: true });
    expect(await act({ action: 'kill', node: id } as UiAction)).toMatchObject({ ok: true });
    const results = await Promise.all([act({ action: 'restart', node: id }), act({ action: 'restart', node: id }), act({ action: 'kill', node: id })]);
    await settle();
    // In the order clicked: restarted, restarted, killed; nothing left running behind the pid file's back.
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(check(dir, id)).toBeUndefined();
    // Leave it running for the next test.
    if (new ClusterDir(dir).livePid(id) === undefined) expect(await act({ action: 'restart', node: id })).toMatchObject({ ok: true });
  });

  it('Add member clicked twice: two new members with their own ids, each process tracked; removes after', async () => {
    const dir = dirOf();
    const act = createUiActions({ dir });
    const results = await Promise.all([act({ action: 'add-member', role: 'learner' }), act({ action: 'add-member', role: 'learner' })]);
    await settle();
    const ids = new ClusterDir(dir).read().nodes.map((n) => n.id);
    expect(results.map((r) => r.ok), results.map((r) => r.text).join(' | ')).toEqual([true, true]);
    expect(ids).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    for (const id of ['n4', 'n5']) expect(check(dir, id)).toBeGreaterThan(0);
    for (const id of ['n4', 'n5']) expect(await act({ action: 'remove-member', node: id })).toMatchObject({ ok: true });
  }, 120_000);

  it('without a majority: a bench that wrote nothing is a failure, leadership to a stopped node is refused at once, and cutting a link between two stopped nodes says nothing was cut', async () => {
    const dir = dirOf();
    const act = createUiActions({ dir });
    const leader = await leaderOf(dir);
    const [a, b] = ['n1', 'n2', 'n3'].filter((n) => n !== leader) as [string, string];
    for (const id of [a, b]) expect(await act({ action: 'kill', node: id })).toMatchObject({ ok: true });
    // A 1 s bench answers about when it was asked to, not when its stuck writes give up (the client's 15 s).
    const began = Date.now();
    const bench = await act({ action: 'bench', seconds: 1, clients: 2 });
    // 1 s + the 2 s grace, with room for a loaded machine; without the grace it took the client's 15 s.
    expect(Date.now() - began, bench.text).toBeLessThan(1000 + UI_BENCH_LIMITS.graceMs + 6000);
    expect(bench, bench.text).toMatchObject({ ok: false, text: expect.stringMatching(/^bench: no write succeeded/) });
    // Leadership to a stopped node: refused at once, not a 10 s wait for a transfer that cannot happen.
    const t0 = Date.now();
    const transfer = await act({ action: 'transfer', to: a });
    expect(transfer, transfer.text).toMatchObject({ ok: false, text: expect.stringContaining(`${a} is not running`) });
    expect(Date.now() - t0).toBeLessThan(5000);
    const cut = await act({ action: 'partition', node: a, peer: b });
    expect(cut, cut.text).toMatchObject({ ok: false, text: expect.stringContaining('not running') });
    for (const id of [a, b]) expect(await act({ action: 'restart', node: id })).toMatchObject({ ok: true });
  }, 120_000);
});
