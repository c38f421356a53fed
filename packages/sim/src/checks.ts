import { describeEntry, describeStatus, type LogEntry, type NodeId, type Status } from '@consensus-kit/core';
import type { Invariant } from '@consensus-kit/core/testing';
import type { ReplicaHost } from './replica-host';
import type { SimContext } from './sim-context';
import type { AppliedCommand } from './workload';

/**
 * Entry identity (DESIGN r2): `(index, type, data)`. The term is protocol metadata (two replicas may hold the
 * same chosen Paxos value under different ballots), so no agreement check compares it.
 */
export function sameEntry(a: LogEntry, b: LogEntry): boolean {
  if (a.index !== b.index || a.type !== b.type || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * The simulator's own safety checks, for every protocol: one committed log (by entry identity), each command
 * committed once, acknowledged entries never lost, status indexes that never go back; and the protocol's
 * invariants after every step.
 */
export class ClusterChecks {
  /** The cluster's committed log: the entry first applied at each index by any replica. */
  readonly committed = new Map<number, LogEntry>();
  private readonly commandIndex = new Map<string, number>();
  private readonly acked = new Map<number, LogEntry>();
  /**
   * Per replica: the index through which its durable state held the cluster's committed log (see
   * `committedKept`). Only grows.
   */
  private readonly kept: number[];
  /** The term of the replica's own copy of the entry at its `kept` index (see `committedKept`). */
  private readonly keptTerm: number[];

  constructor(
    private readonly ctx: SimContext,
    private readonly replicas: readonly ReplicaHost[],
    private readonly invariants: readonly Invariant[],
    private readonly view: Parameters<Invariant['check']>[0],
  ) {
    this.kept = replicas.map(() => 0);
    this.keptTerm = replicas.map(() => 0);
  }

  /**
   * A replica never drops a committed entry it held durably, unless a snapshot of its own covers it: a follower
   * truncates only entries that conflict with the leader, and a committed one never does (Raft thesis 3.5, Log
   * Matching, and 3.6.3, Leader Completeness; Raft paper Figure 13 rule 6: a snapshot install keeps the log
   * after a matching last entry). For Paxos, every ballot after the one that chose a slot carries its value
   * (Paxos Made Simple 2.2, P2c), so an acceptor's slot keeps the chosen value. Checked on each replica's
   * highest such index after every step: `acknowledged-not-lost` only notices a loss that reaches every replica.
   * One loss passes: a crash that tore a snapshot install whose Ready rewrote the entries above the snapshot
   * (`ReplicaHost.tornInstallFrom`); guarding that is the protocol's, and its invariants check it.
   */
  committedKept(): void {
    for (let k = 0; k < this.replicas.length; k++) {
      const r = this.replicas[k] as ReplicaHost;
      const d = r.durable;
      const snap = d.snapshot?.index ?? 0;
      let h = this.kept[k] as number;
      if (h > snap) {
        const e = d.log[h - d.compactedIndex - 1];
        const c = this.committed.get(h) as LogEntry;
        const lost = e === undefined || !sameEntry(e, c);
        // A no-op carries no data, so one a replica took from a deposed leader (Raft: an uncommitted no-op of an
        // older term at the same index) has the committed one's identity without being it: replacing it is
        // truncating a conflicting entry (Raft thesis 3.5), and a crash may keep the truncation alone.
        const otherNoop = c.type === 'noop' && this.keptTerm[k] !== c.term;
        if (lost && (otherNoop || (r.tornInstallFrom !== undefined && h >= r.tornInstallFrom))) {
          // Or a crash tore a snapshot install that rewrote these entries: guarding that loss is the protocol's
          // (Paxos Made Live 5.1; multi-paxos marks the slots before the install and promises nothing until
          // they are decided again), checked by its own invariants. Follow the replica from what it holds now.
          h = Math.min(h, d.compactedIndex + d.log.length);
          for (; h > snap; h--) {
            const held = d.log[h - d.compactedIndex - 1];
            const want = this.committed.get(h);
            if (held !== undefined && want !== undefined && sameEntry(held, want)) break;
          }
          this.keptTerm[k] = d.log[h - d.compactedIndex - 1]?.term ?? 0;
        } else if (lost) {
          this.ctx.violate(
            'committed-kept',
            `${r.id} held committed ${describeEntry(c)} durably and now ${e === undefined ? `has no entry there (durable log ends at ${d.compactedIndex + d.log.length}, snapshot at ${snap})` : `holds ${describeEntry(e)}`}`,
          );
        }
      }
      r.tornInstallFrom = undefined;
      if (snap > h && this.committed.has(snap)) h = snap;
      for (;;) {
        const c = this.committed.get(h + 1);
        if (c === undefined) break;
        const e = d.log[h - d.compactedIndex];
        if (e === undefined || !sameEntry(e, c)) break;
        h++;
        this.keptTerm[k] = e.term;
      }
      this.kept[k] = h;
    }
  }

  /** `node` applied `entry`: it must agree with what any replica applied at that index before. */
  applied(node: NodeId, entry: LogEntry, command: AppliedCommand | undefined): void {
    const first = this.committed.get(entry.index);
    if (first === undefined) this.committed.set(entry.index, entry);
    else if (!sameEntry(first, entry)) {
      this.ctx.violate('log-agreement', `${node} committed ${describeEntry(entry)} at index ${entry.index}, where ${describeEntry(first)} was committed before`);
    }
    if (command === undefined) return;
    const seen = this.commandIndex.get(command.id);
    if (seen === undefined) this.commandIndex.set(command.id, entry.index);
    else if (seen !== entry.index) {
      this.ctx.violate('no-duplicate-commands', `command ${command.id} was proposed once but committed at ${seen} and ${entry.index}`);
    }
    if (command.acknowledged) this.acked.set(entry.index, entry);
  }

  /** Every acknowledged entry must still be durable on at least one replica (log or snapshot), by identity. */
  ackedDurable(): void {
    for (const [index, entry] of this.acked) {
      const held = this.replicas.some((r) => {
        const snap = r.durable.snapshot;
        if (snap !== undefined && snap.index >= index) return true;
        const i = index - r.durable.compactedIndex - 1;
        const e = i >= 0 ? r.durable.log[i] : undefined;
        return e !== undefined && sameEntry(e, entry);
      });
      if (!held) this.ctx.violate('acknowledged-not-lost', `acknowledged entry ${describeEntry(entry)} is no longer durable on any replica`);
    }
  }

  /** After every step: status monotonicity per replica, then the protocol's invariants. */
  afterStep(): void {
    const ctx = this.ctx;
    for (const r of this.replicas) {
      if (r.protocol === undefined) continue;
      let s: Status | undefined;
      r.call('status', (p) => (s = p.status()));
      const st = s as Status;
      // Within an incarnation the indexes only grow; after a restart they start at the durable floor (the
      // restored snapshot), never below it: what a replica applied and made durable is never taken back.
      if (st.commitIndex < r.lastCommit) ctx.violate('commit-monotonic', `${r.id} (incarnation ${r.incarnation}) commit index went back from ${r.lastCommit} to ${st.commitIndex}`);
      if (st.appliedIndex < r.lastApplied) ctx.violate('applied-monotonic', `${r.id} (incarnation ${r.incarnation}) applied index went back from ${r.lastApplied} to ${st.appliedIndex}`);
      if (st.appliedIndex > st.commitIndex) ctx.violate('applied-le-commit', `${r.id} reports applied ${st.appliedIndex} beyond commit ${st.commitIndex}`);
      r.lastCommit = st.commitIndex;
      r.lastApplied = st.appliedIndex;
      if (ctx.tracing) {
        const line = describeStatus(st);
        if (line !== r.lastStatus) {
          r.lastStatus = line;
          ctx.trace({ ev: 'status', status: line });
        }
      }
    }
    this.committedKept();
    for (const inv of this.invariants) {
      let msg: string | undefined;
      try {
        msg = inv.check(this.view);
      } catch (err) {
        msg = `invariant threw: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (msg !== undefined) ctx.violate(inv.name, msg);
    }
  }
}
