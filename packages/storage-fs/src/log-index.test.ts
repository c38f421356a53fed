import { describe, expect, it } from 'vitest';
import { LogIndex } from './log-index';

describe('LogIndex', () => {
  it('keeps locations and terms through growth, compaction, truncation and reuse of freed slots', () => {
    const ix = new LogIndex(8);
    for (let i = 1; i <= 100; i++) ix.push(i >> 4, i * 10, 1 + (i >> 3), i, i % 3);
    expect([ix.first, ix.last]).toEqual([1, 100]);
    ix.compactTo(70, ix.termOf(70));
    expect([ix.first, ix.last, ix.baseTerm]).toEqual([71, 100, 1 + (70 >> 3)]);
    expect(ix.memoryBytes).toBe(128 * 21);
    // Appending past capacity now shifts the live part back instead of growing forever.
    for (let i = 101; i <= 160; i++) ix.push(i >> 4, i * 10, 1 + (i >> 3), i, i % 3);
    for (let i = 71; i <= 160; i++) {
      expect([ix.segmentOf(i), ix.offsetOf(i), ix.termOf(i), ix.dataBytesOf(i), ix.typeOf(i)]).toEqual([i >> 4, i * 10, 1 + (i >> 3), i, i % 3]);
    }
    expect(ix.memoryBytes).toBe(128 * 21);
    ix.truncateTo(120);
    expect(ix.last).toBe(120);
    ix.push(99, 5, 42, 0, 1);
    expect([ix.last, ix.termOf(121), ix.segmentOf(121)]).toEqual([121, 42, 99]);
    ix.reset(500, 7);
    expect([ix.first, ix.last, ix.termOf(500)]).toEqual([501, 500, 7]);
  });
});
