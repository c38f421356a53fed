/**
 * Break-it pass (session 14) on `consensus-cli start --ui`: a member added from the page is part of the cluster
 * that Ctrl-C stops. The foreground `start` stopped the nodes it had started only, and left the page's new
 * member running.
 */
import { describe, expect, it } from 'vitest';
import type { UiActionResult, UiFrame } from '@consensus-kit/ui';
import { ClusterDir } from '../src/cluster-file';
import { cleanup, freeBase, spawnCli, tempDir, useSourceNodes, uiUrlOf, waitFor } from './helpers';

useSourceNodes();


describe('consensus-cli start --ui break-it', () => {
  it('Ctrl-C stops a member added from the page too', async () => {
    const dir = tempDir();
    const p = spawnCli(['start', '--dir', dir, '--port', String(await freeBase()), '--ui', '--json']);
    const cd = new ClusterDir(dir);
    try {
      const url = await uiUrlOf(p, 120_000);
      await waitFor('a leader on the page', async () => {
        const res = await fetch(new URL('api/history?last=1', url), { signal: AbortSignal.timeout(5000) });
        const last = ((await res.json()) as UiFrame[]).at(-1);
        return last?.nodes.some((n) => n.role === 'leader') ? true : undefined;
      }, 30_000);
      const res = await fetch(new URL('api/action', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'add-member', role: 'learner' }), signal: AbortSignal.timeout(60_000) });
      const added = (await res.json()) as UiActionResult;
      expect(added, added.text).toMatchObject({ ok: true, text: expect.stringMatching(/^n4 added/) });
      expect(cd.livePid('n4')).toBeGreaterThan(0);
      p.signal('SIGINT');
      expect(await p.exited).toBe(0);
      expect(cd.read().nodes.map((n) => [n.id, cd.livePid(n.id)])).toEqual(['n1', 'n2', 'n3', 'n4'].map((id) => [id, undefined]));
    } finally {
      p.signal('SIGKILL');
      await cleanup(dir);
    }
  }, 240_000);
});
