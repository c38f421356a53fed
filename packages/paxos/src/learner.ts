import { SnapshotSender, type LogEntry, type NodeId, type Snapshot, type SnapshotChunk } from '@consensus-kit/core';
import { Membership } from './membership';
import type { CatchupRequest, Learn, Learned, SnapshotAck, SnapshotMessage } from './messages';
import type { PaxosNode } from './paxos';
import { maybeTimeoutNow } from './leader-transfer';
import { syncPeers } from './phase2';

/**
 * The learner (Paxos Made Simple 2.4): decisions in slot order, and catch-up of a lagging or restarted replica
 * through a stream of decided values (`Learn`) or, once the leader's log was compacted, its snapshot. Functions
 * over the `PaxosNode` state.
 */

/**
 * A snapshot install in progress: 'mark' writes the marks (installing, amnesia) alone, 'marking' waits for them
 * to be durable, 'install' replaces the log (Paxos Made Live 5.1 if the save tears between the two).
 */
export interface PendingInstall {
  stage: 'mark' | 'marking' | 'install';
  snapshot: Snapshot;
  membership: Membership;
  amnesia: number;
  from: NodeId;
}

const sameValue = (a: LogEntry, b: LogEntry) => a.type === b.type && a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);

/** Decided values streamed by a peer (the learners of Paxos Made Simple 2.4, catching up). */
export function handleLearn(n: PaxosNode, from: NodeId, m: Learn): void {
  let c = n.commit;
  for (const e of m.entries) {
    if (e.index <= c || e.index <= n.log.offset) continue;
    if (e.index > c + 1 || e.term === 0) break;
    const held = n.log.at(e.index);
    // Keep the higher of the two ballots when the value is the same: a lower one would hide, from a later
    // phase 1, that this acceptor voted for the value at the higher ballot.
    const term = held !== undefined && sameValue(held, e) ? Math.max(held.term, e.term) : e.term;
    if (held === undefined || held.term !== term || !sameValue(held, e)) n.log.put({ index: e.index, term, type: e.type, data: e.data });
    if (term > n.promised) {
      n.promised = term;
      n.hsDirty = true;
    }
    c = e.index;
  }
  if (c > n.commit) {
    decide(n, c);
    dropStaleIncoming(n);
  }
  n.send(from, { type: 'Learned', commit: n.commit });
}

/** A snapshot being assembled that the commit point passed is of no use: free its buffer. */
function dropStaleIncoming(n: PaxosNode): void {
  const h = n.snapIn.holding;
  if (h !== undefined && h.index <= n.commit) n.snapIn.reset();
}

/**
 * A chunk of a peer's snapshot (Raft thesis 5.3, Figure 5.3, chunked as core's `SnapshotReceiver` assembles it):
 * every chunk is answered with the bytes held (`SnapshotAck`), so the sender resumes there after a loss; the whole
 * snapshot, once assembled, is installed as a one-message snapshot was.
 */
export function handleSnapshot(n: PaxosNode, from: NodeId, m: SnapshotMessage): void {
  // A chunk from the leader this replica follows shows that leader alive, as its heartbeats do (Raft thesis 3.4: a
  // follower stays one while it receives valid RPCs from a leader, InstallSnapshot included; etcd's raft resets its
  // election countdown on a MsgSnap). A transfer of many chunks queued on one connection may keep the heartbeats
  // behind it; counting only those let the follower time out and campaign in the middle of its catch-up.
  if (n.role === 'follower' && from === n.leaderId) n.elapsed = 0;
  if (m.index <= n.commit || n.snap !== undefined || n.role === 'leader') {
    if (n.snap === undefined) n.send(from, { type: 'Learned', commit: n.commit });
    dropStaleIncoming(n);
    return;
  }
  const r = n.snapIn.receive(m);
  if (r.kind === 'stale') return;
  if (r.kind === 'refused') {
    // Nothing was allocated or changed: the replica keeps what it holds and says why it cannot catch up this way.
    n.snapRefused = `snapshot ${m.index} from ${from}: ${r.reason}`;
    return;
  }
  n.snapRefused = undefined;
  n.snapInAt = n.now;
  if (r.kind === 'ack') {
    n.send(from, { type: 'SnapshotAck', ...r.ack });
    return;
  }
  const membership = Membership.fromWire(m.membership);
  if (membership === undefined) {
    // Malformed metadata: not acknowledged, and forgotten, so the sender's retry starts the transfer over.
    n.snapIn.reset();
    return;
  }
  n.send(from, { type: 'SnapshotAck', ...r.ack });
  // Accepted values above the snapshot survive the install (written right after it); should the save tear
  // between the two, Paxos Made Live 5.1 applies: no promises until those slots are decided.
  const votes = n.log.slice(m.index + 1, n.log.lastIndex).some((e) => e.term > 0);
  n.snap = {
    stage: 'mark',
    snapshot: { index: m.index, term: m.term, config: m.config, data: r.data },
    membership,
    amnesia: votes ? n.log.lastIndex : 0,
    from,
  };
}

/**
 * Slots up to `to` are decided: follow configurations in slot order (PMMC section 4).
 *
 * The commit point alone does not dirty the hard state: knowing a slot decided is re-learnable (Paxos Made Simple
 * 2.4: a learner may always find out again), and a replica that restarts with an older commit is no different from
 * one that never heard of the later decisions. Every slot above its stored commit is undecided to it, so it keeps
 * what it holds there as accepted values (durable in the log) and lets the leader's commit point (Accept,
 * Heartbeat) or a `Learn` stream decide them again; a proposer of a higher ballot re-proposes the chosen value of
 * every such slot (P2c, Paxos Made Simple 2.2 and section 3), so an acceptance there never changes a chosen
 * value, and this replica promised at least every ballot it holds (its promise is rebuilt from the log). The
 * stored commit is only ever at or below the true one. Writing it costs every replica a synchronous durable write
 * per commit (storage-fs: temp file, fsync, rename, fsync dir), so it rides along whenever the hard state is
 * written for another reason: a promise, a snapshot install, or the two cases below, which must be exact.
 * - A configuration decided (its slot, activation and ranks): the stored membership must hold every
 *   configuration decided at or below any slot a restart may take as decided, i.e. the stored commit, the host's
 *   applied index and a compaction point; those slots may no longer be in the log to decide again.
 * - The amnesia mark cleared (Paxos Made Live 5.1): left stored, a restarted replica would refuse every promise
 *   until it learns that slot again, and a cluster whose every replica did so would elect no leader to learn it from.
 */
export function decide(n: PaxosNode, to: number): void {
  // No configuration above `lastConfigSlot` (paxos-log.ts): most decisions have none to look for.
  const last = Math.min(to, n.log.lastConfigSlot);
  for (let s = n.commit + 1; s <= last; s++) {
    const e = n.log.at(s);
    if (e !== undefined && e.type === 'config') {
      n.membership.decideEntry(e, n.o.window);
      n.hsDirty = true;
    }
  }
  n.commit = to;
  if (n.amnesiaUntil > 0 && n.commit >= n.amnesiaUntil) {
    n.amnesiaUntil = 0;
    n.hsDirty = true;
  }
  if (n.role === 'leader') syncPeers(n);
}

/** Decided values from slot `from` on, or the snapshot when they were compacted. */
export function sendLearn(n: PaxosNode, to: NodeId, from: number): void {
  if (from <= n.log.compactedThrough()) {
    const snap = n.storage.snapshot();
    if (snap === undefined || snap.index < from - 1 || snap.index > n.commit) return;
    streamSnapshot(n, to, snap);
    return;
  }
  const hi = Math.min(n.commit, from + n.o.maxBatch - 1);
  if (hi < from) return;
  const entries = learnBatch(n, from, hi);
  if (entries.length > 0) n.send(to, { type: 'Learn', commit: n.commit, entries });
}

/**
 * Decided values [from, hi], at most `maxLearnBytes` of data (always the first), read a few slots at a time: a
 * replica catching up on large values gets them in bounded messages (etcd's raft bounds its own, `MaxSizePerMsg`),
 * not `maxBatch` of them (32 MiB of 64 KiB values) read and encoded on the leader's event loop in one piece. The
 * peer's `Learned` answer asks for the next batch (`handleLearned`).
 */
function learnBatch(n: PaxosNode, from: number, hi: number): LogEntry[] {
  const out: LogEntry[] = [];
  let bytes = 0;
  for (let lo = from; lo <= hi; lo += 16) {
    const part = n.log.slice(lo, Math.min(hi, lo + 15));
    for (const e of part) {
      if (out.length > 0 && bytes + e.data.length > n.o.maxLearnBytes) return out;
      out.push(e);
      bytes += e.data.length;
    }
    if (part.length < Math.min(hi, lo + 15) - lo + 1) return out; // compacted or missing: what was read, in order
  }
  return out;
}

/** A peer reports its commit point after a Learn or a snapshot: stream on while it lags. */
export function handleLearned(n: PaxosNode, from: NodeId, m: Learned): void {
  snapshotCaughtUp(n, from, m.commit);
  const pr = n.role === 'leader' ? n.peers.get(from) : undefined;
  if (pr === undefined) return;
  const progress = m.commit > pr.commit;
  pr.commit = Math.max(pr.commit, m.commit);
  // Only while it makes progress: a peer that restarted with an older commit point (it is not written on every
  // decision, see `decide`) cannot use the slots above its gap, and would answer each such Learn alike, forever.
  // Its heartbeat replies report where it stands, and the stall check there streams from that point.
  if (progress && pr.commit < n.commit) sendLearn(n, from, pr.commit + 1);
  maybeTimeoutNow(n, from);
}

/** A proposer whose phase 1 met compacted slots asks for the decided values it lacks. */
export function handleCatchupRequest(n: PaxosNode, from: NodeId, m: CatchupRequest): void {
  if (m.from <= n.commit) sendLearn(n, from, m.from);
}

// -- snapshot streaming (the sending side) -----------------------------------------------------------------------

/** Snapshot chunks in flight per peer (as raft's snapshot-stream.ts). */
const SNAPSHOT_WINDOW_CHUNKS = 4;

/** A transfer of the storage's snapshot to one peer (core's `SnapshotSender`). */
export interface OutgoingSnapshot {
  sender: SnapshotSender;
  /** The tick of the last answer (or the start): a peer silent for long is dropped, a later catch-up restarts. */
  heard: number;
  /** The tick the peer acknowledged every byte, -1 before. */
  doneAt: number;
}

function sendChunks(n: PaxosNode, to: NodeId, snap: Snapshot, chunks: SnapshotChunk[]): void {
  if (chunks.length === 0) return;
  const membership = n.membership.asOf(snap.index).toWire();
  for (const c of chunks) {
    n.send(to, { type: 'SnapshotChunk', index: c.index, term: c.term, config: snap.config, total: c.total, offset: c.offset, data: c.data, epoch: c.epoch, membership });
  }
}

const isCurrent = (out: OutgoingSnapshot, snap: Snapshot) => out.sender.current?.index === snap.index && out.sender.current.term === snap.term;

/**
 * Starts, or keeps going, the transfer of `snap` to `to`: the window's chunks, resumed where the peer's answers
 * left it. Once the peer acknowledged every byte it is installing the snapshot; a request after an election
 * timeout more (the install was dropped, e.g. the peer restarted) sends it again.
 */
function streamSnapshot(n: PaxosNode, to: NodeId, snap: Snapshot): void {
  let out = n.snapOut.get(to);
  if (out === undefined) {
    const sender = new SnapshotSender({ chunkBytes: n.o.snapshotChunkBytes, windowChunks: SNAPSHOT_WINDOW_CHUNKS, stallTicks: 2 * n.heartbeatTicks });
    out = { sender, heard: n.now, doneAt: -1 };
    n.snapOut.set(to, out);
  }
  if (out.sender.done && isCurrent(out, snap)) {
    if (n.now - out.doneAt < n.electionTicks) return;
    out.sender.stop();
  }
  if (!isCurrent(out, snap)) {
    out.heard = n.now;
    out.doneAt = -1;
  }
  sendChunks(n, to, snap, out.sender.start({ index: snap.index, term: snap.term }, snap.data, n.promised));
}

/** The peer holds the first `m.offset` bytes: resume from there (a gap) or send on within the window. */
export function handleSnapshotAck(n: PaxosNode, from: NodeId, m: SnapshotAck): void {
  const out = n.snapOut.get(from);
  if (out === undefined) return;
  const snap = n.storage.snapshot();
  if (snap === undefined || !isCurrent(out, snap)) return; // a newer snapshot restarts at the next tick
  out.heard = n.now;
  const chunks = out.sender.onAck(m);
  if (out.sender.done && out.doneAt < 0) out.doneAt = n.now;
  sendChunks(n, from, snap, chunks);
}

/** The peer's commit point reached the snapshot being sent: the transfer is over. */
export function snapshotCaughtUp(n: PaxosNode, id: NodeId, commit: number): void {
  const out = n.snapOut.get(id);
  const cur = out?.sender.current;
  if (out !== undefined && (cur === undefined || commit >= cur.index)) n.snapOut.delete(id);
}

/**
 * Every tick: a transfer without an advancing answer for `stallTicks` resends from the last acknowledged byte
 * (core's SnapshotSender.tick); a transfer whose snapshot the host replaced restarts with the new one (as raft's
 * snapshot-stream.ts); a finished one is forgotten after two election timeouts, a silent peer's after ten.
 */
export function tickSnapshots(n: PaxosNode): void {
  // The receiving side: a partial snapshot no sender went on with for four election timeouts (its sender crashed
  // or was deposed) is dropped, so a transfer of an older snapshot or a lower epoch is not refused forever.
  if (n.snapInAt >= 0 && n.now - n.snapInAt > 4 * n.electionTicks) {
    n.snapIn.reset();
    n.snapInAt = -1;
  }
  if (n.snapOut.size === 0) return;
  const snap = n.storage.snapshot();
  for (const [to, out] of n.snapOut) {
    if (out.sender.done) {
      if (n.now - out.doneAt >= 2 * n.electionTicks) n.snapOut.delete(to);
      continue;
    }
    if (snap === undefined || snap.index > n.commit || n.now - out.heard >= 10 * n.electionTicks) {
      n.snapOut.delete(to);
      continue;
    }
    if (!isCurrent(out, snap)) {
      streamSnapshot(n, to, snap);
      continue;
    }
    sendChunks(n, to, snap, out.sender.tick());
  }
}
