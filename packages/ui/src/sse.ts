/**
 * One Server-Sent Events client. Writes never queue without bound: while the socket's buffer is full (a slow
 * or stalled browser), new frames are coalesced into one pending frame (the newest picture, the events of
 * every frame it replaces, capped, and the newest messages), written when the socket drains. The page sees a
 * gap in `seq` and refetches the history for the frames it missed.
 */
import type { ServerResponse } from 'node:http';
import { constants as zlibConstants, createGzip, type Gzip } from 'node:zlib';
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

export interface SseClientOptions {
  /**
   * Gzip the stream (the browser sent `Accept-Encoding: gzip`; the caller set `Content-Encoding`): each event is
   * flushed whole (Z_SYNC_FLUSH) as it is written, so it arrives at once, compressed against the ones before it.
   */
  gzip?: boolean;
}

export class SseClient {
  /** Frames folded into another instead of written (for stats and tests). */
  coalesced = 0;
  private lastSeq = -1;
  private pending: UiFrame | undefined;
  private waiting = false;
  private closed = false;
  private readonly gzip: Gzip | undefined;

  constructor(
    private readonly res: ServerResponse,
    options: SseClientOptions = {},
  ) {
    if (options.gzip) {
      // Frames are alike: a shared window makes each one a fraction of its JSON on the wire.
      this.gzip = createGzip({ level: 6 });
      this.gzip.on('error', () => res.destroy());
      this.gzip.pipe(res);
      this.gzip.on('drain', () => this.flush());
    } else res.on('drain', () => this.flush());
  }

  get bufferedBytes(): number {
    return this.res.writableLength + (this.gzip?.writableLength ?? 0);
  }

  /** A comment line (`: <text>`), e.g. the greeting that opens the stream. */
  comment(text: string): void {
    if (!this.closed && !this.waiting) this.write(`: ${text}\n\n`);
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
    if (this.gzip === undefined) this.res.end();
    else if (this.res.destroyed) this.gzip.destroy();
    else this.gzip.end();
  }

  private write(text: string): void {
    if (this.gzip === undefined) {
      if (!this.res.write(text)) this.waiting = true;
      return;
    }
    if (!this.gzip.write(text)) this.waiting = true;
    this.gzip.flush(zlibConstants.Z_SYNC_FLUSH);
  }

  private flush(): void {
    this.waiting = false;
    const pending = this.pending;
    this.pending = undefined;
    if (pending && !this.closed) this.write(formatFrame(pending));
  }
}
