/**
 * Flow control for one follower (etcd's `Inflights`): the AppendEntries messages sent in replicate state and
 * not yet acknowledged, as a ring of (last index, bytes). The leader stops sending to a follower when either
 * `maxCount` messages or `maxBytes` bytes are in flight, so a slow follower costs a bounded amount of memory
 * and bandwidth. Acknowledgements are cumulative: `freeLE(i)` drops every message whose last index <= i.
 */
export class Inflights {
  private readonly maxCount: number;
  private readonly maxBytes: number;
  /** Ring buffer: slot (start + k) % capacity holds the k-th oldest message. Grows lazily up to maxCount. */
  private indexes: Float64Array;
  private sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
    const initial = Math.min(maxCount, 16);
    this.indexes = new Float64Array(initial);
    this.sizes = new Float64Array(initial);
  }

  add(index: number, bytes: number): void {
    if (this.count === this.indexes.length) this.grow();
    const cap = this.indexes.length;
    const slot = (this.start + this.count) % cap;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  private grow(): void {
    const cap = Math.min(this.maxCount, Math.max(1, this.indexes.length * 2));
    const ni = new Float64Array(Math.max(cap, this.count + 1));
    const ns = new Float64Array(ni.length);
    for (let k = 0; k < this.count; k++) {
      const slot = (this.start + k) % this.indexes.length;
      ni[k] = this.indexes[slot] as number;
      ns[k] = this.sizes[slot] as number;
    }
    this.indexes = ni;
    this.sizes = ns;
    this.start = 0;
  }

  /** Frees every message whose last index is <= `index`. */
  freeLE(index: number): void {
    const cap = this.indexes.length;
    while (this.count > 0 && (this.indexes[this.start] as number) <= index) {
      this.bytes -= this.sizes[this.start] as number;
      this.start = (this.start + 1) % cap;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (used when a heartbeat response shows the follower alive but acks were lost). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start] as number);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
