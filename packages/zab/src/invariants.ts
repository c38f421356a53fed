import type { LogEntry, NodeId } from '@consensus-kit/core';
import type { Invariant, SimView } from '@consensus-kit/core/testing';
import type { ZabNode } from './zab';

/**
 * ZAB's invariants, as far as each can be checked on the simulator's view, after every step. Named after the
 * properties of Junqueira, Reed, Serafini (DSN 2011, section III-B) and the ZooKeeper TLA+ specification
 * (Zab.tla / ZabWithFLE: Leadership, PrefixConsistency, Integrity, Agreement, TotalOrder, LocalPrimaryOrder,
 * GlobalPrimaryOrder, PrimaryIntegrity). Written here rather than imported: a protocol's import graph takes only
 * types from core/testing (the purity lint).
 *
 * "Delivered" is read as "committed on that replica" (entries at or below its commit index); entry identity is
 * (index, type, data) (DESIGN r2), and an entry's term is the epoch of the primary that broadcast it.
 */

const identity = (e: LogEntry) => `${e.type}:${Array.from(e.data, (b) => b.toString(16).padStart(2, '0')).join('')}`;

function zabOf(view: SimView, id: NodeId): ZabNode | undefined {
  return view.protocolAs<ZabNode>(id);
}

/**
 * Leadership (TLA+ "Leadership"; DSN 2011 section IV, "there is at most one established leader per epoch"): no two
 * replicas are ever established leaders of the same epoch, and an established leader's epoch is its durable
 * currentEpoch.
 */
function leadership(): Invariant {
  const leaders = new Map<number, NodeId>();
  return {
    name: 'zab-leadership',
    check(view) {
      for (const r of view.replicas) {
        const p = zabOf(view, r.id);
        if (p === undefined || !p.isLeader()) continue;
        const seen = leaders.get(p.epoch);
        if (seen === undefined) leaders.set(p.epoch, r.id);
        else if (seen !== r.id) return `two established leaders of epoch ${p.epoch}: ${seen} and ${r.id}`;
        if (p.currentEpoch !== p.epoch) return `${r.id} leads epoch ${p.epoch} with currentEpoch ${p.currentEpoch}`;
      }
      return undefined;
    },
  };
}

/**
 * What primaries broadcast and replicas deliver, shared by the order and integrity checks below. Every entry a
 * leader holds in its own epoch is recorded as broadcast by that epoch's primary at that index, the first time the
 * check sees it (after the step that appended it, before any message carrying it is delivered).
 */
class Ledger {
  readonly broadcast = new Map<string, string>();
  readonly primaries = new Map<number, NodeId>();
  private marks = new Map<string, number>();

  record(view: SimView): string | undefined {
    for (const r of view.replicas) {
      const p = zabOf(view, r.id);
      if (p === undefined || p.phase !== 'leading' || p.epoch === 0 || p.leaderStage === 'discovery') continue;
      this.primaries.set(p.epoch, r.id);
      const key = `${r.id}#${r.incarnation}#${p.epoch}`;
      const from = Math.max(this.marks.get(key) ?? p.epochBase, p.epochBase) + 1;
      for (let i = from; i <= p.log.lastIndex; i++) {
        const e = p.entryAt(i);
        if (e === undefined || e.term !== p.epoch) continue;
        const k = `${p.epoch}/${i}`;
        const seen = this.broadcast.get(k);
        if (seen === undefined) this.broadcast.set(k, identity(e));
        else if (seen !== identity(e)) return `the primary of epoch ${p.epoch} broadcast two transactions at index ${i}`;
      }
      this.marks.set(key, p.log.lastIndex);
    }
    return undefined;
  }
}

/**
 * Integrity, LocalPrimaryOrder (DSN 2011 III-B): a delivered transaction with zxid (e, i) is the one the primary of
 * epoch e broadcast at i; since replicas deliver in index order and a primary broadcasts in index order, a replica
 * delivering a primary's later transaction has delivered its earlier ones. GlobalPrimaryOrder: along every delivered
 * sequence, epochs never decrease (a later primary's transactions come after an earlier one's).
 */
function primaryOrder(ledger: Ledger): Invariant[] {
  const checked = new Map<string, { index: number; term: number }>();
  return [
    {
      name: 'zab-integrity-local-primary-order',
      check(view) {
        const bad = ledger.record(view);
        if (bad !== undefined) return bad;
        for (const r of view.replicas) {
          const p = zabOf(view, r.id);
          if (p === undefined) continue;
          const key = `${r.id}#${r.incarnation}`;
          const mark = checked.get(key) ?? { index: p.log.base, term: p.log.term(p.log.base) ?? 0 };
          for (let i = Math.max(mark.index, p.log.base) + 1; i <= p.commit; i++) {
            const e = p.entryAt(i);
            if (e === undefined) continue;
            if (e.term < mark.term) return `${r.id} delivered epoch ${e.term} at index ${i} after epoch ${mark.term} (global primary order)`;
            mark.term = e.term;
            const b = ledger.broadcast.get(`${e.term}/${i}`);
            if (b !== undefined && b !== identity(e)) return `${r.id} delivered at ${i} a transaction the primary of epoch ${e.term} did not broadcast there`;
            if (b === undefined && ledger.primaries.has(e.term)) return `${r.id} delivered (${e.term}, ${i}), which the primary of epoch ${e.term} never broadcast (integrity)`;
          }
          checked.set(key, { index: Math.max(mark.index, p.commit), term: mark.term });
        }
        return undefined;
      },
    },
  ];
}

/**
 * Agreement, TotalOrder, PrefixConsistency (DSN 2011 III-B; TLA+ PrefixConsistency): two replicas that deliver the
 * k-th transaction deliver the same one, so every delivered sequence is a prefix of every longer one.
 */
function prefixConsistency(): Invariant {
  const delivered = new Map<number, string>();
  const checked = new Map<string, number>();
  return {
    name: 'zab-agreement-total-order-prefix-consistency',
    check(view) {
      for (const r of view.replicas) {
        const p = zabOf(view, r.id);
        if (p === undefined) continue;
        const key = `${r.id}#${r.incarnation}`;
        for (let i = Math.max(checked.get(key) ?? 0, p.log.base) + 1; i <= p.commit; i++) {
          const e = p.entryAt(i);
          if (e === undefined) continue;
          const id = identity(e);
          const seen = delivered.get(i);
          if (seen === undefined) delivered.set(i, id);
          else if (seen !== id) return `${r.id} delivered ${id} as transaction ${i}, where ${seen} was delivered before`;
        }
        checked.set(key, Math.max(checked.get(key) ?? 0, p.commit));
      }
      return undefined;
    },
  };
}

/**
 * PrimaryIntegrity (DSN 2011 III-B; TLA+ PrimaryIntegrity): an established primary of epoch e holds, in its history,
 * every transaction of an earlier epoch that any replica delivered (its initial history includes all of them).
 * Transactions of later epochs are not its business: a primary of an older epoch may still complete its
 * establishment with acknowledgements sent before its followers moved on, but can commit nothing after that.
 */
function primaryIntegrity(): Invariant {
  const done = new Set<string>();
  return {
    name: 'zab-primary-integrity',
    check(view) {
      for (const r of view.replicas) {
        const p = zabOf(view, r.id);
        if (p === undefined || !p.isLeader()) continue;
        const key = `${r.id}#${p.epoch}`;
        if (done.has(key)) continue;
        done.add(key);
        for (const [i, e] of view.committed) {
          if (i <= p.log.base || e.term >= p.epoch) continue;
          const mine = p.entryAt(i);
          if (mine === undefined) {
            if (i > p.log.lastIndex) return `${r.id} leads epoch ${p.epoch} without transaction ${i}, delivered before`;
            continue;
          }
          if (identity(mine) !== identity(e)) return `${r.id} leads epoch ${p.epoch} with another transaction at ${i} than the one delivered`;
        }
      }
      return undefined;
    },
  };
}

/** ZAB's invariants, fresh for every run (the simulator calls the factory once per seed). */
export function zabInvariants(): Invariant[] {
  const ledger = new Ledger();
  return [leadership(), prefixConsistency(), ...primaryOrder(ledger), primaryIntegrity()];
}
