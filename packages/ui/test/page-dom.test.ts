// @vitest-environment happy-dom
/**
 * The page in a DOM without a browser (happy-dom): the DOM contract the e2e test relies on, keyboard
 * selection, scrubbing, reconnecting, and that strings from the cluster never become markup. A real
 * browser runs the page in apps/cli's e2e test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, URL as NodeURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UiAction, UiFrame, UiHello } from '../src/index';
import { App } from '../src/page/app';
import { frame, historyResponse } from './helpers';
import { $, FakeEventSource, stubPage } from './page-harness';


const HELLO: UiHello = { mode: 'live', protocol: 'raft', title: 'test', timeUnit: 'ms', actions: ['put', 'get', 'kill', 'restart', 'partition', 'heal', 'transfer', 'add-member', 'remove-member', 'bench'] };

let hello: UiHello;
let history: UiFrame[];
let posted: UiAction[];
let root: HTMLElement;


async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

async function startApp(): Promise<FakeEventSource> {
  new App(root).start();
  await vi.waitFor(() => expect(FakeEventSource.all.length).toBeGreaterThan(0));
  const stream = FakeEventSource.all.at(-1)!;
  stream.open();
  return stream;
}

beforeEach(() => {
  vi.useRealTimers();
  hello = HELLO;
  history = [frame(0), frame(1)];
  posted = [];
  stubPage({
    hello: () => hello,
    history: () => history,
    act: (action) => {
      posted.push(action);
      return { ok: action.action !== 'kill', text: `result of ${action.action}` };
    },
  });
  root = document.createElement('div');
  document.body.append(root);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the page (DOM)', () => {
  it('has every element of the DOM contract, for each node', async () => {
    const stream = await startApp();
    await vi.waitFor(() => expect($('connection').getAttribute('data-state')).toBe('open'));
    expect(stream.url).toBe('/api/stream?since=1');
    for (const id of ['n1', 'n2', 'n3']) {
      const node = $(`node-${id}`);
      expect(node.getAttribute('tabindex')).toBe('0');
      expect(node.getAttribute('data-up')).toBe('true');
      expect(node.getAttribute('data-term')).toBe('2');
      expect(node.getAttribute('data-role')).toBe(id === 'n1' ? 'leader' : 'follower');
      for (const action of ['kill', 'restart', 'partition', 'transfer', 'remove']) expect($(`${action}-${id}`).tagName).toBe('BUTTON');
    }
    for (const id of ['heal', 'add-member', 'bench', 'put', 'get', 'cut-link', 'live', 'step-back', 'step-forward', 'play']) expect($(id).tagName).toBe('BUTTON');
    expect($('key').tagName).toBe('INPUT');
    expect($('value').tagName).toBe('INPUT');
    expect($('link-from').tagName).toBe('SELECT');
    expect($('link-to').tagName).toBe('SELECT');
    expect(($('timeline-slider') as HTMLInputElement).type).toBe('range');
    expect($('timeline').tagName).toBe('OL');
    expect($('leader').textContent).toBe('n1');
    expect($('action-result').getAttribute('aria-live')).toBe('polite');
    // Every control has a name for assistive technology.
    for (const el of root.querySelectorAll('input, select')) {
      const id = el.getAttribute('id');
      const labelled = (id && root.querySelector(`label[for="${id}"]`)) || el.getAttribute('aria-label');
      expect(labelled, el.outerHTML).toBeTruthy();
    }
  });

  it('follows frames from the stream: the leader changes, a down node shows down, none without a leader', async () => {
    const stream = await startApp();
    const f = frame(2);
    f.nodes[0] = { id: 'n1', up: false, log: [] };
    f.nodes[1] = { ...f.nodes[1]!, role: 'leader', term: 3 };
    stream.frame(f);
    await vi.waitFor(() => expect($('leader').textContent).toBe('n2'));
    expect($('node-n1').getAttribute('data-role')).toBe('down');
    expect($('node-n1').getAttribute('data-up')).toBe('false');
    expect($('node-n2').getAttribute('data-term')).toBe('3');
    const g = frame(3);
    for (const n of g.nodes) n.role = 'candidate';
    stream.frame(g);
    await vi.waitFor(() => expect($('leader').textContent).toBe('none'));
  });

  it('draws membership, cut links, link rates, at most 24 messages and each log strip with its commit point and snapshot', async () => {
    const f = frame(0, {
      members: { voters: ['n1', 'n2'], learners: ['n3'], observers: ['n4'] },
      links: [
        { from: 'n1', to: 'n2', rate: 42, blocked: false },
        { from: 'n1', to: 'n3', rate: 0, blocked: true },
      ],
      messages: Array.from({ length: 100 }, (_, i) => ({ from: 'n1', to: i % 2 ? 'n2' : 'n3', type: 'AppendEntries', at: i })),
    });
    f.nodes = [
      { id: 'n1', up: true, role: 'leader', term: 3, commitIndex: 12, firstIndex: 10, snapshotIndex: 9, log: [10, 11, 12, 13].map((index) => ({ index, term: index < 12 ? 2 : 3 })) },
      { id: 'n2', up: true, role: 'follower', term: 3, log: [] },
      { id: 'n3', up: true, role: 'learner', term: 3, log: [] },
      { id: 'n4', up: false, log: [] },
    ];
    history = [f];
    await startApp();
    await vi.waitFor(() => expect($('node-n4').getAttribute('data-role')).toBe('down'));
    expect(['n1', 'n2', 'n3', 'n4'].map((id) => $(`node-${id}`).getAttribute('data-member'))).toEqual(['voter', 'voter', 'learner', 'observer']);
    const cut = root.querySelector('line.link[data-from="n1"][data-to="n3"]');
    expect(cut?.getAttribute('data-blocked')).toBe('true');
    expect(cut?.getAttribute('class')).toContain('cut');
    expect([...root.querySelectorAll('text.rate')].map((el) => el.textContent)).toEqual(['42/s']);
    expect(root.querySelectorAll('circle.message')).toHaveLength(24);
    const strip = root.querySelector('.log-row svg');
    expect([...strip!.querySelectorAll('rect.entry')].map((r) => [r.getAttribute('data-index'), r.getAttribute('class')])).toEqual([
      ['10', 'entry committed'],
      ['11', 'entry committed'],
      ['12', 'entry committed'],
      ['13', 'entry'],
    ]);
    expect(strip!.querySelectorAll('line.commit-mark')).toHaveLength(1);
    expect(strip!.querySelectorAll('rect.compacted')).toHaveLength(1);
    expect(strip!.querySelector('rect[data-index="12"]')?.getAttribute('fill')).not.toBe(strip!.querySelector('rect[data-index="11"]')?.getAttribute('fill'));
  });

  it('runs actions and shows their result with data-ok', async () => {
    await startApp();
    $('kill-n2').click();
    await vi.waitFor(() => expect($('action-result').textContent).toBe('result of kill'));
    expect($('action-result').getAttribute('data-ok')).toBe('false');
    ($('key') as HTMLInputElement).value = 'k1';
    ($('value') as HTMLInputElement).value = 'v1';
    $('put').click();
    await vi.waitFor(() => expect($('action-result').getAttribute('data-ok')).toBe('true'));
    ($('link-from') as HTMLSelectElement).value = 'n2';
    ($('link-to') as HTMLSelectElement).value = 'n3';
    $('cut-link').click();
    $('transfer-n3').click();
    $('remove-n3').click();
    $('partition-n1').click();
    $('heal').click();
    await vi.waitFor(() => expect(posted).toHaveLength(7));
    expect(posted).toEqual([
      { action: 'kill', node: 'n2' },
      { action: 'put', key: 'k1', value: 'v1' },
      { action: 'partition', node: 'n2', peer: 'n3' },
      { action: 'transfer', to: 'n3' },
      { action: 'remove-member', node: 'n3' },
      { action: 'partition', node: 'n1' },
      { action: 'heal' },
    ]);
  });

  it('shows the last action result even when an earlier action answers after it', async () => {
    await startApp();
    let release: (() => void) | undefined;
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_path: string, init?: RequestInit) => {
        const action = JSON.parse(String(init?.body)) as UiAction;
        if (action.action === 'bench') await new Promise<void>((r) => (release = r));
        return new Response(JSON.stringify({ ok: true, text: `result of ${action.action}` }));
      }),
    );
    $('bench').click();
    await vi.waitFor(() => expect(release).toBeDefined());
    $('heal').click();
    await vi.waitFor(() => expect($('action-result').textContent).toBe('result of heal'));
    release?.();
    await settle();
    expect($('action-result').textContent).toBe('result of heal');
    expect($('action-result').hasAttribute('data-pending')).toBe(false);
  });

  it('disables the actions the source does not offer (replay) and opens a replay on its first step', async () => {
    hello = { ...HELLO, mode: 'replay', actions: [], replayCommand: 'consensus-sim replay 7' };
    history = [frame(0, { events: [{ at: 0, kind: 'election', text: 'first' }] }), frame(1), frame(2, { events: [{ at: 2, kind: 'violation', text: 'last' }] })];
    await startApp();
    await vi.waitFor(() => expect(($('timeline-slider') as HTMLInputElement).max).toBe('2'));
    expect(($('kill-n1') as HTMLButtonElement).disabled).toBe(true);
    expect(($('heal') as HTMLButtonElement).disabled).toBe(true);
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('0');
    expect($('timeline').textContent).toContain('first');
    expect($('timeline').textContent).not.toContain('last');
    $('step-forward').click();
    $('step-forward').click();
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('2');
    expect($('timeline').textContent).toContain('last');
    $('step-back').click();
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('1');
    $('prev-event').click();
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('0');
    expect(($('prev-event') as HTMLButtonElement).disabled).toBe(true);
    $('next-event').click();
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('2');
    expect(root.textContent).toContain('actions are off');
    expect(root.textContent).toContain('consensus-sim replay 7');
  });

  it('plays a replay at the chosen speed and stops at its end', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    hello = { ...HELLO, mode: 'replay', actions: [] };
    history = Array.from({ length: 30 }, (_, i) => frame(i));
    await startApp();
    await vi.waitFor(() => expect(($('timeline-slider') as HTMLInputElement).max).toBe('29'));
    const speed = $('speed') as HTMLSelectElement;
    expect(speed.value).toBe('5');
    $('play').click();
    expect($('play').getAttribute('aria-pressed')).toBe('true');
    await vi.advanceTimersByTimeAsync(1000);
    expect(Number(($('timeline-slider') as HTMLInputElement).value)).toBe(5);
    speed.value = '60';
    speed.dispatchEvent(new Event('change'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(($('timeline-slider') as HTMLInputElement).value).toBe('29');
    expect($('play').getAttribute('aria-pressed')).toBe('false');
    expect($('live').getAttribute('aria-pressed')).toBe('false'); // a replay stays on its last step
  });

  it('scrubs back with the slider (the view shows that frame) and returns with live', async () => {
    history = [frame(0), frame(1)];
    history[0]!.nodes[0]!.term = 1;
    const stream = await startApp();
    await vi.waitFor(() => expect($('node-n1').getAttribute('data-term')).toBe('2'));
    const slider = $('timeline-slider') as HTMLInputElement;
    slider.value = '0';
    slider.dispatchEvent(new Event('input'));
    expect($('node-n1').getAttribute('data-term')).toBe('1');
    expect($('live').getAttribute('aria-pressed')).toBe('false');
    const f = frame(2);
    f.nodes[0]!.term = 5;
    stream.frame(f);
    await settle();
    expect($('node-n1').getAttribute('data-term')).toBe('1'); // still scrubbed
    expect(slider.max).toBe('2');
    $('live').click();
    expect($('node-n1').getAttribute('data-term')).toBe('5');
    expect($('live').getAttribute('aria-pressed')).toBe('true');
  });

  it('selects a node with Enter or Space and keeps its focus across frames', async () => {
    const stream = await startApp();
    const node = $('node-n2');
    node.focus();
    node.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    expect(node.getAttribute('aria-pressed')).toBe('true');
    expect(root.textContent).toContain('Node n2');
    expect(($('link-from') as HTMLSelectElement).value).toBe('n2');
    stream.frame(frame(2));
    stream.frame(frame(3));
    await settle();
    expect($('node-n2')).toBe(node);
    expect(document.activeElement).toBe(node);
    node.dispatchEvent(new KeyboardEvent('keydown', { key: ' ', bubbles: true }));
    expect(node.getAttribute('aria-pressed')).toBe('false');
    // A focused action button survives frames too.
    const kill = $('kill-n3') as HTMLButtonElement;
    kill.focus();
    stream.frame(frame(4));
    await settle();
    expect(document.activeElement).toBe(kill);
  });

  it('reconnects by itself after the stream fails, from the last frame it has', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const stream = await startApp();
    stream.frame(frame(2));
    stream.fail();
    expect(stream.closed).toBe(true);
    expect($('connection').getAttribute('data-state')).toBe('closed');
    history = [frame(0), frame(1), frame(2), frame(3)];
    await vi.advanceTimersByTimeAsync(1100);
    await vi.waitFor(() => expect(FakeEventSource.all).toHaveLength(2));
    const again = FakeEventSource.all[1]!;
    expect(again.url).toBe('/api/stream?since=3');
    again.open();
    expect($('connection').getAttribute('data-state')).toBe('open');
    expect(($('timeline-slider') as HTMLInputElement).max).toBe('3');
  });

  it('refetches the history after a hole in seq (frames coalesced by the server)', async () => {
    const stream = await startApp();
    history = [frame(0), frame(1), frame(2), frame(3), frame(4)];
    stream.frame(frame(4));
    await vi.waitFor(() => expect(($('timeline-slider') as HTMLInputElement).max).toBe('4'));
  });

  it('never turns strings from the cluster into markup', async () => {
    const evil = '<img/src=x/onerror=globalThis.__pwned=1>';
    hello = { ...HELLO, title: `<script>globalThis.__pwned=1</script>${evil}`, protocol: evil };
    const f = frame(0, {
      members: { voters: [evil, 'n2'], learners: [], observers: [] },
      events: [{ at: 1, kind: 'action', node: evil, text: `<b>bold</b>${evil}` }],
      messages: [{ from: evil, to: 'n2', type: `<i>${evil}</i>`, at: 1 }],
      links: [{ from: evil, to: 'n2', rate: 3, blocked: false }],
    });
    f.nodes = [
      { id: evil, up: true, role: `<u>leader</u>`, term: 1, leader: evil, log: [{ index: 1, term: 1 }], partitioned: [evil], address: evil, details: { x: evil } },
      { id: 'n2', up: true, role: 'follower', term: 1, leader: evil, log: [] },
    ];
    history = [f];
    posted = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (path: string) => {
        if (path === '/api/hello') return new Response(JSON.stringify(hello));
        if (path.startsWith('/api/history')) return historyResponse(path, history);
        return new Response(JSON.stringify({ ok: false, text: evil }));
      }),
    );
    await startApp();
    await vi.waitFor(() => expect(document.querySelector(`[data-testid="node-${CSS.escape(evil)}"]`)).not.toBeNull());
    document.querySelector<HTMLElement>(`[data-testid="node-${CSS.escape(evil)}"]`)!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    document.querySelector<HTMLElement>(`[data-testid="kill-${CSS.escape(evil)}"]`)!.click();
    await vi.waitFor(() => expect($('action-result').textContent).toBe(evil));
    for (const tag of ['img', 'script', 'b', 'i', 'u']) expect(document.querySelectorAll(tag).length, tag).toBe(0);
    expect((globalThis as { __pwned?: number }).__pwned).toBeUndefined();
    const text = document.body.textContent ?? '';
    expect(text).toContain(evil);
    expect(text).toContain('<b>bold</b>');
    expect(text).toContain('<script>');
    expect(document.title).toContain('<script>');
  });

  it('page sources use no HTML-parsing sinks', () => {
    const dir = fileURLToPath(new NodeURL('../src/page/', import.meta.url));
    const sinks = /\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment|\beval\(|new Function/;
    const files = readdirSync(dir).filter((name) => name.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    for (const name of files) expect(readFileSync(join(dir, name), 'utf8'), name).not.toMatch(sinks);
  });
});
