import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UiHello } from '@consensus-kit/ui';
import { serveClusterUi, type ClusterUi } from '../src/commands/ui';
import { cleanup, cli, freeBase, tempDir, useSourceNodes } from '../test/helpers';

/**
 * The visualizer in a real browser (#23): a real 3-node raft cluster started by the CLI, the page served by
 * `serveClusterUi` (what `consensus-cli ui` and `start --ui` run), opened in headless chromium and driven through
 * the DOM contract (data-testid attributes) only, as a user would: the leader killed from the page and a new one
 * seen on the page, a follower partitioned from the page and its role seen to change, healed, and keyboard use.
 * Screenshots go to $CONSENSUS_KIT_TEST_REPORT_DIR/ui/ (a CI artifact, not compared).
 */

useSourceNodes();

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CONSENSUS_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(resolve(process.env.CONSENSUS_KIT_TEST_REPORT_DIR ?? join(here, '..', '..', '..', '.test-reports')), 'ui');
/** How often the live source polls the nodes (its default; passed explicitly so the budget below uses the same number). */
const POLL_MS = 200;
/** Room for what is neither the election timeout nor the poll: the votes themselves, the SSE push, the page's render, a busy machine. */
const MARGIN_MS = 1500;

describe('the visualizer in headless chromium on a real 3-node raft cluster', () => {
  let dir = '';
  let served: ClusterUi | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let hello: UiHello;

  const node = (id: string) => page.locator(`[data-testid="node-${id}"]`);
  const leaderText = async () => (await page.locator('[data-testid="leader"]').textContent())?.trim() ?? '';
  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Clicks an action button and waits for that action's result line, which must say ok. */
  const act = async (testid: string, expected: RegExp) => {
    const result = page.locator('[data-testid="action-result"]');
    await page.locator(`[data-testid="${testid}"]`).click();
    await expect.poll(async () => (await result.textContent()) ?? '', { timeout: 60_000, interval: 50 }).toMatch(expected);
    expect(await result.getAttribute('data-ok')).toBe('true');
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: install it (apt-get install chromium) or point CONSENSUS_CHROMIUM at one`);
    dir = tempDir();
    const started = await cli('start', '--dir', dir, '--port', String(await freeBase()), '--detach', '--json');
    expect(started.code, started.err).toBe(0);
    served = await serveClusterUi({ dir, intervalMs: POLL_MS });
    hello = (await (await fetch(new URL('api/hello', served.url))).json()) as UiHello;
    // Root in CI has no user namespace for chromium's sandbox; the page is our own, on 127.0.0.1.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(served.url);
  });

  afterAll(async () => {
    await browser?.close();
    await served?.close();
    if (dir !== '') await cleanup(dir);
  });

  it('shows the cluster: three nodes up, the stream open, one leader', async () => {
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor({ timeout: 30_000 });
    await expect.poll(leaderText, { timeout: 30_000 }).toMatch(/^n[123]$/);
    for (const id of ['n1', 'n2', 'n3']) await expect.poll(() => node(id).getAttribute('data-up'), { timeout: 30_000 }).toBe('true');
    const leader = await leaderText();
    await expect.poll(() => node(leader).getAttribute('data-role')).toBe('leader');
    await shot('01-started');
  });

  it('kill <leader> from the page: a new leader shows within the election timeout plus the poll interval', async () => {
    const old = await leaderText();
    expect(hello.electionTimeout).toBeGreaterThan(0);
    // Raft draws each follower's timeout from [T, 2T) (thesis 3.4): the last one to fire bounds the election.
    const budget = 2 * (hello.electionTimeout as number) + POLL_MS + MARGIN_MS;
    const clicked = Date.now();
    await page.locator(`[data-testid="kill-${old}"]`).click();
    await expect
      .poll(async () => {
        const now = await leaderText();
        return now !== old && now !== 'none' && now !== '' ? now : undefined;
      }, { timeout: budget, interval: 25 })
      .toMatch(/^n[123]$/);
    const tookMs = Date.now() - clicked;
    console.log(`e2e: new leader ${await leaderText()} on the page ${tookMs} ms after the click (budget ${budget} ms: 2 x ${hello.electionTimeout} ms + ${POLL_MS} ms poll + ${MARGIN_MS} ms)`);
    await expect.poll(() => node(old).getAttribute('data-up')).toBe('false');
    expect(await node(old).getAttribute('data-role')).toBe('down');
    expect(await page.locator('[data-testid="action-result"]').getAttribute('data-ok')).toBe('true');
    await shot('02-failover');
    // The timeline: scrubbed back to the first frame, the view shows the cluster as it was then (the old leader);
    // Live comes back to now.
    const now = await leaderText();
    await page.evaluate(
      `(() => { const s = document.querySelector('[data-testid="timeline-slider"]'); s.value = '0'; s.dispatchEvent(new Event('input', { bubbles: true })); })()`,
    );
    await expect.poll(leaderText).toBe(old);
    await page.locator('[data-testid="live"]').click();
    await expect.poll(leaderText).toBe(now);
    // Back to three, from the page too.
    await act(`restart-${old}`, new RegExp(`^${old} restarted`));
    await expect.poll(() => node(old).getAttribute('data-up'), { timeout: 30_000 }).toBe('true');
    // It has rejoined once it follows in the new leader's term.
    const leader = await leaderText();
    await expect.poll(async () => (await node(old).getAttribute('data-term')) === (await node(leader).getAttribute('data-term')) && (await node(old).getAttribute('data-role')) === 'follower', { timeout: 30_000 }).toBe(true);
  });

  it('partition <follower> from the page: cut off, it campaigns (candidate); heal brings it back as a follower', async () => {
    const leader = await leaderText();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    await expect.poll(() => node(follower).getAttribute('data-role'), { timeout: 30_000 }).toBe('follower');
    await act(`partition-${follower}`, new RegExp(`^cut ${follower} off from`));
    // Raft reports a pre-candidate (PreVote, thesis 9.6) as a candidate: core's roles are leader, follower, candidate, learner.
    await expect.poll(() => node(follower).getAttribute('data-role'), { timeout: 2 * (hello.electionTimeout as number) + POLL_MS + MARGIN_MS + 2000, interval: 25 }).toBe('candidate');
    await shot('03-partition');
    await act('heal', /^every link restored/);
    await expect.poll(() => node(follower).getAttribute('data-role'), { timeout: 30_000 }).toBe('follower');
    await expect.poll(leaderText, { timeout: 30_000 }).toMatch(/^n[123]$/);
  });

  it('put and get from the page go through the cluster', async () => {
    await page.locator('[data-testid="key"]').fill('e2e-key');
    await page.locator('[data-testid="value"]').fill('written from chromium');
    await act('put', /^put e2e-key = written from chromium at revision \d+$/);
    await page.locator('[data-testid="value"]').fill('');
    await act('get', /^e2e-key = written from chromium \(revision \d+\)$/);
    expect((await cli('get', 'e2e-key', '--dir', dir)).out).toBe('written from chromium\n');
  });

  it('keyboard: Tab reaches a node and Enter selects it', async () => {
    await page.locator('body').click({ position: { x: 1, y: 1 } });
    let focused = '';
    for (let i = 0; i < 80 && !focused.startsWith('node-'); i++) {
      await page.keyboard.press('Tab');
      // A string: runs in the page (this package's types have no DOM).
      focused = String(await page.evaluate("document.activeElement?.getAttribute('data-testid') ?? ''"));
    }
    expect(focused).toMatch(/^node-n[123]$/);
    expect(await page.locator(`[data-testid="${focused}"]`).getAttribute('aria-pressed')).toBe('false');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator(`[data-testid="${focused}"]`).getAttribute('aria-pressed')).toBe('true');
  });
});
