import { describeOp, type ClientOp, type HistoryOp } from './history';
import { checkLinearizability, type CheckOptions } from './linearizability';

/** What a history checker concluded. */
export type HistoryVerdict<Op extends ClientOp = ClientOp> =
  | { result: 'ok'; checkedOps: number }
  | {
      result: 'illegal';
      checkedOps: number;
      /** One paragraph: what is wrong, with the failing ops. */
      message: string;
      /** The ops that show it (a smallest failing sub-history where the checker finds one). */
      ops: Op[];
    }
  | { result: 'unknown'; checkedOps: number; reason: string };

/**
 * Judges a run's client history once the run ends: linearizability for the KV workload (the default), mutual
 * exclusion for a lock service, ... A violation it finds fails the run like an invariant does.
 */
export interface HistoryChecker<Op extends ClientOp = ClientOp> {
  /** `linearizability`, `mutual-exclusion`: the violation's name. */
  readonly name: string;
  check(history: readonly Op[]): HistoryVerdict<Op>;
}

/** The default checker: the KV history, per key, for linearizability (`checkLinearizability`). */
export function linearizabilityChecker(options: CheckOptions = {}): HistoryChecker<HistoryOp> {
  return {
    name: 'linearizability',
    check(history) {
      const r = checkLinearizability([...history], options);
      if (r.result === 'ok') return { result: 'ok', checkedOps: r.checkedOps };
      if (r.result === 'unknown') return { result: 'unknown', checkedOps: r.checkedOps, reason: r.reason };
      return {
        result: 'illegal',
        checkedOps: r.checkedOps,
        message: `history of key ${r.key} is not linearizable; smallest failing sub-history:\n  ${r.counterexample.map(describeOp).join('\n  ')}`,
        ops: r.counterexample,
      };
    },
  };
}
