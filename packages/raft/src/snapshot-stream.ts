import type { NodeId, Snapshot } from '@consensus-kit/core';
import type { InstallSnapshot, InstallSnapshotResponse } from './messages';
import { applyConfig, cloneConfig } from './membership';
import type { Progress } from './progress';
import type { Raft } from './raft';
import { sendAppend } from './replication';

/**
 * Snapshot streaming (thesis 5.3 InstallSnapshot, Figure 5.3), chunked and windowed: the leader streams
 * chunks to a follower in snapshot state, at most SNAPSHOT_WINDOW_CHUNKS unacknowledged, and resumes from the
 * follower's offset after a loss; the follower assembles chunks in order and installs the whole snapshot.
 */

/** Snapshot chunks in flight per follower. */
const SNAPSHOT_WINDOW_CHUNKS = 4;
/** Heartbeat responses without chunk progress before resending from the last acknowledged byte. */
const SNAPSHOT_STALL_HEARTBEATS = 2;

/** A follower's snapshot being assembled from chunks. */
export interface IncomingSnapshot {
  index: number;
  term: number;
  /** The term of the leader streaming it. */
  leaderTerm: number;
  config: ClusterConfigLike;
  buf: Uint8Array;
  received: number;
}

type ClusterConfigLike = Snapshot['config'];

/**
 * InstallSnapshot receiver (thesis 5.3, Figure 5.3), chunked: chunks must arrive in order; anything else is
 * answered with the offset we hold so the leader resumes from there.
 */
export function handleSnapshotChunk(r: Raft, from: NodeId, m: InstallSnapshot): void {
  const log = r.log;
  if (m.index <= log.committed || log.matchTerm(m.index, m.snapTerm)) {
    // We already hold this prefix: no transfer needed (etcd's fast-forward); Figure 5.3 rule 6.
    r.incoming = undefined;
    log.commitTo(Math.min(m.index, log.lastIndex()));
    r.send(from, { type: 'AppendEntriesResponse', term: r.term, index: log.committed, reject: false });
    return;
  }
  if (m.total > r.maxSnapshotBytes) {
    // Refused before its declared size is allocated (as paxos and zab do): nothing is answered and nothing changes,
    // a partial transfer held stays. The term and leader were already taken from the message (Figure 5.3 rule 1,
    // thesis 3.4), so the follower does not campaign; the leader's stall rule resends, and meets the same refusal
    // until the snapshot shrinks or the limit is raised.
    r.snapRefused = `snapshot ${m.index} from ${from}: snapshot of ${m.total} bytes over the ${r.maxSnapshotBytes}-byte limit`;
    return;
  }
  let inc = r.incoming;
  // A transfer belongs to one leadership: a new leader's snapshot replaces whatever an old one had begun.
  if (inc !== undefined && inc.leaderTerm !== m.term) inc = undefined;
  if (inc !== undefined && m.index < inc.index) return; // a chunk of an older transfer of this leader
  if (inc === undefined || inc.index !== m.index || inc.term !== m.snapTerm || inc.buf.length !== m.total) {
    if (m.offset !== 0) {
      r.send(from, { type: 'InstallSnapshotResponse', term: r.term, index: m.index, offset: 0, reject: true });
      return;
    }
    let buf: Uint8Array;
    try {
      buf = new Uint8Array(m.total);
    } catch {
      r.snapRefused = `snapshot ${m.index} from ${from}: cannot allocate ${m.total} bytes`;
      return; // cannot hold it; the leader will retry
    }
    inc = { index: m.index, term: m.snapTerm, leaderTerm: m.term, config: cloneConfig(m.config), buf, received: 0 };
    r.incoming = inc;
    r.snapRefused = undefined;
  }
  if (m.offset !== inc.received) {
    r.send(from, { type: 'InstallSnapshotResponse', term: r.term, index: m.index, offset: inc.received, reject: m.offset > inc.received });
    return;
  }
  inc.buf.set(m.data, m.offset);
  inc.received += m.data.length;
  if (inc.received < inc.buf.length) {
    r.send(from, { type: 'InstallSnapshotResponse', term: r.term, index: m.index, offset: inc.received, reject: false });
    return;
  }
  r.incoming = undefined;
  const snap: Snapshot = { index: inc.index, term: inc.term, config: inc.config, data: inc.buf };
  // Figure 5.3 rules 6-8: discard the whole log, install the snapshot, adopt its configuration.
  log.restore(snap);
  r.configs.restore(snap);
  applyConfig(r, r.configs.latest().config);
  // The acknowledgement leaves with the Ready that installs the snapshot, i.e. once it is durable.
  r.send(from, { type: 'AppendEntriesResponse', term: r.term, index: log.lastIndex(), reject: false });
}

export function handleSnapshotResponse(r: Raft, from: NodeId, m: InstallSnapshotResponse): void {
  const pr = r.prs.get(from);
  if (pr === undefined || from === r.id) return;
  pr.recentActive = true;
  if (pr.state !== 'snapshot' || m.index !== pr.pendingSnapshot) return;
  if (m.offset > pr.snapAcked) {
    pr.snapAcked = Math.min(m.offset, pr.snapSent);
    pr.snapProgressed = true;
    pr.snapRewound = -1;
  }
  // A chunk was lost: resume from what the follower holds. Every chunk after the gap reports the same
  // offset; one rewind per gap is enough.
  if (m.reject && m.offset < pr.snapSent && m.offset !== pr.snapRewound) {
    pr.snapAcked = m.offset;
    pr.snapSent = m.offset;
    pr.snapDoneSent = false;
    pr.snapRewound = m.offset;
  }
  sendSnapshotChunks(r, from, pr);
}

export function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  const snap = r.log.storage.snapshot();
  if (snap === undefined) return false; // storage compacted without a snapshot: nothing we can send
  pr.becomeSnapshot(snap.index);
  sendSnapshotChunks(r, to, pr);
  return true;
}

/** Streams snapshot chunks to `to` while fewer than SNAPSHOT_WINDOW_CHUNKS are unacknowledged. */
export function sendSnapshotChunks(r: Raft, to: NodeId, pr: Progress): void {
  const snap = r.log.storage.snapshot();
  if (snap === undefined || snap.index !== pr.pendingSnapshot) {
    // The host took a newer snapshot meanwhile: probe again, which restarts with the newest snapshot.
    pr.becomeProbe();
    pr.next = pr.match + 1;
    sendAppend(r, to);
    return;
  }
  const s = snap as Snapshot;
  const total = s.data.length;
  const chunk = r.snapshotChunkBytes;
  let window = chunk * SNAPSHOT_WINDOW_CHUNKS;
  if (r.maxInflightBytes > 0) window = Math.max(chunk, Math.min(window, r.maxInflightBytes));
  while (!pr.snapDoneSent && pr.snapSent - pr.snapAcked < window) {
    const end = Math.min(total, pr.snapSent + chunk);
    r.send(to, {
      type: 'InstallSnapshot',
      term: r.term,
      index: s.index,
      snapTerm: s.term,
      config: s.config,
      total,
      offset: pr.snapSent,
      data: s.data.subarray(pr.snapSent, end),
    });
    pr.snapSent = end;
    if (end === total) pr.snapDoneSent = true;
  }
}

/**
 * A heartbeat response from a follower in snapshot state: if no chunk was acknowledged since the last one for
 * a while, a chunk or its acknowledgement was lost; resume from the last acknowledged byte. Then keep the
 * window full.
 */
export function snapshotHeartbeat(r: Raft, from: NodeId, pr: Progress): void {
  if (pr.snapProgressed) {
    pr.snapProgressed = false;
    pr.snapStall = 0;
  } else if (++pr.snapStall >= SNAPSHOT_STALL_HEARTBEATS) {
    pr.snapStall = 0;
    pr.snapSent = pr.snapAcked;
    pr.snapDoneSent = false;
    pr.snapRewound = -1;
  }
  sendSnapshotChunks(r, from, pr);
}
