/** One peer as the leader sees it (printed by tools, never interpreted). */
export interface PaxosPeerDetails {
  /** Highest slot up to which the peer accepted every slot above the phase-1 base at the leader's ballot. */
  match: number;
  next: number;
  /** The peer's own commit point, as last reported. */
  commit: number;
  inflight: number;
}

/** What `PaxosNode.status().details` holds. */
export type PaxosStatusDetails = {
  /** The highest ballot promised (or accepted). */
  promised: number;
  /** `round.rank` of the ballot in `term`. */
  ballot: string;
  /** This node's ballot rank, when known. */
  rank?: number;
  /** PMMC's WINDOW. */
  window: number;
  /** Leader: the next slot it assigns, and proposals waiting for the window to open. */
  nextSlot?: number;
  waiting?: number;
  /** Leader: where phase 1 started (its commit point then). */
  phase1Base?: number;
  transferringTo?: string;
  /** Paxos Made Live 5.1: no promises until this slot is decided (0: none). */
  amnesiaUntil?: number;
  leaseReads?: boolean;
  /** The last snapshot transfer this replica refused (larger than `maxSnapshotBytes`, or malformed), and why. */
  snapshotRefused?: string;
  peers?: Record<string, PaxosPeerDetails>;
};
