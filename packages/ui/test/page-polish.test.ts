// @vitest-environment happy-dom
/**
 * What the first reports of the page found (session 14): the timeline's node printed twice, every node's own
 * view of an election listed by default, dropped messages drawn as arriving, pause/resume without a colour, and
 * glyphs that Debian's chromium draws as empty boxes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, URL as NodeURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UiEvent, UiFrame, UiHello } from '../src/index';
import { App } from '../src/page/app';
import { DROPPED_STOP, messageProgress, starPoints } from '../src/page/layout';
import { FrameStore, isListed } from '../src/page/store';
import { HISTORY_WINDOW } from '../src/page/connection';
import { frame, historyResponse } from './helpers';
import { $, FakeEventSource, stubPage } from './page-harness';


const HELLO: UiHello = { mode: 'live', protocol: 'raft', title: 'test', timeUnit: 'ms', actions: [] };
let history: UiFrame[];
let root: HTMLElement;


async function startApp(): Promise<void> {
  new App(root).start();
  await vi.waitFor(() => expect(document.querySelector('[data-testid="node-n1"]')).not.toBeNull());
}

beforeEach(() => {
  stubPage({ hello: () => HELLO, history: () => history });
  root = document.createElement('div');
  document.body.append(root);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

/** An election as a live cluster reports it: each node's own view (scope node), then the agreed leader. */
const ELECTION: UiEvent[] = [
  { at: 1, kind: 'election', node: 'n1', text: 'n1 stands for election (term 2)', scope: 'node' },
  { at: 2, kind: 'leader', node: 'n1', text: 'n1 leads (term 2)', scope: 'node' },
  { at: 2, kind: 'leader', node: 'n2', text: 'n2 follows leader n1 (term 2)', scope: 'node' },
  { at: 2, kind: 'leader', node: 'n3', text: 'n3 follows leader n1 (term 2)', scope: 'node' },
  { at: 3, kind: 'leader', node: 'n1', text: "n1 is the cluster's leader (term 2)" },
  { at: 4, kind: 'partition', node: 'n2', text: 'isolate n2' },
];

const listed = (): string[] => [...$('timeline').querySelectorAll('li .event-text')].map((el) => el.textContent ?? '');

describe('the timeline', () => {
  it('prints each event text once, without its node in front ("n3 n3 leads", "n2: isolate n2"), and marks the node', async () => {
    history = [frame(0, { events: ELECTION })];
    await startApp();
    ($('all-events') as HTMLInputElement).click();
    await vi.waitFor(() => expect(listed()).toHaveLength(6));
    const items = [...$('timeline').querySelectorAll('li')];
    for (const li of items) {
      const textEl = li.querySelector('.event-text');
      // The entry reads: the time button, the kind, the text; nothing else.
      expect(li.textContent).toBe(`${li.querySelector('button')?.textContent} ${li.querySelector('.kind')?.textContent} ${textEl?.textContent}`);
    }
    const isolate = items.find((li) => li.textContent?.includes('isolate n2'));
    expect(isolate?.getAttribute('data-node')).toBe('n2');
    expect(isolate?.textContent).not.toMatch(/n2: isolate/);
  });

  it('lists the cluster events by default; "All node events" (a checkbox, so Space toggles it) adds each node\'s own view', async () => {
    history = [frame(0, { events: ELECTION }), frame(1)];
    await startApp();
    await vi.waitFor(() => expect(listed()).toEqual(['isolate n2', "n1 is the cluster's leader (term 2)"]));
    const box = $('all-events') as HTMLInputElement;
    expect(box.type).toBe('checkbox');
    expect(box.checked).toBe(false);
    expect(root.querySelector(`label[for="${box.id}"]`)?.textContent).toBe('All node events');
    box.click();
    expect(box.checked).toBe(true);
    expect(listed()).toEqual([...ELECTION].reverse().map((e) => e.text));
    expect([...$('timeline').querySelectorAll('li[data-scope="node"]')]).toHaveLength(4);
    box.click();
    expect(listed()).toHaveLength(2);
  });

  it('the event jumps skip frames whose events are all node views unless every node event is listed', () => {
    const store = new FrameStore();
    store.merge([
      frame(0),
      frame(1, { events: [ELECTION[1] as UiEvent] }),
      frame(2),
      frame(3, { events: [ELECTION[4] as UiEvent] }),
    ]);
    store.scrubTo(0);
    expect(store.eventIndex(1, false)).toBe(3);
    expect(store.eventIndex(1, true)).toBe(1);
    expect(store.eventsUpTo(10, false).map((e) => e.text)).toEqual([]);
    store.scrubTo(3);
    expect(store.eventsUpTo(10, false).map((e) => e.text)).toEqual(["n1 is the cluster's leader (term 2)"]);
    expect(store.eventsUpTo(10, true)).toHaveLength(2);
    expect(isListed({}, false)).toBe(true);
    expect(isListed({ scope: 'node' }, false)).toBe(false);
    expect(isListed({ scope: 'node' }, true)).toBe(true);
  });

  it('colours pause and resume, like crashes and elections are', () => {
    const css = readFileSync(fileURLToPath(new NodeURL('../src/page/app.css', import.meta.url)), 'utf8');
    for (const kind of ['pause', 'resume', 'crash', 'leader']) expect(css, kind).toMatch(new RegExp(`\\.kind-${kind} \\.kind[^{]*\\{[^}]*color:`));
  });
});

describe('dropped messages', () => {
  it('travel as fast as the others but stop at the cut, in the middle of the link', () => {
    expect(DROPPED_STOP).toBe(0.5);
    expect([0, 0.25, 0.5, 0.75, 1, 2].map((t) => messageProgress({}, t))).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    expect([0, 0.25, 0.5, 0.75, 1, 2].map((t) => messageProgress({ dropped: 'partitioned' }, t))).toEqual([0, 0.25, 0.5, 0.5, 0.5, 0.5]);
  });

  it('are drawn in their own style, named dropped, short of the cut mark', async () => {
    history = [
      frame(0, {
        links: [
          { from: 'n1', to: 'n2', rate: 5, blocked: true },
          { from: 'n1', to: 'n3', rate: 5, blocked: false },
        ],
        messages: [
          { from: 'n1', to: 'n2', type: 'AppendEntries', at: 1, dropped: 'partitioned' },
          { from: 'n1', to: 'n3', type: 'AppendEntries', at: 1 },
        ],
      }),
    ];
    await startApp();
    await vi.waitFor(() => expect(root.querySelectorAll('circle.message')).toHaveLength(2));
    const dropped = root.querySelector('circle.message.dropped');
    expect(dropped?.getAttribute('data-dropped')).toBe('partitioned');
    expect(dropped?.querySelector('title')?.textContent).toBe('AppendEntries n1 \u2192 n2, dropped (partitioned)');
    const delivered = root.querySelectorAll('circle.message:not(.dropped)');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.hasAttribute('data-dropped')).toBe(false);
    // Standing still, the dropped one sits before the cut mark (nearer its sender than the middle is).
    const n1 = $('node-n1').getAttribute('transform')!.match(/translate\(([-\d.]+) ([-\d.]+)\)/)!.slice(1).map(Number) as [number, number];
    const mark = root.querySelector('text.cut-mark')!;
    const dist = (x: number, y: number) => Math.hypot(x - n1[0], y - n1[1]);
    expect(dist(Number(dropped!.getAttribute('cx')), Number(dropped!.getAttribute('cy')))).toBeLessThan(dist(Number(mark.getAttribute('x')), Number(mark.getAttribute('y'))));
    const css = readFileSync(fileURLToPath(new NodeURL('../src/page/app.css', import.meta.url)), 'utf8');
    expect(css).toMatch(/\.message\.dropped \{[^}]*stroke: var\(--bad\)/);
  });
});

/**
 * Characters every default font has: ASCII, Latin-1 and the few cp1252 / WGL4 punctuation marks (dashes, quotes,
 * ellipsis, single guillemets, arrows left and right). Black triangles, stars and the heavy multiplication x are
 * not in DejaVu Sans' fallback set everywhere: Debian's chromium drew "\u23ee Event" as an empty box.
 */
const SAFE_EXTRA = new Set([0x2013, 0x2014, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2026, 0x2039, 0x203a, 0x2190, 0x2192]);
const safe = (code: number): boolean => code < 0x80 || (code >= 0xa0 && code <= 0xff) || SAFE_EXTRA.has(code);

describe('glyphs', () => {
  it('the page sources use only characters every default font has (as text or as \\u escapes)', () => {
    const dir = fileURLToPath(new NodeURL('../src/page/', import.meta.url));
    const bad: string[] = [];
    for (const name of readdirSync(dir)) {
      const source = readFileSync(join(dir, name), 'utf8');
      for (const ch of source) if (!safe(ch.codePointAt(0) ?? 0)) bad.push(`${name}: U+${(ch.codePointAt(0) ?? 0).toString(16)} "${ch}"`);
      for (const m of source.matchAll(/\\u\{?([0-9a-fA-F]{4,5})\}?/g)) {
        const code = Number.parseInt(m[1] ?? '0', 16);
        if (code >= 0x20 && !safe(code)) bad.push(`${name}: \\u${m[1]}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("the leader's star is drawn as SVG, on the ring and in the table, named for screen readers", async () => {
    expect(starPoints(10, 10, 10).split(' ')).toHaveLength(10);
    history = [frame(0)];
    await startApp();
    const mark = $('node-n1').querySelector('polygon.leader-mark');
    expect(mark?.getAttribute('display')).toBeNull();
    expect($('node-n2').querySelector('polygon.leader-mark')?.getAttribute('display')).toBe('none');
    const row = root.querySelector('tr[data-node="n1"] th');
    expect(row?.textContent).toBe('n1 leader');
    expect(row?.querySelector('svg.leader-icon')?.getAttribute('aria-label')).toBe('leader');
    expect(root.querySelector('tr[data-node="n2"] svg.leader-icon')?.getAttribute('display')).toBe('none');
  });
});

describe('loading a long history', () => {
  /** `fetch` answering from `history`, recording the paths, holding `/api/history?before=` / `?after=` until released. */
  function stubFetch(hello: UiHello): { paths: string[]; release: () => void } {
    const paths: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    vi.stubGlobal(
      'fetch',
      vi.fn(async (path: string) => {
        paths.push(path);
        if (path === '/api/hello') return new Response(JSON.stringify(hello));
        if (path.startsWith('/api/history?before=') || (path.startsWith('/api/history?after=') && !path.includes('&'))) await held;
        if (path.startsWith('/api/history')) return historyResponse(path, history);
        return new Response('{}', { status: 404 });
      }),
    );
    return { paths, release };
  }

  it('live: draws the newest frames first, follows the stream from the newest, then merges the older ones', async () => {
    history = Array.from({ length: 700 }, (_, i) => frame(i));
    const { paths, release } = stubFetch(HELLO);
    await startApp();
    const slider = $('timeline-slider') as HTMLInputElement;
    await vi.waitFor(() => expect(slider.max).toBe(String(HISTORY_WINDOW - 1)));
    expect(paths).toEqual(['/api/hello', `/api/history?last=${HISTORY_WINDOW}`, `/api/history?before=${700 - HISTORY_WINDOW}`]);
    expect(FakeEventSource.all.at(-1)?.url).toBe('/api/stream?since=699');
    expect($('timeline-slider').getAttribute('aria-valuetext')).toBe('frame 699, live');
    release();
    await vi.waitFor(() => expect(slider.max).toBe('699'));
    // Still live, on the newest frame; the oldest can be scrubbed to.
    expect(slider.getAttribute('aria-valuetext')).toBe('frame 699, live');
    slider.value = '0';
    slider.dispatchEvent(new Event('input'));
    expect(slider.getAttribute('aria-valuetext')).toBe('frame 0');
  });

  it('replay: opens on its first frames at once, then merges the later ones; the stream starts after the newest', async () => {
    history = Array.from({ length: 700 }, (_, i) => frame(i));
    const { paths, release } = stubFetch({ ...HELLO, mode: 'replay', timeUnit: 'tick' });
    await startApp();
    const slider = $('timeline-slider') as HTMLInputElement;
    await vi.waitFor(() => expect(slider.max).toBe(String(HISTORY_WINDOW - 1)));
    expect(slider.value).toBe('0');
    expect(paths).toEqual(['/api/hello', `/api/history?first=${HISTORY_WINDOW}`, `/api/history?after=${HISTORY_WINDOW - 1}`]);
    expect(FakeEventSource.all.at(-1)?.url).toBe('/api/stream?since=699');
    release();
    await vi.waitFor(() => expect(slider.max).toBe('699'));
    expect(slider.value).toBe('0');
  });

  it('a replay longer than the live frame limit keeps every frame and stays on its first step', async () => {
    history = Array.from({ length: 6000 }, (_, i) => frame(i, { nodes: [] }));
    const { release } = stubFetch({ ...HELLO, mode: 'replay', timeUnit: 'tick' });
    release();
    new App(root).start();
    const slider = $('timeline-slider') as HTMLInputElement;
    await vi.waitFor(() => expect(slider.max).toBe('5999'));
    expect(slider.value).toBe('0');
    expect(slider.getAttribute('aria-valuetext')).toBe('frame 0');
  });

  it('a hole in the stream fetches only the frames it skipped', async () => {
    history = [frame(0), frame(1)];
    const { paths } = stubFetch(HELLO);
    await startApp();
    const stream = FakeEventSource.all.at(-1)!;
    history = [0, 1, 2, 3, 4, 5].map((i) => frame(i));
    stream.dispatchEvent(new MessageEvent('frame', { data: JSON.stringify(frame(5)) }));
    await vi.waitFor(() => expect(($('timeline-slider') as HTMLInputElement).max).toBe('5'));
    expect(paths.at(-1)).toBe('/api/history?after=1&before=5');
  });
});
