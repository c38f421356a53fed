/**
 * The frames the page holds and which one it shows: pure, no DOM (tested under node). Frames are kept in
 * `seq` order without duplicates, at most `limit` of them (the oldest go first); `position` is the index of
 * the frame shown while scrubbed back, or `undefined` while following the newest (live).
 */
import type { UiEvent, UiFrame } from '../model';

export const FRAME_LIMIT = 5000;
/**
 * Frames a replay keeps: all of them (the simulator's recorder makes at most 20,000, within about 64 MB of JSON).
 * A replay opens on its first step, which the live limit would drop once a long run's later steps arrive.
 */
export const REPLAY_FRAME_LIMIT = 20_000;

export interface TimelineEvent extends UiEvent {
  /** The frame the event arrived with: selecting it shows that frame. */
  seq: number;
}

/**
 * Whether the timeline lists `event`: always when `all`, else only the cluster's events (a node's own view,
 * `scope: 'node'`, comes once per node: an election brings each node's "follows leader n1").
 */
export function isListed(event: Pick<UiEvent, 'scope'>, all: boolean): boolean {
  return all || event.scope !== 'node';
}

export class FrameStore {
  private list: UiFrame[] = [];
  /** Index into `frames` while scrubbed back; undefined while live. */
  position: number | undefined;

  /** At most this many frames are kept (the oldest go first); set it before frames arrive (a replay keeps more). */
  constructor(public limit = FRAME_LIMIT) {}

  get frames(): readonly UiFrame[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }

  get lastSeq(): number {
    return this.list.at(-1)?.seq ?? -1;
  }

  /** Drops every frame (the source restarted: its seq went back). */
  reset(): void {
    this.list = [];
    this.position = undefined;
  }

  /**
   * Adds frames (any order, duplicates by `seq` ignored); returns how many were new. A frame older than
   * the newest is inserted in place (a refetched history filling a gap).
   */
  merge(frames: readonly UiFrame[]): number {
    let added = 0;
    for (const frame of frames) {
      if (!Number.isInteger(frame.seq)) continue;
      const last = this.list.at(-1);
      if (!last || frame.seq > last.seq) {
        this.list.push(frame);
        added++;
        continue;
      }
      const at = this.search(frame.seq);
      if (this.list[at]?.seq === frame.seq) continue;
      this.list.splice(at, 0, frame);
      if (this.position !== undefined && at <= this.position) this.position++;
      added++;
    }
    const excess = this.list.length - this.limit;
    if (excess > 0) {
      this.list.splice(0, excess);
      if (this.position !== undefined) this.position = Math.max(0, this.position - excess);
    }
    return added;
  }

  /** Whether `frame` follows a hole: frames between the newest held and it were never seen. */
  gapBefore(frame: UiFrame): boolean {
    return this.list.length > 0 && frame.seq > this.lastSeq + 1;
  }

  /** The index of the first frame with seq >= `seq`. */
  search(seq: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.list[mid]?.seq ?? Infinity) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get live(): boolean {
    return this.position === undefined;
  }

  /** The index shown: `position`, or the newest while live (-1 when empty). */
  get index(): number {
    return this.position ?? this.list.length - 1;
  }

  /** The frame shown. */
  current(): UiFrame | undefined {
    return this.list[this.index];
  }

  /** Shows frame `index` (clamped); scrubbing to the newest frame stays scrubbed until `goLive`. */
  scrubTo(index: number): void {
    if (this.list.length === 0) return;
    this.position = Math.min(Math.max(0, Math.trunc(index)), this.list.length - 1);
  }

  /** Shows the frame with `seq` (or the first after it). */
  showSeq(seq: number): void {
    this.scrubTo(this.search(seq));
  }

  step(delta: number): void {
    this.scrubTo(this.index + delta);
  }

  goLive(): void {
    this.position = undefined;
  }

  atEnd(): boolean {
    return this.index >= this.list.length - 1;
  }

  /**
   * The index of the nearest frame before (-1) or after (1) the one shown that carries an event the timeline
   * lists (`isListed(event, all)`), if any.
   */
  eventIndex(direction: -1 | 1, all = true): number | undefined {
    for (let i = this.index + direction; i >= 0 && i < this.list.length; i += direction) {
      if (this.list[i]?.events.some((e) => isListed(e, all))) return i;
    }
    return undefined;
  }

  /** The events the timeline lists (`isListed(event, all)`) of every frame up to the one shown, newest first, at most `max`. */
  eventsUpTo(max: number, all = true): TimelineEvent[] {
    const out: TimelineEvent[] = [];
    for (let i = this.index; i >= 0 && out.length < max; i--) {
      const frame = this.list[i];
      if (!frame) continue;
      for (let j = frame.events.length - 1; j >= 0 && out.length < max; j--) {
        const event = frame.events[j];
        if (event && isListed(event, all)) out.push({ ...event, seq: frame.seq });
      }
    }
    return out;
  }
}
