import { MalformedMessageError } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { binaryBytes, createCodec, decodePlain, encodePlain } from './codec';
import { messageShapes, normalize } from '@consensus-kit/core/testing';

describe('codec', () => {
  it('round-trips every message shape', () => {
    const c = createCodec();
    for (const m of messageShapes()) expect(normalize(c.decode(c.encode(m)))).toEqual(normalize(m));
  });

  it('earlier results survive later encodes (no shared scratch buffer is overwritten)', () => {
    const c = createCodec();
    const outs = Array.from({ length: 3000 }, (_, i) => ({ i, bytes: c.encode({ type: 'M', i, pad: 'p'.repeat(i % 50) }) }));
    const copies = outs.map((o) => Buffer.from(o.bytes));
    for (let i = 0; i < outs.length; i++) expect(Buffer.compare(Buffer.from(outs[i]!.bytes), copies[i]!)).toBe(0);
    for (const o of outs) expect((c.decode(o.bytes) as { i: number }).i).toBe(o.i);
  });

  it('every frame decodes on its own: a fresh decoder (a new connection) reads any message, in any order', () => {
    const sender = createCodec();
    const shapes = Array.from({ length: 100 }, (_, i) => ({ [`k${i}`]: i, type: `T${i % 7}`, entries: [{ a: i, b: 'x' }, { a: i + 1, b: 'y' }] }));
    const encoded = shapes.map((s) => sender.encode(s));
    // Drop half of them and decode the rest backwards with a decoder that saw nothing before.
    const receiver = createCodec();
    for (let i = encoded.length - 1; i >= 0; i -= 2) expect(receiver.decode(encoded[i]!)).toEqual(shapes[i]);
  });

  it('copies binary fields of small frames and views those of owned buffers', () => {
    const c = createCodec();
    const body = c.encode({ data: new Uint8Array([1, 2, 3]) });
    const copied = c.decode(body) as { data: Uint8Array };
    expect(copied.data.buffer).not.toBe(body.buffer);
    const viewed = c.decode(body, true) as { data: Uint8Array };
    expect(viewed.data.buffer).toBe(body.buffer);
  });

  it('a large body is copied once: its binaries share one buffer of their own, never the read buffer', () => {
    const c = createCodec();
    const entries = Array.from({ length: 32 }, (_, i) => ({ index: i, data: new Uint8Array(200).fill(i) }));
    const encoded = c.encode({ type: 'AppendEntries', entries });
    // As a socket read delivers it: a view into a larger chunk holding other frames too.
    const chunk = new Uint8Array(encoded.byteLength + 100);
    chunk.set(encoded, 50);
    const body = chunk.subarray(50, 50 + encoded.byteLength);
    const got = c.decode(body) as { entries: { index: number; data: Uint8Array }[] };
    expect(got.entries.map((e) => e.data[0])).toEqual(entries.map((e) => e.index));
    const buffers = new Set(got.entries.map((e) => e.data.buffer));
    expect(buffers.size).toBe(1);
    expect(buffers.has(chunk.buffer)).toBe(false);
    expect(got.entries[0]!.data.buffer.byteLength).toBe(encoded.byteLength);
    chunk.fill(0); // the sender's buffer is reused: what was decoded does not change
    expect(got.entries[5]!.data.every((b) => b === 5)).toBe(true);
  });

  it('sizes the buffer for large binaries instead of letting msgpackr double it', () => {
    const c = createCodec();
    const data = new Uint8Array(3 * 1024 * 1024);
    const out = c.encode({ type: 'SnapshotChunk', data });
    expect(out.buffer.byteLength).toBeLessThan(data.byteLength * 1.1);
    expect((c.decode(out) as { data: Uint8Array }).data.byteLength).toBe(data.byteLength);
  });

  it('binaryBytes finds binaries near the top and stays bounded', () => {
    expect(binaryBytes({ a: new Uint8Array(10), b: [{ c: new Uint8Array(5) }] })).toBe(15);
    const wide = Array.from({ length: 10_000 }, () => ({ d: new Uint8Array(1) }));
    expect(binaryBytes(wide)).toBeLessThan(100);
  });

  it('refuses garbage with MalformedMessageError', () => {
    const c = createCodec();
    for (const bad of [new Uint8Array(0), Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xf0, 1]), Buffer.from([0x92, 1]), Buffer.from([0xa5, 0x61])]) {
      expect(() => c.decode(bad)).toThrow(MalformedMessageError);
    }
    expect(() => decodePlain(Buffer.from([0xd9, 50, 1]))).toThrow(MalformedMessageError);
  });

  it('plain encoding is deterministic (handshake transcripts)', () => {
    const v = ['label', 1, 'cluster', new Uint8Array([1, 2])];
    expect(Buffer.from(encodePlain(v)).equals(Buffer.from(encodePlain(v)))).toBe(true);
  });
});
