import { jointCommittedIndex, type ClusterConfig, type NodeId } from '@consensus-kit/core';

/** A read waiting for its leadership confirmation. */
export interface PendingRead {
  /** Who asked: the leader itself or a follower that forwarded the read (follower reads). */
  from: NodeId;
  ctx: Uint8Array;
  /** The commit index when the read arrived: the read index (thesis 6.4 step 2). */
  index: number;
  /** The first heartbeat round sent after the read arrived; its quorum acknowledgement releases the read. */
  seq: number;
}

/**
 * ReadIndex (thesis 6.4) and the read lease (thesis 6.4.1), batched by heartbeat rounds.
 *
 * Each heartbeat round of a leadership gets a sequence number; followers echo it. When a quorum has acknowledged
 * round s, the leader knows it was still leader when round s was sent, so every read that arrived before round s
 * was sent can be served at its recorded read index. Many reads share one round (etcd batches the same way).
 * Acknowledgement of round s also means each acknowledging follower heard from the leader at or after the tick
 * round s was sent, which starts the lease (see `leaseStart`).
 */
export class ReadOnly {
  /** Sequence number of the last heartbeat round sent (0: none yet). */
  seq = 0;
  private readonly acked = new Map<NodeId, number>();
  private readonly sentAt = new Map<number, number>();
  private queue: PendingRead[] = [];

  /** Queue a read at `index`; it waits for the next round. */
  add(from: NodeId, ctx: Uint8Array, index: number): void {
    this.queue.push({ from, ctx, index, seq: this.seq + 1 });
  }

  /** Reads waiting for a round that has not been sent yet. */
  needsRound(): boolean {
    const last = this.queue[this.queue.length - 1];
    return last !== undefined && last.seq > this.seq;
  }

  /** A new heartbeat round is sent at `tick`; returns its sequence number. */
  nextRound(tick: number): number {
    this.seq++;
    this.sentAt.set(this.seq, tick);
    return this.seq;
  }

  /** Records `from`'s acknowledgement of round `seq`. */
  ack(from: NodeId, seq: number): void {
    if (seq > this.seq) return; // not a round of this leadership
    const prev = this.acked.get(from) ?? 0;
    if (seq > prev) this.acked.set(from, seq);
  }

  /** The newest round acknowledged by a quorum of `config` (the leader acknowledges its own rounds). */
  quorumSeq(config: ClusterConfig, self: NodeId): number {
    const q = jointCommittedIndex(config, (id) => (id === self ? this.seq : (this.acked.get(id) ?? 0)));
    return q === Number.MAX_SAFE_INTEGER ? this.seq : q;
  }

  /** Removes and returns the reads released by a quorum acknowledgement of round `seq`. */
  release(seq: number): PendingRead[] {
    let n = 0;
    while (n < this.queue.length && (this.queue[n] as PendingRead).seq <= seq) n++;
    if (n === 0) return [];
    const out = this.queue.slice(0, n);
    this.queue = this.queue.slice(n);
    return out;
  }

  /** Forget the send ticks of rounds older than `seq` (they can no longer start a newer lease). */
  prune(seq: number): void {
    for (const s of this.sentAt.keys()) {
      if (s >= seq) break;
      this.sentAt.delete(s);
    }
  }

  /** The tick at which round `seq` was sent, if still remembered. */
  sentTick(seq: number): number | undefined {
    return this.sentAt.get(seq);
  }

  /** Forget everything (leadership changed). */
  reset(): void {
    this.seq = 0;
    this.acked.clear();
    this.sentAt.clear();
    this.queue = [];
  }

  get pending(): number {
    return this.queue.length;
  }
}
