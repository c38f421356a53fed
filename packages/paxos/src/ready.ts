import type { Envelope, LogEntry, Ready, ReadState } from '@consensus-kit/core';
import { encodeHardState } from './hard-state';
import { markStatus, status, statusChanged } from './node-status';
import type { PaxosMessage } from './messages';
import type { PaxosNode } from './paxos';
import { broadcastHeartbeat, maybeCommit, sendAccepts } from './phase2';

/**
 * Ready assembly (core's etcd/raft `RawNode` model): what to persist (the promise and membership in the hard
 * state, the commit point riding along but never written for its own sake, see `decide` in learner.ts; accepted
 * values as entries; a snapshot install in two steps), send, apply and report, and `advance`, after which the
 * leader's own vote counts. Functions over the `PaxosNode` state.
 */

const NO_ENTRIES: LogEntry[] = [];
const NO_MESSAGES: Envelope[] = [];
const NO_READS: ReadState[] = [];

export function hasReady(n: PaxosNode): boolean {
  return (
    n.msgs.length > 0 ||
    n.readsOut.length > 0 ||
    n.hsDirty ||
    n.log.dirtyFrom <= n.log.lastIndex ||
    n.commit > n.emitted ||
    n.needBroadcast ||
    n.needHeartbeat ||
    (n.snap !== undefined && n.snap.stage !== 'marking') ||
    statusChanged(n)
  );
}

/**
 * The commit point a hard state written now may carry: slots at or below it are taken as decided on a restart
 * (paxos.ts), with the value the log holds there, so their values must be durable no later than the hard state.
 * In one save the entries become durable before the hard state (DESIGN r2, "Crash order inside one save"), but a
 * Ready that holds back the slots changed since the last one (`dirtyFrom`: the install's marks-only Ready, see
 * learner.ts `PendingInstall`) writes a hard state without them. A slot learned decided meanwhile (a `Learn`
 * arriving after the `Snapshot`) may still hold, on disk, a ballot-0 placeholder or a value of an older ballot:
 * a commit point stored past it made a restart after a lost next save apply that placeholder as chosen (lock
 * sim, paxos seed 9717: `120/0 noop` applied where `120/53251 command` was chosen). So the stored commit stops
 * below the first slot not yet handed to a save; it may be older than the true one (see `decide` in learner.ts).
 * Call after this Ready's entries are settled (`markStable` when it carries them).
 */
function storedCommit(n: PaxosNode): number {
  return Math.min(n.commit, n.log.dirtyFrom - 1);
}

export function ready(n: PaxosNode): Ready {
  if (n.role === 'leader') {
    if (n.needBroadcast) for (const [id, pr] of n.peers) sendAccepts(n, id, pr);
    if (n.needHeartbeat) broadcastHeartbeat(n);
  }
  n.needBroadcast = n.needHeartbeat = false;
  // Empty parts share one empty array each, as raft's RawNode does: a Ready allocates only what it carries.
  const rd: Ready = { entries: NO_ENTRIES, messages: NO_MESSAGES, committed: NO_ENTRIES, reads: NO_READS };
  const snap = n.snap;
  // As Raft thesis 10.2.1 (and raft's RawNode here): the leader hands out its Accepts in a Ready without the new
  // slots and writes them in the next one, so the acceptors write while the leader writes instead of after it.
  // An Accept is a proposal, not a vote: the leader counts its own vote only for slots a Ready carried and the
  // host made durable (`readyMark`, `advance`), and its ballot is never reused after a crash (the promise is
  // durable). Only when nothing else is queued that needs this Ready's writes first (phase-2 traffic alone, no
  // hard state, no snapshot install), and never twice in a row, so the slots are always written next.
  const sendFirst =
    n.role === 'leader' &&
    !n.sentFirst &&
    snap === undefined &&
    !n.hsDirty &&
    n.msgs.length > 0 &&
    n.log.dirtyFrom <= n.log.lastIndex &&
    n.msgs.every((e) => {
      const t = (e.msg as PaxosMessage).type;
      return t === 'Accept' || t === 'Heartbeat';
    });
  n.sentFirst = sendFirst;
  if (snap?.stage === 'mark') {
    // First the marks (installing, amnesia) alone, durable before the log is replaced.
    rd.hardState = encodeHardState({
      promised: n.promised,
      commit: storedCommit(n),
      membership: n.membership,
      amnesiaUntil: Math.max(n.amnesiaUntil, snap.amnesia),
      installing: { index: snap.snapshot.index, membership: snap.membership },
    });
    n.hsDirty = false;
    snap.stage = 'marking';
  } else {
    if (snap?.stage === 'install' && n.commit >= snap.snapshot.index) n.snap = undefined;
    else if (snap?.stage === 'install') {
      n.log.resetTo(snap.snapshot.index, snap.snapshot.term);
      n.membership = snap.membership;
      n.commit = n.emitted = snap.snapshot.index;
      rd.snapshot = snap.snapshot;
      n.installing = true;
      n.hsDirty = true;
      n.snap = undefined;
      n.send(snap.from, { type: 'Learned', commit: n.commit });
    }
    if (snap?.stage !== 'marking' && !sendFirst) {
      if (n.log.dirtyFrom <= n.log.lastIndex) rd.entries = n.log.unstable();
      n.log.markStable();
    }
    if (n.commit > n.emitted) {
      rd.committed = n.log.slice(n.emitted + 1, n.commit);
      n.emitted = n.commit;
    }
    if (n.hsDirty) {
      // Every slot changed since the last Ready is in this one (a send-first Ready writes no hard state, and the
      // 'marking' stage is never seen here: no host asks for a Ready before the previous one is advanced), so
      // `n.commit` is `storedCommit(n)` here.
      rd.hardState = encodeHardState({ promised: n.promised, commit: n.commit, membership: n.membership, amnesiaUntil: n.amnesiaUntil });
      n.hsDirty = false;
    }
  }
  if (n.msgs.length > 0) {
    rd.messages = n.msgs;
    n.msgs = [];
  }
  if (n.readsOut.length > 0) {
    rd.reads = n.readsOut;
    n.readsOut = [];
  }
  if (statusChanged(n)) {
    markStatus(n);
    rd.status = status(n);
  }
  n.readyMark = n.role === 'leader' && !sendFirst ? { ballot: n.ballot, upTo: n.nextSlot - 1 } : undefined;
  return rd;
}

export function advance(n: PaxosNode, rd: Ready): void {
  if (n.snap?.stage === 'marking') n.snap.stage = 'install';
  // The host made the install durable and restored the state machine from it (see `installing`).
  if (rd.snapshot !== undefined) n.installing = false;
  // Slots decided, handed to the state machine and durable (every Ready's entries are, once it is advanced;
  // `dirtyFrom` marks what no Ready carried yet) leave memory for the storage (paxos-log.ts).
  n.log.release(Math.min(n.emitted, n.log.dirtyFrom - 1));
  const mark = n.readyMark;
  n.readyMark = undefined;
  // The leader's own vote counts once it is durable (PMMC: the leader is one of the acceptors).
  if (mark !== undefined && n.role === 'leader' && mark.ballot === n.ballot && mark.upTo > n.selfMatch) {
    n.selfMatch = mark.upTo;
    maybeCommit(n);
  }
}
