// @vitest-environment happy-dom
/**
 * Break-it pass (session 14) on the page: `consensus-cli ui --port N` stopped and started again while the page
 * stays open. The new source counts its frames from 0 again; once it has made more frames than the page holds,
 * `seq` alone cannot tell, and the page kept the old source's frames under the new source's seqs (a timeline
 * of two clusters' pasts). It must start over on the new source's frames.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UiFrame, UiHello } from '../src/index';
import { App } from '../src/page/app';
import { frame } from './helpers';
import { FakeEventSource, stubPage } from './page-harness';


const HELLO: UiHello = { mode: 'live', protocol: 'raft', title: 'test', timeUnit: 'ms', actions: [] };
let history: UiFrame[];

/** A source's frames 0..n-1: made at `at0 + seq`, `leader` leading. */
function run(n: number, at0: number, leader: string): UiFrame[] {
  return Array.from({ length: n }, (_, seq) => {
    const f = frame(seq, { at: at0 + seq });
    f.nodes = f.nodes.map((node) => ({ ...node, role: node.id === leader ? 'leader' : 'follower' }));
    return f;
  });
}

beforeEach(() => {
  stubPage({ hello: () => HELLO, history: () => history });
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('page break-it: the server restarted behind the same address', () => {
  it('drops the old source\'s frames even when the new one has already made more', async () => {
    history = run(6, 1_000_000, 'n1');
    const root = document.createElement('div');
    document.body.append(root);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    new App(root).start();
    await vi.waitFor(() => expect(FakeEventSource.all).toHaveLength(1));
    FakeEventSource.all[0]!.open();
    const slider = root.querySelector<HTMLInputElement>('[data-testid="timeline-slider"]')!;
    await vi.waitFor(() => expect(slider.max).toBe('5'));
    // The ui process stops; a new one on the same port has made 10 frames (n2 leads) by the time the page is back.
    history = run(10, 2_000_000, 'n2');
    FakeEventSource.all[0]!.fail();
    await vi.advanceTimersByTimeAsync(1100);
    await vi.waitFor(() => expect(FakeEventSource.all).toHaveLength(2));
    FakeEventSource.all[1]!.open();
    await vi.waitFor(() => expect(slider.max).toBe('9'));
    // Every frame held is the new source's: the first one shows n2 leading.
    slider.value = '0';
    slider.dispatchEvent(new Event('input'));
    expect(root.querySelector('[data-testid="leader"]')!.textContent).toBe('n2');
  });
});
