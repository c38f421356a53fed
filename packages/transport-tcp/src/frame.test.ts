import { MalformedMessageError } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { FrameError } from './errors';
import { FRAME_MAGIC, FrameParser, FrameType, HEADER_SIZE, encodeFrame } from './frame';

function frames(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => encodeFrame(FrameType.Message, Buffer.from(`body-${i}-${'x'.repeat(i * 7)}`)));
}

describe('FrameParser', () => {
  it('returns whole frames whatever the chunk boundaries', () => {
    const all = Buffer.concat(frames(20));
    const expected = frames(20).map((f) => f.subarray(HEADER_SIZE).toString());
    for (const size of [1, 2, 3, 5, 11, 12, 13, 64, 1000, all.length]) {
      const p = new FrameParser(1 << 20);
      const got: string[] = [];
      for (let off = 0; off < all.length; off += size) {
        for (const f of p.push(all.subarray(off, off + size))) got.push(Buffer.from(f.body).toString());
      }
      expect(got, `chunk size ${size}`).toEqual(expected);
      expect(p.buffered).toBe(0);
    }
  });

  it('carries type and flags, and empty bodies', () => {
    const p = new FrameParser(100);
    const out = p.push(Buffer.concat([encodeFrame(FrameType.Cancel, new Uint8Array(0), 3), encodeFrame(FrameType.Hello, Buffer.from([7]))]));
    expect(out.map((f) => [f.type, f.flags, [...f.body]])).toEqual([
      [FrameType.Cancel, 3, []],
      [FrameType.Hello, 0, [7]],
    ]);
  });

  it('copies a split body once into a buffer of exactly its size', () => {
    const p = new FrameParser(1 << 20);
    const f = encodeFrame(FrameType.Message, Buffer.alloc(10_000, 1));
    expect(p.push(f.subarray(0, 5000))).toEqual([]);
    expect(p.buffered).toBe(5000 - HEADER_SIZE);
    const [out] = p.push(f.subarray(5000));
    expect(out!.body.byteLength).toBe(10_000);
    expect(out!.body.buffer.byteLength).toBeGreaterThanOrEqual(10_000);
  });

  it('refuses a length above maxFrameSize before buffering anything of the body', () => {
    const p = new FrameParser(1024);
    const f = encodeFrame(FrameType.Message, Buffer.alloc(1025));
    expect(() => p.push(f.subarray(0, HEADER_SIZE))).toThrow(FrameError);
    expect(p.buffered).toBe(0);
    try {
      new FrameParser(1024).push(f);
    } catch (e) {
      expect(MalformedMessageError.is(e)).toBe(true);
      expect((e as FrameError).reason).toBe('too-large');
    }
  });

  it.each([
    ['bad-magic', (b: Buffer) => (b[0] = FRAME_MAGIC ^ 1)],
    ['bad-checksum', (b: Buffer) => (b[5] = b[5]! ^ 0x10)],
    ['bad-checksum', (b: Buffer) => (b[9] = b[9]! ^ 1)],
  ] as const)('refuses a header with %s', (reason, corrupt) => {
    const f = encodeFrame(FrameType.Message, Buffer.from('hello'));
    corrupt(f);
    const p = new FrameParser(1024);
    expect(() => p.push(f)).toThrow(expect.objectContaining({ reason }));
    // The stream is dead after a bad header.
    expect(() => p.push(encodeFrame(FrameType.Message, Buffer.from('x')))).toThrow(FrameError);
  });

  it('refuses an unknown framing version and an unknown type even with a valid checksum', async () => {
    const { writeHeader } = await import('./frame');
    const v2 = Buffer.alloc(HEADER_SIZE);
    writeHeader(v2, 0, FrameType.Message, 0, 0);
    v2[1] = 2;
    const { crc32 } = await import('node:zlib');
    v2.writeUInt32BE(crc32(v2.subarray(0, 8)), 8);
    expect(() => new FrameParser(10).push(v2)).toThrow(expect.objectContaining({ reason: 'bad-version' }));
    const t = Buffer.alloc(HEADER_SIZE);
    writeHeader(t, 0, 99, 0, 0);
    expect(() => new FrameParser(10).push(t)).toThrow(expect.objectContaining({ reason: 'unknown-type' }));
  });
});
