/**
 * A node-wide budget of inbound request bytes buffered by client connections (partial frames and split
 * requests being reassembled), shared by every client connection of one listener.
 *
 * A connection reserves bytes before it buffers them (a split request reserves its announced length when its
 * first part arrives, before anything is allocated) and releases them once the request is handed over. When a
 * reservation does not fit, the connection stops reading (backpressure: TCP slows the client down, nothing is
 * dropped) and waits in FIFO order; released bytes go to the oldest waiter first, so a large request is not
 * starved by a stream of small ones.
 *
 * A holder never waits for more budget while it holds some (see FramedConnection: a reassembly's reservation
 * includes room for one frame interleaved with its parts), so every holder can finish with the bytes it
 * already has and the budget cannot deadlock; the constructor's caller guarantees that `max` fits the largest
 * single reservation.
 */
export class InboundBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; granted: () => void }> = [];

  constructor(readonly max: number) {}

  /** Bytes reserved now. */
  get reserved(): number {
    return this.used;
  }

  /** Connections waiting for bytes. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Reserves `bytes` at once if they fit and nobody waits ahead; otherwise queues `granted`, called once the
   * bytes have been reserved for the caller. Returns a function that cancels the wait (no-op once granted).
   */
  reserve(bytes: number, granted: () => void): { ok: true } | { ok: false; cancel: () => void } {
    if (this.waiters.length === 0 && this.used + bytes <= this.max) {
      this.used += bytes;
      return { ok: true };
    }
    const waiter = { bytes, granted };
    this.waiters.push(waiter);
    return {
      ok: false,
      cancel: () => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        // The head may have been what held smaller waiters back.
        if (i === 0) this.grant();
      },
    };
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.grant();
  }

  private grant(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.max) {
      const w = this.waiters.shift()!;
      this.used += w.bytes;
      w.granted();
    }
  }
}
