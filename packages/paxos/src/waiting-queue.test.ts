import { describe, expect, it } from 'vitest';
import { WaitingQueue } from './waiting-queue';

const bytes = (i: number) => new Uint8Array([i & 255, i >> 8]);

describe('WaitingQueue', () => {
  it('hands proposals out first in first out, across the compactions of its consumed prefix', () => {
    const q = new WaitingQueue();
    let pushed = 0;
    let taken = 0;
    // Uneven bursts, so the queue empties and refills and the prefix drop happens at many fill levels.
    for (let round = 0; round < 40; round++) {
      const burst = (round * 373) % 3000;
      for (let i = 0; i < burst; i++) q.push('command', bytes(pushed++));
      const drain = round % 3 === 0 ? q.length : Math.floor(q.length / 2);
      for (let i = 0; i < drain; i++) {
        expect(q.peekType()).toBe('command');
        expect(q.take()).toEqual(bytes(taken++));
      }
      expect(q.length).toBe(pushed - taken);
    }
    while (q.length > 0) expect(q.take()).toEqual(bytes(taken++));
    expect(taken).toBe(pushed);
    expect(q.peekType()).toBeUndefined();
  });

  it('keeps each proposal with its type, and tells whether a type waits', () => {
    const q = new WaitingQueue();
    q.push('command', bytes(1));
    q.push('config', bytes(2));
    expect(q.has('config')).toBe(true);
    expect(q.has('noop')).toBe(false);
    expect(q.peekType()).toBe('command');
    expect(q.take()).toEqual(bytes(1));
    expect(q.peekType()).toBe('config');
    expect(q.take()).toEqual(bytes(2));
    expect(q.has('config')).toBe(false);
    expect(q.length).toBe(0);
  });
});
