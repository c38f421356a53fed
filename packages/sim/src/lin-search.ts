import type { HistoryOp, KvOutput } from './history';
import { kvStep } from './kv-state-machine';
import { Rng } from './rng';

/**
 * The search for one key's history (Wing & Gong's algorithm with Lowe's memoisation, "Testing for
 * linearizability", 2017, section 3; the doubly linked list of call/return events with lift/unlift as in
 * Porcupine): walk the events in time order, linearize a pending call when the model accepts it, and at a
 * return whose call is still pending, undo the last linearization and try the next candidate. A configuration
 * (set of linearized ops, model state) already explored is never explored again.
 *
 * Everything here is flat typed arrays over op indices and interned model states (integers), so that a step
 * allocates nothing: the linked list is `prev`/`next` arrays, the linearized set a bitset with two 32-bit
 * Zobrist hashes kept incrementally, and the memo an open-addressing table over (hashes, state, bitset).
 */

/** Which limit stopped an undecided search. */
export type SearchLimit = 'steps' | 'memo';

export interface SearchBudget {
  /** Search steps (a candidate tried or a backtrack) before giving up. */
  maxSteps: number;
  /** Memoised configurations before giving up (bounds memory: each holds a bitset of the key's ops). */
  maxMemo: number;
}

export type SearchOutcome =
  | { result: 'ok' | 'illegal'; steps: number; memo: number; frontier: number }
  | { result: 'unknown'; limit: SearchLimit; steps: number; memo: number; frontier: number };

/**
 * The KV model of one key over interned states: `step(i, s)` is the state after op `i` from state `s`, or -1
 * when op `i`'s recorded output is impossible from `s` (an indeterminate op accepts any output). State 0 is
 * "absent".
 */
interface Model {
  step(i: number, s: number): number;
  /** Ops left out of the event list: linearized only through `helper` (see `registerModel`). */
  hidden?: Uint8Array;
  /** For op `i` refused at state `s`: a hidden op invoked by `until` that, linearized just before `i`, makes
   * `i` acceptable (the state after both is `junk`), or -1. `use`/`unuse` mark it taken, in stack order. */
  helper?(i: number, s: number, until: number): number;
  use?(u: number): void;
  unuse?(u: number): void;
  junk?: number;
}

const PUT = 0;
const GET = 1;
const CAS = 2;

/**
 * Registers (put/get/cas only): the state is the interned value, every transition is a few comparisons.
 * Values are interned from the ops themselves: a read of a value nobody wrote gets an id no write produces.
 *
 * Indeterminate writes of a value no other op mentions (no read returned it, no cas compares with it, no
 * other op writes it) are hidden from the search, which would otherwise try every subset of them at every
 * point (2^k configurations for k pending ones, the blow-up on illegal histories). Such a write is never seen;
 * its only possible effect is to make a completed cas fail, when the value before it equalled the cas's
 * `from`. Any valid linearization can therefore be rewritten so that each such write either never happens or
 * sits right before a failed cas that needs it (moving it later is allowed: it never returned; the ops it
 * skips over are failed cas ops with another `from`, or indeterminate ones that did nothing). So the search
 * linearizes one only as a helper of a refused failed cas, into one `junk` state (all these values are
 * alike, unseen). Which one helps does not matter beyond what it can still do later: a cas from the current
 * value is taken before a put (a put can help from any value later, the cas only from that one), and in each
 * group (puts, cas ops from one value) the earliest invoked (the others stay available later too), so the
 * used ones of a group are always a prefix in invocation order.
 */
function registerModel(ops: readonly HistoryOp[]): Model {
  const ids = new Map<string, number>();
  const id = (v: string | null) => {
    if (v === null) return 0;
    let x = ids.get(v);
    if (x === undefined) ids.set(v, (x = ids.size + 1));
    return x;
  };
  const n = ops.length;
  const kind = new Uint8Array(n);
  const a = new Int32Array(n);
  const b = new Int32Array(n);
  /** For ok ops: the expected get value id, or 1/0 for a cas that swapped / did not; -1 for indeterminate. */
  const expect = new Int32Array(n).fill(-1);
  ops.forEach((op, i) => {
    const inp = op.input;
    const out = op.status === 'ok' ? op.output : undefined;
    if (inp.f === 'put') {
      kind[i] = PUT;
      a[i] = id(inp.value);
    } else if (inp.f === 'get') {
      kind[i] = GET;
      if (out !== undefined && 'value' in out) expect[i] = id(out.value);
    } else if (inp.f === 'cas') {
      kind[i] = CAS;
      a[i] = id(inp.from);
      b[i] = id(inp.to);
      if (out !== undefined && 'swapped' in out) expect[i] = out.swapped ? 1 : 0;
    }
  });
  // The hidden writes: indeterminate put/cas of a value only they mention (and not a cas from it to itself).
  const mentions = new Map<string, number>();
  const mention = (v: string | null) => {
    if (v !== null) mentions.set(v, (mentions.get(v) ?? 0) + 1);
  };
  for (const op of ops) {
    const inp = op.input;
    if (inp.f === 'put') mention(inp.value);
    else if (inp.f === 'cas') {
      mention(inp.from);
      if (inp.to !== inp.from) mention(inp.to);
    } else if (op.status === 'ok' && op.output !== undefined && 'value' in op.output) mention(op.output.value);
  }
  const hidden = new Uint8Array(n);
  const groups = new Map<number, { ops: number[]; used: number }>();
  const PUTS = -1;
  const groupOf = new Int32Array(n);
  const byInvoke = ops.map((_, i) => i).sort((x, y) => (ops[x] as HistoryOp).invoke - (ops[y] as HistoryOp).invoke || x - y);
  for (const i of byInvoke) {
    const op = ops[i] as HistoryOp;
    if (op.status !== 'info' || op.input.f === 'get') continue;
    const v = op.input.f === 'put' ? op.input.value : op.input.f === 'cas' && op.input.from !== op.input.to ? op.input.to : undefined;
    if (v === undefined || mentions.get(v) !== 1) continue;
    hidden[i] = 1;
    const g = op.input.f === 'put' ? PUTS : (a[i] as number);
    groupOf[i] = g;
    let group = groups.get(g);
    if (group === undefined) groups.set(g, (group = { ops: [], used: 0 }));
    group.ops.push(i);
  }
  const junk = ids.size + 1;
  const next = (g: number, until: number) => {
    const group = groups.get(g);
    if (group === undefined || group.used >= group.ops.length) return -1;
    const u = group.ops[group.used] as number;
    return (ops[u] as HistoryOp).invoke <= until ? u : -1;
  };
  return {
    hidden: groups.size > 0 ? hidden : undefined,
    junk,
    helper(i, s, until) {
      if (kind[i] !== CAS || expect[i] !== 0 || s !== a[i]) return -1;
      const u = next(s, until);
      return u >= 0 ? u : next(PUTS, until);
    },
    use(u) {
      (groups.get(groupOf[u] as number) as { used: number }).used++;
    },
    unuse(u) {
      (groups.get(groupOf[u] as number) as { used: number }).used--;
    },
    step(i, s) {
      switch (kind[i]) {
        case PUT:
          return a[i] as number;
        case GET: {
          const e = expect[i] as number;
          return e < 0 || e === s ? s : -1;
        }
        default: {
          const e = expect[i] as number;
          if (s === a[i]) return e === 0 ? -1 : (b[i] as number);
          return e === 1 ? -1 : s;
        }
      }
    },
  };
}

/**
 * Any key with appends: states are the interned strings kvStep gives, transitions cached per (op, state).
 *
 * On a list key (appends and gets only, no value containing a space), a read that returned `... a v ...`
 * fixes what every valid linearization appended `v` to: a list ending in `a` (the empty list when `v` came
 * first), since a list only grows at its end. An append from any other state can never be followed by that
 * read, so it is refused at once instead of being found out many steps later; this prunes no linearization
 * that could succeed (if two reads disagree on `v`'s predecessor, none can).
 */
function generalModel(ops: readonly HistoryOp[]): Model {
  const states: (string | undefined)[] = [undefined];
  const ids = new Map<string, number>();
  const cache = ops.map(() => new Map<number, number>());
  const pred = listPredecessors(ops);
  return {
    step(i, s) {
      const c = cache[i] as Map<number, number>;
      const hit = c.get(s);
      if (hit !== undefined) return hit;
      const op = ops[i] as HistoryOp;
      const { next, output } = kvStep(states[s], op.input);
      let r: number;
      if (op.status === 'ok' && !sameOutput(output, op.output as KvOutput)) r = -1;
      else if (pred !== undefined && op.input.f === 'append' && pred.has(op.input.value) && !endsWith(states[s], pred.get(op.input.value) as string | null)) r = -1;
      else if (next === undefined) r = 0;
      else {
        let x = ids.get(next);
        if (x === undefined) {
          x = states.length;
          ids.set(next, x);
          states.push(next);
        }
        r = x;
      }
      c.set(s, r);
      return r;
    },
  };
}

/** For a list key: each appended value some read returned -> the element before it in that read (null: first). */
function listPredecessors(ops: readonly HistoryOp[]): Map<string, string | null> | undefined {
  if (!ops.every((op) => op.input.f === 'get' || (op.input.f === 'append' && !op.input.value.includes(' ')))) return undefined;
  const pred = new Map<string, string | null>();
  for (const op of ops) {
    if (op.status !== 'ok' || op.output === undefined || !('value' in op.output) || op.output.value === null) continue;
    const tokens = op.output.value.split(' ');
    tokens.forEach((t, j) => {
      if (!pred.has(t)) pred.set(t, j === 0 ? null : (tokens[j - 1] as string));
    });
  }
  return pred;
}

/** Whether the list `state` ends with the element `last` (null: the list is empty). */
function endsWith(state: string | undefined, last: string | null): boolean {
  if (last === null) return state === undefined;
  if (state === undefined) return false;
  return state === last || (state.endsWith(last) && state.charCodeAt(state.length - last.length - 1) === 32);
}

function sameOutput(a: KvOutput, b: KvOutput | undefined): boolean {
  if (b === undefined) return false;
  if ('value' in a) return 'value' in b && a.value === b.value;
  if ('swapped' in a) return 'swapped' in b && a.swapped === b.swapped;
  return 'ok' in b;
}

/** Zobrist keys, two per op position, from a fixed seed: results depend on nothing but the history. */
let zob1 = new Int32Array(0);
let zob2 = new Int32Array(0);
const zrng = new Rng(0x5eed);
function zobrist(n: number): void {
  if (zob1.length >= n) return;
  const m = Math.max(n, zob1.length * 2, 64);
  const z1 = new Int32Array(m);
  const z2 = new Int32Array(m);
  z1.set(zob1);
  z2.set(zob2);
  for (let i = zob1.length; i < m; i++) {
    z1[i] = Math.floor(zrng.next() * 2 ** 32) | 0;
    z2[i] = Math.floor(zrng.next() * 2 ** 32) | 0;
  }
  zob1 = z1;
  zob2 = z2;
}

const ADDED = 0;
const SEEN = 1;
const FULL = 2;

/** Entries per bitset chunk: the pool grows by whole chunks, never copied. */
const CHUNK_BITS = 11;
const CHUNK = 1 << CHUNK_BITS;

/** Open-addressing set of (h1, h2, state, bitset) configurations; bitsets are copied into chunked pools. */
class Memo {
  size = 0;
  private mask = 1023;
  private slots = new Int32Array(1024);
  private h1 = new Int32Array(CHUNK);
  private h2 = new Int32Array(CHUNK);
  private st = new Int32Array(CHUNK);
  private readonly chunks: Uint32Array[] = [];

  constructor(private readonly words: number) {}

  /** Adds the configuration: ADDED, SEEN when it was already there, FULL when new but `cap` entries are held. */
  add(a: number, b: number, s: number, bits: Uint32Array, cap: number): number {
    const w = this.words;
    let slot = (Math.imul(a ^ Math.imul(s, 0x9e3779b1), 0x85ebca6b) ^ b) & this.mask;
    for (;;) {
      const e = (this.slots[slot] as number) - 1;
      if (e < 0) break;
      if (this.h1[e] === a && this.h2[e] === b && this.st[e] === s) {
        const chunk = this.chunks[e >>> CHUNK_BITS] as Uint32Array;
        const base = (e & (CHUNK - 1)) * w;
        let same = true;
        for (let i = 0; i < w; i++) {
          if (chunk[base + i] !== bits[i]) {
            same = false;
            break;
          }
        }
        if (same) return SEEN;
      }
      slot = (slot + 1) & this.mask;
    }
    if (this.size >= cap) return FULL;
    const e = this.size++;
    if (e >= this.h1.length) this.growEntries();
    this.h1[e] = a;
    this.h2[e] = b;
    this.st[e] = s;
    if ((e & (CHUNK - 1)) === 0) this.chunks.push(new Uint32Array(CHUNK * w));
    (this.chunks[e >>> CHUNK_BITS] as Uint32Array).set(bits, (e & (CHUNK - 1)) * w);
    this.slots[slot] = e + 1;
    if (this.size * 2 > this.mask) this.rehash();
    return ADDED;
  }

  private growEntries(): void {
    const m = this.h1.length * 2;
    const grow = (x: Int32Array) => {
      const y = new Int32Array(m);
      y.set(x);
      return y;
    };
    this.h1 = grow(this.h1);
    this.h2 = grow(this.h2);
    this.st = grow(this.st);
  }

  private rehash(): void {
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap);
    for (let e = 0; e < this.size; e++) {
      let slot = (Math.imul((this.h1[e] as number) ^ Math.imul(this.st[e] as number, 0x9e3779b1), 0x85ebca6b) ^ (this.h2[e] as number)) & this.mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = e + 1;
    }
  }
}

/**
 * 'ok', 'illegal' or 'unknown' (with the limit that stopped it) for one key's ops. `frontier` is the latest
 * return time at which the search had to backtrack: where an illegal history stops making sense, a hint for
 * shrinking it.
 */
export function searchKey(ops: readonly HistoryOp[], budget: SearchBudget): SearchOutcome {
  const n = ops.length;
  let frontier = Number.NEGATIVE_INFINITY;
  if (n === 0) return { result: 'ok', steps: 0, memo: 0, frontier };
  const model = ops.some((op) => op.input.f === 'append') ? generalModel(ops) : registerModel(ops);
  zobrist(n);

  // Events in time order; calls before returns at the same instant (touching ops count as concurrent, never a
  // false alarm). Node 0 is the list head; event k is node k + 1.
  const hidden = model.hidden;
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (hidden === undefined || hidden[i] === 0) order.push(2 * i, 2 * i + 1);
  const time = (ev: number) => {
    const op = ops[ev >> 1] as HistoryOp;
    return (ev & 1) === 0 ? op.invoke : op.status === 'ok' ? (op.complete as number) : Number.POSITIVE_INFINITY;
  };
  order.sort((x, y) => time(x) - time(y) || ((x & 1) === (y & 1) ? (x >> 1) - (y >> 1) : (x & 1) - (y & 1)));
  const m = order.length + 1;
  const opOf = new Int32Array(m).fill(-1);
  const isCall = new Uint8Array(m);
  const at = new Float64Array(m);
  const match = new Int32Array(m);
  const prev = new Int32Array(m);
  const next = new Int32Array(m);
  const retNode = new Int32Array(n);
  at[0] = Number.NEGATIVE_INFINITY;
  prev[0] = -1;
  order.forEach((ev, k) => {
    const node = k + 1;
    opOf[node] = ev >> 1;
    isCall[node] = (ev & 1) === 0 ? 1 : 0;
    at[node] = time(ev);
    prev[node] = node - 1;
    next[node - 1] = node;
    if ((ev & 1) === 1) retNode[ev >> 1] = node;
  });
  next[m - 1] = -1;
  for (let node = 1; node < m; node++) if (isCall[node] === 1) match[node] = retNode[opOf[node] as number] as number;

  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const memo = new Memo(words);
  const stackNode = new Int32Array(n);
  const stackState = new Int32Array(n);
  const stackHelper = new Int32Array(n);
  let depth = 0;
  let h1 = 0;
  let h2 = 0;
  let state = 0;
  let entry = next[0] as number;
  let steps = 0;
  const { maxSteps, maxMemo } = budget;

  while (next[0] !== -1) {
    if (++steps > maxSteps) return { result: 'unknown', limit: 'steps', steps: steps - 1, memo: memo.size, frontier };
    const e = entry;
    if (isCall[e] === 1) {
      const i = opOf[e] as number;
      let ns = model.step(i, state);
      let u = -1;
      if (ns < 0 && hidden !== undefined) {
        // A hidden write may be linearized right before this op if invoked by the first pending return.
        let r = next[e] as number;
        while (isCall[r] === 1) r = next[r] as number;
        u = (model.helper as NonNullable<Model['helper']>)(i, state, at[r] as number);
        if (u >= 0) {
          ns = model.junk as number;
          bits[u >>> 5] = (bits[u >>> 5] as number) ^ (1 << (u & 31));
          h1 ^= zob1[u] as number;
          h2 ^= zob2[u] as number;
        }
      }
      if (ns >= 0) {
        bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
        h1 ^= zob1[i] as number;
        h2 ^= zob2[i] as number;
        const added = memo.add(h1, h2, ns, bits, maxMemo);
        if (added === FULL) return { result: 'unknown', limit: 'memo', steps, memo: memo.size, frontier };
        if (added === ADDED) {
          stackNode[depth] = e;
          stackState[depth] = state;
          stackHelper[depth] = u;
          if (u >= 0) (model.use as NonNullable<Model['use']>)(u);
          depth++;
          state = ns;
          // Lift the call and its return out of the list (Porcupine's lift).
          const r = match[e] as number;
          next[prev[e] as number] = next[e] as number;
          prev[next[e] as number] = prev[e] as number;
          next[prev[r] as number] = next[r] as number;
          if (next[r] !== -1) prev[next[r] as number] = prev[r] as number;
          entry = next[0] as number;
          continue;
        }
        bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
        h1 ^= zob1[i] as number;
        h2 ^= zob2[i] as number;
      }
      if (u >= 0) {
        bits[u >>> 5] = (bits[u >>> 5] as number) ^ (1 << (u & 31));
        h1 ^= zob1[u] as number;
        h2 ^= zob2[u] as number;
      }
      entry = next[e] as number;
    } else {
      // A return whose call is still pending: undo the last linearization and try the call after it.
      if ((at[e] as number) > frontier) frontier = at[e] as number;
      if (depth === 0) return { result: 'illegal', steps, memo: memo.size, frontier };
      depth--;
      const c = stackNode[depth] as number;
      state = stackState[depth] as number;
      const i = opOf[c] as number;
      bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
      h1 ^= zob1[i] as number;
      h2 ^= zob2[i] as number;
      const u = stackHelper[depth] as number;
      if (u >= 0) {
        bits[u >>> 5] = (bits[u >>> 5] as number) ^ (1 << (u & 31));
        h1 ^= zob1[u] as number;
        h2 ^= zob2[u] as number;
        (model.unuse as NonNullable<Model['unuse']>)(u);
      }
      const r = match[c] as number;
      next[prev[r] as number] = r;
      if (next[r] !== -1) prev[next[r] as number] = r;
      next[prev[c] as number] = c;
      prev[next[c] as number] = c;
      entry = next[c] as number;
    }
  }
  return { result: 'ok', steps, memo: memo.size, frontier };
}
