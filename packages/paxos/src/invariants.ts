import type { LogEntry, NodeId } from '@consensus-kit/core';
import type { Invariant, SimView } from '@consensus-kit/core/testing';
import { decodeHardState } from './hard-state';
import type { PaxosNode } from './paxos';

const identity = (e: LogEntry) => `${e.type}:${Array.from(e.data, (b) => b.toString(16).padStart(2, '0')).join('')}`;

/**
 * At most one leader per ballot (PMMC section 3: a ballot belongs to one leader; phase 1 won once). Written here
 * rather than imported: a protocol's import graph takes only types from core/testing (the purity lint).
 */
function oneLeaderPerBallot(): Invariant {
  const leaders = new Map<number, NodeId>();
  return {
    name: 'paxos-one-leader-per-ballot',
    check(view: SimView) {
      for (const r of view.replicas) {
        const s = r.status();
        if (s === undefined || s.role !== 'leader') continue;
        const seen = leaders.get(s.term);
        if (seen === undefined) leaders.set(s.term, s.id);
        else if (seen !== s.id) return `two leaders at ballot ${s.term}: ${seen} and ${s.id}`;
      }
      return undefined;
    },
  };
}

/**
 * Paxos Made Simple 2.1 (safety: "only a single value is chosen"): once a replica knows slot s decided, no
 * replica ever knows another value decided there. Checked on every live replica's decided prefix.
 */
function chosenNeverChanges(): Invariant {
  const chosen = new Map<number, string>();
  const checked = new Map<string, number>();
  return {
    name: 'paxos-chosen-never-changes',
    check(view: SimView) {
      for (const r of view.replicas) {
        const p = view.protocolAs<PaxosNode>(r.id);
        if (p === undefined) continue;
        const key = `${r.id}#${r.incarnation}`;
        const from = Math.max(checked.get(key) ?? 0, p.log.offset) + 1;
        for (let s = from; s <= p.commit; s++) {
          const e = p.entryAt(s);
          if (e === undefined) continue;
          const id = identity(e);
          const seen = chosen.get(s);
          if (seen === undefined) chosen.set(s, id);
          else if (seen !== id) return `${r.id} holds ${id} decided in slot ${s}, where ${seen} was decided before`;
        }
        checked.set(key, p.commit);
      }
      return undefined;
    },
  };
}

/**
 * Paxos Made Simple 2.2: a proposer proposes at most one value per ballot in a slot, so at most one value can be
 * accepted (by a phase-2 quorum or anyone) per (slot, ballot). Checked on every value held above each live
 * replica's commit point, remembered for the whole run.
 */
function oneValuePerBallot(): Invariant {
  const values = new Map<string, string>();
  return {
    name: 'paxos-one-value-per-slot-and-ballot',
    check(view: SimView) {
      for (const r of view.replicas) {
        const p = view.protocolAs<PaxosNode>(r.id);
        if (p === undefined) continue;
        for (let s = Math.max(p.commit, p.log.offset) + 1; s <= p.log.lastIndex; s++) {
          const e = p.entryAt(s);
          if (e === undefined || e.term === 0) continue;
          const k = `${s}/${e.term}`;
          const id = identity(e);
          const seen = values.get(k);
          if (seen === undefined) values.set(k, id);
          else if (seen !== id) return `${r.id} accepted ${id} in slot ${s} at ballot ${e.term}, where ${seen} was accepted at that ballot`;
        }
      }
      return undefined;
    },
  };
}

/**
 * Paxos Made Simple 2.3: an acceptor remembers its promise across failures. The durable promise never goes
 * back (across restarts too), and a live acceptor's promise is never below it nor below a ballot it holds.
 */
function promiseNeverBroken(): Invariant {
  const durable = new Map<NodeId, number>();
  return {
    name: 'paxos-promise-never-broken',
    check(view: SimView) {
      for (const r of view.replicas) {
        const raw = r.storage.initialState().hardState;
        const stored = raw === undefined ? 0 : decodeHardState(raw).promised;
        const before = durable.get(r.id) ?? 0;
        if (stored < before) return `${r.id}'s durable promise went back from ${before} to ${stored}`;
        durable.set(r.id, stored);
        const p = view.protocolAs<PaxosNode>(r.id);
        if (p === undefined) continue;
        if (p.promised < stored) return `${r.id} runs with promise ${p.promised}, below its durable promise ${stored}`;
      }
      return undefined;
    },
  };
}

/** Multi-Paxos' invariants, fresh for every run (the simulator calls the factory once per seed). */
export function paxosInvariants(): Invariant[] {
  return [oneLeaderPerBallot(), chosenNeverChanges(), oneValuePerBallot(), promiseNeverBroken()];
}
