import type { Clock } from '@consensus-kit/core';
import type { LeaseKeepAliveResult } from './commands';
import { LeaseNotFoundError } from './errors';
import { MAX_KEEPALIVE_IDS } from './lease';

/** Why a kept-alive lease was lost. */
export type LeaseLostReason =
  /** The cluster answered that the lease does not exist: it expired or was revoked. */
  | 'not-found'
  /**
   * No keepalive was acknowledged for a whole TTL (the cluster was unreachable): the lease may have expired,
   * so its holder must act as if it had (ZooKeeper's session expiry, seen from the client).
   */
  | 'unacknowledged';

export interface LeaseLost {
  id: number;
  reason: LeaseLostReason;
  error: Error;
}

/** A lease kept alive in the background by `kv.leases.keepAlive(id)`. */
export interface LeaseKeepAlive {
  readonly id: number;
  /** Settles (never rejects) when the lease is lost; stays pending if `stop()` comes first. */
  readonly lost: Promise<LeaseLost>;
  /** The TTL the cluster reported, once a keepalive was acknowledged. */
  readonly ttl: number | undefined;
  /** The client clock's reading when the last keepalive acknowledged was sent (its renewal counts from later). */
  readonly lastAcknowledged: number | undefined;
  /** Stops keeping this lease alive (it then expires after its TTL unless someone else keeps it). Idempotent. */
  stop(): void;
}

export interface KeepAliveOptions {
  /** Called once if the lease is lost (the same as awaiting `lost`). */
  onLost?: (lost: LeaseLost) => void;
}

/** Sends one keepalive command for a batch of ids and answers it (the kv client's write, without a session). */
export type SendKeepAlive = (ids: number[], timeoutMs: number) => Promise<LeaseKeepAliveResult>;

interface Kept {
  id: number;
  ttl: number | undefined;
  /** Client clock when the last acknowledged keepalive was sent (or when keeping began). */
  since: number;
  acked: number | undefined;
  handles: Set<Handle>;
}

class Handle implements LeaseKeepAlive {
  lost: Promise<LeaseLost>;
  settle!: (l: LeaseLost) => void;
  stopped = false;
  constructor(
    private readonly kept: Kept,
    private readonly keeper: LeaseKeeper,
    private readonly onLost: ((l: LeaseLost) => void) | undefined,
  ) {
    this.lost = new Promise((resolve) => (this.settle = resolve));
  }
  get id(): number {
    return this.kept.id;
  }
  get ttl(): number | undefined {
    return this.kept.ttl;
  }
  get lastAcknowledged(): number | undefined {
    return this.kept.acked;
  }
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.keeper.release(this);
  }
  fire(l: LeaseLost): void {
    if (this.stopped) return;
    this.stopped = true;
    this.settle(l);
    try {
      this.onLost?.(l);
    } catch {
      // A throwing callback must not stop the keeper for every other lease.
    }
  }
}

/** The round interval before any TTL is known: the shortest TTL a cluster grants by default, over 3. */
const FIRST_ROUND_MS = 500;

/**
 * Keeps a client's leases alive (etcd clientv3's keepAlive loop, batched): every round sends ONE keepalive
 * command naming every lease kept (chunks of `MAX_KEEPALIVE_IDS`), so 10,000 leases cost one command per
 * round, not 10,000. A round runs every (shortest TTL kept) / 3, as etcd's client renews at TTL/3: a lease
 * then survives two lost rounds. A lease the cluster reports missing is lost ('not-found'); one with no
 * acknowledged keepalive for a whole TTL of the client's clock is lost too ('unacknowledged').
 */
export class LeaseKeeper {
  private readonly kept = new Map<number, Kept>();
  private timer: unknown;
  private running = false;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly send: SendKeepAlive,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  keep(id: number, options: KeepAliveOptions = {}): LeaseKeepAlive {
    let k = this.kept.get(id);
    if (k === undefined) {
      k = { id, ttl: undefined, since: this.clock.now(), acked: undefined, handles: new Set() };
      this.kept.set(id, k);
    }
    const h = new Handle(k, this, options.onLost);
    k.handles.add(h);
    // The first round goes at once: it learns the TTL and finds out whether the lease exists.
    if (!this.closed) this.schedule(0);
    return h;
  }

  release(h: Handle): void {
    const k = this.kept.get(h.id);
    if (k === undefined) return;
    k.handles.delete(h);
    if (k.handles.size === 0) this.kept.delete(h.id);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const k of this.kept.values()) for (const h of k.handles) h.stopped = true;
    this.kept.clear();
  }

  private interval(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const k of this.kept.values()) min = Math.min(min, k.ttl === undefined ? FIRST_ROUND_MS * 3 : k.ttl);
    return Math.max(1, Math.floor(min / 3));
  }

  private schedule(ms: number): void {
    if (this.closed || this.running) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.round();
    }, ms);
  }

  private async round(): Promise<void> {
    if (this.closed || this.kept.size === 0) return;
    this.running = true;
    const every = this.interval();
    try {
      const ids = [...this.kept.keys()];
      const sent = this.clock.now();
      for (let i = 0; i < ids.length && !this.closed; i += MAX_KEEPALIVE_IDS) {
        const chunk = ids.slice(i, i + MAX_KEEPALIVE_IDS);
        try {
          // A round ends before the next is due: a lease then never waits on one slow call past its TTL check.
          const r = await this.send(chunk, every);
          for (const [id, ttl] of r.kept) {
            const k = this.kept.get(id);
            if (k === undefined) continue;
            k.ttl = ttl;
            k.since = sent;
            k.acked = sent;
          }
          for (const id of r.missing) this.lose(id, 'not-found', new LeaseNotFoundError(id));
        } catch {
          // Unreachable for now: the next round tries again; the TTL check below decides when it is too late.
        }
      }
      const now = this.clock.now();
      for (const k of [...this.kept.values()]) {
        if (k.ttl !== undefined && now - k.since >= k.ttl) {
          this.lose(k.id, 'unacknowledged', new LeaseNotFoundError(k.id, `lease ${k.id}: no keepalive acknowledged for its TTL (${k.ttl} ms); it may have expired`));
        }
      }
    } finally {
      this.running = false;
    }
    if (this.kept.size > 0) this.schedule(this.interval());
  }

  private lose(id: number, reason: LeaseLostReason, error: Error): void {
    const k = this.kept.get(id);
    if (k === undefined) return;
    this.kept.delete(id);
    for (const h of k.handles) h.fire({ id, reason, error });
  }
}
