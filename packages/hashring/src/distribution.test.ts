import { describe, expect, it } from 'vitest';
import { summarizeDistribution } from './distribution.js';

describe('summarizeDistribution', () => {
  it('computes max/mean and stddev/mean (population) from a Map or a record', () => {
    const fromMap = summarizeDistribution(new Map([['a', 10], ['b', 20], ['c', 30]]));
    expect(fromMap).toEqual({
      nodes: 3,
      keys: 60,
      mean: 20,
      min: 10,
      max: 30,
      maxOverMean: 1.5,
      stddevOverMean: Math.sqrt(200 / 3) / 20,
    });
    expect(summarizeDistribution({ a: 10, b: 20, c: 30 })).toEqual(fromMap);
  });

  it('handles no nodes and no keys', () => {
    expect(summarizeDistribution(new Map()).nodes).toBe(0);
    expect(summarizeDistribution({ a: 0, b: 0 })).toMatchObject({ nodes: 2, keys: 0, maxOverMean: 0, stddevOverMean: 0 });
  });

  it('rejects negative or non-finite counts', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => summarizeDistribution({ a: bad })).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT', node: 'a' }));
    }
  });
});
