import { describe, expect, it } from 'vitest';
import { FrameStore } from '../src/page/store';
import { frame } from './helpers';

const seqs = (store: FrameStore): number[] => store.frames.map((f) => f.seq);

describe('FrameStore', () => {
  it('keeps frames in seq order without duplicates, whatever order they come in', () => {
    const store = new FrameStore();
    expect(store.merge([frame(0), frame(1), frame(2)])).toBe(3);
    expect(store.merge([frame(2), frame(1)])).toBe(0);
    expect(store.merge([frame(5), frame(3)])).toBe(2);
    expect(store.merge([frame(4), frame(5)])).toBe(1);
    expect(seqs(store)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(store.lastSeq).toBe(5);
  });

  it('sees a hole: a frame more than one after the newest', () => {
    const store = new FrameStore();
    expect(store.gapBefore(frame(7))).toBe(false);
    store.merge([frame(0), frame(1)]);
    expect(store.gapBefore(frame(2))).toBe(false);
    expect(store.gapBefore(frame(4))).toBe(true);
  });

  it('keeps at most `limit` frames, the newest, and moves a scrubbed position with them', () => {
    const store = new FrameStore(5);
    store.merge([0, 1, 2, 3, 4].map((s) => frame(s)));
    store.scrubTo(3); // seq 3
    store.merge([frame(5), frame(6)]);
    expect(seqs(store)).toEqual([2, 3, 4, 5, 6]);
    expect(store.current()?.seq).toBe(3);
    store.merge([7, 8, 9, 10].map((s) => frame(s)));
    expect(store.current()?.seq).toBe(6); // its frame was dropped: the oldest kept
  });

  it('follows the newest while live, stays on its frame while scrubbed, and goes back to live', () => {
    const store = new FrameStore();
    expect(store.current()).toBeUndefined();
    expect(store.index).toBe(-1);
    store.merge([frame(0), frame(1), frame(2)]);
    expect(store.live).toBe(true);
    expect(store.current()?.seq).toBe(2);
    store.scrubTo(1);
    store.merge([frame(3)]);
    expect(store.live).toBe(false);
    expect(store.current()?.seq).toBe(1);
    store.step(-5);
    expect(store.index).toBe(0);
    store.step(99);
    expect(store.index).toBe(3);
    expect(store.atEnd()).toBe(true);
    store.goLive();
    store.merge([frame(4)]);
    expect(store.current()?.seq).toBe(4);
  });

  it('keeps a scrubbed view on its frame when an older frame is inserted before it', () => {
    const store = new FrameStore();
    store.merge([frame(0), frame(2), frame(3)]);
    store.scrubTo(1);
    store.merge([frame(1)]);
    expect(store.current()?.seq).toBe(2);
  });

  it('finds a frame by seq for an event, and lists events up to the frame shown, newest first', () => {
    const store = new FrameStore();
    store.merge([
      frame(0, { events: [{ at: 1, kind: 'election', text: 'e1' }] }),
      frame(1),
      frame(2, { events: [{ at: 3, kind: 'leader', text: 'e2' }, { at: 3, kind: 'config', text: 'e3' }] }),
      frame(4, { events: [{ at: 5, kind: 'kill', text: 'e4' }] }),
    ]);
    expect(store.eventsUpTo(10).map((e) => [e.text, e.seq])).toEqual([
      ['e4', 4],
      ['e3', 2],
      ['e2', 2],
      ['e1', 0],
    ]);
    expect(store.eventsUpTo(2).map((e) => e.text)).toEqual(['e4', 'e3']);
    store.showSeq(2);
    expect(store.eventsUpTo(10).map((e) => e.text)).toEqual(['e3', 'e2', 'e1']);
    store.showSeq(3); // no frame 3: the first after it
    expect(store.current()?.seq).toBe(4);
  });

  it('finds the nearest frame with events before and after the one shown', () => {
    const store = new FrameStore();
    const e = [{ at: 0, kind: 'leader' as const, text: 'x' }];
    store.merge([frame(0, { events: e }), frame(1), frame(2), frame(3, { events: e }), frame(4)]);
    expect(store.eventIndex(1)).toBeUndefined(); // live: the newest frame is shown
    expect(store.eventIndex(-1)).toBe(3);
    store.scrubTo(1);
    expect(store.eventIndex(1)).toBe(3);
    expect(store.eventIndex(-1)).toBe(0);
    store.scrubTo(0);
    expect(store.eventIndex(-1)).toBeUndefined();
  });

  it('starts over on reset (a new source)', () => {
    const store = new FrameStore();
    store.merge([frame(5)]);
    store.scrubTo(0);
    store.reset();
    expect(store.size).toBe(0);
    expect(store.live).toBe(true);
    store.merge([frame(0)]);
    expect(seqs(store)).toEqual([0]);
  });
});
