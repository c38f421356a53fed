/**
 * A binary min-heap of events ordered by (time, seq). `seq` is the insertion order, so two events scheduled
 * for the same instant always run in the order they were scheduled: the tie-break that keeps a run a pure
 * function of its seed.
 */
export interface Scheduled<E> {
  time: number;
  seq: number;
  event: E;
}

export class EventQueue<E> {
  private readonly heap: Scheduled<E>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, event: E): void {
    const item = { time, seq: this.seq++, event };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i] as Scheduled<E>, h[parent] as Scheduled<E>)) break;
      [h[i], h[parent]] = [h[parent] as Scheduled<E>, h[i] as Scheduled<E>];
      i = parent;
    }
  }

  peekTime(): number | undefined {
    return this.heap[0]?.time;
  }

  pop(): Scheduled<E> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0] as Scheduled<E>;
    const last = h.pop() as Scheduled<E>;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l] as Scheduled<E>, h[m] as Scheduled<E>)) m = l;
        if (r < h.length && less(h[r] as Scheduled<E>, h[m] as Scheduled<E>)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Scheduled<E>, h[i] as Scheduled<E>];
        i = m;
      }
    }
    return top;
  }
}

function less<E>(a: Scheduled<E>, b: Scheduled<E>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
