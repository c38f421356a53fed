import { type Clock } from '@consensus-kit/core';
import { systemClock } from '@consensus-kit/core/host';
import { RevisionCompactedError } from './errors';
import type { KvEvent } from './mvcc-store';
import type { KvWatchRequest, PushSink, WatchPush } from './wire';

/** What the hub reads: the applied store (a `KvStateMachine`). */
export interface WatchSource {
  readonly currentRevision: number;
  readonly compactRevision: number;
  changes(from: number, limit?: number): KvEvent[];
  /** Each write's events as it is applied, before retention can compact them (`KvStateMachine.onChanges`). */
  onChanges?(listener: (events: KvEvent[]) => void): () => void;
}

/** Where applies and snapshot restores are announced: a `ConsensusNode` ('apply' per entry, 'snapshot' after a restore). */
export interface WatchEvents {
  on(event: 'apply' | 'snapshot', listener: () => void): unknown;
  off(event: 'apply' | 'snapshot', listener: () => void): unknown;
}

export interface WatchHubOptions {
  stateMachine: WatchSource;
  /** Applies and restores to follow; without it, call `notify()` after each apply and restore. */
  events?: WatchEvents;
  /** Progress notifications (`progressNotify` watches) are sent this often. Default 5,000 ms. */
  progressIntervalMs?: number;
  /** Events read from history per watcher per step while catching up (whole revisions). Default 1,000. */
  batchLimit?: number;
  /** Timers for progress notifications. Default `systemClock`. */
  clock?: Clock;
  /**
   * A watch opened with `fragment: true` gets the events of one step in pushes of about this many bytes at most
   * (estimated from key and value sizes), a revision larger than that split into fragments. Default 1 MiB,
   * under transport-tcp's per-subscription bound (4 MiB) and message size (32 MiB) even for text of 3-byte
   * characters. At least one event per push.
   */
  fragmentBytes?: number;
}

/** The default `fragmentBytes`: 1 MiB. */
export const DEFAULT_WATCH_FRAGMENT_BYTES = 1024 * 1024;

/** One watcher: what it matches and the next revision it is owed. */
interface Watcher {
  key: string;
  prefix: boolean;
  prevKv: boolean;
  progressNotify: boolean;
  /** The client takes fragments of a revision (`KvWatchRequest.fragment`). */
  fragment: boolean;
  /** Every matching event below this revision has been pushed (or was before its start). */
  next: number;
  /** The first `skip` matching events of revision `next` have been pushed too, as fragments (0: none). */
  skip: number;
  /** Something was pushed since the last progress tick (etcd sends progress only to quiet watchers). */
  active: boolean;
  sink: PushSink;
  done: (error?: Error) => void;
  onAbort: () => void;
}

/** The pushes of one shared read, built once for every watcher that matches all of it. */
interface SharedPushes {
  plain?: WatchPush;
  withPrev?: WatchPush;
}

const keyOf = (e: KvEvent): string => (e.type === 'put' ? e.kv.key : e.key);

const valueSize = (v: string | Uint8Array): number => (typeof v === 'string' ? v.length : v.byteLength);

/** About how many bytes `e` takes in a push (UTF-16 length for text: a third of its worst-case UTF-8 size). */
function eventSize(e: KvEvent, prevKv: boolean): number {
  let n = 64 + (e.type === 'put' ? e.kv.key.length + valueSize(e.kv.value) : e.key.length);
  if (prevKv && e.prev !== undefined) n += 48 + e.prev.key.length + valueSize(e.prev.value);
  return n;
}

/** An event without its previous version, for watches that did not ask for it. */
function withoutPrev(e: KvEvent): KvEvent {
  if (e.prev === undefined) return e;
  const { prev: _prev, ...rest } = e;
  return rest as KvEvent;
}

/**
 * The server side of watches (etcd's watchableStore), served by any node from its own applied state: every
 * replica applies the same sequence, so any node's `changes` gives the same events in the same order.
 *
 * - A watcher is owed the matching events from `next` on. After applies (coalesced into one step per turn),
 *   the hub reads the new events once with `changes(rev + 1)` and hands them to every watcher that is caught
 *   up (`next === rev + 1`: etcd's synced group); a watcher still behind (replaying history, etcd's unsynced
 *   group) reads its own `changes(next, batchLimit)`, a bounded amount per step, until it catches up. Nothing
 *   is copied per event or per watcher beyond the events it matches.
 * - Revisions are never split: a push carries whole revisions, and its `revision` says the watcher has every
 *   matching event up to there (so a client resumes exactly from `revision + 1`).
 * - A start revision at or below the compaction revision is refused with `RevisionCompactedError` (carrying
 *   the compaction revision, as etcd's `compact_revision`); one above the current revision waits.
 * - After a snapshot restore or a compaction that passes a watcher still owed events, that watcher ends with
 *   `RevisionCompactedError` (its final answer), saying which revision to resume from.
 * - Slow clients: a watcher replaying history reads no more while its pushes are held back (`sink.congested`),
 *   so replay goes at the client's pace; live events are pushed as they come, and the transport cancels a
 *   subscription whose held pushes pass its bound (a slow subscriber), never holding more.
 */
export class WatchHub {
  private readonly sm: WatchSource;
  private readonly watchers = new Set<Watcher>();
  /** Every caught-up watcher has been pushed everything up to here. */
  private rev: number;
  private scheduled = false;
  private readonly batchLimit: number;
  private readonly progressIntervalMs: number;
  private readonly fragmentBytes: number;
  private readonly clock: Clock;
  private progressTimer: unknown;
  private progressWatchers = 0;
  /**
   * The events of the applies since the last step, read at each apply: automatic compaction by retention may
   * drop them from the store before the coalesced step runs (a burst of applies in one turn, more than the
   * retained history), and a caught-up watcher must still get every one.
   */
  private captured: { from: number; upto: number; events: KvEvent[] } | undefined;
  private readonly onApply = () => {
    if (this.offChanges === undefined) this.capture();
    this.notify();
  };
  private readonly offChanges: (() => void) | undefined;
  private readonly onChange = () => {
    this.captured = undefined; // a restore: the step reads the restored store (and reports what it lacks)
    this.notify();
  };
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: WatchHubOptions) {
    this.sm = options.stateMachine;
    this.rev = this.sm.currentRevision;
    this.batchLimit = Math.max(1, options.batchLimit ?? 1000);
    this.progressIntervalMs = Math.max(1, options.progressIntervalMs ?? 5000);
    this.fragmentBytes = Math.max(1, options.fragmentBytes ?? DEFAULT_WATCH_FRAGMENT_BYTES);
    this.clock = options.clock ?? systemClock;
    this.offChanges = this.sm.onChanges?.((events) => this.captureWrite(events));
    options.events?.on('apply', this.onApply);
    options.events?.on('snapshot', this.onChange);
  }

  /** Open watches. */
  get size(): number {
    return this.watchers.size;
  }

  /**
   * Opens a watch that pushes to `sink` until the sink's signal aborts (then the promise resolves) or the watch
   * fails (a compacted revision: the promise rejects with `RevisionCompactedError`). Throws at once for a
   * compacted start revision. The request was validated (`validateWireRequest`).
   */
  watch(req: KvWatchRequest, sink: PushSink): Promise<void> {
    if (this.closed) return Promise.resolve();
    let next: number;
    if (req.startRevision !== undefined) {
      this.sm.changes(req.startRevision, 0); // throws RevisionCompactedError below the compaction point
      next = req.startRevision;
    } else next = this.sm.currentRevision + 1;
    if (sink.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Watcher = {
        key: req.key,
        prefix: req.prefix === true,
        prevKv: req.prevKv === true,
        progressNotify: req.progressNotify === true,
        fragment: req.fragment === true,
        next,
        skip: 0,
        active: false,
        sink,
        done: (error) => {
          if (!this.watchers.delete(w)) return;
          sink.signal.removeEventListener('abort', w.onAbort);
          if (w.progressNotify && --this.progressWatchers === 0) this.stopProgress();
          if (error === undefined) resolve();
          else reject(error);
        },
        onAbort: () => w.done(),
      };
      this.watchers.add(w);
      sink.signal.addEventListener('abort', w.onAbort, { once: true });
      if (w.progressNotify && this.progressWatchers++ === 0) this.startProgress();
      const created: WatchPush = { created: true, revision: next - 1, compactRevision: this.sm.compactRevision };
      if (!sink.push(created)) {
        w.done();
        return;
      }
      // A watcher from the past replays at once; one from now is caught up already.
      if (next <= this.sm.currentRevision) this.notify();
    });
  }

  /**
   * Reads what the last apply wrote while the store still has it, for the caught-up watchers' shared read. Cheap:
   * a binary search and the new events (none for most entries' reads past the first).
   */
  private capture(): void {
    const top = this.sm.currentRevision;
    if (this.closed || this.watchers.size === 0 || top <= this.rev) return;
    const c = (this.captured ??= { from: this.rev + 1, upto: this.rev, events: [] });
    if (top <= c.upto) return;
    try {
      for (const e of this.sm.changes(c.upto + 1)) c.events.push(e);
      c.upto = top;
    } catch (e) {
      if (!RevisionCompactedError.is(e)) throw e;
      this.captured = undefined; // gone already (no history retained at all): the step reports it
    }
  }

  /** `capture` from the store's own report of one write (its events, before retention may compact them). */
  private captureWrite(events: KvEvent[]): void {
    const revision = events[0]?.revision;
    if (revision === undefined || this.closed || this.watchers.size === 0) return;
    const c = (this.captured ??= { from: this.rev + 1, upto: this.rev, events: [] });
    if (revision <= c.upto) return;
    if (revision === c.upto + 1) {
      for (const e of events) c.events.push(e);
      c.upto = revision;
      return;
    }
    this.capture(); // a gap (writes while no watcher was open): read it from the store, this write included
  }

  /** Something was applied or restored: push what is new, once this turn's applies are done. */
  notify(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => this.step());
  }

  /** Ends every watch (they resolve) and stops following the node. */
  close(): void {
    this.closed = true;
    this.options.events?.off('apply', this.onApply);
    this.offChanges?.();
    this.options.events?.off('snapshot', this.onChange);
    for (const w of [...this.watchers]) w.done();
    this.stopProgress();
    if (this.retry !== undefined) clearTimeout(this.retry);
  }

  /**
   * Reads `[from, top]` from history, at most about `batchLimit` events, in whole revisions. `upto`: the last
   * revision fully read (every revision has at least one event, so a cut at revision r covers r - 1).
   */
  private read(from: number, top: number): { events: KvEvent[]; upto: number } {
    const limit = this.batchLimit;
    const events = this.sm.changes(from, limit);
    if (events.length < limit) return { events, upto: top };
    const last = events[events.length - 1]!.revision;
    let cut = events.length;
    while (cut > 0 && events[cut - 1]!.revision === last) cut--;
    if (cut > 0) return { events: events.slice(0, cut), upto: last - 1 };
    // One revision with more events than the limit (a large transaction or delete): taken whole.
    for (let n = limit * 2; ; n *= 2) {
      const all = this.sm.changes(from, n);
      if (all.length < n || all[all.length - 1]!.revision !== last) return { events: all.filter((e) => e.revision === last), upto: last };
    }
  }

  private step(): void {
    this.scheduled = false;
    if (this.closed) return;
    const top = this.sm.currentRevision;
    let behind = false;
    let waiting = false;
    // The caught-up watchers share one read of what is new.
    const from = this.rev + 1;
    let shared: { events: KvEvent[]; upto: number } | RevisionCompactedError | undefined;
    let pushes: SharedPushes | undefined;
    const captured = this.captured;
    this.captured = undefined;
    if (captured !== undefined && captured.from === from && captured.upto === top) shared = { events: captured.events, upto: top };
    else if (top >= from) {
      try {
        shared = this.read(from, top);
      } catch (e) {
        if (!RevisionCompactedError.is(e)) throw e;
        shared = e;
      }
    }
    for (const w of [...this.watchers]) {
      if (w.next > top) continue; // caught up, or waiting for a future start revision
      if (w.next === from && shared !== undefined) {
        if (shared instanceof Error) this.failCompacted(w, shared);
        else this.deliver(w, shared.events, shared.upto, (pushes ??= {}));
      } else {
        if (w.sink.congested === true) {
          // Replay is paced by the client: a watcher whose pushes are held back (its client is reading
          // slowly) reads no more history until they are written (etcd's victim watchers).
          waiting = true;
          continue;
        }
        try {
          const r = this.read(w.next, top);
          this.deliver(w, r.events, r.upto);
        } catch (e) {
          if (!RevisionCompactedError.is(e)) throw e;
          this.failCompacted(w, e);
          continue;
        }
      }
      if (w.next <= top && this.watchers.has(w)) behind = true;
    }
    if (shared !== undefined) this.rev = shared instanceof Error ? top : shared.upto;
    else if (top > this.rev) this.rev = top;
    // More to read (the shared read or a replay hit the batch limit): continue after I/O has had a turn.
    if ((behind || this.rev < top) && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.step());
    } else if (waiting && !this.scheduled && this.retry === undefined) {
      // Only congested watchers are behind: look again shortly, not in a busy loop.
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.notify();
      }, 5);
    }
  }

  /**
   * Pushes the events among `events` that `w` matches, and marks it complete up to `upto`. `shared`: pushes
   * built for the watchers that match every event of a shared read, one object per prevKv setting, so the
   * transport encodes it once for all of them (fan-out to many watchers of one prefix).
   */
  private deliver(w: Watcher, events: KvEvent[], upto: number, shared?: SharedPushes): void {
    const from = w.next;
    let matched = 0;
    let bytes = 0;
    for (const e of events) {
      if (e.revision < from || !this.matches(w, e)) continue;
      matched++;
      if (w.fragment) bytes += eventSize(e, w.prevKv);
    }
    if (matched === 0) {
      w.next = upto + 1;
      return;
    }
    w.active = true;
    if (w.skip > 0 || bytes > this.fragmentBytes) {
      this.deliverInParts(w, events, upto);
      return;
    }
    w.next = upto + 1;
    let push: WatchPush;
    if (shared !== undefined && matched === events.length) {
      push = w.prevKv ? (shared.withPrev ??= { events, revision: upto }) : (shared.plain ??= { events: events.map(withoutPrev), revision: upto });
    } else {
      const out: KvEvent[] = [];
      for (const e of events) if (e.revision >= from && this.matches(w, e)) out.push(w.prevKv ? e : withoutPrev(e));
      push = { events: out, revision: upto };
    }
    if (!w.sink.push(push)) w.done();
  }

  /**
   * `deliver` for a watch that takes fragments and has more than `fragmentBytes` to get (etcd's watch fragment):
   * pushes of at most about `fragmentBytes`, whole revisions where they fit, a larger revision split, all its
   * pushes but the last marked `fragment`. Paced: once the client is behind (`sink.congested`) it stops, with
   * `next`/`skip` saying where it stopped, and the watcher goes on from there, as a replaying one, when the
   * pushes have drained. So a revision of any size reaches the client in bounded pushes, and the node holds no
   * more for it than one push.
   */
  private deliverInParts(w: Watcher, events: KvEvent[], upto: number): void {
    const out: KvEvent[] = [];
    let skip = w.skip;
    for (const e of events) {
      if (e.revision < w.next || !this.matches(w, e)) continue;
      if (skip > 0 && e.revision === w.next) {
        skip--; // pushed already, in a fragment
        continue;
      }
      out.push(w.prevKv ? e : withoutPrev(e));
    }
    let i = 0;
    while (i < out.length) {
      if (i > 0 && w.sink.congested === true) return; // the rest at a later step, once the pushes drain
      let j = i;
      let size = 0;
      do size += eventSize(out[j++]!, w.prevKv);
      while (j < out.length && size + eventSize(out[j]!, w.prevKv) <= this.fragmentBytes);
      const last = out[j - 1]!.revision;
      const chunk = out.slice(i, j);
      let push: WatchPush;
      if (j === out.length || out[j]!.revision !== last) {
        // Whole revisions: complete up to the last of them (up to `upto` with the last events of the read).
        const revision = j === out.length ? upto : last;
        push = { events: chunk, revision };
        w.next = revision + 1;
        w.skip = 0;
      } else {
        push = { events: chunk, revision: last, fragment: true };
        let n = 0;
        for (const e of chunk) if (e.revision === last) n++;
        w.skip = last === w.next ? w.skip + n : n;
        w.next = last;
      }
      if (!w.sink.push(push)) {
        w.done();
        return;
      }
      i = j;
    }
  }

  private matches(w: Watcher, e: KvEvent): boolean {
    const k = keyOf(e);
    return w.prefix ? k.startsWith(w.key) : k === w.key;
  }

  private failCompacted(w: Watcher, e: RevisionCompactedError): void {
    w.done(
      new RevisionCompactedError(
        w.next,
        e.compactRevision,
        `watch cancelled: mvcc: required revision ${w.next} has been compacted (the oldest readable revision is ${e.compactRevision}); this node compacted or installed a snapshot past what the watch was owed`,
      ),
    );
  }

  private startProgress(): void {
    const tick = () => {
      this.progressTimer = this.clock.setTimeout(tick, this.progressIntervalMs);
      this.sendProgress();
    };
    this.progressTimer = this.clock.setTimeout(tick, this.progressIntervalMs);
  }

  private stopProgress(): void {
    if (this.progressTimer !== undefined) this.clock.clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
  }

  /**
   * Progress notifications (etcd's progress_notify): each quiet, caught-up watcher that asked for them learns
   * the revision it is complete up to, so a client that reconnects later resumes from there.
   */
  sendProgress(): void {
    const revision = this.sm.currentRevision;
    for (const w of [...this.watchers]) {
      if (!w.progressNotify) continue;
      const quiet = !w.active;
      w.active = false;
      if (!quiet || w.next !== revision + 1) continue;
      if (!w.sink.push({ progress: true, revision } satisfies WatchPush)) w.done();
    }
  }
}
