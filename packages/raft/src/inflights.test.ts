import { describe, expect, it } from 'vitest';
import { Inflights } from './inflights';

describe('Inflights', () => {
  it('is full at maxCount messages and frees cumulatively', () => {
    const f = new Inflights(4, 0);
    for (const i of [10, 20, 30, 40]) f.add(i, 100);
    expect(f.full()).toBe(true);
    f.freeLE(25);
    expect(f.count).toBe(2);
    expect(f.bytes).toBe(200);
    expect(f.full()).toBe(false);
    f.freeLE(5); // stale ack frees nothing
    expect(f.count).toBe(2);
    f.freeFirstOne();
    expect(f.count).toBe(1);
    f.freeLE(1000);
    expect(f.count).toBe(0);
    expect(f.bytes).toBe(0);
  });

  it('is full at maxBytes', () => {
    const f = new Inflights(100, 1000);
    f.add(1, 600);
    expect(f.full()).toBe(false);
    f.add(2, 600);
    expect(f.full()).toBe(true);
    f.freeLE(1);
    expect(f.full()).toBe(false);
  });

  it('keeps order across ring wrap-around and growth', () => {
    const f = new Inflights(64, 0);
    let next = 1;
    let freed = 0;
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < 7; k++) f.add(next++, 1);
      freed += 5;
      f.freeLE(freed);
      expect(f.count).toBe(next - 1 - freed);
    }
  });
});
