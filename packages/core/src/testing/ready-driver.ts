import type { ApplyStep } from '../apply-step';
import type { MemoryStorage } from '../memory-storage';
import type { Envelope, Protocol, Ready, ReadState } from '../types';

/**
 * The number of atomic save steps in a Ready, in the pinned crash order of DESIGN r2: snapshot install,
 * truncation, each entry in index order, hard state. A crash in the middle of a save leaves a prefix of them.
 */
export function saveSteps(rd: Pick<Ready, 'snapshot' | 'truncateAfter' | 'entries' | 'hardState'>): number {
  return (rd.snapshot !== undefined ? 1 : 0) + (rd.truncateAfter !== undefined ? 1 : 0) + rd.entries.length + (rd.hardState !== undefined ? 1 : 0);
}

/**
 * Writes the first `steps` save steps of a Ready to a `MemoryStorage`, synchronously, in the pinned order
 * (all of them by default). With fewer steps it is what a crash in the middle of the save leaves durable.
 */
export function persistReady(storage: MemoryStorage, rd: Pick<Ready, 'snapshot' | 'truncateAfter' | 'entries' | 'hardState'>, steps = Number.POSITIVE_INFINITY): void {
  let left = steps;
  if (rd.snapshot !== undefined) {
    if (left-- <= 0) return;
    storage.installSnapshotNow(rd.snapshot);
  }
  if (rd.truncateAfter !== undefined) {
    if (left-- <= 0) return;
    storage.saveNow({ truncateAfter: rd.truncateAfter, entries: [] });
  }
  if (rd.entries.length > 0) {
    const n = Math.min(left, rd.entries.length);
    if (n > 0) storage.saveNow({ entries: n === rd.entries.length ? rd.entries : rd.entries.slice(0, n) });
    left -= n;
    if (n < rd.entries.length) return;
  }
  if (rd.hardState !== undefined) {
    if (left-- <= 0) return;
    storage.saveNow({ hardState: rd.hardState, entries: [] });
  }
}

/** Whether a Ready has anything to persist (so a host must wait for a disk before sending). */
export function needsPersist(rd: Pick<Ready, 'snapshot' | 'truncateAfter' | 'entries' | 'hardState'>): boolean {
  return saveSteps(rd) > 0;
}

export interface ReadyDriverOptions {
  protocol: Protocol;
  storage: MemoryStorage;
  applier: ApplyStep;
  /** Hands the messages of a durable Ready to the network. */
  send(messages: Envelope[]): void;
  /** Called with each Ready once it is durable, before its messages leave (invariant checks, traces). */
  onPersisted?(rd: Ready): void;
  /** Called with the reads a Ready released (their index is applied). */
  onReads?(reads: readonly ReadState[], rd: Ready): void;
}

/**
 * The synchronous Ready loop for tests, scenario scripts and the simulator: persist -> send -> apply ->
 * advance, in the order of core's `Ready` contract, over a `MemoryStorage` and the shared `ApplyStep`.
 *
 * `cycle()` runs one whole Ready at once. A harness that models a slow disk (the simulator) splits it: `take()`
 * the Ready, `persist()` it (or a prefix of it, for a crash mid-save) when its disk says so, then `complete()`.
 */
export class ReadyDriver {
  readonly protocol: Protocol;
  readonly storage: MemoryStorage;
  readonly applier: ApplyStep;

  constructor(private readonly options: ReadyDriverOptions) {
    this.protocol = options.protocol;
    this.storage = options.storage;
    this.applier = options.applier;
  }

  /** The next Ready, or undefined when the protocol has none. */
  take(): Ready | undefined {
    return this.protocol.hasReady() ? this.protocol.ready() : undefined;
  }

  /** Writes the Ready's save steps (the first `steps` of them, for a crash mid-save). */
  persist(rd: Ready, steps?: number): void {
    persistReady(this.storage, rd, steps);
  }

  /** After the Ready is durable: send its messages, apply it, release reads, advance the protocol. */
  complete(rd: Ready): readonly ReadState[] {
    this.options.onPersisted?.(rd);
    if (rd.messages.length > 0) this.options.send(rd.messages);
    const released = this.applier.applyReady(rd);
    if (released.length > 0) this.options.onReads?.(released, rd);
    this.protocol.advance(rd);
    return released;
  }

  /** One whole Ready, synchronously; returns it, or undefined when there was none. */
  cycle(): Ready | undefined {
    const rd = this.take();
    if (rd === undefined) return undefined;
    this.persist(rd);
    this.complete(rd);
    return rd;
  }

  /** Cycles until the protocol has no Ready; returns how many it handled. Throws after `limit` (a protocol whose `hasReady()` never turns false). */
  drain(limit = 1000): number {
    let n = 0;
    while (this.cycle() !== undefined) {
      if (++n >= limit) throw new Error(`protocol still has a Ready after ${limit} in a row: hasReady() never turns false`);
    }
    return n;
  }
}
