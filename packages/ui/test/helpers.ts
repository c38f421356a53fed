import { request, type IncomingMessage } from 'node:http';
import type { UiAction, UiActionResult, UiFrame, UiHello, UiSource } from '../src/index';
import { applyHistoryWindow, parseHistoryWindow } from '../src/server';

export function frame(seq: number, extra: Partial<UiFrame> = {}): UiFrame {
  return {
    seq,
    at: 1000 + seq,
    members: { voters: ['n1', 'n2', 'n3'], learners: [], observers: [] },
    nodes: ['n1', 'n2', 'n3'].map((id, i) => ({ id, up: true, role: i === 0 ? 'leader' : 'follower', term: 2, commitIndex: seq, log: [{ index: 1, term: 2 }] })),
    links: [],
    messages: [],
    events: [],
    ...extra,
  };
}

export interface FakeSource extends UiSource {
  frames: UiFrame[];
  emit(frame: UiFrame): void;
  listeners: number;
  acted: UiAction[];
}

export function fakeSource(options: { frames?: UiFrame[]; hello?: Partial<UiHello>; act?: ((action: UiAction) => Promise<UiActionResult>) | false } = {}): FakeSource {
  const listeners = new Set<(frame: UiFrame) => void>();
  const acted: UiAction[] = [];
  const source: FakeSource = {
    frames: options.frames ?? [],
    acted,
    get listeners() {
      return listeners.size;
    },
    hello: () => ({ mode: 'live', protocol: 'raft', title: 'test cluster', timeUnit: 'ms', actions: ['put', 'get', 'kill', 'restart', 'partition', 'heal', 'transfer', 'add-member', 'remove-member', 'bench'], ...options.hello }),
    history: () => source.frames,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit(f) {
      source.frames.push(f);
      for (const l of listeners) l(f);
    },
  };
  if (options.act !== false) {
    source.act =
      options.act ??
      (async (action) => {
        acted.push(action);
        return { ok: true, text: `did ${action.action}` };
      });
  }
  return source;
}

export interface SseEvent {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
}

/** A raw event-stream reader over node:http (no EventSource under node): parses events as they come. */
export class StreamReader {
  readonly events: SseEvent[] = [];
  res: IncomingMessage | undefined;
  ended = false;
  private buffer = '';
  private waiters: Array<() => void> = [];

  static open(url: string, headers: Record<string, string> = {}): Promise<StreamReader> {
    const reader = new StreamReader();
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        reader.res = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => reader.feed(chunk));
        res.on('end', () => {
          reader.ended = true;
          reader.wake();
        });
        res.on('error', () => {
          reader.ended = true;
          reader.wake();
        });
        resolve(reader);
      });
      req.on('error', reject);
      req.end();
    });
  }

  get frames(): UiFrame[] {
    return this.events.filter((e) => e.event === 'frame').map((e) => JSON.parse(e.data ?? 'null') as UiFrame);
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      const event: SseEvent = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) event.comment = line.slice(1).trim();
        else {
          const colon = line.indexOf(':');
          const field = line.slice(0, colon);
          const value = line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'id') event.id = value;
          else if (field === 'data') event.data = event.data === undefined ? value : `${event.data}\n${value}`;
        }
      }
      this.events.push(event);
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `check` holds (re-checked on every chunk), or rejects after `ms`. */
  until(check: (reader: StreamReader) => boolean, ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stream condition not met in ${ms} ms; events: ${JSON.stringify(this.events).slice(0, 500)}`)), ms);
      const test = (): void => {
        if (check(this)) {
          clearTimeout(timer);
          resolve();
        } else if (this.ended) {
          clearTimeout(timer);
          if (check(this)) resolve();
          else reject(new Error('stream ended'));
        } else this.waiters.push(test);
      };
      test();
    });
  }

  close(): void {
    this.res?.destroy();
  }
}

/** A raw HTTP request with full control of the headers (fetch forbids setting Host and Origin). */
export function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/**
 * What the server answers to `path` (`/api/history?first=&last=&before=&after=`) for `history`: the window asked
 * for, with `x-ui-newest-seq`. For page tests that stub `fetch`.
 */
export function historyResponse(path: string, history: readonly UiFrame[]): Response {
  const url = new URL(path, 'http://localhost');
  const window = parseHistoryWindow(url.searchParams);
  if (typeof window === 'string') return new Response(JSON.stringify({ ok: false, text: window }), { status: 400 });
  return new Response(JSON.stringify(applyHistoryWindow(history, window)), { headers: { 'x-ui-newest-seq': String(history.at(-1)?.seq ?? -1) } });
}
