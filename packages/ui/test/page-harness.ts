/**
 * What the page's DOM tests (happy-dom) share: a stand-in EventSource the test drives, the page's server API
 * stubbed on `fetch`, and `$` by data-testid.
 */
import { vi } from 'vitest';
import type { UiAction, UiActionResult, UiFrame, UiHello } from '../src/index';
import { historyResponse } from './helpers';

/** The page's stream, opened, fed and failed by the test. */
export class FakeEventSource extends EventTarget {
  static all: FakeEventSource[] = [];
  closed = false;
  constructor(readonly url: string) {
    super();
    FakeEventSource.all.push(this);
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.dispatchEvent(new Event('open'));
  }
  frame(f: UiFrame): void {
    this.dispatchEvent(new MessageEvent('frame', { data: JSON.stringify(f) }));
  }
  fail(): void {
    this.dispatchEvent(new Event('error'));
  }
}

/** The element with this data-testid; throws when there is none. */
export const $ = (testid: string): HTMLElement => {
  const el = document.querySelector<HTMLElement>(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`no [data-testid="${testid}"]`);
  return el;
};

/**
 * An empty document and the server's API on `fetch`: hello and the history as the test holds them when asked,
 * actions answered by `act` (404 without it), the stream through FakeEventSource.
 */
export function stubPage(o: { hello: () => UiHello; history: () => UiFrame[]; act?: (action: UiAction) => UiActionResult }): void {
  FakeEventSource.all = [];
  document.body.replaceChildren();
  vi.stubGlobal('EventSource', FakeEventSource);
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init?: RequestInit) => {
      if (path === '/api/hello') return new Response(JSON.stringify(o.hello()));
      if (path.startsWith('/api/history')) return historyResponse(path, o.history());
      if (path === '/api/action' && o.act !== undefined) return new Response(JSON.stringify(o.act(JSON.parse(String(init?.body)) as UiAction)));
      return new Response('{}', { status: 404 });
    }),
  );
}
