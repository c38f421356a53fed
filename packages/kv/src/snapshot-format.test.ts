import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { MalformedMessageError, StoppedError, seededRandom, type LogEntry, type SnapshotJob } from '@consensus-kit/core';
import type { KeyValue, KvRequest, KvResult, LeaseInfo } from './commands';
import { KvStateMachine } from './kv-state-machine';
import { ColumnarWriter, isColumnar, readColumnar } from './snapshot-format';

/** Each machine's own entry index: two machines fed the same writes see the same indexes (sessions record them). */
const indexes = new WeakMap<KvStateMachine, number>();
const entry = (sm: KvStateMachine): LogEntry => {
  const index = (indexes.get(sm) ?? 0) + 1;
  indexes.set(sm, index);
  return { index, term: 1, type: 'command', data: new Uint8Array() };
};
const apply = (sm: KvStateMachine, req: KvRequest): KvResult | Error => {
  try {
    return sm.apply(entry(sm), req);
  } catch (e) {
    return e as Error; // refused commands are part of a random workload
  }
};
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Runs `job` to the end, `budget` keys per step, calling `between` after every unfinished step. */
function finish(job: SnapshotJob, budget: number, between: () => void = () => undefined): Uint8Array {
  for (;;) {
    const out = job.step(budget);
    if (out !== undefined) return out;
    between();
  }
}

/** How many steps of `budget` a snapshot of `sm` takes. */
function stepsOf(sm: KvStateMachine, budget: number): number {
  let steps = 0;
  finish(sm.beginSnapshot(), budget, () => steps++);
  return steps + 1;
}

/** A random write: put (string or bytes, maybe leased), delete, prefix delete, txn, compact, lease grant/revoke, time. */
function randomWrite(sm: KvStateMachine, random: () => number, clock: { ms: number; seq: number }): void {
  const key = `k/${Math.floor(random() * 40)}`;
  const r = random();
  if (r < 0.45) {
    const value = random() < 0.2 ? new Uint8Array([Math.floor(random() * 256), 0, 255]) : `v${Math.floor(random() * 1000)}`;
    const lease = random() < 0.15 ? Math.floor(random() * 4) + 1 : 0;
    apply(sm, { cmd: { op: 'put', key, value, ...(lease !== 0 ? { lease } : {}) } });
  } else if (r < 0.6) apply(sm, { cmd: { op: 'delete', key } });
  else if (r < 0.63) apply(sm, { cmd: { op: 'delete', key: `k/${Math.floor(random() * 4)}`, prefix: true } });
  else if (r < 0.73) apply(sm, { cmd: { op: 'txn', if: [{ key, target: 'version', cmp: '>', value: 0 }], then: [{ op: 'put', key, value: 'txn' }, { op: 'put', key: `${key}/x`, value: 'y' }], else: [{ op: 'put', key, value: 'new' }] } });
  else if (r < 0.78) apply(sm, { cmd: { op: 'compact', revision: Math.max(1, sm.currentRevision - Math.floor(random() * 6)) } });
  else if (r < 0.84) apply(sm, { cmd: { op: 'leaseGrant', ttl: 2000, id: Math.floor(random() * 4) + 1 } });
  else if (r < 0.87) apply(sm, { cmd: { op: 'leaseRevoke', id: Math.floor(random() * 4) + 1 } });
  else if (r < 0.95) apply(sm, sm.timeCommand(1, (clock.ms += Math.floor(random() * 900))));
  else apply(sm, { cmd: { op: 'put', key, value: 'in a session' }, session: { id: 'c', seq: ++clock.seq, ack: clock.seq - 1 } });
}

describe('kv snapshot format 4 (columnar)', () => {
  it('round-trips string and byte values, non-ASCII keys, a leading U+FEFF and lone surrogates, to the same bytes', () => {
    const sm = new KvStateMachine();
    const kvs: [string, KeyValue['value']][] = [
      ['\uFEFFbom-key', '\uFEFFbom value'],
      ['ascii', 'plain'],
      ['bin', new Uint8Array([0, 1, 2, 255])],
      ['empty', ''],
      ['emptybin', new Uint8Array()],
      ['lone', 'a\uD800b'],
      ['lone-key-\uDC00', 'x'],
      ['ünï/cødé', '日本語 ✓ 𝄞'],
    ];
    for (const [key, value] of kvs) apply(sm, { cmd: { op: 'put', key, value } });
    const bytes = sm.snapshot();
    expect(isColumnar(bytes)).toBe(true);
    const copy = new KvStateMachine();
    copy.restore(bytes);
    expect(copy.range('')).toEqual(sm.range(''));
    for (const [key, value] of kvs) expect((copy.query({ op: 'get', key }) as KeyValue).value).toEqual(value);
    expect(same(copy.snapshot(), bytes)).toBe(true);
  });

  it('restores from a Buffer at an odd offset (a snapshot unpacked from a message)', () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 100; i++) apply(sm, { cmd: { op: 'put', key: `k${i}`, value: i % 2 ? `v${i}` : new Uint8Array([i]) } });
    const bytes = sm.snapshot();
    const pool = Buffer.alloc(bytes.length + 3);
    pool.set(bytes, 3);
    const copy = new KvStateMachine();
    copy.restore(pool.subarray(3));
    expect(copy.range('')).toEqual(sm.range(''));
  });

  it('an incremental snapshot taken while every kind of write goes on holds exactly the state when it began (the bytes snapshot() gave then)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed);
      const clock = { ms: 0, seq: 0 };
      const sm = new KvStateMachine({ historyRevisions: seed % 3 === 0 ? 0 : 4 + (seed % 5) });
      apply(sm, sm.timeCommand(1, 0));
      for (let i = 0; i < 200; i++) randomWrite(sm, random, clock);
      const expected = sm.snapshot();
      const job = sm.beginSnapshot();
      // 1 to 3 keys per step, with 0 to 4 writes between steps: compaction (by command and by retention),
      // deletions, new keys and lease expiry all happen while the walk is half-way.
      const got = finish(job, 1 + (seed % 3), () => {
        const writes = Math.floor(random() * 5);
        for (let w = 0; w < writes; w++) randomWrite(sm, random, clock);
      });
      expect(same(got, expected), `seed ${seed}`).toBe(true);
      expect(job.step(1)).toBe(got); // done: the same bytes again
    }
  });

  it('holding history for a snapshot changes nothing a client or a later snapshot sees, and the history is freed afterwards', () => {
    const random = seededRandom(7);
    const clockA = { ms: 0, seq: 0 };
    const clockB = { ms: 0, seq: 0 };
    const a = new KvStateMachine({ historyRevisions: 3 });
    const b = new KvStateMachine({ historyRevisions: 3 }); // never snapshots
    const script: number[] = Array.from({ length: 2000 }, () => random());
    let at = 0;
    const replay = (sm: KvStateMachine, clock: { ms: number; seq: number }, n: number, from: number) => {
      let i = from;
      const local = () => script[i++ % script.length] as number;
      for (let w = 0; w < n; w++) randomWrite(sm, local, clock);
      return i;
    };
    at = replay(a, clockA, 150, 0);
    replay(b, clockB, 150, 0);
    const job = a.beginSnapshot();
    let next = at;
    finish(job, 2, () => {
      const from = next;
      next = replay(a, clockA, 3, from);
      replay(b, clockB, 3, from);
    });
    const heldHistory = a.historyKeys;
    expect(a.query({ op: 'status' })).toEqual(b.query({ op: 'status' }));
    for (let r = a.compactRevision; r <= a.currentRevision; r++) expect(a.range('', undefined, undefined, r)).toEqual(b.range('', undefined, undefined, r));
    const ha = readColumnar(a.snapshot());
    const hb = readColumnar(b.snapshot());
    expect(ha.kvs).toEqual(hb.kvs);
    expect(ha.header).toEqual(hb.header);
    expect(same(a.snapshot(), b.snapshot())).toBe(true);
    // The history held meanwhile is freed by later compactions, a slice at a time.
    for (let i = 0; i < 200; i++) {
      const from = next;
      next = replay(a, clockA, 1, from);
      replay(b, clockB, 1, from);
    }
    expect(a.historyKeys).toBe(b.historyKeys);
    expect(a.historyKeys).toBeLessThanOrEqual(heldHistory);
    expect(same(a.snapshot(), b.snapshot())).toBe(true);
  });

  it('a restore cancels a snapshot in progress; a cancelled job refuses to go on', () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 20; i++) apply(sm, { cmd: { op: 'put', key: `k${i}`, value: 'v' } });
    const job = sm.beginSnapshot();
    expect(job.step(5)).toBeUndefined();
    sm.restore(new KvStateMachine().snapshot());
    expect(() => job.step(5)).toThrow(StoppedError);
    const other = sm.beginSnapshot();
    other.cancel();
    expect(() => other.step(5)).toThrow(StoppedError);
    expect(sm.size).toBe(0);
  });

  it('format 3 (testdata/snapshot-v3.bin, before the columnar format) restores: keys, lease and its key, replicated time, history and the session', () => {
    const sm = new KvStateMachine({ historyRevisions: 4 });
    sm.restore(readFileSync(new URL('../testdata/snapshot-v3.bin', import.meta.url)));
    expect(sm.query({ op: 'status' })).toEqual({ revision: 9, compactRevision: 5 });
    expect(sm.range('').map((kv) => [kv.key, kv.modRevision, kv.lease])).toEqual([
      ['bin', 4, 0],
      ['config/host', 2, 0],
      ['config/port', 3, 0],
      ['counter', 9, 0],
      ['svc/a', 5, 7],
    ]);
    expect(sm.now).toBe(2000);
    expect(sm.query({ op: 'leaseTimeToLive', id: 7, keys: true })).toEqual({ id: 7, ttl: 60_000, remaining: 58_000, keys: ['svc/a'] } satisfies LeaseInfo);
    expect(sm.query({ op: 'get', key: 'counter', revision: 8 })).toMatchObject({ value: '1' });
    expect([...((sm.query({ op: 'get', key: 'bin' }) as KeyValue).value as Uint8Array)]).toEqual([0, 1, 2, 255]);
    // The session's answer is kept: the retry of seq 2 is answered, not applied again.
    expect(sm.apply(entry(sm), { cmd: { op: 'put', key: 'counter', value: '2' }, session: { id: 'client-1', seq: 2, ack: 1 } })).toEqual({ op: 'put', revision: 9 });
    // Written again, it is format 4, and restores to the same state.
    const again = sm.snapshot();
    expect(isColumnar(again)).toBe(true);
    const copy = new KvStateMachine({ historyRevisions: 4 });
    copy.restore(again);
    expect(same(copy.snapshot(), again)).toBe(true);
  });

  it('format 4 (testdata/snapshot-v4.bin, written before strings were encoded straight into place) is written byte for byte the same today, whole or in 1-key steps, and restores', () => {
    const golden = readFileSync(new URL('../testdata/snapshot-v4.bin', import.meta.url));
    const sm = new KvStateMachine({ historyRevisions: 4 });
    const cmds: KvRequest[] = [
      sm.timeCommand(1, 1000),
      { cmd: { op: 'put', key: 'config/port', value: '7100' } },
      { cmd: { op: 'put', key: 'config/host', value: 'example.org' } },
      { cmd: { op: 'put', key: 'config/port', value: '7200' } },
      { cmd: { op: 'put', key: 'bin', value: new Uint8Array([0, 1, 2, 255]) } },
      { cmd: { op: 'leaseGrant', ttl: 60_000, id: 7 } },
      { cmd: { op: 'put', key: 'svc/a', value: 'up', lease: 7 } },
      { cmd: { op: 'put', key: 'gone', value: 'x' } },
      { cmd: { op: 'delete', key: 'gone' } },
      { cmd: { op: 'put', key: 'ünï/cødé', value: '日本語 ✓ 𝄞' } },
      { cmd: { op: 'put', key: '\uFEFFbom', value: '\uFEFFvalue' } },
      { cmd: { op: 'put', key: 'lone-key-\uDC00', value: 'x' } },
      { cmd: { op: 'put', key: 'lone', value: 'a\uD800b' } },
      { cmd: { op: 'put', key: 'empty', value: '' } },
      { cmd: { op: 'put', key: 'counter', value: '1' }, session: { id: 'client-1', seq: 1 } },
      { cmd: { op: 'put', key: 'counter', value: '2' }, session: { id: 'client-1', seq: 2, ack: 1 } },
      sm.timeCommand(1, 3000),
    ];
    for (const cmd of cmds) sm.apply(entry(sm), cmd);
    expect(same(sm.snapshot(), golden)).toBe(true);
    expect(same(finish(sm.beginSnapshot(), 1), golden)).toBe(true);
    const copy = new KvStateMachine({ historyRevisions: 4 });
    copy.restore(new Uint8Array(golden)); // a Uint8Array: a restore from a Buffer gives byte values as Buffers
    expect(copy.range('')).toEqual(sm.range(''));
    expect(same(copy.snapshot(), golden)).toBe(true);
    expect(copy.query({ op: 'status' })).toEqual({ revision: 14, compactRevision: 10 });
    expect(copy.now).toBe(2000);
  });

  it('strings encoded into place as they are added give the bytes of strings joined and encoded at each flush, also when the text outgrows the buffer', () => {
    const random = seededRandom(5);
    const pieces = ['日本語', '✓', '𝄞', 'é', '\uFEFF', 'a', 'zz', '\uD800'];
    const text = (n: number) => {
      let t = '';
      while (t.length < n) t += pieces[Math.floor(random() * pieces.length)];
      return t;
    };
    const kvs: KeyValue[] = [];
    for (let i = 0; i < 400; i++) {
      // Some values of 30,000 or more code units of mostly 3-byte characters: far past a text hint counted in code units.
      const value = i % 50 === 7 ? text(30_000) : i % 9 === 0 ? new Uint8Array([i & 255, 1]) : text(Math.floor(random() * 40));
      kvs.push({ key: `k/${String(i).padStart(4, '0')}${text(2)}`, value, createRevision: i + 1, modRevision: i + 1, version: 1, lease: i % 5 });
    }
    kvs.sort((a, b) => (a.key < b.key ? -1 : 1));
    const chars = kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0);
    const write = (direct: boolean) => {
      const w = new ColumnarWriter(kvs.length, { revision: 400 }, chars, 0, direct);
      kvs.forEach((kv, i) => {
        w.add(kv);
        if (i % 7 === 6) w.flush();
      });
      return w.finish();
    };
    const direct = write(true);
    expect(same(direct, write(false))).toBe(true);
    expect(readColumnar(direct).kvs).toEqual(kvs);
  });

  it('the buffer is sized once for ASCII text whatever the first slice holds, and grown at most once, after the first slice, for text of 3-byte characters', () => {
    const grow = vi.spyOn(ColumnarWriter.prototype as unknown as { grow(size: number): void }, 'grow');
    try {
      // The first keys hold long values, the rest short ones; one key of three has history.
      const ascii = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
      for (let i = 0; i < 3000; i++) apply(ascii, { cmd: { op: 'put', key: `k${String(i).padStart(4, '0')}`, value: i < 100 ? 'x'.repeat(2000) : `v${i}` } });
      for (let i = 0; i < 3000; i += 3) apply(ascii, { cmd: { op: 'put', key: `k${String(i).padStart(4, '0')}`, value: `w${i}` } });
      const expected = ascii.snapshot();
      grow.mockClear();
      expect(same(finish(ascii.beginSnapshot(), 64), expected)).toBe(true);
      expect(grow).not.toHaveBeenCalled();
      const wide = new KvStateMachine();
      for (let i = 0; i < 3000; i++) apply(wide, { cmd: { op: 'put', key: `k${i}`, value: '日本語'.repeat(20) } });
      grow.mockClear();
      finish(wide.beginSnapshot(), 64);
      expect(grow).toHaveBeenCalledTimes(1);
    } finally {
      grow.mockRestore();
    }
  });

  it('a snapshot step stops early past 1 KB of text or 8 history records per key of its budget (large values and long histories do not overrun a slice)', () => {
    // 100 keys of 8 KB values: a step of 64 walks 8 of them (64 KB), not 64.
    const big = new KvStateMachine();
    for (let i = 0; i < 100; i++) apply(big, { cmd: { op: 'put', key: `k${String(i).padStart(3, '0')}`, value: 'x'.repeat(8192) } });
    expect(stepsOf(big, 64)).toBeGreaterThanOrEqual(13);
    // 10 keys of 20 records of history each: a step of 2 (16 records) walks one key.
    const long = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    for (let v = 0; v < 21; v++) for (let i = 0; i < 10; i++) apply(long, { cmd: { op: 'put', key: `k${i}`, value: `v${v}` } });
    expect(stepsOf(long, 2)).toBeGreaterThanOrEqual(10);
    // Small keys are walked `budget` at a time, and the bytes are those of snapshot() either way.
    const small = new KvStateMachine();
    for (let i = 0; i < 256; i++) apply(small, { cmd: { op: 'put', key: `k${String(i).padStart(3, '0')}`, value: `v${i}` } });
    expect(stepsOf(small, 64)).toBeLessThanOrEqual(6);
    for (const sm of [big, long, small]) expect(same(finish(sm.beginSnapshot(), 64), sm.snapshot())).toBe(true);
  });

  it('refuses a malformed format-4 snapshot with a typed error: truncated, a newer version, keys out of order, a bad header', () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 10; i++) apply(sm, { cmd: { op: 'put', key: `k${i}`, value: `v${i}` } });
    const bytes = sm.snapshot();
    const restore = (b: Uint8Array) => () => new KvStateMachine().restore(b);
    for (const cut of [3, 7, 12, bytes.length - 1]) expect(restore(bytes.subarray(0, cut))).toThrow(MalformedMessageError);
    const newer = bytes.slice();
    newer[3] = 5;
    expect(restore(newer)).toThrow(/format 5.*newer release/);
    const w = new ColumnarWriter(2, {});
    w.add({ key: 'b', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 });
    w.add({ key: 'a', value: '2', createRevision: 2, modRevision: 2, version: 1, lease: 0 });
    expect(() => readColumnar(w.finish())).toThrow(/out of order/);
    const headerless = new ColumnarWriter(0, {}).finish();
    expect(restore(headerless)).toThrow(/malformed header/);
    const garbled = bytes.slice();
    garbled.fill(0xff, 8, 20);
    expect(restore(garbled)).toThrow(MalformedMessageError);
  });
});

describe('kv restore: incremental (beginRestore) and from the tree', () => {
  /** A machine after `n` seeded random writes, with its clock (to go on writing the same way elsewhere). */
  function randomMachine(seed: number, n: number) {
    const sm = new KvStateMachine({ historyRevisions: 8 });
    const random = seededRandom(seed);
    const clock = { ms: 0, seq: 0 };
    for (let i = 0; i < n; i++) randomWrite(sm, random, clock);
    return { sm, random, clock };
  }

  it('gives what restore() gives, whatever the slicing, across text chunks that split characters; the machine keeps its old state until the last step', () => {
    const { sm } = randomMachine(7, 400);
    // Enough multi-byte text (about 400 KB) to span several of the restore's 64 KB decoding chunks.
    for (let i = 0; i < 2000; i++) apply(sm, { cmd: { op: 'put', key: `m/${String(i).padStart(5, '0')}/é`, value: `${'€'.repeat(40)}${i}😀` } });
    const bytes = sm.snapshot();
    for (const budget of [1, 7, 500]) {
      const target = new KvStateMachine({ historyRevisions: 8 });
      apply(target, { cmd: { op: 'put', key: 'old', value: 'state' } });
      const old = target.snapshot();
      const job = target.beginRestore(bytes);
      let steps = 0;
      while (!job.step(budget)) {
        steps++;
        // Never seen half-restored: queries answer from the old state until the swap.
        if (steps % 97 === 1) expect(target.query({ op: 'range', prefix: '' })).toEqual([expect.objectContaining({ key: 'old', value: 'state' })]);
      }
      expect(steps).toBeGreaterThanOrEqual(Math.floor(sm.size / budget) - 1);
      expect(same(target.snapshot(), bytes)).toBe(true);
      expect(same(old, bytes)).toBe(false);
      expect(job.step(budget)).toBe(true); // done stays done
    }
  });

  it('a cancelled or overtaken restore changes nothing and refuses to go on; a snapshot malformed past its header fails a step with a typed error, changing nothing', () => {
    const { sm } = randomMachine(11, 200);
    const bytes = sm.snapshot();
    const target = new KvStateMachine({ historyRevisions: 8 });
    apply(target, { cmd: { op: 'put', key: 'old', value: 'state' } });
    const old = target.snapshot();
    const job = target.beginRestore(bytes);
    expect(job.step(3)).toBe(false);
    job.cancel();
    expect(() => job.step(3)).toThrow(StoppedError);
    expect(same(target.snapshot(), old)).toBe(true);
    // Begun, then overtaken by a later restore: its last step does not swap the older state in.
    const first = target.beginRestore(bytes);
    target.restore(new KvStateMachine().snapshot());
    expect(() => {
      while (!first.step(50));
    }).toThrow(StoppedError);
    expect(target.size).toBe(0);
    // The last text byte made invalid UTF-8: found by the step that decodes it, after many that did not.
    const target2 = new KvStateMachine();
    apply(target2, { cmd: { op: 'put', key: 'old', value: 'state' } });
    const old2 = target2.snapshot();
    const n = sm.size;
    const pad8 = (x: number) => Math.ceil(x / 8) * 8;
    const textStart = pad8(pad8(pad8(16 + 4 * n) + n) + 4 * n) + 32 * n;
    const textBytes = new DataView(bytes.buffer, bytes.byteOffset).getFloat64(bytes.length - 40, true);
    const bad = bytes.slice();
    bad[textStart + textBytes - 1] = 0xff;
    const job2 = target2.beginRestore(bad);
    expect(() => {
      while (!job2.step(1));
    }).toThrow(MalformedMessageError);
    expect(same(target2.snapshot(), old2)).toBe(true);
    expect(() => target2.beginRestore(new ColumnarWriter(0, {}).finish())).toThrow(/malformed header/);
  });

  it('an incremental snapshot of a restored store (versions in the key index) taken while writes go on holds the state when it began', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const a = randomMachine(seed, 300);
      const b = new KvStateMachine({ historyRevisions: 8 });
      b.restore(a.sm.snapshot());
      indexes.set(b, indexes.get(a.sm) ?? 0);
      const clock = { ...a.clock };
      for (let i = 0; i < 30; i++) randomWrite(b, a.random, clock);
      const expected = b.snapshot();
      const got = finish(b.beginSnapshot(), 1 + (seed % 3), () => {
        for (let w = Math.floor(a.random() * 4); w > 0; w--) randomWrite(b, a.random, clock);
      });
      expect(same(got, expected), `seed ${seed}`).toBe(true);
    }
  });

  it('a restored store answers from the snapshot until its keys are written: the same writes then give the same store as on a machine never restored', () => {
    const a = randomMachine(23, 300);
    // b restored at once (the key index holds the versions), c in slices (the map of versions built too).
    const b = new KvStateMachine({ historyRevisions: 8 });
    b.restore(a.sm.snapshot());
    const c = new KvStateMachine({ historyRevisions: 8 });
    const job = c.beginRestore(a.sm.snapshot());
    while (!job.step(5));
    const random = seededRandom(99);
    const copies = [b, c].map((sm) => {
      indexes.set(sm, indexes.get(a.sm) ?? 0);
      return { sm, random: seededRandom(99), clock: { ...a.clock } };
    });
    for (let i = 0; i < 400; i++) {
      randomWrite(a.sm, random, a.clock);
      for (const x of copies) randomWrite(x.sm, x.random, x.clock);
      if (i % 50 === 0) {
        const rev = Math.max(a.sm.compactRevision, a.sm.currentRevision - 3);
        for (const { sm } of copies) {
          expect(sm.range('')).toEqual(a.sm.range(''));
          expect(sm.size).toBe(a.sm.size);
          expect(sm.range('', Number.POSITIVE_INFINITY, undefined, rev)).toEqual(a.sm.range('', Number.POSITIVE_INFINITY, undefined, rev));
        }
      }
    }
    for (const { sm } of copies) {
      expect(sm.size).toBe(a.sm.size);
      expect(same(sm.snapshot(), a.sm.snapshot())).toBe(true);
    }
  });
});
