import type { History, HistoryOp } from './history';
import { minimize } from './lin-minimize';
import { searchKey, type SearchLimit, type SearchOutcome } from './lin-search';

/**
 * Linearizability checking for the KV model, the way Porcupine does it (Athalye, after Wing & Gong and
 * Lowe's "Testing for linearizability", 2017): the history is partitioned per key (a KV store is linearizable
 * iff each key is, P-compositionality, Horn & Kroening 2015), and each partition is searched depth-first over
 * a doubly linked list of call/return events (`lin-search.ts`), with memoisation of (set of linearized ops,
 * model state).
 *
 * Every key is checked. Keys are searched in rounds with growing step budgets (x8 a round, up to `maxSteps`),
 * so an easily illegal key is found even behind a hard one; an `illegal` key wins over any undecided one.
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
  | {
      result: 'unknown';
      checkedOps: number;
      /** The first undecided key (by name); `undecided` lists them all. */
      key: string;
      undecided: string[];
      /** Which limit stopped the search on each undecided key, and how far it got. */
      reason: string;
    };

export interface CheckOptions {
  /** Search steps allowed per key (in its last round) before giving up with `unknown`. Default 10 million. */
  maxSteps?: number;
  /** Memoised configurations allowed per key before giving up with `unknown`. Default 2 million. */
  maxMemo?: number;
  /** Shrink the failing partition to a smallest failing sub-history (default true). */
  minimize?: boolean;
}

/** The first round's step budget per key; each round multiplies it by 8. */
const FIRST_BUDGET = 20_000;

export function checkLinearizability(history: History, options: CheckOptions = {}): LinearizabilityResult {
  const maxSteps = options.maxSteps ?? 10_000_000;
  const maxMemo = options.maxMemo ?? 2_000_000;
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
  const keys = [...byKey.keys()].sort();
  const partitions = new Map(keys.map((k) => [k, pruneUnobservedAppends(byKey.get(k) as HistoryOp[])]));
  // Rounds: every undecided key gets the round's budget; a key stopped by the memo cap is done (more steps
  // would not help); the last round gives maxSteps.
  let pending = keys;
  const stopped = new Map<string, Extract<SearchOutcome, { result: 'unknown' }>>();
  for (let budget = Math.min(FIRST_BUDGET, maxSteps); pending.length > 0; budget = Math.min(budget * 8, maxSteps)) {
    const still: string[] = [];
    for (const key of pending) {
      const ops = partitions.get(key) as HistoryOp[];
      const r = searchKey(ops, { maxSteps: budget, maxMemo });
      if (r.result === 'illegal') {
        const counterexample = options.minimize === false ? ops : minimize(ops, { maxSteps, maxMemo }, r.frontier);
        return { result: 'illegal', checkedOps, key, counterexample };
      }
      if (r.result === 'unknown') {
        stopped.set(key, r);
        if (r.limit === 'steps' && budget < maxSteps) still.push(key);
      } else stopped.delete(key);
    }
    if (budget >= maxSteps) break;
    pending = still;
  }
  if (stopped.size === 0) return { result: 'ok', checkedOps, keys: byKey.size };
  const undecided = [...stopped.keys()].sort();
  const reason = undecided.map((k) => `key ${k}: ${describeLimit((stopped.get(k) as Extract<SearchOutcome, { result: 'unknown' }>).limit, maxSteps, maxMemo)}`).join('; ');
  return { result: 'unknown', checkedOps, key: undecided[0] as string, undecided, reason };
}

function describeLimit(limit: SearchLimit, maxSteps: number, maxMemo: number): string {
  return limit === 'steps' ? `search exceeded ${maxSteps} steps` : `search exceeded its memo cap of ${maxMemo} configurations`;
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
