import type { AppendEntries, AppendEntriesResponse, Heartbeat, HeartbeatResponse, RaftMessage } from './messages';
import type { NodeId } from '@consensus-kit/core';
import { leaveJoint } from './confchange';
import { sendTimeoutNow } from './leader-transfer';
import { encodeClusterConfig, isVoter, type LogEntry } from '@consensus-kit/core';
import type { Raft } from './raft';
import { handleReadIndex, maybeReleaseReads } from './read-index';
import { sendSnapshot, snapshotHeartbeat } from './snapshot-stream';
import { voterIds } from './tracker';

/**
 * The leader's side of log replication (thesis 3.5, 3.6.2, 10.2.1): acknowledgements and rejections, the
 * commit rule, flow-controlled and pipelined AppendEntries, heartbeats, and the flush that batches them at the
 * Ready boundary. Functions over the `Raft` state; per-follower flow control lives in `Progress`.
 */

const EMPTY: LogEntry[] = [];

export function handleAppendResponse(r: Raft, from: NodeId, m: AppendEntriesResponse): void {
  const pr = r.prs.get(from);
  if (pr === undefined || from === r.id) return;
  pr.recentActive = true;
  if (m.reject) {
    if (m.index > r.log.lastIndex()) return; // we never sent that
    let next = m.hintIndex ?? 0;
    // Fast backtracking (thesis 5.3): jump over every entry of ours whose term is above the follower's.
    if ((m.hintTerm ?? 0) > 0) next = r.log.findConflictByTerm(next, m.hintTerm ?? 0)[0];
    if (pr.maybeDecrTo(m.index, next)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, from);
    }
    return;
  }
  if (m.index > r.log.lastIndex()) return; // acknowledges entries we do not have: bogus
  const oldPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) {
    // Stale or duplicate acknowledgement. A follower finishing a snapshot may still need a nudge.
    if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      sendAppend(r, from);
    }
    return;
  }
  switch (pr.state) {
    case 'probe':
      pr.becomeReplicate();
      break;
    case 'snapshot':
      if (pr.match + 1 >= r.log.firstIndex() || pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
      break;
    default:
      pr.inflights.freeLE(m.index);
  }
  if (!maybeCommit(r) && oldPaused) sendAppend(r, from);
  if (r.role !== 'leader') return; // the commit removed us (thesis 4.2.2)
  // Pipelining: keep the window full.
  while (maybeSendAppend(r, from, false));
  if (from === r.leadTransferee && pr.match === r.log.lastIndex()) sendTimeoutNow(r, from);
}

export function handleHeartbeatResponse(r: Raft, from: NodeId, m: HeartbeatResponse): void {
  const pr = r.prs.get(from);
  if (pr === undefined || from === r.id) return;
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === 'replicate' && pr.inflights.full()) {
    // An acknowledgement was probably lost: free a slot so the follower is probed again.
    pr.inflights.freeFirstOne();
  }
  if (pr.state === 'snapshot') {
    snapshotHeartbeat(r, from, pr);
  } else if (pr.match < r.log.lastIndex()) {
    sendAppend(r, from);
  }
  r.readOnly.ack(from, m.seq);
  maybeReleaseReads(r);
}

/** Thesis 3.6.2 / Figure 8: commit the highest index replicated on a quorum, if it is of this term. */
export function maybeCommit(r: Raft): boolean {
  const mci = r.tracker.committedIndex(r.config);
  if (mci === Number.MAX_SAFE_INTEGER || !r.log.maybeCommit(mci, r.term)) return false;
  if (r.commitNotify === 'immediate') r.needCommitBroadcast = true;
  else r.commitUnsent = true;
  afterCommit(r);
  return true;
}

export function afterCommit(r: Raft): void {
  const committed = r.log.committed;
  // Forget configurations that can no longer be truncated away, except the latest committed one.
  r.configs.forgetCommitted(committed);
  if (r.pendingReads.length > 0 && r.log.term(committed) === r.term) {
    const reads = r.pendingReads;
    r.pendingReads = [];
    for (const rd of reads) handleReadIndex(r, rd.from, rd.ctx);
  }
  const current = r.configs.latest();
  if (current.index > committed) return;
  const leave = r.pendingConfIndex <= committed ? leaveJoint(r.config) : undefined;
  if (leave !== undefined) {
    // Thesis 4.3: once C_old,new is committed the leader moves to C_new on its own.
    r.pendingConfIndex = r.appendEntry('config', encodeClusterConfig(leave));
  } else if (!isVoter(r.config, r.id)) {
    // Thesis 4.2.2: a leader not in C_new steps down once C_new is committed. Tell followers the commit first,
    // then hand over to an up-to-date voter at once (thesis 3.10) instead of leaving the cluster to time out.
    broadcastAppend(r, true);
    let best: NodeId | undefined;
    let bestMatch = -1;
    for (const id of voterIds(r.config)) {
      const m = r.prs.get(id)?.match ?? 0;
      if (id !== r.id && m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    if (best !== undefined && bestMatch === r.log.lastIndex()) sendTimeoutNow(r, best);
    r.becomeFollower(r.term, undefined);
  }
}

export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/**
 * Sends the next AppendEntries to `to` if flow control allows (etcd's maybeSendAppend): in probe state one
 * per heartbeat interval, in replicate state while the in-flight window has room. Falls back to a snapshot
 * when the entries `to` needs are compacted.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.prs.get(to);
  if (pr === undefined || to === r.id || pr.isPaused()) return false;
  const log = r.log;
  const prevIndex = pr.next - 1;
  const prevTerm = log.term(prevIndex);
  if (prevTerm < 0) return sendSnapshot(r, to, pr);
  const last = log.lastIndex();
  const memo = r.appendMemo;
  if (memo !== undefined && memo !== null && memo.prevIndex === prevIndex && memo.last === last && memo.commit === log.committed) {
    // Same batch as the follower before (the usual case: every follower in step). Sharing the message
    // object lets the transport encode it once for all of them.
    if (memo.count === 0 && !sendIfEmpty) return false;
    r.send(to, memo.msg);
    pr.sentEntries(memo.count, prevIndex + memo.count, memo.bytes);
    return true;
  }
  let ents: LogEntry[] = EMPTY;
  if (pr.next <= last) {
    const s = log.slice(pr.next, last + 1, r.maxSizePerMsg);
    if (s === undefined) return sendSnapshot(r, to, pr);
    ents = s;
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  let bytes = 0;
  for (let i = 0; i < ents.length; i++) bytes += (ents[i] as LogEntry).data.length + 24;
  const msg: RaftMessage = { type: 'AppendEntries', term: r.term, prevIndex, prevTerm, entries: ents, commit: log.committed };
  r.send(to, msg);
  pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
  if (r.appendMemo !== null) r.appendMemo = { prevIndex, last, commit: log.committed, msg, count: ents.length, bytes };
  return true;
}

/** Flow-controlled appends to every follower; with `sendIfEmpty` also an empty one to carry the commit. */
export function broadcastAppend(r: Raft, sendIfEmpty: boolean): void {
  // Within one broadcast the log, term and commit index stand still, so an AppendEntries built for one
  // follower serves every other follower that needs the same range (appendMemo).
  r.appendMemo = undefined;
  try {
    for (const [id, pr] of r.prs) {
      if (id === r.id || !maybeSendAppend(r, id, sendIfEmpty)) continue;
      // Pipelining (thesis 10.2.1): a follower in replicate state gets every pending batch now.
      while (pr.state === 'replicate' && maybeSendAppend(r, id, false));
    }
  } finally {
    r.appendMemo = null;
  }
}

export function broadcastHeartbeat(r: Raft): void {
  const seq = r.readOnly.nextRound(r.ticks);
  const committed = r.log.committed;
  for (const [id, pr] of r.prs) {
    if (id === r.id) continue;
    r.send(id, { type: 'Heartbeat', term: r.term, commit: Math.min(pr.match, committed), seq });
  }
  maybeReleaseReads(r);
}

/** Work deferred to the Ready boundary so that many proposals and reads share messages. */
export function flush(r: Raft): void {
  if (r.role !== 'leader') return;
  if (r.needAppend || r.needCommitBroadcast) {
    const ifEmpty = r.needCommitBroadcast;
    r.needAppend = false;
    r.needCommitBroadcast = false;
    r.commitUnsent = false; // every follower with room gets an AppendEntries, which carries it
    broadcastAppend(r, ifEmpty);
  }
  if (r.readOnly.needsRound()) broadcastHeartbeat(r);
}

// Follower side: the AppendEntries and Heartbeat receivers (Figure 3.1).

export function handleAppendEntries(r: Raft, from: NodeId, m: AppendEntries): void {
  const log = r.log;
  if (m.prevIndex < log.committed) {
    // Everything up to our commit index already agrees with any leader (Log Matching + Leader Completeness).
    r.send(from, { type: 'AppendEntriesResponse', term: r.term, index: log.committed, reject: false });
    return;
  }
  const lastNew = log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
  if (lastNew === -1) return; // would rewrite a committed entry: faulty input, ignored
  if (lastNew !== undefined) {
    r.send(from, { type: 'AppendEntriesResponse', term: r.term, index: lastNew, reject: false });
    return;
  }
  // Rejection with a hint so the leader can skip a whole term per round trip (thesis 5.3 optimisation).
  const [hintIndex, hintTerm] = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
  r.send(from, { type: 'AppendEntriesResponse', term: r.term, index: m.prevIndex, reject: true, hintIndex, hintTerm });
}

export function handleHeartbeat(r: Raft, from: NodeId, m: Heartbeat): void {
  // The leader sends min(our match, its commit), so this never commits an entry we do not share with it.
  r.log.commitTo(Math.min(m.commit, r.log.lastIndex()));
  r.send(from, { type: 'HeartbeatResponse', term: r.term, seq: m.seq });
}
