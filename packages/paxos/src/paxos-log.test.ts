import { MemoryStorage, type LogEntry } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { PaxosLog } from './paxos-log';

const entry = (index: number, term: number): LogEntry => ({ index, term, type: 'command', data: new Uint8Array([index & 255]) });

/** A flat-array model of the log: what the chunked one must behave as. */
class Model {
  offset = 0;
  entries: LogEntry[] = [];
  get last() {
    return this.offset + this.entries.length;
  }
  put(e: LogEntry) {
    while (this.last < e.index - 1) this.entries.push({ index: this.last + 1, term: 0, type: 'noop', data: new Uint8Array(0) });
    this.entries[e.index - this.offset - 1] = e;
  }
  slice(lo: number, hi: number) {
    const a = Math.max(lo, this.offset + 1) - this.offset - 1;
    const b = Math.min(hi, this.last) - this.offset;
    return a < b ? this.entries.slice(a, b) : [];
  }
  compact(index: number) {
    this.entries = this.entries.slice(Math.min(index, this.last) - this.offset);
    this.offset = index;
  }
}

describe('PaxosLog', () => {
  it('holds, overwrites, slices and compacts slots across chunk boundaries as a flat log would', () => {
    const log = new PaxosLog(new MemoryStorage());
    const model = new Model();
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    for (let step = 0; step < 500; step++) {
      const op = rnd(10);
      if (op < 6) {
        const n = 1 + rnd(3000);
        for (let i = 0; i < n; i++) {
          const e = entry(model.last + 1, 1);
          log.put(e);
          model.put(e);
        }
      } else if (op < 7 && model.entries.length > 0) {
        const e = entry(model.offset + 1 + rnd(model.entries.length), 2);
        log.put(e);
        model.put(e);
      } else if (op < 8) {
        const e = entry(model.last + 1 + rnd(5000), 3); // a gap: empty slots below it
        log.put(e);
        model.put(e);
      } else if (op < 9 && model.entries.length > 0) {
        const index = model.offset + 1 + rnd(model.entries.length + 10);
        log.compact(index, 9);
        model.compact(index);
      }
      expect(log.lastIndex).toBe(model.last);
      expect(log.firstIndex).toBe(model.offset + 1);
      const lo = model.offset - 5 + rnd(model.entries.length + 10);
      const hi = lo + rnd(6000);
      expect(log.slice(lo, hi)).toEqual(model.slice(lo, hi));
      const s = model.offset + rnd(model.entries.length + 2);
      expect(log.at(s)).toEqual(s > model.offset ? model.entries[s - model.offset - 1] : undefined);
    }
    expect(log.slice(log.firstIndex, log.lastIndex)).toEqual(model.entries);
  });

  it('keeps the slots above a snapshot it resets to, and reloads what storage holds', () => {
    const storage = new MemoryStorage();
    const es = Array.from({ length: 10_000 }, (_, i) => entry(i + 1, 1));
    storage.saveNow({ entries: es });
    const log = new PaxosLog(storage);
    expect(log.lastIndex).toBe(10_000);
    expect(log.at(4097)).toEqual(es[4096]);
    log.resetTo(5000, 1);
    expect(log.firstIndex).toBe(5001);
    expect(log.slice(1, 20_000)).toEqual(es.slice(5000));
    expect(log.unstable()).toEqual(es.slice(5000));
    log.put(entry(10_001, 2));
    expect(log.at(10_001)?.term).toBe(2);
    expect(log.termAt(5000)).toBe(1);
  });
});

describe('PaxosLog.lastConfigSlot', () => {
  const config = (index: number): LogEntry => ({ index, term: 1, type: 'config', data: new Uint8Array([1]) });

  it('is the highest slot a configuration was written to, by append, gap fill or overwrite, and never drops', () => {
    const log = new PaxosLog(new MemoryStorage());
    expect(log.lastConfigSlot).toBe(0);
    log.put(entry(1, 1));
    log.put(config(2));
    expect(log.lastConfigSlot).toBe(2);
    log.put(config(9)); // beyond the end: empty slots fill 3..8
    expect(log.lastConfigSlot).toBe(9);
    log.put(config(5)); // overwrite below the highest one
    expect(log.lastConfigSlot).toBe(9);
    log.put(entry(9, 2)); // the configuration in slot 9 is overwritten: the mark stays (conservative)
    expect(log.lastConfigSlot).toBe(9);
    log.put(entry(10, 2));
    log.put(config(10)); // overwrite in place at the end
    expect(log.lastConfigSlot).toBe(10);
    log.compact(10, 2);
    expect(log.lastConfigSlot).toBe(10);
  });

  it('counts the configurations of a log loaded from storage', () => {
    const storage = new MemoryStorage();
    storage.saveNow({ entries: [entry(1, 1), config(2), entry(3, 1)] });
    expect(new PaxosLog(storage).lastConfigSlot).toBe(2);
  });
});

describe('PaxosLog.release', () => {
  /** A log whose first `n` slots are durable in `storage`, as after Ready cycles. */
  function persisted(n: number): { storage: MemoryStorage; log: PaxosLog } {
    const storage = new MemoryStorage();
    const log = new PaxosLog(storage);
    for (let i = 1; i <= n; i++) log.put(entry(i, 1 + (i % 3)));
    storage.saveNow({ entries: log.unstable() });
    log.markStable();
    return { storage, log };
  }

  it('drops whole chunks of released slots from memory and reads them back from the storage', () => {
    const { log } = persisted(10_000);
    log.release(4_095); // not a whole chunk yet
    expect(log.memOffset).toBe(0);
    log.release(9_000);
    expect(log.memOffset).toBe(8_192);
    expect(log.length).toBe(10_000 - 8_192);
    expect(log.lastIndex).toBe(10_000);
    for (const s of [1, 4_096, 4_097, 8_192, 8_193, 10_000]) expect(log.at(s)).toEqual(entry(s, 1 + (s % 3)));
    expect(log.termAt(5)).toBe(1 + (5 % 3));
    const across = log.slice(8_000, 8_400);
    expect(across.map((e) => e.index)).toEqual(Array.from({ length: 401 }, (_, i) => 8_000 + i));
    expect(across).toEqual(across.map((e) => entry(e.index, 1 + (e.index % 3))));
    // New slots still append after the released ones.
    log.put(entry(10_001, 9));
    expect(log.at(10_001)?.term).toBe(9);
  });

  it('refuses to write a released slot (decided slots are never written again)', () => {
    const { log } = persisted(5_000);
    log.release(5_000);
    expect(log.memOffset).toBe(4_096);
    expect(() => log.put(entry(100, 7))).toThrow(/released slot 100/);
    expect(() => log.put(entry(4_096, 7))).toThrow(/released slot/);
    log.put(entry(4_097, 7)); // in memory: an undecided overwrite is still allowed by the log itself
    expect(log.at(4_097)?.term).toBe(7);
  });

  it('reads nothing, rather than part of a range, once the storage compacted released slots ahead of the log', () => {
    const { storage, log } = persisted(9_000);
    log.release(9_000);
    storage.saveSnapshotNow({ index: 5_000, term: 1 + (5_000 % 3), config: { voters: ['a'], learners: [] }, data: new Uint8Array(0) });
    storage.compactNow(5_000);
    expect(log.slice(4_000, 8_500)).toEqual([]);
    expect(log.at(4_500)).toBeUndefined();
    expect(log.slice(5_001, 5_002).map((e) => e.index)).toEqual([5_001, 5_002]);
    log.compact(5_000, 1 + (5_000 % 3));
    expect(log.firstIndex).toBe(5_001);
    expect(log.slice(4_000, 5_002).map((e) => e.index)).toEqual([5_001, 5_002]);
  });

  it('compaction past the released slots drops memory as before', () => {
    const { log } = persisted(9_000);
    log.release(9_000);
    log.compact(8_500, 2);
    expect(log.memOffset).toBe(8_500);
    expect(log.lastIndex).toBe(9_000);
    expect(log.at(8_501)).toEqual(entry(8_501, 1 + (8_501 % 3)));
    expect(log.at(8_500)).toBeUndefined();
    expect(log.termAt(8_500)).toBe(2);
  });
});
