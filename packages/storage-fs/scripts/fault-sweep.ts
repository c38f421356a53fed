/**
 * Storage fault sweep (issue #17 finding 1): each trial builds a data directory with a known set of
 * acknowledged writes (every save whose promise resolved), injects ONE fault into one file, reopens it and
 * classifies the result:
 *
 * - `intact`:  opened, every acknowledged entry, the hard state and the snapshot are there with the same bytes,
 *              and the storage warned (torn tail, damaged durable-point file, ...) or the fault touched only
 *              unused bytes (preallocated zeros past the last record);
 * - `refused`: the open failed with a typed error (`CorruptLogError`, `LostWalError`, `StorageError`);
 * - `LOSS`:    opened, but an acknowledged entry is missing or differs, or the hard state or snapshot differs;
 * - `SILENT`:  opened without a word although the fault changed bytes in use;
 * - `untyped`: the open threw something that is not a typed storage error.
 *
 * Faults: a bit flip, a truncation (to a random shorter length), a zeroed 4 KiB page, a deletion; over every
 * file kind: sealed segments, the last segment, the hard state (which also holds the durable point and the
 * directory's identity), the snapshot, the durable-point file. Three ways the writer stopped: closed cleanly,
 * a process crash (what was written survives in the page cache), and a power cut (only what was synced).
 *
 *   pnpm sweep:faults                       # 600 trials per stop mode
 *   pnpm sweep:faults -- --trials 3000 --seed 7
 *   pnpm sweep:faults -- --window          # also: a power cut within durablePointSyncMs of the last ack
 */
import { CorruptLogError, StorageError, isConsensusError, seededRandom, type LogEntry, type Snapshot } from '@consensus-kit/core';
import { openFileStorage, type FileStorage } from '../src/file-storage';
import { MemoryFileSystem } from '../src/memory-file-system';
import { RecordKind, scanSegment } from '../src/record';
import { parseSegmentFileName } from '../src/segment';

export type StopMode = 'closed' | 'process-crash' | 'power-cut' | 'power-cut-sync0' | 'power-cut-in-window';
export type FaultKind = 'bit-flip' | 'truncate' | 'zero-page' | 'delete';
export type FileKind = 'sealed-segment' | 'last-segment' | 'hardstate' | 'snapshot' | 'durable';
export type Outcome = 'intact' | 'refused' | 'LOSS' | 'SILENT' | 'untyped';

/** The default modes; `power-cut-in-window` (a power cut within `durablePointSyncMs` of the last ack) measures the window. */
export const STOP_MODES: readonly StopMode[] = ['closed', 'process-crash', 'power-cut', 'power-cut-sync0'];
export const ALL_STOP_MODES: readonly StopMode[] = [...STOP_MODES, 'power-cut-in-window'];
export const FAULTS: readonly FaultKind[] = ['bit-flip', 'truncate', 'zero-page', 'delete'];
export const FILE_KINDS: readonly FileKind[] = ['sealed-segment', 'last-segment', 'hardstate', 'snapshot', 'durable'];
export const OUTCOMES: readonly Outcome[] = ['intact', 'refused', 'LOSS', 'SILENT', 'untyped'];

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CONFIG = { voters: ['a', 'b', 'c'], learners: [] };

function entry(index: number, term: number): LogEntry {
  const data = new Uint8Array(40 + ((index * 53) % 260));
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i * 7 + term) & 0xff;
  return { index, term, type: index % 11 === 0 ? 'config' : 'command', data };
}

/** What the writer was told is durable: the state a reopen must reproduce (or refuse). */
interface Acknowledged {
  entries: Map<number, LogEntry>;
  hardState: Uint8Array;
  snapshot: Snapshot;
}

/**
 * A Raft-like history: elections (a hard state with a new term) now and then, appends in groups, a conflicting
 * suffix overwritten after a truncation, a local snapshot and a compaction. Saves without a hard state are the
 * common case, as with Raft, which saves only term and vote. Segments are small so there are several.
 */
async function buildDirectory(seed: number, durablePointSyncMs: number): Promise<{ fs: MemoryFileSystem; storage: FileStorage; acked: Acknowledged }> {
  const rnd = seededRandom(seed);
  const fs = new MemoryFileSystem();
  const s = await openFileStorage('/data', { fileSystem: fs, logger: quiet, segmentBytes: 8 * 1024, preallocateBytes: 4096, durablePointSyncMs });
  const entries = new Map<number, LogEntry>();
  let term = 1;
  let hardState = Uint8Array.of(term, 0);
  await s.save({ hardState, entries: [] });
  let next = 1;
  const total = 120 + Math.floor(rnd() * 80);
  while (next <= total) {
    // An election: a new term (and vote) to save, with the next entries (a new leader's first append).
    let hsChanged = false;
    if (rnd() < 0.08) {
      term++;
      hardState = Uint8Array.of(term, next & 0xff);
      hsChanged = true;
    }
    const n = 1 + Math.floor(rnd() * 6);
    const batch: LogEntry[] = [];
    for (let k = 0; k < n && next <= total; k++) batch.push(entry(next++, term));
    await s.save(hsChanged ? { entries: batch, hardState } : { entries: batch });
    for (const e of batch) entries.set(e.index, e);
    if (next > 60 && next < 70 && entries.size > 0 && rnd() < 0.3) {
      // A follower's conflicting suffix: truncate and rewrite the last three entries under a newer term.
      const from = next - 3;
      term++;
      hardState = Uint8Array.of(term, 1);
      const rewrite: LogEntry[] = [];
      for (let i = from; i < next; i++) rewrite.push(entry(i, term));
      await s.save({ truncateAfter: from - 1, entries: rewrite, hardState });
      for (const e of rewrite) entries.set(e.index, e);
    }
  }
  const snapIndex = 40 + Math.floor(rnd() * 20);
  const snapshot: Snapshot = { index: snapIndex, term: (entries.get(snapIndex) as LogEntry).term, config: CONFIG, data: new Uint8Array(3000).fill(snapIndex & 0xff) };
  await s.saveSnapshot(snapshot);
  await s.compact(snapIndex - 5);
  for (const i of [...entries.keys()]) if (i <= snapIndex - 5) entries.delete(i);
  // A few more appends after the compaction, without a hard state (Raft's steady state).
  for (let k = 0; k < 3; k++) {
    const e = entry(next++, term);
    await s.save({ entries: [e] });
    entries.set(e.index, e);
  }
  return { fs, storage: s, acked: { entries, hardState, snapshot } };
}

function fileKindOf(path: string, lastSeq: number): FileKind | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const seq = parseSegmentFileName(name);
  if (seq !== undefined) return seq === lastSeq ? 'last-segment' : 'sealed-segment';
  if (name === 'hardstate') return 'hardstate';
  if (name === 'durable') return 'durable';
  if (name.endsWith('.snap')) return 'snapshot';
  return undefined; // LOCK: not data
}

/** Where a file's bytes in use end: a segment's last intact record (its preallocated zeros are unused). */
function usedEnd(path: string, bytes: Uint8Array): number {
  const seq = parseSegmentFileName(path.slice(path.lastIndexOf('/') + 1));
  return seq === undefined ? bytes.length : scanSegment(bytes, seq).goodEnd;
}

interface Fault {
  kind: FaultKind;
  /** Whether it changed bytes in use (a fault in unused space may be accepted without a word). */
  touchesUsed: boolean;
}

/** Applies one fault to `path` in `image`; `undefined` when it would change nothing (a zero page of zeros). */
async function inject(image: MemoryFileSystem, path: string, kind: FaultKind, rnd: () => number, acked: Acknowledged, last: boolean): Promise<Fault | undefined> {
  const bytes = image.readFileRaw(path) as Uint8Array;
  const used = usedEnd(path, bytes);
  switch (kind) {
    case 'delete': {
      await image.unlink(path);
      // A sealed segment holding only entries the snapshot covers loses nothing: recovery starts the log at the
      // snapshot (such a segment is garbage a crash kept from its background deletion, or the oldest live one).
      const seq = parseSegmentFileName(path.slice(path.lastIndexOf('/') + 1));
      const dead =
        seq !== undefined &&
        !last &&
        scanSegment(bytes, seq).records.every(
          (r) => r.kind === RecordKind.SEGMENT || ((r.kind === RecordKind.ENTRY || r.kind === RecordKind.OVERWRITE) && r.index <= acked.snapshot.index),
        );
      return { kind, touchesUsed: !dead };
    }
    case 'truncate': {
      if (bytes.length === 0) return undefined;
      const to = Math.floor(rnd() * bytes.length);
      image.writeFileRaw(path, bytes.slice(0, to));
      return { kind, touchesUsed: to < used };
    }
    case 'zero-page': {
      const page = Math.floor(rnd() * Math.ceil(bytes.length / 4096)) * 4096;
      const end = Math.min(bytes.length, page + 4096);
      if (bytes.subarray(page, end).every((b) => b === 0)) return undefined;
      bytes.fill(0, page, end);
      image.writeFileRaw(path, bytes);
      return { kind, touchesUsed: page < used };
    }
    case 'bit-flip': {
      if (bytes.length === 0) return undefined;
      const at = Math.floor(rnd() * bytes.length);
      bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(rnd() * 8));
      image.writeFileRaw(path, bytes);
      return { kind, touchesUsed: at < used };
    }
  }
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** Reopens and classifies. `what` describes a LOSS or SILENT outcome. */
async function reopen(image: MemoryFileSystem, acked: Acknowledged, fault: Fault): Promise<{ outcome: Outcome; what?: string }> {
  let warned = false;
  // Taking over the dead writer's lock file is no warning about the data.
  const note = (msg: string) => void (warned ||= !msg.includes('lock'));
  const logger = { ...quiet, warn: note, error: note };
  let s: FileStorage;
  try {
    s = await openFileStorage('/data', { fileSystem: image, logger });
  } catch (e) {
    if (CorruptLogError.is(e) || StorageError.is(e) || isConsensusError(e)) return { outcome: 'refused' };
    return { outcome: 'untyped', what: String(e) };
  }
  try {
    const missing: string[] = [];
    for (const [i, e] of acked.entries) {
      if (i <= acked.snapshot.index && i < s.firstIndex()) continue; // covered by the snapshot (checked below)
      if (i < s.firstIndex() || i > s.lastIndex()) {
        missing.push(`entry ${i} gone (log ${s.firstIndex()}..${s.lastIndex()})`);
        continue;
      }
      const got = s.entries(i, i + 1)[0];
      if (got === undefined || got.term !== e.term || got.type !== e.type || !same(got.data, e.data)) missing.push(`entry ${i} differs`);
    }
    if (!same(s.initialState().hardState, acked.hardState)) missing.push('hard state differs');
    const snap = s.snapshot();
    if (snap === undefined || snap.index !== acked.snapshot.index || !same(snap.data, acked.snapshot.data)) missing.push('snapshot differs');
    if (missing.length > 0) return { outcome: 'LOSS', what: missing.slice(0, 3).join('; ') };
    if (!warned && fault.touchesUsed) return { outcome: 'SILENT', what: 'opened intact without a warning' };
    return { outcome: 'intact' };
  } catch (e) {
    // A read of a damaged record fails typed: the damage was found, late. Count it as a loss of availability
    // only if untyped.
    if (CorruptLogError.is(e) || StorageError.is(e)) return { outcome: 'refused' };
    return { outcome: 'untyped', what: String(e) };
  } finally {
    await s.close();
  }
}

export interface SweepResult {
  /** counts[stop][file kind][fault][outcome] */
  counts: Record<StopMode, Record<FileKind, Record<FaultKind, Record<Outcome, number>>>>;
  trials: number;
  /** The first few LOSS / SILENT / untyped trials, for replay. */
  failures: string[];
}

function emptyCounts(): SweepResult['counts'] {
  const out = {} as SweepResult['counts'];
  for (const m of ALL_STOP_MODES) {
    out[m] = {} as SweepResult['counts'][StopMode];
    for (const k of FILE_KINDS) {
      out[m][k] = {} as Record<FaultKind, Record<Outcome, number>>;
      for (const f of FAULTS) out[m][k][f] = { intact: 0, refused: 0, LOSS: 0, SILENT: 0, untyped: 0 };
    }
  }
  return out;
}

/**
 * Runs `trials` trials per stop mode: every (file kind, fault) pair in turn, a seeded directory per group of
 * trials, a seeded position per trial.
 */
export async function runFaultSweep(options: { trials: number; seed?: number; stopModes?: readonly StopMode[] }): Promise<SweepResult> {
  const seed = options.seed ?? 1;
  const counts = emptyCounts();
  const failures: string[] = [];
  let trials = 0;
  for (const stop of options.stopModes ?? STOP_MODES) {
    const rnd = seededRandom(seed * 1000 + ALL_STOP_MODES.indexOf(stop));
    let built: { image: MemoryFileSystem; acked: Acknowledged; files: Map<FileKind, string[]> } | undefined;
    for (let t = 0; t < options.trials; t++) {
      if (built === undefined || t % 40 === 0) {
        const syncMs = stop === 'power-cut-sync0' ? 0 : 5;
        const { fs, storage, acked } = await buildDirectory(seed * 7919 + t, syncMs);
        let image: MemoryFileSystem;
        if (stop === 'closed') {
          await storage.close();
          image = fs.crashImage('all');
        } else if (stop === 'process-crash') {
          image = fs.crashImage('all'); // the page cache outlives the process
        } else {
          if (stop === 'power-cut') {
            // The power goes later than durablePointSyncMs after the last acknowledgement.
            await new Promise((r) => setTimeout(r, 4 * syncMs));
            await storage.durablePointSettled();
          }
          image = fs.crashImage('synced');
        }
        const paths = image.listFiles();
        const lastSeq = Math.max(0, ...paths.map((p) => parseSegmentFileName(p.slice(p.lastIndexOf('/') + 1)) ?? 0));
        const files = new Map<FileKind, string[]>();
        for (const p of paths) {
          const kind = fileKindOf(p, lastSeq);
          if (kind !== undefined) files.set(kind, [...(files.get(kind) ?? []), p]);
        }
        built = { image, acked, files };
      }
      const kind = FILE_KINDS[t % FILE_KINDS.length] as FileKind;
      const faultKind = FAULTS[Math.floor(t / FILE_KINDS.length) % FAULTS.length] as FaultKind;
      const candidates = built.files.get(kind) ?? [];
      if (candidates.length === 0) continue;
      const path = candidates[Math.floor(rnd() * candidates.length)] as string;
      const image = built.image.crashImage('all'); // a copy to damage
      const fault = await inject(image, path, faultKind, rnd, built.acked, kind === 'last-segment');
      if (fault === undefined) continue;
      const { outcome, what } = await reopen(image, built.acked, fault);
      counts[stop][kind][faultKind][outcome]++;
      trials++;
      if (outcome !== 'intact' && outcome !== 'refused' && failures.length < 20) {
        failures.push(`${stop} / ${kind} ${path} / ${faultKind} (seed ${seed}, trial ${t}): ${outcome}: ${what ?? ''}`);
      }
    }
  }
  return { counts, trials, failures };
}

/** The table: one row per stop mode, file kind and fault; then totals. */
export function describeSweep(r: SweepResult): string {
  const head = ['stop', 'file', 'fault', ...OUTCOMES];
  // Unused stop modes are left out (no trials).
  const rows: string[][] = [];
  const total: Record<Outcome, number> = { intact: 0, refused: 0, LOSS: 0, SILENT: 0, untyped: 0 };
  for (const stop of ALL_STOP_MODES) {
    for (const kind of FILE_KINDS) {
      for (const fault of FAULTS) {
        const c = r.counts[stop][kind][fault];
        const n = OUTCOMES.reduce((a, o) => a + c[o], 0);
        if (n === 0) continue;
        for (const o of OUTCOMES) total[o] += c[o];
        rows.push([stop, kind, fault, ...OUTCOMES.map((o) => String(c[o]))]);
      }
    }
  }
  rows.push(['total', '', `${r.trials} trials`, ...OUTCOMES.map((o) => String(total[o]))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const v = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const trials = arg('--trials', 600);
  const seed = arg('--seed', 1);
  const start = Date.now();
  const stopModes = process.argv.includes('--window') ? ALL_STOP_MODES : STOP_MODES;
  const r = await runFaultSweep({ trials, seed, stopModes });
  console.log(`storage fault sweep: ${trials} trials per stop mode, seed ${seed}, ${((Date.now() - start) / 1000).toFixed(1)} s`);
  console.log(describeSweep(r));
  for (const f of r.failures) console.log(`FAILURE ${f}`);
  const bad = r.failures.length;
  if (bad > 0) process.exitCode = 1;
}
