import { kvStep } from './kv-state-machine';
import type { History, HistoryOp, KvOutput } from './history';
import { Rng } from './rng';

/**
 * Linearizability checking for the KV model, the way Porcupine does it (Athalye, after Wing & Gong and
 * Lowe's "Testing for linearizability", 2017): the history is partitioned per key (a KV store is linearizable
 * iff each key is, P-compositionality), and each partition is searched depth-first over a doubly linked list
 * of call/return events, linearizing a pending call when the model accepts it and backtracking at a return
 * whose call could not be linearized. States already explored are memoised on (set of linearized ops as a
 * bitset, model state), which is what makes the search practical.
 *
 * Indeterminate ops (`status: 'info'`) return at +infinity: they may take effect at any point after their
 * invocation, or never (linearized after everything else). An indeterminate `get` says nothing and is dropped.
 */
export type LinearizabilityResult =
  | { result: 'ok'; checkedOps: number; keys: number }
  | {
      result: 'illegal';
      checkedOps: number;
      key: string;
      /** A smallest failing sub-history of `key` (no op can be removed and still fail), by invocation. */
      counterexample: HistoryOp[];
    }
  | { result: 'unknown'; checkedOps: number; key: string; reason: string };

export interface CheckOptions {
  /** Search steps allowed per key before giving up with `unknown`. Default 10 million. */
  maxSteps?: number;
  /** Shrink the failing partition to a smallest failing sub-history (default true). */
  minimize?: boolean;
}

export function checkLinearizability(history: History, options: CheckOptions = {}): LinearizabilityResult {
  const maxSteps = options.maxSteps ?? 10_000_000;
  const byKey = new Map<string, HistoryOp[]>();
  let checkedOps = 0;
  for (const op of history) {
    if (op.status === 'info' && op.input.f === 'get') continue;
    if (op.status === 'ok' && op.output === undefined) continue;
    checkedOps++;
    let list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, (list = []));
    list.push(op);
  }
  for (const key of [...byKey.keys()].sort()) {
    const ops = pruneUnobservedAppends(byKey.get(key) as HistoryOp[]);
    const r = searchPartition(ops, maxSteps);
    if (r === 'unknown') return { result: 'unknown', checkedOps, key, reason: `search exceeded ${maxSteps} steps` };
    if (r === 'illegal') {
      const counterexample = options.minimize === false ? ops : minimize(ops, maxSteps);
      return { result: 'illegal', checkedOps, key, counterexample };
    }
  }
  return { result: 'ok', checkedOps, keys: byKey.size };
}

/**
 * On a key used only for appends and gets, an indeterminate append whose value no read ever returned can
 * always be linearized last, where it changes nothing anyone saw: dropping it is exact. Keeping it is not
 * wrong but costly, as the search would try every order of every unobserved append (the model state is the
 * whole list). Values are unique per op, so "returned" is a token match.
 */
function pruneUnobservedAppends(ops: HistoryOp[]): HistoryOp[] {
  if (!ops.every((op) => op.input.f === 'append' || op.input.f === 'get')) return ops;
  const seen = new Set<string>();
  for (const op of ops) {
    if (op.status === 'ok' && op.output !== undefined && 'value' in op.output && op.output.value !== null) {
      for (const v of op.output.value.split(' ')) seen.add(v);
    }
  }
  return ops.filter((op) => !(op.status === 'info' && op.input.f === 'append' && !seen.has(op.input.value)));
}

interface Node {
  id: number;
  time: number;
  call: boolean;
  /** For a call: its return node. */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

function accepts(state: string | undefined, op: HistoryOp): { ok: boolean; next: string | undefined } {
  const { next, output } = kvStep(state, op.input);
  if (op.status === 'info') return { ok: true, next };
  return { ok: sameOutput(output, op.output as KvOutput), next };
}

function sameOutput(a: KvOutput, b: KvOutput): boolean {
  if ('value' in a) return 'value' in b && a.value === b.value;
  if ('swapped' in a) return 'swapped' in b && a.swapped === b.swapped;
  return 'ok' in b;
}

/** Zobrist keys, one pair per op position, fixed so that results never depend on anything but the history. */
const zobrist: [number[], number[]] = [[], []];
const zrng = new Rng(0x5eed);
function zob(i: number): [number, number] {
  while (zobrist[0].length <= i) {
    zobrist[0].push(Math.floor(zrng.next() * 2 ** 32));
    zobrist[1].push(Math.floor(zrng.next() * 2 ** 32));
  }
  return [zobrist[0][i] as number, zobrist[1][i] as number];
}

/**
 * 'ok' | 'illegal' | 'unknown' for one key's ops. `probe.frontier` receives the latest return time at which
 * the search had to backtrack: where an illegal history stops making sense, a hint for shrinking it.
 */
function searchPartition(ops: readonly HistoryOp[], maxSteps: number, probe?: { frontier: number }): 'ok' | 'illegal' | 'unknown' {
  const n = ops.length;
  if (n === 0) return 'ok';
  const events: { time: number; call: boolean; id: number }[] = [];
  ops.forEach((op, id) => {
    events.push({ time: op.invoke, call: true, id });
    events.push({ time: op.status === 'ok' ? (op.complete as number) : Number.POSITIVE_INFINITY, call: false, id });
  });
  // Calls before returns at the same instant: touching operations count as concurrent (never a false alarm).
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.id - b.id : a.call ? -1 : 1));
  const head: Node = { id: -1, time: Number.NEGATIVE_INFINITY, call: false, match: undefined, prev: undefined, next: undefined };
  const returns = new Array<Node | undefined>(n);
  const nodes: Node[] = [];
  let tail = head;
  for (const e of events) {
    const node: Node = { id: e.id, time: e.time, call: e.call, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    nodes.push(node);
    if (!e.call) returns[e.id] = node;
  }
  for (const node of nodes) if (node.call) node.match = returns[node.id];

  const bits = new Uint32Array((n + 31) >>> 5);
  let h1 = 0;
  let h2 = 0;
  const cache = new Map<string, Uint32Array[]>();
  const stack: { node: Node; state: string | undefined }[] = [];
  let state: string | undefined;
  let entry = head.next;
  let steps = 0;
  let cached = 0;

  const lift = (c: Node) => {
    (c.prev as Node).next = c.next;
    (c.next as Node).prev = c.prev;
    const r = c.match as Node;
    (r.prev as Node).next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Node) => {
    const r = c.match as Node;
    (r.prev as Node).next = r;
    if (r.next) r.next.prev = r;
    (c.prev as Node).next = c;
    (c.next as Node).prev = c;
  };
  const flip = (id: number) => {
    bits[id >>> 5] = (bits[id >>> 5] as number) ^ (1 << (id & 31));
    const [a, b] = zob(id);
    h1 = (h1 ^ a) >>> 0;
    h2 = (h2 ^ b) >>> 0;
  };

  while (head.next !== undefined) {
    if (++steps > maxSteps) return 'unknown';
    const e = entry as Node;
    if (e.call) {
      const { ok, next } = accepts(state, ops[e.id] as HistoryOp);
      if (ok) {
        flip(e.id);
        const key = `${h1}:${h2}:${next === undefined ? '\u0000' : next}`;
        let bucket = cache.get(key);
        const seen = bucket?.some((b) => equalBits(b, bits)) ?? false;
        if (!seen) {
          if (++cached > MAX_CACHED) return 'unknown';
          if (bucket === undefined) cache.set(key, (bucket = []));
          bucket.push(bits.slice());
          stack.push({ node: e, state });
          state = next;
          lift(e);
          entry = head.next;
          continue;
        }
        flip(e.id);
      }
      entry = e.next;
    } else {
      // A return whose call is still pending: backtrack to the last linearized call and try the next option.
      if (probe !== undefined && e.time > probe.frontier) probe.frontier = e.time;
      const top = stack.pop();
      if (top === undefined) return 'illegal';
      state = top.state;
      flip(top.node.id);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return 'ok';
}

/** Memoised configurations kept per key before the search gives up (bounds memory at a few hundred MB). */
const MAX_CACHED = 2_000_000;

function equalBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The values an op writes (put, cas target, appended value). */
function written(op: HistoryOp): string[] {
  switch (op.input.f) {
    case 'put':
    case 'append':
      return [op.input.value];
    case 'cas':
      return [op.input.to];
    default:
      return [];
  }
}

/** The values an op saw: a read's value (each appended element on list keys), a successful cas's `from`. */
function observed(op: HistoryOp, listKey: boolean): string[] {
  if (op.status !== 'ok' || op.output === undefined) return [];
  if (op.input.f === 'get' && 'value' in op.output && op.output.value !== null) return listKey ? op.output.value.split(' ') : [op.output.value];
  if (op.input.f === 'cas' && 'swapped' in op.output && op.output.swapped && op.input.from !== null) return [op.input.from];
  return [];
}

/**
 * Shrinks a failing partition to a smallest failing sub-history: first a short failing prefix (by invocation),
 * then single ops are dropped while the rest still fails, until none can go (1-minimal, the simplest ddmin).
 * Sub-histories stay closed under "saw the value of": an op that saw a value keeps the op that wrote it, so
 * the counterexample never degenerates into "a read of a value nobody wrote" when somebody did write it.
 */
function minimize(ops: readonly HistoryOp[], maxSteps: number): HistoryOp[] {
  const listKey = ops.every((op) => op.input.f === 'append' || op.input.f === 'get');
  const writers = new Map<string, HistoryOp[]>();
  for (const op of ops) for (const v of written(op)) writers.set(v, [...(writers.get(v) ?? []), op]);
  const sorted = [...ops].sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  const close = (h: readonly HistoryOp[]): HistoryOp[] => {
    const set = new Set(h);
    const todo = [...h];
    while (todo.length > 0) {
      const op = todo.pop() as HistoryOp;
      for (const v of observed(op, listKey)) {
        const ws = writers.get(v) ?? [];
        if (ws.length > 0 && !ws.some((w) => set.has(w))) {
          set.add(ws[0] as HistoryOp);
          todo.push(ws[0] as HistoryOp);
        }
      }
    }
    return sorted.filter((op) => set.has(op));
  };
  const fails = (h: readonly HistoryOp[]) => searchPartition(h, maxSteps) === 'illegal';
  // 1. The shortest failing prefix (by invocation): doubling, then bisection (a heuristic: failure is not
  //    monotone in the prefix length, so every candidate is checked, and the full history always fails).
  const n = sorted.length;
  let end = n;
  // The search's frontier usually marks the end of the trouble: try the prefix up to it first.
  const probe = { frontier: Number.NEGATIVE_INFINITY };
  searchPartition(sorted, maxSteps, probe);
  const guess = sorted.filter((op) => op.invoke <= probe.frontier).length;
  if (guess >= n) end = n;
  else if (guess > 0 && fails(close(sorted.slice(0, guess)))) end = guess;
  else for (let k = 4; ; k *= 2) {
    const m = Math.min(k, n);
    if (m === n || fails(close(sorted.slice(0, m)))) {
      let lo = m >> 1;
      let hi = m;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (fails(close(sorted.slice(0, mid)))) hi = mid;
        else lo = mid;
      }
      end = hi;
      break;
    }
  }
  // 2. The latest start that still fails with that end (writers of values seen inside stay in, via close):
  //    windows growing backwards from the end (1, 2, 4... ops: small ones are cheap), then bisection.
  let lo = 0;
  let hi = end - 1;
  for (let w = 1; w < end; w *= 2) {
    if (fails(close(sorted.slice(end - w, end)))) {
      lo = end - w;
      break;
    }
    hi = end - w - 1;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (fails(close(sorted.slice(mid, end)))) lo = mid;
    else hi = mid - 1;
  }
  let current = close(sorted.slice(lo, end));
  if (!fails(current)) current = sorted;
  if (current.length > 400) return current;
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = current.length - 1; i >= 0; i--) {
      const candidate = current.slice(0, i).concat(current.slice(i + 1));
      // Dropping a writer whose value a remaining op saw would leave that op unexplained: not allowed.
      if (close(candidate).length !== candidate.length) continue;
      if (fails(candidate)) {
        current = candidate;
        changed = true;
        if (i > current.length) i = current.length;
      }
    }
  }
  return current;
}
