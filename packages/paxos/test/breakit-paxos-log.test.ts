import { MemoryStorage, type LogEntry } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { PaxosLog } from '../src/paxos-log';

// A compact, exact rendering of entry lists (deep equality over thousands of entries per step was most of this file's time).
const sig = (es: readonly LogEntry[]): string => es.map((e) => `${e.index}/${e.term}/${e.type}/${e.data.join('.')}`).join(',');
const entry = (index: number, term: number): LogEntry => ({ index, term, type: 'command', data: new Uint8Array([index & 255, term & 255]) });
const empty = (index: number): LogEntry => ({ index, term: 0, type: 'noop', data: new Uint8Array(0) });

/** A flat model that also tracks the lowest slot changed since the last markStable. */
class Model {
  offset = 0;
  offsetTerm = 0;
  es: LogEntry[] = [];
  dirty = Infinity;
  get last() {
    return this.offset + this.es.length;
  }
  put(e: LogEntry) {
    if (this.last + 1 < e.index) this.dirty = Math.min(this.dirty, this.last + 1);
    while (this.last < e.index - 1) this.es.push(empty(this.last + 1));
    this.es[e.index - this.offset - 1] = e;
    this.dirty = Math.min(this.dirty, e.index);
  }
  slice(lo: number, hi: number) {
    const a = Math.max(lo, this.offset + 1) - this.offset - 1;
    const b = Math.min(hi, this.last) - this.offset;
    return a < b ? this.es.slice(a, b) : [];
  }
  compact(index: number, term: number) {
    if (index <= this.offset) return;
    this.es = this.es.slice(Math.min(index, this.last) - this.offset);
    this.offset = index;
    this.offsetTerm = term;
  }
  resetTo(index: number, term: number) {
    const above = this.slice(index + 1, this.last);
    this.es = above;
    this.offset = index;
    this.offsetTerm = term;
    this.dirty = above.length > 0 ? index + 1 : Infinity;
  }
}

describe('break-it: PaxosLog at chunk boundaries', () => {
  // Offsets and lengths that put the head, the end and the slots touched on either side of 4,096-slot chunk edges.
  const edges = [4094, 4095, 4096, 4097, 8191, 8192, 8193];
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`behaves as a flat log through appends, overwrites, gaps, compaction, snapshot resets and reloads (seed ${seed})`, () => {
      // mulberry32: the low bits of a power-of-two LCG repeat with short periods and would correlate the choices.
      let x = seed >>> 0;
      const rnd = (n: number) => {
        x = (x + 0x6d2b79f5) >>> 0;
        let t = Math.imul(x ^ (x >>> 15), x | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
      };
      const near = () => (edges[rnd(edges.length)] as number) + rnd(3) - 1;
      let storage = new MemoryStorage();
      let log = new PaxosLog(storage);
      const m = new Model();
      for (let step = 0; step < 300; step++) {
        // Bound the log (a few chunks) so each step costs little: the edges under test are all within 3 chunks.
        if (m.es.length > 24_000) {
          const index = m.last - 8_200;
          log.compact(index, 9);
          m.compact(index, 9);
        }
        const op = rnd(12);
        if (op < 3) {
          const n = 1 + (rnd(2) === 0 ? rnd(50) : near() * (1 + rnd(3)));
          for (let i = 0; i < n; i++) {
            const e = entry(m.last + 1, 1 + rnd(3));
            log.put(e);
            m.put(e);
          }
        } else if (op < 5 && m.es.length > 0) {
          const s = rnd(2) === 0 ? m.offset + 1 + rnd(m.es.length) : m.offset + near();
          if (s > m.offset && s <= m.last) {
            const e = entry(s, 4 + rnd(3));
            log.put(e);
            m.put(e);
          }
        } else if (op < 6) {
          const e = entry(m.last + 1 + (rnd(2) === 0 ? rnd(10) : near()), 5);
          log.put(e);
          m.put(e);
        } else if (op < 7) {
          const index = m.offset + (rnd(2) === 0 ? rnd(m.es.length + 5) : near());
          log.compact(index, 9);
          m.compact(index, 9);
        } else if (op < 8 && rnd(3) === 0) {
          const index = m.offset + 1 + (rnd(2) === 0 ? rnd(m.es.length + 5) : near());
          log.resetTo(index, 8);
          m.resetTo(index, 8);
        } else if (op < 10) {
          expect(sig(log.unstable())).toBe(sig(m.slice(m.dirty, m.last)));
          log.markStable();
          m.dirty = Infinity;
        } else if (op < 11) {
          // Restart from storage holding exactly the model's slots above its offset.
          storage = new MemoryStorage();
          if (m.offset > 0) storage.installSnapshotNow({ index: m.offset, term: m.offsetTerm, config: { voters: ['a'], learners: [] }, data: new Uint8Array(0) });
          if (m.es.length > 0) storage.saveNow({ entries: m.es });
          log = new PaxosLog(storage);
          m.dirty = Infinity;
        }
        expect(log.lastIndex).toBe(m.last);
        expect(log.firstIndex).toBe(m.offset + 1);
        expect(log.length).toBe(m.es.length);
        expect(log.termAt(m.offset)).toBe(m.offsetTerm);
        for (const s of [m.offset, m.offset + 1, m.last, m.last + 1, m.offset + near(), m.offset + 1 + rnd(m.es.length + 1)]) {
          expect(log.at(s)).toEqual(s > m.offset && s <= m.last ? m.es[s - m.offset - 1] : undefined);
        }
        const lo = m.offset - 2 + rnd(m.es.length + 4);
        const hi = lo + (rnd(2) === 0 ? rnd(20) : near());
        expect(sig(log.slice(lo, hi))).toBe(sig(m.slice(lo, hi)));
      }
      expect(sig(log.slice(log.firstIndex, log.lastIndex))).toBe(sig(m.es));
    });
  }
});
