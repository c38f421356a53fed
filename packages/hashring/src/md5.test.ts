import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MD5_K, md5 } from './md5.js';
import { mulberry32, randomUnicode } from '../test/helpers.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('md5', () => {
  it('passes the RFC 1321 test suite', () => {
    expect(hex(md5(''))).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(hex(md5('a'))).toBe('0cc175b9c0f1b6a831c399e269772661');
    expect(hex(md5('abc'))).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(hex(md5('message digest'))).toBe('f96b697d7cb7938d525a2f31aaf161d0');
    expect(hex(md5('abcdefghijklmnopqrstuvwxyz'))).toBe('c3fcd3d76192e4007dfb496cca67e13b');
    expect(hex(md5('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'))).toBe('d174ab98d277d9f5a5611c2c9f419d9f');
    expect(hex(md5('1234567890'.repeat(8)))).toBe('57edf4a22be3c955ac49da2e2107b67a');
  });

  it('its constant table is floor(abs(sin(i + 1)) * 2^32)', () => {
    for (let i = 0; i < 64; i++) expect(MD5_K[i]! >>> 0).toBe(Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));
  });

  it('agrees with node:crypto on every length around the block and padding boundaries, and on UTF-8', () => {
    const random = mulberry32(3);
    for (let length = 0; length < 200; length++) {
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
      expect(hex(md5(bytes))).toBe(createHash('md5').update(bytes).digest('hex'));
    }
    for (let i = 0; i < 500; i++) {
      const s = randomUnicode(random, 80);
      expect(hex(md5(s))).toBe(createHash('md5').update(s).digest('hex'));
    }
    const long = 'ü'.repeat(4000);
    expect(hex(md5(long))).toBe(createHash('md5').update(long).digest('hex'));
  });
});
