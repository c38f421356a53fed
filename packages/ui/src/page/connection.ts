/**
 * The page's link to the server: fetches a window of the history it can draw at once (a live cluster's newest
 * `HISTORY_WINDOW` frames, a replay's first ones), follows `/api/stream?since=<newest seq>`, then fetches the rest
 * of the history (older frames, or the replay's later steps) and merges it in. On an error it closes the stream,
 * waits (1 s, doubling to 8 s), refetches and follows again, with no reload. A frame after a hole in `seq` (the
 * server coalesced frames for a slow page) refetches the history to fill it.
 */
import type { UiFrame, UiHello } from '../model';

/** Frames fetched first: a 5-node replay's history is thousands of frames, tens of MB of JSON to parse. */
export const HISTORY_WINDOW = 300;

export interface ConnectionHandlers {
  hello(hello: UiHello): void;
  /** Frames to merge (history or stream); `reset` when the source restarted and the held frames are stale. */
  frames(frames: UiFrame[], reset: boolean): void;
  state(open: boolean): void;
  lastSeq(): number;
  /** The oldest frame held (-1 without any): the rest of a live history is fetched before it. */
  firstSeq(): number;
  /** The `at` of the held frame `seq`, if held. */
  atOf(seq: number): number | undefined;
}

/** `/api/history[?query]`: its frames and the source's newest seq (`x-ui-newest-seq`, whatever the window). */
async function fetchHistory(query: string): Promise<{ frames: UiFrame[]; newest: number }> {
  const res = await fetch(`/api/history${query}`, { cache: 'no-store' });
  if (!res.ok) throw new Error(`/api/history: HTTP ${res.status}`);
  const frames = (await res.json()) as UiFrame[];
  const header = Number(res.headers.get('x-ui-newest-seq'));
  return { frames, newest: Number.isInteger(header) ? header : (frames.at(-1)?.seq ?? -1) };
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
  private mode: UiHello['mode'] = 'live';

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
    let since: number;
    try {
      const hello = await fetchJson<UiHello>('/api/hello');
      this.mode = hello.mode;
      this.handlers.hello(hello);
      since = await this.loadHistory();
    } catch {
      this.retry();
      return;
    }
    const source = new EventSource(`/api/stream?since=${since}`);
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
      const held = this.handlers.lastSeq();
      const gap = frame.seq > held + 1 && held >= 0;
      this.handlers.frames([frame], false);
      if (gap) void this.fillGap(held, frame.seq);
    });
    source.addEventListener('error', () => {
      source.close();
      if (this.source === source) this.source = undefined;
      this.handlers.state(false);
      this.retry();
    });
    void this.loadRest();
  }

  private retry(): void {
    if (this.stopped) return;
    this.handlers.state(false);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 8000);
  }

  /** Fetches the first window and hands it over; returns the seq to follow the stream from. */
  private async loadHistory(): Promise<number> {
    const held = this.handlers.lastSeq();
    // A replay opens on its first step: its first frames; a live cluster on its newest: the newest ones (or,
    // reconnecting, those after the newest held).
    // Reconnecting live, the newest frame held comes again, to be compared.
    const query = this.mode === 'replay' ? `?first=${HISTORY_WINDOW}` : held >= 0 ? `?after=${held - 1}` : `?last=${HISTORY_WINDOW}`;
    const { frames, newest } = await fetchHistory(query);
    // A new source behind the same address (the ui process restarted): its seq went back, or, already past the
    // newest held, its frame of that seq is another (a live frame's `at` is the ms it was made); start over.
    const again = this.mode !== 'replay' && held >= 0 ? frames.find((f) => f.seq === held) : undefined;
    const reset = newest < held || (this.mode !== 'replay' && held >= 0 && again?.at !== this.handlers.atOf(held));
    this.handlers.frames(frames, reset);
    if (reset && this.mode !== 'replay') this.handlers.frames((await fetchHistory(`?last=${HISTORY_WINDOW}`)).frames, false);
    return this.mode === 'replay' ? newest : this.handlers.lastSeq();
  }

  /** Fetches the rest of the history, behind the window: older live frames, or a replay's later steps. */
  private async loadRest(): Promise<void> {
    try {
      if (this.mode === 'replay') {
        const { frames } = await fetchHistory(`?after=${this.handlers.lastSeq()}`);
        this.handlers.frames(frames, false);
      } else {
        const first = this.handlers.firstSeq();
        if (first > 0) this.handlers.frames((await fetchHistory(`?before=${first}`)).frames, false);
      }
    } catch {
      // The frames drawn stay; a reconnect or the next hole tries again.
    }
  }

  /** Fetches the frames between `after` and `before` (seqs) that the stream skipped (each hole on its own). */
  private async fillGap(after: number, before: number): Promise<void> {
    try {
      this.handlers.frames((await fetchHistory(`?after=${after}&before=${before}`)).frames, false);
    } catch {
      // A reconnect fetches what is missing after the newest frame held; the hole stays until then.
    }
  }

}
