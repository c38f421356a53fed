import type { PeerProgress, ProgressState } from './status-details';
import { Inflights } from './inflights';

/**
 * The leader's view of one follower (thesis Figure 3.1 nextIndex/matchIndex, extended as in etcd's tracker):
 * - probe: we do not know where the follower's log ends; send one AppendEntries per heartbeat interval and
 *   back off on rejection (thesis 3.5).
 * - replicate: the follower is caught up; send optimistically (pipelining, thesis 10.2.1) with `next` past
 *   what was acknowledged, bounded by `inflights`.
 * - snapshot: the follower needs entries we compacted; a snapshot is being streamed in chunks.
 *
 * Invariant: match < next.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent this heartbeat interval, wait for a reply or the next heartbeat. */
  probeSent = false;
  /** Heard from within the current election timeout (CheckQuorum, thesis 6.2). */
  recentActive = false;
  learner: boolean;
  readonly inflights: Inflights;
  /** Snapshot state: the snapshot index, the next byte to send and the follower's acknowledged offset. */
  pendingSnapshot = 0;
  snapSent = 0;
  snapAcked = 0;
  /** Whether a chunk acknowledgement arrived since the last heartbeat response (lost-chunk detection). */
  snapProgressed = false;
  /** Heartbeat responses in a row without chunk progress. */
  snapStall = 0;
  /** The last chunk has been sent (since the last rewind). */
  snapDoneSent = false;
  /** The offset of the last rewind, so that several reports of one gap cause one resend. */
  snapRewound = -1;

  constructor(next: number, learner: boolean, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.learner = learner;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapSent = 0;
    this.snapAcked = 0;
    this.snapProgressed = false;
    this.snapStall = 0;
    this.snapDoneSent = false;
    this.snapRewound = -1;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = index;
  }

  /** An acknowledgement up to `index`; returns whether it told us something new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`; `matchHint` is the follower's hint of where
   * the logs may agree. Returns false for stale rejections (etcd's MaybeDecrTo).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.state !== 'probe' || this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records that entries through `last` (`bytes` in total) were sent. */
  sentEntries(count: number, last: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** Whether sending another append would overrun flow control. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      default:
        return true;
    }
  }

  view(): PeerProgress {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      inflight: this.inflights.count,
      active: this.recentActive,
      learner: this.learner,
    };
  }
}
