import { describe, expect, it } from 'vitest';
import type { UiActionResult, UiFrame, UiHello } from '@consensus-kit/ui';
import { ClusterDir } from '../src/cluster-file';
import { cleanup, cli, freeBase, spawnCli, statusOf, tempDir, useSourceNodes, useStartedCluster, uiUrlOf, waitFor } from './helpers';

useSourceNodes();


async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

async function postAction(url: string, body: unknown): Promise<{ status: number; result: UiActionResult }> {
  const res = await fetch(new URL('api/action', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  return { status: res.status, result: (await res.json()) as UiActionResult };
}

describe('consensus-cli ui: the visualizer of a running cluster', () => {
  const dirOf = useStartedCluster('raft');

  it('serves the page, its frames and its actions on 127.0.0.1 until Ctrl-C; the cluster keeps running', async () => {
    const dir = dirOf();
    const p = spawnCli(['ui', '--dir', dir, '--json', '--no-open']);
    try {
      const url = await uiUrlOf(p);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      const hello = await getJson<UiHello>(new URL('api/hello', url).href);
      expect(hello).toMatchObject({ mode: 'live', protocol: 'raft', timeUnit: 'ms' });
      expect([...hello.actions].sort()).toEqual(['add-member', 'bench', 'get', 'heal', 'kill', 'partition', 'put', 'remove-member', 'restart', 'transfer']);
      // The live source polls the nodes: frames with all three up and one leader.
      await waitFor('a frame with three nodes up and a leader', async () => {
        const frames = await getJson<UiFrame[]>(new URL('api/history', url).href);
        const last = frames.at(-1);
        return last !== undefined && last.nodes.filter((n) => n.up).length === 3 && last.nodes.some((n) => n.role === 'leader') ? true : undefined;
      }, 30_000);
      // Actions go through createUiActions: a write the CLI reads back, and a bad node refused with a reason.
      expect(await postAction(url, { action: 'put', key: 'from-ui', value: 'yes' })).toMatchObject({ status: 200, result: { ok: true } });
      expect((await cli('get', 'from-ui', '--dir', dir)).out).toBe('yes\n');
      expect(await postAction(url, { action: 'kill', node: 'n9' })).toMatchObject({ status: 200, result: { ok: false, text: expect.stringMatching(/"n9" is not a node of this cluster/) } });
      p.signal('SIGINT');
      expect(await p.exited).toBe(0);
      // Only the page stopped.
      expect((await statusOf(dir)).leader).not.toBeNull();
      await expect(fetch(url, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    } finally {
      p.signal('SIGKILL');
    }
  });

  it('Ctrl-C while an action runs: it is waited for and answered, then the page stops', async () => {
    const dir = dirOf();
    const p = spawnCli(['ui', '--dir', dir, '--json', '--no-open']);
    try {
      const url = await uiUrlOf(p);
      const bench = postAction(url, { action: 'bench', seconds: 2, clients: 2 });
      // The bench is running once a second one is refused.
      await waitFor('the bench to run', async () => ((await postAction(url, { action: 'bench', seconds: 1 })).result.text.includes('already running') ? true : undefined), 10_000);
      p.signal('SIGINT');
      expect(await bench).toMatchObject({ status: 200, result: { ok: true, text: expect.stringMatching(/^bench: /) } });
      expect(await p.exited).toBe(0);
      expect(p.stderr()).toContain('waiting for the action from the page to finish...');
    } finally {
      p.signal('SIGKILL');
    }
  });

  it('a directory without a cluster is an error, before anything is served', async () => {
    const r = await cli('ui', '--dir', `${dirOf()}/nothing-here`, '--no-open');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nothing-here/);
  });

  it('a port that is taken is a one-line error naming it', async () => {
    const dir = dirOf();
    const p = spawnCli(['ui', '--dir', dir, '--json', '--no-open']);
    try {
      const port = new URL(await uiUrlOf(p)).port;
      const r = await cli('ui', '--dir', dir, '--port', port, '--no-open');
      expect(r.code).toBe(1);
      expect(r.err).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      p.signal('SIGINT');
      await p.exited;
    }
  });
});

describe('consensus-cli start --ui', () => {
  it('serves the page once the cluster is up, and Ctrl-C stops both', async () => {
    const dir = tempDir();
    const p = spawnCli(['start', '--dir', dir, '--port', String(await freeBase()), '--ui', '--json']);
    try {
      const url = await uiUrlOf(p);
      const hello = await getJson<UiHello>(new URL('api/hello', url).href);
      expect(hello).toMatchObject({ mode: 'live', protocol: 'raft' });
      await waitFor('the leader on the page', async () => {
        const last = (await getJson<UiFrame[]>(new URL('api/history', url).href)).at(-1);
        return last?.nodes.some((n) => n.role === 'leader') ? true : undefined;
      }, 30_000);
      p.signal('SIGINT');
      expect(await p.exited).toBe(0);
      const cd = new ClusterDir(dir);
      expect(cd.read().nodes.map((n) => cd.livePid(n.id))).toEqual([undefined, undefined, undefined]);
      await expect(fetch(url, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    } finally {
      p.signal('SIGKILL');
      await cleanup(dir);
    }
  });

  it('with --detach it says that `ui` serves the page of a detached cluster', async () => {
    const dir = tempDir();
    try {
      const r = await cli('start', '--dir', dir, '--port', String(await freeBase()), '--detach', '--ui');
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/note: --ui serves the page from the foreground `start`; for a detached cluster run `consensus-cli ui --dir .*`/);
    } finally {
      await cleanup(dir);
    }
  });

  it('--ui takes a port from 0 to 65535', async () => {
    const r = await cli('start', '--dir', '/nonexistent/consensus-ui-test', '--ui', '70000');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--ui/);
  });
});
