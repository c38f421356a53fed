import { describe, expect, it } from 'vitest';
import { InboundBudget } from './inbound-budget';

describe('InboundBudget', () => {
  it('reserves what fits at once and queues the rest, granting in arrival order as bytes are released', () => {
    const b = new InboundBudget(100);
    const granted: string[] = [];
    expect(b.reserve(60, () => granted.push('a')).ok).toBe(true);
    expect(b.reserve(50, () => granted.push('big')).ok).toBe(false);
    // 30 would fit beside the 60, but the 50 waits ahead of it: no overtaking, so a large request is not starved.
    expect(b.reserve(30, () => granted.push('small')).ok).toBe(false);
    expect(b.waiting).toBe(2);
    b.release(60);
    expect(granted).toEqual(['big', 'small']);
    expect(b.reserved).toBe(80);
  });

  it('a cancelled waiter at the head lets the ones behind it through', () => {
    const b = new InboundBudget(100);
    const granted: string[] = [];
    b.reserve(80, () => {});
    const big = b.reserve(50, () => granted.push('big'));
    b.reserve(10, () => granted.push('small'));
    expect(big.ok).toBe(false);
    if (!big.ok) big.cancel();
    expect(granted).toEqual(['small']);
    expect(b.reserved).toBe(90);
  });
});
