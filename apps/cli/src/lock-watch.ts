import { InvalidArgumentError, preview, type LogEntry } from '@consensus-kit/core';
import { MAX_LOCK_NAME_LENGTH, type LockInfo, type LockMode, type LockStateMachine, type PushSink } from '@consensus-kit/lock';

/** `consensus-cli lock watch <name>`: opened as a subscription on any node's client port. */
export interface LockWatchRequest {
  t: 'lock.watch';
  name: string;
}

/** What happened to one lock at one applied entry, as `lock watch` prints it. */
export type LockWatchEvent =
  /** A holder was granted the lock (at once or from the queue) with this fencing token. */
  | { type: 'granted'; session: number; token: number; mode: LockMode; count: number }
  /** A hold ended by a clean release or the close of its session (no lock-delay). */
  | { type: 'released'; session: number; token: number }
  /** A hold ended because its session expired (lock-delay follows). */
  | { type: 'expired'; session: number; token: number }
  /** A request joined the queue (FIFO position `position`, 1 first). */
  | { type: 'waiting'; session: number; req: number; mode: LockMode; position: number }
  /** A waiter left the queue without a grant: it gave up (timeout, abort) or its session ended. */
  | { type: 'left'; session: number; req: number };

/**
 * What a `lock.watch` subscription pushes: first (and again after the node restored a snapshot) the lock's
 * state now (`null`: nobody holds or awaits it); then, for every applied entry that changed it, its events.
 */
export type LockWatchPush = { state: LockInfo | null; index: number } | { events: LockWatchEvent[]; index: number };

export function isLockWatchRequest(body: unknown): body is LockWatchRequest {
  return typeof body === 'object' && body !== null && (body as { t?: unknown }).t === 'lock.watch';
}

/** What the hub needs of a node: `ConsensusNode` is one. */
export interface LockWatchNode {
  on(event: 'apply', listener: (e: { entry: LogEntry }) => void): unknown;
  on(event: 'snapshot', listener: () => void): unknown;
  off(event: 'apply', listener: (e: { entry: LogEntry }) => void): unknown;
  off(event: 'snapshot', listener: () => void): unknown;
}

/** The changes between two states of one lock, `lost` naming the tokens whose holds ended by expiry at this entry. */
export function diffLock(before: LockInfo | undefined, after: LockInfo | undefined, lost: ReadonlySet<number>): LockWatchEvent[] {
  const out: LockWatchEvent[] = [];
  const was = new Map((before?.holders ?? []).map((h) => [h.token, h]));
  const now = new Map((after?.holders ?? []).map((h) => [h.token, h]));
  for (const [token, h] of was) if (!now.has(token)) out.push({ type: lost.has(token) ? 'expired' : 'released', session: h.session, token });
  const grantedReqs = new Set<string>();
  for (const [token, h] of now) {
    if (was.has(token)) continue;
    out.push({ type: 'granted', session: h.session, token, mode: h.mode, count: h.count });
    for (const req of h.reqs) grantedReqs.add(`${h.session}:${req}`);
  }
  const key = (w: { session: number; req: number }) => `${w.session}:${w.req}`;
  const waitedBefore = new Set((before?.waiters ?? []).map(key));
  const waitingNow = new Set((after?.waiters ?? []).map(key));
  for (const w of before?.waiters ?? []) if (!waitingNow.has(key(w)) && !grantedReqs.has(key(w))) out.push({ type: 'left', session: w.session, req: w.req });
  (after?.waiters ?? []).forEach((w, i) => {
    if (!waitedBefore.has(key(w))) out.push({ type: 'waiting', session: w.session, req: w.req, mode: w.mode, position: i + 1 });
  });
  return out;
}

/**
 * Serves `lock.watch` subscriptions from this node's applied state (any node, as kv watches and `lock.events`
 * are): after every applied entry, each watched lock is compared with its state before, and what changed is
 * pushed (server push, DESIGN r2: no client polls). Costs one lock-table lookup per watched name per entry,
 * and nothing while nobody watches.
 */
export class LockWatchHub {
  private readonly watched = new Map<string, { last: LockInfo | undefined; sinks: Set<PushSink> }>();
  private readonly enders = new Set<() => void>();

  private readonly onApply = ({ entry }: { entry: LogEntry }): void => {
    if (this.watched.size === 0) return;
    let lost: Set<number> | undefined;
    for (const [name, w] of this.watched) {
      const now = this.lock.query({ op: 'lock', name }) as LockInfo | undefined;
      if (now === undefined && w.last === undefined) continue;
      lost ??= new Set(this.lock.eventsAt(entry.index).flatMap((e) => (e.type === 'lost' ? [e.token] : [])));
      const events = diffLock(w.last, now, lost);
      w.last = now;
      if (events.length > 0) for (const sink of w.sinks) sink.push({ events, index: entry.index } satisfies LockWatchPush);
    }
  };

  private readonly onSnapshot = (): void => {
    for (const [name, w] of this.watched) {
      w.last = this.lock.query({ op: 'lock', name }) as LockInfo | undefined;
      for (const sink of w.sinks) sink.push({ state: w.last ?? null, index: this.lock.appliedIndex } satisfies LockWatchPush);
    }
  };

  constructor(
    private readonly node: LockWatchNode,
    private readonly lock: LockStateMachine,
  ) {
    node.on('apply', this.onApply);
    node.on('snapshot', this.onSnapshot);
  }

  /** Open subscriptions. */
  get size(): number {
    let n = 0;
    for (const w of this.watched.values()) n += w.sinks.size;
    return n;
  }

  /** Serves one `lock.watch` until the sink's signal aborts (the promise then resolves). */
  watch(body: LockWatchRequest, sink: PushSink | undefined): Promise<void> {
    if (sink === undefined) return Promise.reject(new InvalidArgumentError('lock.watch must be opened as a subscription (server push)'));
    const name = body.name;
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_LOCK_NAME_LENGTH) {
      return Promise.reject(new InvalidArgumentError(`lock.watch needs a lock name of 1-${MAX_LOCK_NAME_LENGTH} characters, got ${preview(name)}`));
    }
    return new Promise<void>((resolve) => {
      let w = this.watched.get(name);
      if (w === undefined) this.watched.set(name, (w = { last: this.lock.query({ op: 'lock', name }) as LockInfo | undefined, sinks: new Set() }));
      const entry = w;
      entry.sinks.add(sink);
      const done = () => {
        this.enders.delete(done);
        sink.signal.removeEventListener('abort', done);
        entry.sinks.delete(sink);
        if (entry.sinks.size === 0 && this.watched.get(name) === entry) this.watched.delete(name);
        resolve();
      };
      this.enders.add(done);
      if (sink.signal.aborted) return done();
      sink.signal.addEventListener('abort', done, { once: true });
      sink.push({ state: entry.last ?? null, index: this.lock.appliedIndex } satisfies LockWatchPush);
    });
  }

  /** Stops following the node and ends every subscription. */
  close(): void {
    this.node.off('apply', this.onApply);
    this.node.off('snapshot', this.onSnapshot);
    for (const end of [...this.enders]) end();
  }
}
