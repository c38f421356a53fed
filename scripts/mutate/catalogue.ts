/**
 * A catalogue of classic consensus bugs, each a one-place search/replace on the sources of a protocol
 * package (`packages/<protocol>/src/<file>`). `pnpm mutate` applies each one to a temporary copy of the
 * package and runs simulator seeds until a violation shows (caught) or the seeds run out (missed).
 *
 * A `find` must occur exactly once in its file: `applyMutant` throws otherwise, and the catalogue test
 * (packages/sim/test/mutate-catalogue.test.ts) checks every entry against the current sources, so a refactor
 * that moves a line fails CI instead of silently turning a mutant into a no-op.
 */

export type MutantProtocol = 'raft' | 'paxos';

export interface Mutant {
  /** Short kebab-case name (`pnpm mutate --only <name>`). */
  name: string;
  protocol: MutantProtocol;
  /** Path under `packages/<protocol>/src/`. */
  file: string;
  /** Exact text to replace: must occur exactly once in the file. */
  find: string;
  replace: string;
  /** The bug, and the rule it breaks (paper / thesis section). */
  bug: string;
  /**
   * Protocol options the sweep runs with, for mutants of code that is off by default (lease reads) or
   * unobservable under the defaults (see the Figure 8 mutant). The control run of the protocol is repeated
   * with the same options, so a mutant only counts as caught where the unmodified code passes.
   */
  protocolOptions?: Record<string, unknown>;
}

export const CATALOGUE: readonly Mutant[] = [
  // --- raft ------------------------------------------------------------------------------------------------
  {
    name: 'raft-figure8-commit-old-term',
    protocol: 'raft',
    file: 'raft-log.ts',
    find: 'if (index > this.committed && this.term(index) === term) {',
    replace: 'if (index > this.committed && this.term(index) > 0) {',
    bug: 'leader commits an entry of an earlier term by counting replicas (Raft paper 5.4.2, Figure 8; thesis 3.6.2)',
    // A new leader's no-op travels in the same AppendEntries as the old-term entries it re-replicates, so with
    // 1 MiB messages every acknowledgement that covers an old-term entry also covers the no-op, and the mutant
    // is equivalent to the original. With small messages catch-up takes several AppendEntries and an
    // acknowledgement can stop short of the no-op, as in Figure 8.
    protocolOptions: { maxSizePerMsg: 64 },
  },
  {
    name: 'raft-readindex-no-heartbeat-quorum',
    protocol: 'raft',
    file: 'read-index.ts',
    find: '  r.readOnly.add(from, ctx, committed);\n}',
    replace: '  respondRead(r, from, ctx, committed);\n}',
    bug: 'ReadIndex answered without a heartbeat round acknowledged by a quorum (thesis 6.4 step 3): a deposed leader serves stale reads',
    // With CheckQuorum (thesis 6.2) a cut-off leader steps down within two election timeouts, before the
    // simulated clients (4 election timeouts to give up on a replica) reach the new leader, so the window for a
    // stale read is rarely open. Without it (etcd's default) the heartbeat round of ReadIndex is the only thing
    // that keeps a deposed leader's reads fresh.
    protocolOptions: { checkQuorum: false },
  },
  {
    name: 'raft-snapshot-drops-matching-suffix',
    protocol: 'raft',
    file: 'snapshot-stream.ts',
    find: 'if (m.index <= log.committed || log.matchTerm(m.index, m.snapTerm)) {',
    replace: 'if (m.index <= log.committed) {',
    bug: 'InstallSnapshot discards the whole log even when it holds the snapshot\'s last entry, dropping acknowledged entries after it (Raft paper 7, Figure 13 rule 6; thesis 5.3)',
  },
  {
    name: 'raft-vote-without-log-check',
    protocol: 'raft',
    file: 'election.ts',
    find: 'if (canVote && r.log.isUpToDate(lastIndex, lastTerm)) {',
    replace: 'if (canVote) {',
    bug: 'vote granted without the election restriction (candidate\'s log at least as up-to-date; thesis 3.6.1)',
  },
  {
    name: 'raft-vote-not-persisted',
    protocol: 'raft',
    file: 'rawnode.ts',
    find: 'encodeHardState({ term: r.term, vote: r.vote, commit: log.committed })',
    replace: 'encodeHardState({ term: r.term, vote: r.term === this.prevTerm ? this.prevVote : undefined, commit: log.committed })',
    bug: 'a vote is sent before it is durable: after a crash the node votes again in the same term (thesis 3.8, Figure 3.1 persistent state)',
  },
  {
    name: 'raft-term-not-persisted',
    protocol: 'raft',
    file: 'rawnode.ts',
    find: "rd.hardState = encodeHardState({ term: r.term, vote: r.vote, commit: log.committed });",
    replace: "rd.hardState = encodeHardState({ term: r.vote === undefined ? this.prevTerm : r.term, vote: r.vote, commit: log.committed });",
    bug: 'a term adopted without a vote is not persisted before replies leave: after a crash the node goes back to an older term and accepts its leader (Figure 3.1 persistent state)',
  },
  {
    name: 'raft-commit-index-decreases',
    protocol: 'raft',
    file: 'raft-log.ts',
    find: '    if (index <= this.committed) return;\n    if (index > this.lastIndex())',
    replace: '    if (index === this.committed) return;\n    if (index > this.lastIndex())',
    bug: 'commitTo lowers the commit index when a heartbeat carries a smaller one (commitIndex only increases, Figure 3.1)',
  },
  {
    name: 'raft-follower-keeps-conflicting-suffix',
    protocol: 'raft',
    file: 'raft-log.ts',
    find: 'if (!this.matchTerm(e.index, e.term)) return e.index;',
    replace: 'if (e.index > this.lastIndex()) return e.index;',
    bug: 'follower does not truncate a conflicting suffix: it keeps entries of an old term the leader replaced (Figure 3.1 AppendEntries rule 3)',
  },
  {
    name: 'raft-heartbeat-commit-unclamped',
    protocol: 'raft',
    file: 'replication.ts',
    find: "r.send(id, { type: 'Heartbeat', term: r.term, commit: Math.min(pr.match, committed), seq });",
    replace: "r.send(id, { type: 'Heartbeat', term: r.term, commit: committed, seq });",
    bug: 'heartbeat carries the full commit index: a follower whose log diverges commits entries it does not share with the leader (etcd; Log Matching, thesis 3.5)',
  },
  {
    name: 'raft-lease-too-long',
    protocol: 'raft',
    file: 'read-index.ts',
    find: 'r.leaseExpiry = Math.max(r.leaseExpiry, sent + r.leaseTicks);',
    replace: 'r.leaseExpiry = Math.max(r.leaseExpiry, sent + 2 * r.electionTicks);',
    bug: 'leader lease longer than the followers\' election timeout, with no margin for clock drift (thesis 6.4.1)',
    protocolOptions: { readOnly: 'lease' },
  },
  // --- paxos -----------------------------------------------------------------------------------------------
  {
    name: 'paxos-promise-not-persisted',
    protocol: 'paxos',
    file: 'ready.ts',
    find: 'rd.hardState = encodeHardState({ promised: n.promised, commit: n.commit,',
    replace: "rd.hardState = encodeHardState({ promised: n.role === 'follower' ? 0 : n.promised, commit: n.commit,",
    bug: 'an acceptor\'s promise to another proposer is never made durable: after a crash it promises or accepts a lower ballot (Paxos Made Simple 2.3, "an acceptor must remember this information even if it fails and then restarts")',
  },
  {
    name: 'paxos-phase1-ignores-highest-ballot',
    protocol: 'paxos',
    file: 'phase1.ts',
    find: 'if (cur === undefined || e.term > cur.term) n.adopt.set(e.index, e);',
    replace: 'if (cur === undefined || e.term < cur.term) n.adopt.set(e.index, e);',
    bug: 'new leader adopts the lowest-ballot value reported in phase 1 instead of the highest (Paxos Made Simple 2.2, P2c)',
  },
  {
    name: 'paxos-accept-below-promise',
    protocol: 'paxos',
    file: 'acceptor.ts',
    find: '  if (m.ballot < n.promised) return n.send(from, nack(n, m.ballot));\n  followLeader(n, from, m.ballot);\n  // Phase 2b',
    replace: '  followLeader(n, from, m.ballot);\n  // Phase 2b',
    bug: 'acceptor accepts a value at a ballot below its promise (Paxos Made Simple 2.2, P1a)',
  },
  {
    name: 'paxos-read-barrier-without-quorum',
    protocol: 'paxos',
    file: 'reads.ts',
    find: 'if (phase1Complete(n) && (soleVoter(n) || (n.o.leaseReads',
    replace: "if (phase1Complete(n) && (n.role === 'leader' || (n.o.leaseReads",
    // Not a smaller count in maybeConfirm: that runs only when an answer arrives, and with 3 voters one answer
    // (with the leader's own) already makes the quorum, so such a mutant is equivalent to the original there.
    bug: 'read released without a heartbeat round confirming leadership: a deposed leader serves stale reads (PMMC 3; Paxos Made Live 5.2)',
  },
  {
    name: 'paxos-lease-too-long',
    protocol: 'paxos',
    file: 'reads.ts',
    find: 'const lease = Math.floor((n.electionTicks * (1 - d)) / (1 + d)) - 1;',
    replace: 'const lease = 2 * n.electionTicks;',
    bug: 'leader lease longer than the followers\' stickiness, with no clock-drift margin (Paxos Made Live 5.2)',
    protocolOptions: { leaseReads: true },
  },
];

/** Applies `m` to the text of its file; throws unless `m.find` occurs exactly once. */
export function applyMutant(source: string, m: Mutant): string {
  const first = source.indexOf(m.find);
  if (first < 0) throw new Error(`mutant ${m.name}: pattern not found in packages/${m.protocol}/src/${m.file}: ${JSON.stringify(m.find)}`);
  if (source.indexOf(m.find, first + 1) >= 0) throw new Error(`mutant ${m.name}: pattern occurs more than once in packages/${m.protocol}/src/${m.file}`);
  return source.slice(0, first) + m.replace + source.slice(first + m.find.length);
}

/** Every protocol option set the catalogue sweeps `protocol` with (for the control runs), keyed by its JSON. */
export function optionSets(protocol: MutantProtocol, mutants: readonly Mutant[] = CATALOGUE): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const m of mutants) {
    if (m.protocol !== protocol) continue;
    const o = m.protocolOptions ?? {};
    out.set(JSON.stringify(o), o);
  }
  return out;
}
