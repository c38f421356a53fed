import type { EntryType } from '@consensus-kit/core';

/**
 * Proposals waiting for a slot, first in first out, as two parallel arrays (type, data) with a head index: no
 * object per proposal, and no fresh array each time the queue empties (a proposal into an open window passes
 * through here and out at once, so both used to cost the leader's hot path an allocation per proposal;
 * bench/throughput.bench.ts). The consumed prefix is dropped only once it is at least 1,024 long and half the
 * arrays (amortised O(1) per proposal; `Array.prototype.shift` moved every element left).
 */
export class WaitingQueue {
  private types: EntryType[] = [];
  private data: Uint8Array[] = [];
  private head = 0;

  get length(): number {
    return this.types.length - this.head;
  }

  push(type: EntryType, data: Uint8Array): void {
    this.types.push(type);
    this.data.push(data);
  }

  /** The type of the first waiting proposal; `undefined` when none waits. */
  peekType(): EntryType | undefined {
    return this.head < this.types.length ? this.types[this.head] : undefined;
  }

  /** Removes the first waiting proposal and returns its data (call only when `length > 0`). */
  take(): Uint8Array {
    const data = this.data[this.head] as Uint8Array;
    this.data[this.head] = EMPTY; // the queue no longer holds the proposal's bytes
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.types.length) {
      this.types = this.types.slice(this.head);
      this.data = this.data.slice(this.head);
      this.head = 0;
    }
    return data;
  }

  /** Whether a proposal of `type` waits. */
  has(type: EntryType): boolean {
    for (let i = this.head; i < this.types.length; i++) if (this.types[i] === type) return true;
    return false;
  }
}

const EMPTY = new Uint8Array(0);
