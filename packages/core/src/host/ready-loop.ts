import { StoppedError } from '../errors';
import type { DurableStorage, Protocol, Ready, Transport } from '../types';
import type { Snapshotter } from './snapshotter';

export interface ReadyLoopOptions {
  protocol: Protocol;
  storage: DurableStorage;
  transport: Transport;
  snapshotter: Snapshotter;
  /** Whether the node runs: only a running node starts the loop. */
  running(): boolean;
  /** Whether the node failed: the loop stops at once. */
  failed(): boolean;
  /** Whether messages may still leave (not once the node is fully stopped). */
  canSend(): boolean;
  /**
   * Step 3 for a durable Ready: the apply step (snapshot restore, committed entries, reads). May throw. A
   * promise when it restores a snapshot incrementally: the loop waits for it before it advances and before it
   * takes the next Ready (nothing applies until the restore is done); a `StoppedError` once the node no longer
   * runs ends the loop quietly, without `advance`.
   */
  apply(rd: Ready): void | Promise<void>;
  /** After `advance(rd)`: report status, maybe snapshot. */
  advanced(rd: Ready): void;
  /** A storage failure or broken invariant. */
  fail(error: unknown): void;
}

/**
 * The host's Ready loop: persist -> send -> apply -> advance, with group commit. While one `save` is in
 * flight the protocol keeps accumulating work, which the next `ready()` hands over as one batch, one write.
 *
 * Persistence follows the pinned order of DESIGN r2: the snapshot install first, then one `save` carrying
 * truncation, entries and hard state, which the storage makes durable in that order. A Ready with nothing to
 * persist costs no `await`: the loop goes straight on to send and apply.
 */
export class ReadyLoop {
  private draining = false;
  private kickScheduled = false;
  private drainDone: Promise<void> = Promise.resolve();

  constructor(private readonly o: ReadyLoopOptions) {}

  /** Settles when the drain in progress (if any) has finished its batch. */
  get idle(): Promise<void> {
    return this.drainDone;
  }

  /**
   * Schedules the Ready loop to run once the current callback returns (a microtask), rather than inside it.
   * Everything one callback delivers (a socket read holding many client requests, several peer messages)
   * then shares one batch and one durable write. Starting the loop at once wrote the first proposal of a
   * burst alone: with 64 requests in flight the leader wrote 1 entry, then 63, then 1, and every write costs
   * a device flush whatever its size. A microtask, unlike `setImmediate`, adds no turn of the event loop to
   * a lone request's latency.
   */
  kick(): void {
    if (this.kickScheduled || this.draining || !this.o.running()) return;
    this.kickScheduled = true;
    queueMicrotask(() => {
      this.kickScheduled = false;
      this.startDrain();
    });
  }

  /** Starts draining unless a drain is already running (then the running loop picks the work up). */
  private startDrain(): void {
    if (this.draining || !this.o.running()) return;
    if (!this.o.protocol.hasReady() && !this.o.snapshotter.compactionDue) return;
    this.draining = true;
    this.drainDone = this.drain().finally(() => {
      this.draining = false;
      // Work that arrived after the loop's last look (while its promise settled) must not wait for a tick.
      if (this.o.running()) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const { protocol: p, storage, transport, snapshotter } = this.o;
    while (!this.o.failed()) {
      if (snapshotter.compactionDue) await snapshotter.compact(p);
      if (!p.hasReady()) break;
      const rd = p.ready();
      try {
        // 1. persist, in the pinned order: snapshot install, then truncation, entries and hard state in one save.
        if (rd.snapshot !== undefined) await storage.installSnapshot(rd.snapshot);
        if (rd.hardState !== undefined || rd.truncateAfter !== undefined || rd.entries.length > 0) {
          await storage.save({
            ...(rd.truncateAfter !== undefined ? { truncateAfter: rd.truncateAfter } : {}),
            entries: rd.entries,
            ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}),
          });
        }
      } catch (e) {
        this.o.fail(e);
        return;
      }
      // 2. send, only now that the batch is durable.
      if (rd.messages.length > 0 && this.o.canSend()) transport.send(rd.messages);
      // 3. apply (restore, committed entries, reads), 4. advance.
      try {
        const applying = this.o.apply(rd);
        if (applying !== undefined) await applying;
        p.advance(rd);
      } catch (e) {
        // A restore abandoned because the node stops: the batch ends unapplied (the installed snapshot is
        // durable; a restart restores it), not as a failure.
        if (StoppedError.is(e) && !this.o.running()) return;
        this.o.fail(e);
        return;
      }
      this.o.advanced(rd);
    }
  }
}
