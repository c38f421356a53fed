/**
 * One Server-Sent Events client. Writes never queue without bound: while the socket's buffer is full (a slow
 * or stalled browser), new frames are coalesced into one pending frame (the newest picture, the events of
 * every frame it replaces, capped, and the newest messages), written when the socket drains. The page sees a
 * gap in `seq` and refetches the history for the frames it missed.
 */
import type { ServerResponse } from 'node:http';
import type { UiFrame } from './model';

/** Events kept in a coalesced frame (the oldest are dropped beyond it; the history still has them). */
export const COALESCED_EVENTS_MAX = 256;

const formatted = new WeakMap<UiFrame, string>();

/** The frame as one event; made once per frame however many streams send it (frames are not changed once made). */
export function formatFrame(frame: UiFrame): string {
  let text = formatted.get(frame);
  if (text === undefined) {
    // JSON.stringify never emits a raw newline, so one data line carries the whole frame.
    text = `event: frame\nid: ${frame.seq}\ndata: ${JSON.stringify(frame)}\n\n`;
    formatted.set(frame, text);
  }
  return text;
}

/** Merges `next` into `pending`: `next`'s picture, both frames' events (the last COALESCED_EVENTS_MAX). */
export function coalesceFrames(pending: UiFrame, next: UiFrame): UiFrame {
  const events = pending.events.length === 0 ? next.events : [...pending.events, ...next.events];
  return { ...next, events: events.length > COALESCED_EVENTS_MAX ? events.slice(-COALESCED_EVENTS_MAX) : events };
}

export class SseClient {
  /** Frames folded into another instead of written (for stats and tests). */
  coalesced = 0;
  private lastSeq = -1;
  private pending: UiFrame | undefined;
  private waiting = false;
  private closed = false;

  constructor(private readonly res: ServerResponse) {
    res.on('drain', () => this.flush());
  }

  get bufferedBytes(): number {
    return this.res.writableLength;
  }

  /** Sends `frame` unless one at or after its `seq` went already (history backlog, then live). */
  send(frame: UiFrame): void {
    if (this.closed || frame.seq <= this.lastSeq) return;
    this.lastSeq = frame.seq;
    if (this.waiting) {
      if (this.pending) this.coalesced++;
      this.pending = this.pending ? coalesceFrames(this.pending, frame) : frame;
      return;
    }
    this.write(formatFrame(frame));
  }

  /** A comment line: keeps proxies and the browser from timing the stream out. */
  ping(): void {
    if (!this.closed && !this.waiting) this.write(': ping\n\n');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    this.res.end();
  }

  private write(text: string): void {
    if (!this.res.write(text)) this.waiting = true;
  }

  private flush(): void {
    this.waiting = false;
    const pending = this.pending;
    this.pending = undefined;
    if (pending && !this.closed) this.write(formatFrame(pending));
  }
}
