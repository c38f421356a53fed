/** One follower or observer session as the leader sees it (printed by tools, never interpreted). */
export interface ZabPeerDetails {
  stage: string;
  match: number;
  next: number;
  /** A SNAP in chunks under way: the snapshot's index, and the bytes the peer acknowledged of its `total`. */
  snapshot?: { index: number; acked: number; total: number };
}

/** What `ZabNode.status().details` holds. */
export type ZabStatusDetails = {
  /** ZooKeeper's server state: looking, following or leading. */
  phase: string;
  /** Follower: discovery, acked, syncing, synced, uptodate. Leader: discovery, sync, established. */
  stage?: string;
  acceptedEpoch: number;
  currentEpoch: number;
  /** The last zxid, `0x<epoch>_<counter>`. */
  lastZxid: string;
  /** The Fast Leader Election round. */
  round: number;
  epochBase?: number;
  transferringTo?: string;
  peers?: Record<string, ZabPeerDetails>;
  /** The last SNAP this server refused (larger than `maxSnapshotBytes`, or malformed), and why. */
  snapshotRefused?: string;
};
