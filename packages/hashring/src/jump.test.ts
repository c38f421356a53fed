import { describe, expect, it } from 'vitest';
import { isHashRingError } from './errors.js';
import { JumpHash, jumpHash } from './jump.js';
import { randomKeys } from '../test/helpers.js';

// Outputs of the paper's C++ (Lamping & Veach 2014, Figure 1) compiled with g++ -O2, for these keys and
// bucket counts: [key, buckets, expected bucket].
const REFERENCE: Array<[bigint, number, number]> = [
  [0n, 1, 0], [0n, 2, 0], [0n, 10, 0], [0n, 1000, 0],
  [0n, 1024, 0], [0n, 65536, 0], [0n, 10000000, 0], [0n, 2147483647, 0],
  [1n, 1, 0], [1n, 2, 0], [1n, 10, 6], [1n, 1000, 549],
  [1n, 1024, 549], [1n, 65536, 21134], [1n, 10000000, 5686101], [1n, 2147483647, 262355607],
  [256n, 1, 0], [256n, 2, 1], [256n, 10, 3], [256n, 1000, 520],
  [256n, 1024, 520], [256n, 65536, 8799], [256n, 10000000, 9858513], [256n, 2147483647, 74751002],
  [123456n, 1, 0], [123456n, 2, 0], [123456n, 10, 3], [123456n, 1000, 984],
  [123456n, 1024, 984], [123456n, 65536, 21510], [123456n, 10000000, 169900], [123456n, 2147483647, 479367282],
  [4294967295n, 1, 0], [4294967295n, 2, 0], [4294967295n, 10, 5], [4294967295n, 1000, 875],
  [4294967295n, 1024, 875], [4294967295n, 65536, 23215], [4294967295n, 10000000, 860568], [4294967295n, 2147483647, 860568],
  [4294967296n, 1, 0], [4294967296n, 2, 1], [4294967296n, 10, 2], [4294967296n, 1000, 937],
  [4294967296n, 1024, 937], [4294967296n, 65536, 30364], [4294967296n, 10000000, 5141878], [4294967296n, 2147483647, 1378953490],
  [16045690984503098046n, 1, 0], [16045690984503098046n, 2, 1], [16045690984503098046n, 10, 4], [16045690984503098046n, 1000, 144],
  [16045690984503098046n, 1024, 144], [16045690984503098046n, 65536, 61115], [16045690984503098046n, 10000000, 4797900], [16045690984503098046n, 2147483647, 635109204],
  [18446744073709551615n, 1, 0], [18446744073709551615n, 2, 1], [18446744073709551615n, 10, 9], [18446744073709551615n, 1000, 313],
  [18446744073709551615n, 1024, 313], [18446744073709551615n, 65536, 18311], [18446744073709551615n, 10000000, 589430], [18446744073709551615n, 2147483647, 699554662],
  [9007199254740991n, 1, 0], [9007199254740991n, 2, 1], [9007199254740991n, 10, 1], [9007199254740991n, 1000, 404],
  [9007199254740991n, 1024, 404], [9007199254740991n, 65536, 48367], [9007199254740991n, 10000000, 5541408], [9007199254740991n, 2147483647, 1028285170],
  [42n, 1, 0], [42n, 2, 1], [42n, 10, 2], [42n, 1000, 571],
  [42n, 1024, 571], [42n, 65536, 5747], [42n, 10000000, 5633683], [42n, 2147483647, 1603940301],
];

describe('jumpHash', () => {
  it('matches the reference C++ bit for bit', () => {
    for (const [key, buckets, expected] of REFERENCE) expect(jumpHash(key, buckets)).toBe(expected);
  });

  it('matches the reference on 100,000 xorshift64 keys (checksum from the same C++ run)', () => {
    // C++: x = 88172645463325252; x ^= x << 13; x ^= x >> 7; x ^= x << 17; acc = acc * 31 + jump(x, 1 + x % 5000)
    const mask = (1n << 64n) - 1n;
    let x = 88172645463325252n;
    let acc = 0n;
    for (let i = 0; i < 100_000; i++) {
      x ^= (x << 13n) & mask;
      x ^= x >> 7n;
      x ^= (x << 17n) & mask;
      acc = (acc * 31n + BigInt(jumpHash(x, 1 + Number(x % 5000n)))) & mask;
    }
    expect(acc).toBe(16445457326193508924n);
  });

  it('agrees for number and bigint keys', () => {
    for (const key of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      expect(jumpHash(key, 977)).toBe(jumpHash(BigInt(key), 977));
    }
  });

  it('rejects bad arguments with a typed error', () => {
    for (const call of [() => jumpHash(1n, 0), () => jumpHash(1n, 1.5), () => jumpHash(-1, 10), () => jumpHash(-1n, 10), () => jumpHash(2n ** 64n, 10), () => jumpHash(0.5, 10)]) {
      expect(call).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('is monotone: growing from n to n + 1 buckets moves keys only into bucket n', () => {
    let elsewhere = 0;
    for (let key = 0; key < 2000; key++) {
      for (let n = 1; n < 60; n++) {
        const before = jumpHash(key * 7919, n);
        const after = jumpHash(key * 7919, n + 1);
        if (after !== before && after !== n) elsewhere++;
      }
    }
    expect(elsewhere).toBe(0);
  });
});

describe('JumpHash', () => {
  const keys = randomKeys(20_000, 11);

  it('numbers buckets in insertion order', () => {
    const jump = new JumpHash({ nodes: ['s0', 's1', 's2'] });
    expect(jump.nodes()).toEqual(['s0', 's1', 's2']);
    expect(jump.bucketOf('s2')).toBe(2);
  });

  it('removing the last bucket moves only its keys', () => {
    const jump = new JumpHash({ nodes: Array.from({ length: 10 }, (_, i) => `s${i}`) });
    const before = keys.map((k) => jump.get(k));
    jump.remove('s9');
    expect(keys.filter((k, i) => before[i] !== 's9' && jump.get(k) !== before[i])).toEqual([]);
  });

  it('removing a middle bucket renumbers the last node into it: only those two nodes\' keys move', () => {
    const jump = new JumpHash({ nodes: Array.from({ length: 10 }, (_, i) => `s${i}`) });
    const before = keys.map((k) => jump.get(k));
    jump.remove('s3');
    expect(jump.nodes()).toEqual(['s0', 's1', 's2', 's9', 's4', 's5', 's6', 's7', 's8']);
    let moved = 0;
    let fromOthers = 0;
    keys.forEach((k, i) => {
      if (jump.get(k) !== before[i]) {
        moved++;
        if (before[i] !== 's3' && before[i] !== 's9') fromOthers++;
      }
    });
    expect(fromOthers).toBe(0);
    expect(moved / keys.length).toBeLessThanOrEqual((2 / 10) * 1.05);
  });

  it('takes no weights', () => {
    const jump = new JumpHash();
    jump.add('a', 1);
    let error: unknown;
    try {
      jump.add('b', 2);
    } catch (e) {
      error = e;
    }
    expect(isHashRingError(error) && error.code).toBe('INVALID_WEIGHT');
    expect(jump.weight('a')).toBe(1);
  });

  it('getN falls back to bucket order when draws run out (n = size)', () => {
    const jump = new JumpHash({ nodes: Array.from({ length: 50 }, (_, i) => `s${i}`) });
    for (const key of keys.slice(0, 200)) {
      const all = jump.getN(key, 50);
      expect(new Set(all).size).toBe(50);
      expect(all[0]).toBe(jump.get(key));
    }
  });
});
