import { InvalidArgumentError, preview } from '@consensus-kit/core';
import { LeaseNotFoundError } from './errors';

/**
 * The shortest TTL a lease is granted by default: 1.5 election timeouts of a node with the default tick
 * (100 ms) and election ticks (10), as etcd's lessor sets its minLeaseTTL. A shorter TTL is raised to it
 * (etcd does the same): a lease shorter than an election would expire during any leader change.
 */
export const DEFAULT_MIN_LEASE_TTL_MS = 1_500;
/** The longest TTL: about 31 years (etcd's MaxLeaseTTL is larger; this keeps `now + ttl` far from 2^53). */
export const MAX_LEASE_TTL_MS = 1e12;
/** Live leases at most by default; a grant beyond it is refused (`InvalidArgumentError`), the same on every replica. */
export const DEFAULT_MAX_LEASES = 1_000_000;
/** Lease ids in one keepalive command at most: one command renews a whole client's batch. */
export const MAX_KEEPALIVE_IDS = 65_536;

/** One lease: its id, the TTL granted, when it expires in replicated time, and the keys attached to it. */
export interface Lease {
  id: number;
  ttl: number;
  expiry: number;
  keys: Set<string>;
}

/** A lease in a snapshot: `[id, ttl, expiry]`; its keys are found again from the keys' `lease` field. */
export type LeaseSnapshot = [id: number, ttl: number, expiry: number][];

export function checkLeaseId(id: unknown, what = 'lease id'): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`${what} must be a positive integer, got ${preview(id)}`);
}

/**
 * The lease table of the kv state machine, modelled on etcd's lessor (server/lease/lessor.go): grant, revoke,
 * renew, and the keys attached to each lease. It never reads a clock: every time it is given is replicated
 * time (`ReplicatedTime.now`, DESIGN r2), so every replica expires the same leases at the same log entry.
 * Deleting the keys of an expired or revoked lease is the state machine's job (one revision, with events).
 */
export class Lessor {
  private readonly leases = new Map<number, Lease>();
  /** The last id handed out by a grant without an id: ids are a counter, deterministic on every replica. */
  private lastId = 0;

  constructor(
    readonly minTtl = DEFAULT_MIN_LEASE_TTL_MS,
    readonly maxLeases = DEFAULT_MAX_LEASES,
  ) {
    if (!Number.isSafeInteger(minTtl) || minTtl <= 0 || minTtl > MAX_LEASE_TTL_MS) throw new InvalidArgumentError(`minLeaseTtlMs must be a positive integer up to ${MAX_LEASE_TTL_MS}, got ${preview(minTtl)}`);
    if (!Number.isSafeInteger(maxLeases) || maxLeases <= 0) throw new InvalidArgumentError(`maxLeases must be a positive integer, got ${preview(maxLeases)}`);
  }

  get size(): number {
    return this.leases.size;
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /** The lease, or `LeaseNotFoundError` (the same on every replica). */
  require(id: number): Lease {
    const l = this.leases.get(id);
    if (l === undefined) throw new LeaseNotFoundError(id);
    return l;
  }

  /**
   * etcd's Grant: a new lease of `ttl` ms (raised to the minimum TTL), expiring at `now + ttl`. Without `id`,
   * the next free id of the counter. An id in use, or the lease limit reached: `InvalidArgumentError`.
   */
  grant(now: number, ttl: number, id?: number): Lease {
    if (id !== undefined && this.leases.has(id)) throw new InvalidArgumentError(`lease ${id} already exists`);
    if (this.leases.size >= this.maxLeases) throw new InvalidArgumentError(`too many leases: at most ${this.maxLeases} may be live at once`);
    let lid = id;
    if (lid === undefined) {
      do lid = ++this.lastId;
      while (this.leases.has(lid));
    }
    const granted = Math.max(ttl, this.minTtl);
    const lease: Lease = { id: lid, ttl: granted, expiry: now + granted, keys: new Set() };
    this.leases.set(lid, lease);
    return lease;
  }

  /** Removes the lease (its keys are the caller's to delete); `LeaseNotFoundError` if there is none. */
  revoke(id: number): Lease {
    const l = this.require(id);
    this.leases.delete(id);
    return l;
  }

  /**
   * etcd's Renew for a batch: every lease of `ids` that exists now expires at `now + ttl` (now is the
   * replicated time of the entry being applied: an acknowledged keepalive gives a full TTL from then).
   * Returns the renewed `[id, ttl]` and the ids not found (expired, revoked or never granted).
   */
  renew(now: number, ids: readonly number[]): { kept: [number, number][]; missing: number[] } {
    const kept: [number, number][] = [];
    const missing: number[] = [];
    for (const id of ids) {
      const l = this.leases.get(id);
      if (l === undefined) missing.push(id);
      else {
        l.expiry = now + l.ttl;
        kept.push([id, l.ttl]);
      }
    }
    return { kept, missing };
  }

  /**
   * etcd's Promote: a time entry of a newer term (a new leader) extends every live lease to `now + ttl`, since
   * keepalives sent to the old leader may never have reached the log.
   */
  extendAll(now: number): void {
    for (const l of this.leases.values()) l.expiry = now + l.ttl;
  }

  /** Removes and returns every lease with `expiry <= now`, in id order. A scan: leases are few next to keys. */
  expire(now: number): Lease[] {
    const out: Lease[] = [];
    for (const l of this.leases.values()) if (l.expiry <= now) out.push(l);
    out.sort((a, b) => a.id - b.id);
    for (const l of out) this.leases.delete(l.id);
    return out;
  }

  /** Moves `key` to lease `to` (0: none), from the lease `from` it was attached to (0: none). */
  attach(key: string, from: number, to: number): void {
    if (from === to) return;
    if (from !== 0) this.leases.get(from)?.keys.delete(key);
    if (to !== 0) this.leases.get(to)?.keys.add(key);
  }

  /** Every lease, in id order. */
  list(): Lease[] {
    return [...this.leases.values()].sort((a, b) => a.id - b.id);
  }

  toSnapshot(): { leases: LeaseSnapshot; lastLeaseId: number } {
    return { leases: this.list().map((l) => [l.id, l.ttl, l.expiry]), lastLeaseId: this.lastId };
  }

  /** Replaces the table; `keys` gives every live key with a lease, to attach again. */
  restore(leases: LeaseSnapshot, lastLeaseId: number, keys: Iterable<[key: string, lease: number]>): void {
    this.leases.clear();
    for (const [id, ttl, expiry] of leases) this.leases.set(id, { id, ttl, expiry, keys: new Set() });
    this.lastId = lastLeaseId;
    for (const [key, lease] of keys) this.leases.get(lease)?.keys.add(key);
  }
}
