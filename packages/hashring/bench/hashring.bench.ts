/**
 * `pnpm bench`: every algorithm of this package and the npm `hashring` package (3.x, default options, the
 * library this one replaces), on 1,000,000 seeded random string keys and 10 / 100 / 1000 nodes.
 *
 * Per algorithm and node count it prints:
 * - lookups/s: `get(key)` over the key set. Three rounds, the algorithms taking turns within each round so
 *   that a burst of load from other processes does not favour one of them; each run stops early after a time
 *   budget for slow algorithms (the keys actually timed are printed); the best run counts. The rate is per
 *   CPU second of this process (`process.cpuUsage`), which equals wall-clock time on an idle machine and
 *   stays meaningful on a shared one; the wall-clock rate of the same run is printed too. Bounded-load times
 *   `acquire` (a lookup that also places one unit of load), its real hot path;
 * - max/mean and stddev/mean of keys per node, always over all 1,000,000 keys;
 * - keys moved when one node is added (and the ideal, 1/(n+1)), always over all 1,000,000 keys;
 * - memory per node: growth of V8 heap + ArrayBuffers while building the structure, after a forced GC,
 *   divided by the node count (key strings not included).
 * and then checks the targets for the default mode at 100 nodes: >= 10x npm hashring's lookups/s and
 * max/mean <= 1.05. Nothing is tuned for the bench: every ring is built with its defaults.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type HashRing, type HashRingAlgorithm, createHashRing, murmur3, summarizeDistribution } from '@consensus-kit/hashring';
import NpmHashRing from 'hashring';
import { mulberry32 } from '../test/random';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KEY_COUNT = 1_000_000;
const NODE_COUNTS = [10, 100, 1000];
const RUN_BUDGET_MS = 700;
const ROUNDS = 3;
const SEED = 0x5eed;

interface Subject {
  name: string;
  lookup: (key: string) => string;
  add: (node: string) => void;
  /** Placement of every key, for distribution and movement (bounded-load replays acquire). */
  place: (keys: readonly string[]) => string[];
}


function makeKeys(): string[] {
  const random = mulberry32(SEED);
  const keys: string[] = new Array(KEY_COUNT);
  for (let i = 0; i < KEY_COUNT; i++) {
    keys[i] = `user:${Math.floor(random() * 2 ** 32).toString(36)}:${Math.floor(random() * 2 ** 32).toString(36)}`;
  }
  // Flatten the concatenated strings once, so no algorithm pays for it inside its timed loop.
  let sink = 0;
  for (const key of keys) sink ^= murmur3(key);
  if (sink === 0.5) console.log(sink);
  return keys;
}

function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.0.${i >> 8}.${i & 255}:6379`);
}

async function heapBytes(): Promise<number> {
  // Two full collections with a macrotask between them, so freed ArrayBuffer backing stores are released.
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** A fresh function per subject, so each timed loop has its own (monomorphic) inline caches. */
function compileLoop(): (lookup: (key: string) => string, keys: readonly string[], from: number, to: number) => number {
  return new Function('lookup', 'keys', 'from', 'to', 'let s = 0; for (let i = from; i < to; i++) s += lookup(keys[i]).length; return s;') as never;
}

interface Timing {
  cpuRate: number;
  wallRate: number;
  timed: number;
}

/** One timed run: all keys, or as many as fit in the budget. Rates per CPU second and per wall second. */
function timeRun(loop: ReturnType<typeof compileLoop>, subject: Subject, keys: readonly string[]): Timing {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  let i = 0;
  while (i < keys.length) {
    const end = Math.min(i + 16_384, keys.length);
    loop(subject.lookup, keys, i, end);
    i = end;
    if (performance.now() - wall0 > RUN_BUDGET_MS) break;
  }
  const cpu = process.cpuUsage(cpu0);
  const wallSeconds = (performance.now() - wall0) / 1000;
  return { cpuRate: i / ((cpu.user + cpu.system) / 1e6), wallRate: i / wallSeconds, timed: i };
}

function ours(algorithm: HashRingAlgorithm, nodes: string[]): Subject {
  const ring: HashRing = createHashRing({ algorithm, nodes } as Parameters<typeof createHashRing>[0]);
  ring.get('warm-up'); // fold the initial build into the structure before memory is measured
  if (algorithm === 'bounded-load') {
    const bounded = ring as HashRing & { acquire(key: string): string };
    return {
      name: algorithm,
      // Bound methods, not arrow functions: arrows from one literal share type feedback across algorithms.
      lookup: bounded.acquire.bind(bounded),
      add: (node) => ring.add(node),
      place: (keys) => {
        const replay = createHashRing({ algorithm, nodes: ring.nodes() });
        return keys.map((k) => replay.acquire(k));
      },
    };
  }
  return {
    name: algorithm === 'ring' ? 'ring (default)' : algorithm,
    lookup: ring.get.bind(ring),
    add: (node) => ring.add(node),
    place: (keys) => keys.map((k) => ring.get(k)),
  };
}

function npm(nodes: string[]): Subject {
  const ring = new NpmHashRing(nodes);
  ring.get('warm-up');
  const lookup = ring.get.bind(ring) as (key: string) => string;
  return { name: 'npm hashring 3.2', lookup, add: (node) => ring.add(node), place: (keys) => keys.map(lookup) };
}

interface Row {
  name: string;
  timing: Timing;
  maxOverMean: number;
  stddevOverMean: number;
  moved: number;
  bytesPerNode: number;
  buildMs: number;
}

interface Entry {
  make: () => Subject;
  subject: Subject;
  loop: ReturnType<typeof compileLoop>;
  row: Row;
}

async function build(make: () => Subject, nodeCount: number): Promise<Entry> {
  const before = await heapBytes();
  const t0 = performance.now();
  const subject = make();
  const buildMs = performance.now() - t0;
  const bytesPerNode = Math.max(0, (await heapBytes()) - before) / nodeCount;
  const row: Row = { name: subject.name, timing: { cpuRate: 0, wallRate: 0, timed: 0 }, maxOverMean: 0, stddevOverMean: 0, moved: 0, bytesPerNode, buildMs };
  return { make, subject, loop: compileLoop(), row };
}

/** Distribution and movement, over every key, on a fresh instance (so timed lookups cannot interfere). */
function place(entry: Entry, nodeCount: number, keys: readonly string[]): void {
  const fresh = entry.make();
  const placed = fresh.place(keys);
  const counts = new Map<string, number>();
  for (const node of nodeNames(nodeCount)) counts.set(node, 0);
  for (const node of placed) counts.set(node, counts.get(node)! + 1);
  const summary = summarizeDistribution(counts);
  fresh.add('10.1.0.0:6379');
  const after = fresh.place(keys);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) if (after[i] !== placed[i]) moved++;
  entry.row.maxOverMean = summary.maxOverMean;
  entry.row.stddevOverMean = summary.stddevOverMean;
  entry.row.moved = moved / keys.length;
}

function formatRate(rate: number): string {
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M/s` : `${(rate / 1e3).toFixed(0)} k/s`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1) return '~0 B';
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes.toFixed(0)} B`;
}

function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

const ALGORITHMS: HashRingAlgorithm[] = ['ring', 'maglev', 'jump', 'rendezvous', 'bounded-load', 'ketama'];

const startedAt = performance.now();
console.log(`@consensus-kit/hashring bench: ${KEY_COUNT.toLocaleString('en-US')} seeded random keys (seed ${SEED}), node ${process.version}, ${process.arch}`);
console.log('lookups/s: per CPU second of this process, best of 3 interleaved runs (wall-clock beside it); distribution');
console.log('and movement over all keys; memory/node: heap + ArrayBuffer growth while building / nodes (~0 B = below noise)');
const keys = makeKeys();
const results = new Map<number, Row[]>();

for (const nodeCount of NODE_COUNTS) {
  const nodes = nodeNames(nodeCount);
  const entries: Entry[] = [];
  for (const algorithm of ALGORITHMS) entries.push(await build(() => ours(algorithm, nodes), nodeCount));
  entries.push(await build(() => npm(nodes), nodeCount));
  for (const entry of entries) entry.loop(entry.subject.lookup, keys, 0, 20_000); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const entry of entries) {
      const timing = timeRun(entry.loop, entry.subject, keys);
      if (timing.cpuRate > entry.row.timing.cpuRate) entry.row.timing = timing;
    }
  }
  for (const entry of entries) place(entry, nodeCount, keys);
  const rows = entries.map((e) => e.row);
  results.set(nodeCount, rows);
  const npmRate = rows.at(-1)!.timing.cpuRate;
  console.log(`\n${nodeCount} nodes (ideal share moved when one is added: ${(100 / (nodeCount + 1)).toFixed(2)}%)`);
  printTable(
    ['algorithm', 'lookups/s', 'vs npm', 'wall-clock', 'timed keys', 'max/mean', 'stddev/mean', 'moved on +1', 'memory/node', 'build'],
    rows.map((r) => [
      r.name,
      formatRate(r.timing.cpuRate),
      `${(r.timing.cpuRate / npmRate).toFixed(1)}x`,
      formatRate(r.timing.wallRate),
      r.timing.timed.toLocaleString('en-US'),
      r.maxOverMean.toFixed(4),
      r.stddevOverMean.toFixed(4),
      `${(100 * r.moved).toFixed(2)}%`,
      formatBytes(r.bytesPerNode),
      `${r.buildMs.toFixed(0)} ms`,
    ]),
  );
}

const at100 = results.get(100)!;
const defaultRow = at100[0]!;
const npmRow = at100.at(-1)!;
const speedup = defaultRow.timing.cpuRate / npmRow.timing.cpuRate;
const wallSpeedup = defaultRow.timing.wallRate / npmRow.timing.wallRate;
console.log('\nTargets (default mode, 100 nodes):');
console.log(`  lookups/s >= 10x npm hashring: ${speedup.toFixed(1)}x per CPU second (${wallSpeedup.toFixed(1)}x wall-clock) -> ${speedup >= 10 ? 'met' : 'NOT met'}`);
console.log(`  max/mean <= 1.05:              ${defaultRow.maxOverMean.toFixed(4)} -> ${defaultRow.maxOverMean <= 1.05 ? 'met' : 'NOT met'}`);
console.log(`\nbench finished in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
