/**
 * An incremental restore (`beginRestore`) of a store of large values does a bounded amount of work per step, and
 * none of it for the whole snapshot when it begins; so does an incremental snapshot (`beginSnapshot`). Work is counted, not timed: the bytes of UTF-8 text decoded
 * (`TextDecoder.decode`) and the bytes handed to msgpackr to unpack, per call. A follower installing a leader's
 * snapshot of 135-336 MB (64 KiB values and their history) blocked its event loop for 0.2-2.9 s when the restore
 * began: the history was unpacked whole there, and a step of the host's 64 keys decoded 64 values (4 MB).
 */
import { describe, expect, it, vi } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import type * as Msgpackr from 'msgpackr';

/**
 * Bytes msgpackr was asked to unpack since the last reset (the length of each buffer it was given), and bytes it
 * packed.
 */
const unpacked = vi.hoisted(() => ({ bytes: 0, packed: 0, calls: 0, packCalls: 0 }));
vi.mock('msgpackr', async (importOriginal) => {
  const m = await importOriginal<typeof Msgpackr>();
  return {
    ...m,
    pack: (...a: unknown[]) => {
      const out = (m.pack as (...a: unknown[]) => Uint8Array)(...a);
      unpacked.packed += out.length;
      unpacked.packCalls++;
      return out;
    },
    unpack: (b: Uint8Array, ...rest: unknown[]) => {
      unpacked.bytes += b.length;
      unpacked.calls++;
      return (m.unpack as (...a: unknown[]) => unknown)(b, ...rest);
    },
    unpackMultiple: (b: Uint8Array, ...rest: unknown[]) => {
      unpacked.bytes += b.length;
      unpacked.calls++;
      return (m.unpackMultiple as (...a: unknown[]) => unknown)(b, ...rest);
    },
    // The snapshot reader's own Unpackr (it copies byte values), counted the same way.
    Unpackr: class extends m.Unpackr {
      override unpack(b: Uint8Array, ...rest: unknown[]): unknown {
        unpacked.bytes += b.length;
        unpacked.calls++;
        return (super.unpack as (...a: unknown[]) => unknown)(b, ...rest);
      }
      override unpackMultiple(b: Uint8Array): unknown[] {
        unpacked.bytes += b.length;
        unpacked.calls++;
        return super.unpackMultiple(b);
      }
    },
  };
});

const { KvStateMachine } = await import('./kv-state-machine');

const VALUE = 64 * 1024;
let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });

/** 24 keys of 64 KiB values (strings, and bytes for every fourth), each written 3 times: history of 48 values. */
function largeStore() {
  const sm = new KvStateMachine();
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < 24; k++) {
      const value = k % 4 === 3 ? new Uint8Array(VALUE).fill(round + k) : String.fromCharCode(97 + ((round + k) % 26)).repeat(VALUE);
      sm.apply(entry(), { cmd: { op: 'put', key: `big/${String(k).padStart(2, '0')}`, value } });
    }
  }
  return sm;
}

describe('kv incremental restore of large values', () => {
  it('does a bounded amount of work per step (a key or 1 KiB per unit of budget), none of it for the whole snapshot when it begins; the result is what restore() gives', () => {
    const source = largeStore();
    const bytes = source.snapshot();
    // Also at an odd offset, as a snapshot unpacked from a message sits.
    const odd = new Uint8Array(bytes.length + 3).subarray(3);
    odd.set(bytes);
    const whole = new KvStateMachine();
    whole.restore(bytes);
    const decode = TextDecoder.prototype.decode;
    let decoded = 0;
    const spy = vi.spyOn(TextDecoder.prototype, 'decode').mockImplementation(function (this: InstanceType<typeof TextDecoder>, input?: Uint8Array, options?: { stream?: boolean }) {
      decoded += input === undefined ? 0 : input.byteLength;
      return decode.call(this, input, options);
    } as typeof decode);
    try {
      for (const snapshot of [bytes, odd]) {
        const target = new KvStateMachine();
        decoded = 0;
        unpacked.bytes = 0;
        const job = target.beginRestore(snapshot);
        // Beginning reads the header (a few hundred bytes here), not the values nor their history.
        expect(decoded + unpacked.bytes).toBeLessThan(4096);
        const perStep: number[] = [];
        let done = false;
        while (!done) {
          decoded = 0;
          unpacked.bytes = 0;
          done = job.step(64);
          perStep.push(decoded + unpacked.bytes);
        }
        // 64 units of 1 KiB: one 64 KiB value a step (its text decoded with the 64 KiB chunk before it, or its
        // record unpacked from a window of twice the last one's size), never 64 values (4 MB).
        expect(Math.max(...perStep)).toBeLessThanOrEqual(8 * 64 * 1024);
        // Every value was read in some step: 72 values (24 live, 48 history) of 64 KiB, one or two a step.
        expect(perStep.reduce((a, b) => a + b, 0)).toBeGreaterThan(72 * VALUE * 0.9);
        expect(perStep.length).toBeGreaterThanOrEqual(72 / 2);
        expect(Buffer.from(target.snapshot()).equals(Buffer.from(whole.snapshot()))).toBe(true);
        expect(Buffer.from(target.snapshot()).equals(Buffer.from(bytes))).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('an incremental snapshot of them does a bounded amount of work per step too (bytes packed and copied), its last step included', () => {
    const source = largeStore();
    const expected = Buffer.from(source.snapshot());
    const set = Uint8Array.prototype.set;
    let copied = 0;
    const spy = vi.spyOn(Uint8Array.prototype, 'set').mockImplementation(function (this: Uint8Array, array: ArrayLike<number>, offset?: number) {
      copied += array.length;
      set.call(this, array, offset);
    });
    try {
      const job = source.beginSnapshot();
      const perStep: number[] = [];
      let out: Uint8Array | undefined;
      while (out === undefined) {
        copied = 0;
        unpacked.packed = 0;
        out = job.step(64);
        perStep.push(copied + unpacked.packed);
      }
      // 64 units: a key and its history, or 256 KiB of bytes copied into place; never the whole history (3 MB).
      expect(Math.max(...perStep)).toBeLessThanOrEqual(8 * 64 * 1024);
      expect(perStep.reduce((a, b) => a + b, 0)).toBeGreaterThan(54 * VALUE * 0.9);
      expect(Buffer.from(out).equals(expected)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('one key with a long history of large values: its records are packed a few a step and read back a few a step, in the bytes packing the history whole gives', async () => {
    const { pack } = await vi.importActual<typeof Msgpackr>('msgpackr');
    const { readColumnar } = await import('./snapshot-format');
    const sm = new KvStateMachine();
    for (let i = 0; i < 40; i++) sm.apply(entry(), { cmd: { op: 'put', key: 'hot', value: i % 2 ? String(i % 10).repeat(VALUE) : new Uint8Array(VALUE).fill(i) } });
    const set = Uint8Array.prototype.set;
    let copied = 0;
    const spy = vi.spyOn(Uint8Array.prototype, 'set').mockImplementation(function (this: Uint8Array, array: ArrayLike<number>, offset?: number) {
      copied += array.length;
      set.call(this, array, offset);
    });
    const perStep: number[] = [];
    let bytes: Uint8Array | undefined;
    try {
      const job = sm.beginSnapshot();
      while (bytes === undefined) {
        copied = 0;
        unpacked.packed = 0;
        bytes = job.step(64);
        perStep.push(copied + unpacked.packed);
      }
    } finally {
      spy.mockRestore();
    }
    // 39 records of 64 KiB (2.5 MB) in the key's history: never packed in one step.
    expect(Math.max(...perStep)).toBeLessThanOrEqual(8 * 64 * 1024);
    // The history section: an array32 header, then what msgpack gives for the entries packed whole.
    const past = readColumnar(bytes).header.past as [string, unknown[]][];
    expect(past.map(([k, recs]) => [k, recs.length])).toEqual([['hot', 39]]);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pastBytes = dv.getFloat64(bytes.length - 24, true);
    const headBytes = dv.getFloat64(bytes.length - 16, true);
    const oddBytes = dv.getFloat64(bytes.length - 8, true);
    const pad8 = (x: number) => Math.ceil(x / 8) * 8;
    const pastStart = bytes.length - 40 - pad8(oddBytes) - pad8(headBytes) - pad8(pastBytes);
    expect(Buffer.from(bytes.subarray(pastStart + 5, pastStart + pastBytes)).equals(Buffer.from(pack(past).subarray(1)))).toBe(true);
    // Read back a record or so a step.
    const target = new KvStateMachine();
    const job = target.beginRestore(bytes);
    let worst = 0;
    let done = false;
    while (!done) {
      unpacked.bytes = 0;
      done = job.step(64);
      worst = Math.max(worst, unpacked.bytes);
    }
    expect(worst).toBeLessThanOrEqual(2 * VALUE + 4096);
    expect(Buffer.from(target.snapshot()).equals(Buffer.from(bytes))).toBe(true);
  });

  it('small histories are packed a key at a time and unpacked several keys at a time (a call per record cost 5x the time of unpacking them whole)', () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 4000; i++) sm.apply(entry(), { cmd: { op: 'put', key: `small/${i % 400}`, value: `v${i}` } });
    unpacked.packCalls = 0;
    const bytes = sm.snapshot();
    // And packed a key's history at a time (not a record at a time): 400 histories, the header, the odd strings.
    expect(unpacked.packCalls).toBeLessThanOrEqual(400 + 2);
    for (const restoreIt of [(t: InstanceType<typeof KvStateMachine>) => t.restore(bytes), (t: InstanceType<typeof KvStateMachine>) => {
      const job = t.beginRestore(bytes);
      while (!job.step(64));
    }]) {
      const target = new KvStateMachine();
      unpacked.calls = 0;
      restoreIt(target);
      // 3,600 records of 400 keys: far fewer calls than keys.
      expect(unpacked.calls).toBeLessThan(40);
      expect(Buffer.from(target.snapshot()).equals(Buffer.from(bytes))).toBe(true);
    }
  });
});
