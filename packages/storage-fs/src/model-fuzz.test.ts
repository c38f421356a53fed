import { describe, expect, it } from 'vitest';
import { MemoryStorage, type LogEntry, type SaveBatch, type Snapshot } from '@consensus-kit/core';
import { openFileStorage, type FileStorage } from './file-storage';
import { inspect } from './inspect';
import { MemoryFileSystem } from './memory-file-system';

/**
 * Model-based fuzzing of FileStorage against MemoryStorage (the reference of DESIGN r2's storage rules): seeded
 * random saves that mix truncation, scattered single-slot overwrites (a Paxos acceptor re-accepting one slot),
 * overwrites reaching at or below the compaction point, appends and hard states; local snapshots with
 * compaction, snapshot installs, and reopens, on tiny segments and no cache so every overwritten slot's record
 * sits in a later segment than its neighbours' and reads go to disk. After every step (and every reopen) the
 * two must agree entry for entry, and `inspect` must find the directory sound.
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return Math.floor((x / 0x100000000) * n);
  };
}

function entry(index: number, term: number, salt: number): LogEntry {
  const text = `e${index}/t${term}/s${salt} `;
  return { index, term, type: salt % 5 === 0 ? 'noop' : 'command', data: new TextEncoder().encode(text.repeat(1 + ((index + salt) % 9))) };
}

function describeLog(s: { firstIndex(): number; lastIndex(): number; term(i: number): number; entries(lo: number, hi: number): LogEntry[] }): string {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const body = s
    .entries(first, last + 1)
    .map((e) => `${e.index}:${e.term}:${e.type}:${new TextDecoder().decode(e.data).slice(0, 16)}`)
    .join(' ');
  return `base ${first - 1}/${s.term(first - 1)} last ${last} [${body}]`;
}

function hsText(s: { initialState(): { hardState?: Uint8Array } }): string {
  const h = s.initialState().hardState;
  return h === undefined ? '-' : Array.from(h).join(',');
}

interface Step {
  name: string;
  kind: 'save' | 'snapshot' | 'install' | 'reopen' | 'group';
  batches?: SaveBatch[];
  snapshot?: Snapshot;
  compactTo?: number;
}

/** The next valid random step for the model's current state (the model is advanced by the caller). */
function nextStep(rnd: (n: number) => number, model: MemoryStorage, salt: () => number, term: { t: number }): Step {
  const first = model.firstIndex();
  const last = model.lastIndex();
  const base = first - 1;
  const choice = rnd(20);
  const hard = (): Partial<SaveBatch> => (rnd(3) === 0 ? { hardState: Uint8Array.of(salt() & 0xff, term.t & 0xff) } : {});
  const run = (from: number, n: number): LogEntry[] => {
    const out: LogEntry[] = [];
    for (let i = from; i < from + n; i++) out.push(entry(i, term.t, salt()));
    return out;
  };
  if (choice < 5 || last < first) return { name: 'append', kind: 'save', batches: [{ entries: run(last + 1, 1 + rnd(8)), ...hard() }] };
  if (choice < 10) {
    // One slot (or a few) re-accepted in place; sometimes reaching below the compaction point.
    if (rnd(3) === 0) term.t++;
    const from = Math.max(1, base - rnd(3)) + rnd(last - base + 1);
    const n = 1 + rnd(3);
    return { name: `overwrite ${from}+${n}`, kind: 'save', batches: [{ entries: run(from, Math.min(n, last + 1 - from + 1)), ...hard() }] };
  }
  if (choice < 12) {
    term.t++;
    const after = base + rnd(last - base + 1);
    const from = after + 1 - rnd(Math.min(3, after - base) + 1);
    const n = rnd(5);
    return { name: `truncate ${after} write ${from}+${n}`, kind: 'save', batches: [{ truncateAfter: after, entries: n === 0 ? [] : run(from, n), ...hard() }] };
  }
  if (choice < 13) {
    // Concurrent saves coalesced into one group: appends and overwrites interleaved.
    const batches: SaveBatch[] = [];
    let end = last;
    for (let k = 0; k < 2 + rnd(3); k++) {
      if (rnd(2) === 0 || end <= base) {
        batches.push({ entries: run(end + 1, 1 + rnd(4)), ...hard() });
        end = (batches.at(-1)?.entries.at(-1)?.index ?? end);
      } else {
        batches.push({ entries: run(base + 1 + rnd(end - base), 1), ...hard() });
      }
    }
    return { name: 'group', kind: 'group', batches };
  }
  if (choice < 16) {
    const lo = Math.max(model.snapshot()?.index ?? 0, base, 1);
    if (lo > last) return { name: 'hard state', kind: 'save', batches: [{ entries: [], hardState: Uint8Array.of(salt() & 0xff) }] };
    const at = lo + rnd(last - lo + 1);
    const snap: Snapshot = { index: at, term: model.term(at), config: CONFIG, data: Uint8Array.of(at & 0xff, 7) };
    const compactTo = base + rnd(at - base + 1);
    return { name: `snapshot ${at} compact ${compactTo}`, kind: 'snapshot', snapshot: snap, compactTo };
  }
  if (choice < 17) {
    term.t++;
    const at = Math.max(last, model.snapshot()?.index ?? 0) + 1 + rnd(6) - (rnd(2) === 0 && last > base ? rnd(last - base) + 1 : 0);
    const idx = Math.max(at, (model.snapshot()?.index ?? 0) + 1);
    return { name: `install ${idx}`, kind: 'install', snapshot: { index: idx, term: term.t, config: CONFIG, data: Uint8Array.of(idx & 0xff, 9) } };
  }
  return { name: 'reopen', kind: 'reopen' };
}

async function fuzz(seed: number, steps: number, opts: { segmentBytes: number; cacheBytes: number; preallocateBytes: number }): Promise<void> {
  const rnd = rng(seed);
  let saltN = 0;
  const salt = (): number => ++saltN;
  const term = { t: 1 };
  const fileSystem = new MemoryFileSystem();
  const options = { logger: quiet, fileSystem, ...opts };
  const model = new MemoryStorage();
  let s: FileStorage = await openFileStorage('/data', options);
  const trail: string[] = [];
  for (let k = 0; k < steps; k++) {
    const step = nextStep(rnd, model, salt, term);
    trail.push(step.name);
    const where = (): string => `seed ${seed} step ${k} (${trail.slice(-6).join(' | ')})`;
    try {
      switch (step.kind) {
        case 'save':
          for (const b of step.batches ?? []) model.saveNow(b);
          for (const b of step.batches ?? []) await s.save(b);
          break;
        case 'group': {
          for (const b of step.batches ?? []) model.saveNow(b);
          await Promise.all((step.batches ?? []).map((b) => s.save(b)));
          break;
        }
        case 'snapshot': {
          const sn = step.snapshot as Snapshot;
          model.saveSnapshotNow(sn);
          model.compactNow(step.compactTo as number);
          // Compaction races an overwrite and an append issued right behind it.
          const lastNow = model.lastIndex();
          const racing: SaveBatch = { entries: [entry(Math.max(model.firstIndex(), lastNow), term.t, salt()), entry(lastNow + 1, term.t, salt())] };
          if (lastNow < model.firstIndex()) racing.entries = [entry(lastNow + 1, term.t, salt())];
          model.saveNow(racing);
          await Promise.all([s.saveSnapshot(sn), s.compact(step.compactTo as number), s.save(racing)]);
          break;
        }
        case 'install':
          model.installSnapshotNow(step.snapshot as Snapshot);
          await s.installSnapshot(step.snapshot as Snapshot);
          break;
        case 'reopen':
          await s.close();
          s = await openFileStorage('/data', options);
          break;
      }
    } catch (e) {
      throw new Error(`${where()}: ${String(e)}`);
    }
    expect(describeLog(s), where()).toBe(describeLog(model));
    expect(hsText(s), where()).toBe(hsText(model));
    if (step.kind === 'reopen' || k % 25 === 24) {
      await s.close();
      const report = await inspect('/data', { fileSystem });
      expect(report.ok, `${where()}: inspect: ${JSON.stringify(report).slice(0, 400)}`).toBe(true);
      s = await openFileStorage('/data', options);
      expect(describeLog(s), `${where()} after reopen`).toBe(describeLog(model));
      expect(s.snapshot()?.index, where()).toBe(model.snapshot()?.index);
    }
  }
  await s.close();
}

const seeds = (process.env.STORAGE_FS_FUZZ_SEEDS ?? '1,2,3,4,5,6').split(',').map(Number);

describe('FileStorage agrees with MemoryStorage on random mixes of overwrites, truncations, compactions, installs and reopens', () => {
  for (const seed of seeds) {
    it(`seed ${seed}, tiny segments, no cache (replay with STORAGE_FS_FUZZ_SEEDS=${seed})`, async () => {
      await fuzz(seed, 300, { segmentBytes: 4096, cacheBytes: 0, preallocateBytes: 0 });
    });
    it(`seed ${seed}, small cache, preallocated`, async () => {
      await fuzz(seed + 1000, 300, { segmentBytes: 4096, cacheBytes: 512, preallocateBytes: 1024 });
    });
  }
});
