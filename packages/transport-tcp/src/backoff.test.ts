import { seededRandom } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff (capped exponential, full jitter)', () => {
  it('ceilings double from base up to the cap; each delay is drawn in [0, ceiling)', () => {
    const b = new Backoff({ baseMs: 10, capMs: 300, random: seededRandom(7) });
    const ceilings: number[] = [];
    for (let i = 0; i < 8; i++) {
      const c = b.ceiling;
      ceilings.push(c);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(c);
    }
    expect(ceilings).toEqual([10, 20, 40, 80, 160, 300, 300, 300]);
  });

  it('uses the whole range (full jitter, not equal jitter)', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 1000, random: seededRandom(1) });
    const delays = Array.from({ length: 200 }, () => b.next());
    expect(Math.min(...delays)).toBeLessThan(100);
    expect(Math.max(...delays)).toBeGreaterThan(900);
  });

  it('reset starts again from base; huge attempt counts do not overflow', () => {
    const b = new Backoff({ baseMs: 5, capMs: 1000, random: () => 0.999 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.ceiling).toBe(1000);
    expect(b.failures).toBe(5000);
    b.reset();
    expect(b.ceiling).toBe(5);
  });
});
