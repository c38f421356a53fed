import { SnapshotSender, type NodeId, type Snapshot, type SnapshotChunk } from '@consensus-kit/core';
import { ackEpoch } from './discovery';
import type { SnapAck, SnapChunk } from './messages';
import type { Peer, ZabNode } from './zab';

/**
 * SNAP in chunks (phase 2, DSN 2011 IV-B; ZooKeeper's LearnerHandler.syncFollower writes the SNAP packet and then
 * the serialized data tree on the follower's stream, Learner.syncWithLeader deserializes the whole tree before it
 * reads the proposals and NEWLEADER that follow). Here the snapshot goes `snapshotChunkBytes` at a time through
 * core's SnapshotSender / SnapshotReceiver: a window of chunks in flight, the follower answering each with the
 * bytes it holds, the leader resuming from that offset after a loss (stall detected on its ticks).
 *
 * The order of phase 2 is kept: the follower installs the snapshot only once it holds all of it; then it asks for
 * the rest with a new ACKEPOCH (one more `req`), which the leader answers with the DIFF after the snapshot, and only
 * once its log reaches the leader's initial history does it persist currentEpoch and ACK NEWLEADER
 * (synchronisation.ts). Departure from ZooKeeper: the DIFF waits for that round trip instead of following the
 * snapshot on the stream, since here the network may drop or reorder and the follower says where it stands.
 */

/** The leader starts (or, for the same snapshot, keeps going with) the transfer of `snap` to `id`. */
export function sendSnapshot(z: ZabNode, id: NodeId, p: Peer, req: number, snap: Snapshot): void {
  p.snap ??= new SnapshotSender({ chunkBytes: z.o.snapshotChunkBytes });
  p.snapConfig = snap.config;
  p.snapReq = req;
  p.snapTotal = snap.data.length;
  sendChunks(z, id, p, p.snap.start({ index: snap.index, term: snap.term }, snap.data, z.epoch));
}

function sendChunks(z: ZabNode, id: NodeId, p: Peer, chunks: SnapshotChunk[]): void {
  if (p.snapConfig === undefined) return;
  for (const c of chunks) {
    z.send(id, { type: 'SnapChunk', nonce: p.nonce, req: p.snapReq, epoch: z.epoch, index: c.index, term: c.term, config: p.snapConfig, total: c.total, offset: c.offset, data: c.data });
  }
}

/** The leader, on a follower's SnapAck: the window moves on (or back, to the follower's offset, after a gap). */
export function handleSnapAck(z: ZabNode, id: NodeId, p: Peer, m: SnapAck): void {
  if (p.stage !== 'sync' || p.snap === undefined) return;
  sendChunks(z, id, p, p.snap.onAck({ index: m.index, term: m.term, offset: m.offset, gap: m.gap }));
}

/** The leader's tick: a transfer without progress for a while resends from the last acknowledged byte. */
export function tickSnapshots(z: ZabNode): void {
  for (const [id, p] of z.peers) {
    if (p.stage === 'sync' && p.snap !== undefined && !p.snap.done) sendChunks(z, id, p, p.snap.tick());
  }
}

/** The leader synchronises `p` some other way (DIFF, TRUNC) or is done with it: the transfer is forgotten. */
export function stopSnapshot(p: Peer): void {
  p.snap = undefined;
  p.snapConfig = undefined;
}

/**
 * The follower, on a chunk of its leader's SNAP: assemble it in order and answer with the bytes held. Once whole it
 * is installed (Learner.syncWithLeader on SNAP: the data tree replaces the follower's), and the next ACKEPOCH,
 * which leaves only once the install is durable (messages leave after their Ready), asks for what follows it.
 */
export function handleSnapChunk(z: ZabNode, m: SnapChunk): void {
  const leader = z.leaderId as NodeId;
  // Bytes of one leader's snapshot are kept across its sessions (a reconnection resumes the transfer), never mixed
  // with another leader's: two servers' snapshots at one index hold the same state but not always the same bytes.
  if (z.snapFrom !== leader) {
    z.snapIn.reset();
    z.snapFrom = leader;
  }
  const r = z.snapIn.receive({ index: m.index, term: m.term, total: m.total, offset: m.offset, data: m.data, epoch: m.epoch });
  if (r.kind === 'stale') return;
  if (r.kind === 'refused') {
    // Nothing was allocated or changed: the follower keeps what it holds and says why it cannot synchronise.
    z.snapRefused = `snapshot ${m.index} from ${leader}: ${r.reason}`;
    return;
  }
  z.snapRefused = undefined;
  z.send(leader, { type: 'SnapAck', nonce: z.nonce, epoch: z.leaderEpoch, index: r.ack.index, term: r.ack.term, offset: r.ack.offset, gap: r.ack.gap });
  if (r.kind !== 'complete') return;
  // Handed over once: a later SNAP of the same snapshot (a new session) starts again from nothing.
  z.snapIn.reset();
  // A snapshot at or below the commit point holds nothing this follower lacks (see handleSync).
  if (m.index > z.commit) z.log.installSnapshot({ index: m.index, term: m.term, config: m.config, data: r.data });
  z.syncReq++;
  z.send(leader, ackEpoch(z));
}
