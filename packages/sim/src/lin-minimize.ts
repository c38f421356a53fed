import type { HistoryOp } from './history';
import { searchKey, type SearchBudget } from './lin-search';

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

/**
 * Shrinks a failing partition to a smallest failing sub-history: first a short failing prefix (by invocation),
 * then the latest start that still fails, then single ops are dropped while the rest still fails, until none
 * can go (1-minimal, the simplest ddmin). Sub-histories stay closed under "saw the value of": an op that saw a
 * value keeps an op (other than itself) that wrote it, and a read of a list keeps a writer of each appended
 * element, and a cas from nil that failed keeps a write invoked before it completed, so the counterexample
 * never degenerates into "a read of a value nobody wrote" (or "a key nobody wrote was not empty") when
 * somebody did write.
 * `frontier` is the search's latest backtracking point on the whole partition (a guess at where it fails).
 */
export function minimize(ops: readonly HistoryOp[], budget: SearchBudget, frontier: number): HistoryOp[] {
  const writers = new Map<string, HistoryOp[]>();
  for (const op of ops) for (const v of written(op)) writers.set(v, [...(writers.get(v) ?? []), op]);
  const hasAppends = ops.some((op) => op.input.f === 'append');
  /** Ops that write whatever the state: puts, appends, and cas ops known to have swapped. */
  const unconditional = ops
    .filter((op) => op.input.f === 'put' || op.input.f === 'append' || (op.input.f === 'cas' && op.output !== undefined && 'swapped' in op.output && op.output.swapped))
    .sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  /** Writers other than `op` itself: a cas from 2 to 2 does not explain its own `from`. */
  const others = (v: string, op: HistoryOp) => (writers.get(v) ?? []).filter((w) => w !== op);
  /** The values `op` saw, each as the list of ops that could have written it. */
  const sources = (op: HistoryOp): HistoryOp[][] => {
    let v: string | null = null;
    if (op.status === 'info') {
      // An indeterminate cas writes only from its `from`: as a writer it needs that value's writer too.
      if (op.input.f === 'cas') v = op.input.from;
    } else if (op.output === undefined) return [];
    else if (op.input.f === 'cas' && op.input.from === null && 'swapped' in op.output && !op.output.swapped) {
      // A cas from nil that failed saw that something had been written: alone it would fail for no reason.
      const ws = unconditional.filter((w) => w !== op && w.invoke <= (op.complete as number));
      return ws.length > 0 ? [ws] : [];
    } else if (op.input.f === 'get' && 'value' in op.output) v = op.output.value;
    else if (op.input.f === 'cas' && 'swapped' in op.output && op.output.swapped) v = op.input.from;
    if (v === null) return [];
    const whole = others(v, op);
    if (whole.length > 0 || !hasAppends) return whole.length > 0 ? [whole] : [];
    // A list: each appended element has its own writer.
    return v
      .split(' ')
      .map((e) => others(e, op))
      .filter((ws) => ws.length > 0);
  };
  const sorted = [...ops].sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  const close = (h: readonly HistoryOp[]): HistoryOp[] => {
    const set = new Set(h);
    const todo = [...h];
    while (todo.length > 0) {
      const op = todo.pop() as HistoryOp;
      for (const ws of sources(op)) {
        if (!ws.some((w) => set.has(w))) {
          set.add(ws[0] as HistoryOp);
          todo.push(ws[0] as HistoryOp);
        }
      }
    }
    return sorted.filter((op) => set.has(op));
  };
  const fails = (h: readonly HistoryOp[]) => searchKey(h, budget).result === 'illegal';
  // 1. The shortest failing prefix (by invocation): the frontier's guess, else doubling then bisection (a
  //    heuristic: failure is not monotone in the prefix length, so every candidate is checked).
  const n = sorted.length;
  let end = n;
  const guess = sorted.filter((op) => op.invoke <= frontier).length;
  if (guess >= n) end = n;
  else if (guess > 0 && fails(close(sorted.slice(0, guess)))) end = guess;
  else
    for (let k = 4; ; k *= 2) {
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
  if (!fails(current)) current = close(sorted);
  if (current.length > 400) return current;
  // 3. Drop single ops while the rest still fails.
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
