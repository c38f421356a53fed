import type { EntryType } from '@consensus-kit/core';

/** A proposal waiting for a slot inside the window. */
export interface Waiting {
  type: EntryType;
  data: Uint8Array;
}

/**
 * Proposals waiting for a slot, first in first out. `Array.prototype.shift` moves every element left, which
 * made taking a slot cost O(waiting) once a burst filled the window; this keeps a head index instead and drops
 * the consumed prefix only when it is at least half the array (amortised O(1)).
 */
export class WaitingQueue {
  private items: Waiting[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(w: Waiting): void {
    this.items.push(w);
  }

  shift(): Waiting | undefined {
    if (this.head >= this.items.length) return undefined;
    const w = this.items[this.head++] as Waiting;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  some(pred: (w: Waiting) => boolean): boolean {
    for (let i = this.head; i < this.items.length; i++) if (pred(this.items[i] as Waiting)) return true;
    return false;
  }
}
