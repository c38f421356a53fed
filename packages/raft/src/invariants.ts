import type { LogEntry, NodeId, Role, Storage } from '@consensus-kit/core';
import { decodeHardState, type HardState } from './hard-state';

/**
 * Raft's safety properties (thesis Figure 3.2) as checks over snapshots of replicas, for the simulator and the
 * randomized tests. A view is what one replica holds at one moment: its role and term, its log (persisted or
 * not), its commit index and its persisted hard state.
 */
export interface RaftReplicaView {
  id: NodeId;
  role: Role;
  term: number;
  commitIndex: number;
  /** First index held in the log (entries below are compacted into a snapshot). */
  firstIndex: number;
  lastIndex: number;
  /** The entry at `index`, `undefined` when not held. */
  entryAt(index: number): LogEntry | undefined;
  /** The hard state as persisted in storage (what survives a crash). */
  persistedHardState?: Uint8Array;
}

export interface InvariantViolation {
  invariant: 'election-safety' | 'log-matching' | 'leader-completeness' | 'state-machine-safety' | 'vote-stability';
  message: string;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Log Matching's notion of sameness (thesis 3.5): Raft's own rule, so it may use terms. */
function sameEntry(a: LogEntry, b: LogEntry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && bytesEqual(a.data, b.data);
}

/**
 * Entry identity (DESIGN r2): `(index, type, data)`. Every agreement check (state machine safety, leader
 * completeness) compares identity, never terms: the term is protocol metadata.
 */
function sameIdentity(a: LogEntry, b: LogEntry): boolean {
  return a.index === b.index && a.type === b.type && bytesEqual(a.data, b.data);
}

/**
 * Log Matching (thesis 3.5): if two logs hold an entry with the same index and term, the logs are identical
 * in all entries up to and including it. Checked over the range both replicas hold above the lower of their
 * commit indexes (below it, `RaftInvariants` checks every replica against the one committed sequence).
 */
export function checkLogMatching(views: readonly RaftReplicaView[]): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (let i = 0; i < views.length; i++) {
    for (let j = i + 1; j < views.length; j++) {
      const a = views[i] as RaftReplicaView;
      const b = views[j] as RaftReplicaView;
      // Up to the lower commit index both logs hold the committed entries, which the state machine safety
      // check compares; the window above it is where logs may legitimately differ, so check it here.
      const lo = Math.max(a.firstIndex, b.firstIndex, Math.min(a.commitIndex, b.commitIndex));
      const hi = Math.min(a.lastIndex, b.lastIndex);
      // Find the highest shared index with equal terms; everything below it must be identical.
      let top = 0;
      for (let k = hi; k >= lo; k--) {
        const ea = a.entryAt(k);
        const eb = b.entryAt(k);
        if (ea !== undefined && eb !== undefined && ea.term === eb.term) {
          top = k;
          break;
        }
      }
      for (let k = lo; k <= top; k++) {
        const ea = a.entryAt(k);
        const eb = b.entryAt(k);
        if (ea === undefined || eb === undefined || !sameEntry(ea, eb)) {
          out.push({
            invariant: 'log-matching',
            message: `${a.id} and ${b.id} agree on ${top}/${a.entryAt(top)?.term} but differ at ${k} (${ea?.term}/${ea?.type} vs ${eb?.term}/${eb?.type})`,
          });
          break;
        }
      }
    }
  }
  return out;
}

/**
 * Stateful checks over a run: feed every observation of the cluster to `observe`.
 * - Election Safety (thesis 3.6): at most one leader per term.
 * - State Machine Safety: no two replicas commit different entries at one index.
 * - Leader Completeness (thesis 3.6.3): an entry committed in term T is in the log of every leader of a
 *   term > T. The term an entry was committed in is bounded by the term of the first replica seen holding it
 *   committed, which keeps the check sound (it may only miss violations, never report false ones).
 * - Vote stability: a replica's persisted vote never changes within a term, also across restarts.
 * - Log Matching, as `checkLogMatching`.
 */
export class RaftInvariants {
  private readonly leaders = new Map<number, NodeId>();
  /** committed[index] = the committed entry and an upper bound of the term it was committed in. */
  private readonly committed = new Map<number, { entry: LogEntry; term: number }>();
  private readonly votes = new Map<NodeId, HardState>();
  private maxCommitted = 0;
  private readonly leaderChecked = new Map<string, number>();
  /** Highest index checked for commit agreement per replica (the check is incremental). */
  private readonly scanned = new Map<NodeId, number>();

  observe(views: readonly RaftReplicaView[]): InvariantViolation[] {
    const out: InvariantViolation[] = [];
    for (const v of views) {
      if (v.role === 'leader') {
        const prev = this.leaders.get(v.term);
        if (prev === undefined) this.leaders.set(v.term, v.id);
        else if (prev !== v.id) out.push({ invariant: 'election-safety', message: `two leaders in term ${v.term}: ${prev} and ${v.id}` });
      }
      if (v.persistedHardState !== undefined && v.persistedHardState.length > 0) {
        const hs = decodeHardState(v.persistedHardState);
        const prev = this.votes.get(v.id);
        if (prev !== undefined && prev.term === hs.term && prev.vote !== undefined && prev.vote !== hs.vote) {
          out.push({ invariant: 'vote-stability', message: `${v.id} changed its vote in term ${hs.term} from ${prev.vote} to ${hs.vote ?? 'none'}` });
        }
        if (prev !== undefined && hs.term < prev.term) {
          out.push({ invariant: 'vote-stability', message: `${v.id}'s persisted term went back from ${prev.term} to ${hs.term}` });
        }
        this.votes.set(v.id, hs);
      }
      const from = Math.max(v.firstIndex, (this.scanned.get(v.id) ?? 0) + 1);
      for (let i = from; i <= v.commitIndex; i++) {
        const e = v.entryAt(i);
        if (e === undefined) continue;
        const known = this.committed.get(i);
        if (known === undefined) {
          this.committed.set(i, { entry: e, term: v.term });
          if (i > this.maxCommitted) this.maxCommitted = i;
        }
        else if (!sameIdentity(known.entry, e)) {
          out.push({ invariant: 'state-machine-safety', message: `${v.id} committed ${i}/${e.term} where ${i}/${known.entry.term} was committed` });
        }
      }
      if (v.commitIndex > (this.scanned.get(v.id) ?? 0)) this.scanned.set(v.id, v.commitIndex);
    }
    for (const v of views) {
      if (v.role !== 'leader') continue;
      // A leader's log only grows during its term, so each index needs checking once per (leader, term).
      const key = `${v.id}\u0000${v.term}`;
      const from = Math.max(v.firstIndex, (this.leaderChecked.get(key) ?? 0) + 1);
      let i = from;
      for (; i <= this.maxCommitted; i++) {
        const c = this.committed.get(i);
        if (c === undefined || c.term >= v.term) continue;
        const e = v.entryAt(i);
        if (e === undefined || !sameIdentity(e, c.entry)) {
          out.push({
            invariant: 'leader-completeness',
            message: `leader ${v.id} of term ${v.term} lacks committed entry ${i}/${c.entry.term} (committed by term ${c.term})`,
          });
          break;
        }
      }
      this.leaderChecked.set(key, i - 1);
    }
    out.push(...checkLogMatching(views));
    return out;
  }

  /** A replica restarted: its volatile state is gone, so its commit progress is checked from scratch. */
  restarted(id: NodeId): void {
    this.scanned.delete(id);
  }
}

/**
 * The slice of a simulator's per-step view that Raft's invariants read (structurally the `SimView` of
 * `@consensus-kit/sim`, declared here so this package does not depend on the simulator).
 */
export interface SimViewLike {
  readonly replicas: readonly {
    readonly id: NodeId;
    readonly state: 'up' | 'paused' | 'crashed';
    readonly incarnation: number;
    readonly protocol: unknown;
    readonly storage: Storage;
  }[];
}

/** A simulator invariant: `check` returns undefined when it holds, or a one-line description of the violation. */
export interface SimInvariant {
  readonly name: string;
  check(view: SimViewLike): string | undefined;
}

interface InspectableRaft {
  status(): { role: Role; term: number; commitIndex: number; lastIndex: number };
  firstIndex(): number;
  entryAt(index: number): LogEntry | undefined;
}

function isInspectable(p: unknown): p is InspectableRaft {
  return typeof p === 'object' && p !== null && typeof (p as InspectableRaft).entryAt === 'function' && typeof (p as InspectableRaft).firstIndex === 'function';
}

/** A view of a replica's durable state only (a crashed replica: its persisted log and hard state). */
function storageView(id: NodeId, storage: Storage): RaftReplicaView {
  const raw = storage.initialState().hardState;
  const term = raw === undefined || raw.length === 0 ? 0 : decodeHardState(raw).term;
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const v: RaftReplicaView = {
    id,
    role: 'follower',
    term,
    commitIndex: 0,
    firstIndex: first,
    lastIndex: last,
    entryAt: (i) => (i < first || i > last ? undefined : storage.entries(i, i + 1)[0]),
  };
  if (raw !== undefined) v.persistedHardState = raw;
  return v;
}

/**
 * Raft's invariants as simulator hooks (a factory: each run gets fresh, stateful instances). One hook runs
 * every check of `RaftInvariants` over the live replicas (their full logs, persisted or not) and the crashed
 * ones (their persisted logs and hard state).
 */
export function raftInvariants(): SimInvariant[] {
  const inv = new RaftInvariants();
  const incarnations = new Map<NodeId, number>();
  return [
    {
      name: 'raft-safety',
      check(view) {
        const views: RaftReplicaView[] = [];
        for (const r of view.replicas) {
          if (incarnations.get(r.id) !== r.incarnation) {
            if (incarnations.has(r.id)) inv.restarted(r.id);
            incarnations.set(r.id, r.incarnation);
          }
          const p = r.state === 'crashed' ? undefined : r.protocol;
          if (!isInspectable(p)) {
            views.push(storageView(r.id, r.storage));
            continue;
          }
          const s = p.status();
          const v: RaftReplicaView = {
            id: r.id,
            role: s.role,
            term: s.term,
            commitIndex: s.commitIndex,
            firstIndex: p.firstIndex(),
            lastIndex: s.lastIndex,
            entryAt: (i) => p.entryAt(i),
          };
          const raw = r.storage.initialState().hardState;
          if (raw !== undefined) v.persistedHardState = raw;
          views.push(v);
        }
        const out = inv.observe(views);
        return out.length === 0 ? undefined : out.map((x) => `${x.invariant}: ${x.message}`).join('; ');
      },
    },
  ];
}
