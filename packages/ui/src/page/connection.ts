/**
 * The page's link to the server: fetches the history, then follows `/api/stream?since=<last seq>`; on an
 * error it closes the stream, waits (1 s, doubling to 8 s), refetches the history and follows again, with
 * no reload. A frame after a hole in `seq` (the server coalesced frames for a slow page) refetches the
 * history to fill it.
 */
import type { UiFrame, UiHello } from '../model';

export interface ConnectionHandlers {
  hello(hello: UiHello): void;
  /** Frames to merge (history or stream); `reset` when the source restarted and the held frames are stale. */
  frames(frames: UiFrame[], reset: boolean): void;
  state(open: boolean): void;
  lastSeq(): number;
}

export async function fetchJson<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, { cache: 'no-store', ...init });
  const body: unknown = await res.json();
  if (!res.ok && (typeof body !== 'object' || body === null || !('text' in body))) throw new Error(`${path}: HTTP ${res.status}`);
  return body as T;
}

export class Connection {
  private source: EventSource | undefined;
  private retryMs = 1000;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private refetching = false;

  constructor(private readonly handlers: ConnectionHandlers) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      this.handlers.hello(await fetchJson<UiHello>('/api/hello'));
      await this.loadHistory();
    } catch {
      this.retry();
      return;
    }
    const source = new EventSource(`/api/stream?since=${this.handlers.lastSeq()}`);
    this.source = source;
    source.addEventListener('open', () => {
      this.retryMs = 1000;
      this.handlers.state(true);
    });
    source.addEventListener('frame', (event) => {
      let frame: UiFrame;
      try {
        frame = JSON.parse((event as MessageEvent<string>).data) as UiFrame;
      } catch {
        return;
      }
      const gap = frame.seq > this.handlers.lastSeq() + 1 && this.handlers.lastSeq() >= 0;
      this.handlers.frames([frame], false);
      if (gap) void this.fillGap();
    });
    source.addEventListener('error', () => {
      source.close();
      if (this.source === source) this.source = undefined;
      this.handlers.state(false);
      this.retry();
    });
  }

  private retry(): void {
    if (this.stopped) return;
    this.handlers.state(false);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 8000);
  }

  private async loadHistory(): Promise<void> {
    const history = await fetchJson<UiFrame[]>('/api/history');
    const newest = history.at(-1)?.seq ?? -1;
    // The source's seq went back: a new source behind the same address; start over.
    this.handlers.frames(history, newest < this.handlers.lastSeq());
  }

  private async fillGap(): Promise<void> {
    if (this.refetching) return;
    this.refetching = true;
    try {
      this.handlers.frames(await fetchJson<UiFrame[]>('/api/history'), false);
    } catch {
      // The next frame after a hole tries again.
    } finally {
      this.refetching = false;
    }
  }
}
