import { InvalidArgumentError } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { compareSummaries, describeZxid, zxidFromBigInt, zxidToBigInt } from './zxid';

describe('zxid', () => {
  it('packs epoch high and counter low into 64 bits without precision loss', () => {
    const z = { epoch: 0xfffffffe, counter: 0xffffffff };
    const b = zxidToBigInt(z);
    expect(b).toBe(0xfffffffeffffffffn);
    expect(b > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(zxidFromBigInt(b)).toEqual(z);
    expect(describeZxid({ epoch: 3, counter: 255 })).toBe('0x3_ff');
  });
  it('refuses epochs and counters that do not fit in 32 bits with a typed error', () => {
    expect(() => zxidToBigInt({ epoch: 2 ** 32, counter: 0 })).toThrow(InvalidArgumentError);
    expect(() => zxidToBigInt({ epoch: 1, counter: -1 })).toThrow(InvalidArgumentError);
    expect(() => zxidFromBigInt(-1n)).toThrow(InvalidArgumentError);
  });
  it('state summaries order by currentEpoch, then last zxid (Leader.waitForEpochAck)', () => {
    expect(compareSummaries({ currentEpoch: 2, last: { term: 1, index: 3 } }, { currentEpoch: 1, last: { term: 1, index: 9 } })).toBeGreaterThan(0);
    expect(compareSummaries({ currentEpoch: 2, last: { term: 2, index: 3 } }, { currentEpoch: 2, last: { term: 1, index: 9 } })).toBeGreaterThan(0);
    expect(compareSummaries({ currentEpoch: 2, last: { term: 2, index: 3 } }, { currentEpoch: 2, last: { term: 2, index: 3 } })).toBe(0);
  });
});
