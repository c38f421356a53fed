/**
 * MD5 (RFC 1321), used only by the ketama-compatible mode: libketama and the npm `hashring` package place
 * servers and keys with MD5, so matching their placements means computing the same digests.
 *
 * A small pure implementation instead of `node:crypto`: it keeps the package runtime-neutral and, for the
 * short keys of a cache, it is several times faster than `createHash('md5')` (no object or Buffer per call).
 * Not for security. Checked against RFC 1321's test suite and against `node:crypto` in `md5.test.ts`.
 */
import { encodeUtf8, utf8Scratch } from './utf8.js';

// K[i] = floor(abs(sin(i + 1)) * 2^32), written out so no engine's Math.sin is trusted (RFC 1321 §3.4).
const K = new Int32Array([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);

/** Exported for the test that recomputes the table from its definition. */
export const MD5_K: Readonly<Int32Array> = K;

// Per-round rotation amounts (RFC 1321 §3.4), indexed by step & 3.
const S1 = [7, 12, 17, 22] as const;
const S2 = [5, 9, 14, 20] as const;
const S3 = [4, 11, 16, 23] as const;
const S4 = [6, 10, 15, 21] as const;

const block = new Int32Array(16);
const state = new Int32Array(4);

function compress(): void {
  const x = block;
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (let i = 0; i < 16; i++) {
    const f = (b & c) | (~b & d);
    const t = (a + f + x[i]! + K[i]!) | 0;
    const s = S1[i & 3]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
  }
  for (let i = 16; i < 32; i++) {
    const f = (b & d) | (c & ~d);
    const t = (a + f + x[(5 * i + 1) & 15]! + K[i]!) | 0;
    const s = S2[i & 3]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
  }
  for (let i = 32; i < 48; i++) {
    const f = b ^ c ^ d;
    const t = (a + f + x[(3 * i + 5) & 15]! + K[i]!) | 0;
    const s = S3[i & 3]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
  }
  for (let i = 48; i < 64; i++) {
    const f = c ^ (b | ~d);
    const t = (a + f + x[(7 * i) & 15]! + K[i]!) | 0;
    const s = S4[i & 3]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
}

/**
 * MD5 of the first `length` bytes of `bytes`. Writes the digest as four little-endian uint32 words into
 * `out` (word j = digest bytes 4j..4j+3, which is how ketama reads its points) and returns word 0.
 */
export function md5Words(bytes: Uint8Array, length: number, out?: Uint32Array): number {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89;
  state[2] = 0x98badcfe;
  state[3] = 0x10325476;
  const x = block;
  let offset = 0;
  for (; offset + 64 <= length; offset += 64) {
    for (let w = 0, p = offset; w < 16; w++, p += 4) {
      x[w] = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
    }
    compress();
  }
  // Final block(s): the remaining bytes, 0x80, zeros, then the bit length as a little-endian uint64.
  x.fill(0);
  const rest = length - offset;
  for (let i = 0; i < rest; i++) x[i >> 2]! |= bytes[offset + i]! << ((i & 3) << 3);
  x[rest >> 2]! |= 0x80 << ((rest & 3) << 3);
  if (rest >= 56) {
    compress();
    x.fill(0);
  }
  x[14] = (length << 3) | 0;
  x[15] = Math.floor(length / 0x20000000);
  compress();
  if (out !== undefined) {
    out[0] = state[0]!;
    out[1] = state[1]!;
    out[2] = state[2]!;
    out[3] = state[3]!;
  }
  return state[0]! >>> 0;
}

/** MD5 of the UTF-8 encoding of `text`, as in `md5Words`. */
export function md5String(text: string, out?: Uint32Array): number {
  const length = encodeUtf8(text); // first: it may replace the scratch buffer
  return md5Words(utf8Scratch(), length, out);
}

/** MD5 digest as 16 bytes (for tests and debugging). */
export function md5(input: string | Uint8Array): Uint8Array {
  const words = new Uint32Array(4);
  if (typeof input === 'string') md5String(input, words);
  else md5Words(input, input.length, words);
  const digest = new Uint8Array(16);
  for (let i = 0; i < 16; i++) digest[i] = (words[i >> 2]! >>> ((i & 3) << 3)) & 0xff;
  return digest;
}
