import type { Replayer } from './replay';

/** The newest snapshot file's meta, as reconciliation needs it. */
export interface ReconcileSnapshot {
  index: number;
  term: number;
  /** Installed from a leader (it replaces the whole log), not taken locally. */
  installed: boolean;
}

/**
 * What the replayed log and the newest snapshot say together:
 * - `ok`: the log stands (the snapshot may have resolved where it starts: `replayer` is updated);
 * - `reset`: an installed snapshot whose RESET record never reached the WAL (the install stopped in between):
 *   the log is replaced by the snapshot (`replayer` is reset) and the caller must record it;
 * - `problem`: the directory lost something; opening it must refuse.
 */
export type Reconciled =
  | { kind: 'ok' }
  | { kind: 'reset'; index: number; term: number }
  | { kind: 'problem'; reason: 'snapshot-behind-log' | 'snapshot-missing' | 'unresolved'; message: string; lastGoodIndex: number };

/**
 * Reconciles a replayed log with the newest snapshot (or none). The one rule recovery opens a directory by
 * and `inspect` reports by, so that inspect calls a directory sound exactly when recovery would open it.
 */
export function reconcile(replayer: Replayer, snapshot: ReconcileSnapshot | undefined): Reconciled {
  const ix = replayer.index;
  if (snapshot !== undefined) {
    const s = snapshot;
    if (s.installed && (!replayer.resolved || ix.base < s.index)) {
      replayer.resetTo(s.index, s.term);
      return { kind: 'reset', index: s.index, term: s.term };
    }
    if (!replayer.resolved) {
      // The snapshot may cover the part of history the remaining segments do not start with.
      replayer.resolveWithSnapshot(s.index, s.term);
    } else if (s.index < ix.base) {
      return {
        kind: 'problem',
        reason: 'snapshot-behind-log',
        message: `the log is compacted through ${ix.base}, past the latest snapshot ${s.index}: entries are lost`,
        lastGoodIndex: ix.base,
      };
    }
  } else if (replayer.resolved && ix.base > 0) {
    return {
      kind: 'problem',
      reason: 'snapshot-missing',
      message: `the log is compacted through ${ix.base}, but no snapshot is present: the snapshot file is missing`,
      lastGoodIndex: ix.base,
    };
  }
  if (!replayer.resolved) {
    return {
      kind: 'problem',
      reason: 'unresolved',
      message: `the log starts at index ${ix.first} but no record says what came before it or where it ends: a segment or snapshot is missing`,
      lastGoodIndex: 0,
    };
  }
  return { kind: 'ok' };
}
