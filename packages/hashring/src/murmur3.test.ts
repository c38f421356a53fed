import { describe, expect, it } from 'vitest';
import { fmix32, murmur3, murmur3Uint32 } from './murmur3.js';
import { mulberry32, randomUnicode } from '../test/helpers.js';

const utf8 = new TextEncoder();

describe('murmur3 (MurmurHash3_x86_32)', () => {
  it("matches SMHasher's verification value 0xB0F57EE3", () => {
    // SMHasher VerificationTest: hash keys {}, {0}, {0,1}, ... {0..254} with seed 256 - i, hash the
    // concatenated little-endian results with seed 0.
    const key = new Uint8Array(256);
    const hashes = new Uint8Array(256 * 4);
    const view = new DataView(hashes.buffer);
    for (let i = 0; i < 256; i++) {
      key[i] = i;
      view.setUint32(i * 4, murmur3(key.subarray(0, i), 256 - i), true);
    }
    expect(murmur3(hashes, 0)).toBe(0xb0f57ee3);
  });

  it('matches published vectors', () => {
    expect(murmur3('', 0)).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('', 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3(new Uint8Array([0, 0, 0, 0]), 0)).toBe(0x2362f9de);
    expect(murmur3('aaaa', 0x9747b28c)).toBe(0x5a97808a);
    expect(murmur3('Hello, world!', 0x9747b28c)).toBe(0x24884cba);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c)).toBe(0x2fa826cd);
  });

  it('golden values: key positions never change across versions or platforms', () => {
    const keys = ['', 'a', 'user:42', 'session/9f8e7d', 'ключ', '😀 emoji', 'x'.repeat(100)];
    expect(keys.map((k) => murmur3(k).toString(16))).toEqual(['0', '3c2569b2', 'c7a6a375', 'fb20676b', '9a592042', '91ea08be', '9c78f092']);
    expect(keys.map((k) => murmur3(k, 0x9747b28c).toString(16))).toEqual(['ebb6c228', '7fa09ea6', '4cd41df9', '7fa2dfcf', '72f4b90', '831b58ad', '5218c315']);
  });

  it('hashes a string as its UTF-8 bytes (ASCII fast path, multi-byte, lone surrogates)', () => {
    const random = mulberry32(1);
    for (let i = 0; i < 3000; i++) {
      const s = randomUnicode(random, 40);
      const seed = Math.floor(random() * 0x100000000);
      expect(murmur3(s, seed)).toBe(murmur3(utf8.encode(s), seed));
    }
    // A long non-ASCII string grows the shared scratch buffer.
    const long = 'é'.repeat(5000) + '漢'.repeat(3000);
    expect(murmur3(long)).toBe(murmur3(utf8.encode(long)));
  });

  it('murmur3Uint32 is murmur3 of the little-endian bytes', () => {
    const random = mulberry32(2);
    const bytes = new Uint8Array(4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 1000; i++) {
      const value = Math.floor(random() * 0x100000000);
      const seed = Math.floor(random() * 0x100000000);
      view.setUint32(0, value, true);
      expect(murmur3Uint32(value, seed)).toBe(murmur3(bytes, seed));
    }
  });

  it('fmix32 is a bijection sample with avalanche (no fixed collisions on a dense range)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) seen.add(fmix32(i));
    expect(seen.size).toBe(100_000);
    expect(fmix32(0)).toBe(0);
  });
});
