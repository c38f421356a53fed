import { AbortedError, InvalidArgumentError, TimeoutError } from '../errors';
import type { ClusterConfig, Clock, NodeId } from '../types';
import { preview } from '../validate';

export interface OperationOptions {
  signal?: AbortSignal;
  /** Overrides the node's default timeout. */
  timeoutMs?: number;
}

/** One caller waiting for the cluster: settled exactly once, by its outcome, its deadline, its signal or a stop. */
export interface PendingOperation {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  deadline: number;
  timeoutMs: number;
  /** Detaches the abort listener; set only when the caller passed a signal. */
  cleanup?: () => void;
}

export interface PendingRead extends PendingOperation {
  query: unknown;
  /** Set once the protocol has confirmed the read index. */
  index?: number;
}

export interface PendingConfig extends PendingOperation {
  target: ClusterConfig;
}

export interface PendingTransfer extends PendingOperation {
  to: NodeId;
}

/** The four kinds of operation, each filed under its own key, with the words its timeout uses. */
const KINDS = [
  ['proposals', 'proposal'],
  ['reads', 'read'],
  ['configs', 'membership change'],
  ['transfers', 'leadership transfer'],
] as const;

/**
 * The one registry of what callers wait for: proposals (by sequence number), read barriers (by context),
 * membership changes and leadership transfers (by a local id). It owns every way an operation ends other
 * than success: its deadline (`expire`, once per tick: timeouts resolve to within one tick), its abort signal,
 * and `rejectAll` when the node stops or fails. Whoever settles an operation takes it out with `take`.
 */
export class PendingOperations {
  readonly proposals = new Map<number, PendingOperation>();
  readonly reads = new Map<string, PendingRead>();
  readonly configs = new Map<number, PendingConfig>();
  readonly transfers = new Map<number, PendingTransfer>();
  private nextId = 0;

  constructor(
    private readonly clock: Clock,
    private readonly defaultTimeoutMs: number,
  ) {}

  /** The deadline of an operation started now. Throws `InvalidArgumentError` for a bad `timeoutMs`. */
  due(options: OperationOptions): { deadline: number; timeoutMs: number } {
    const t = options.timeoutMs ?? this.defaultTimeoutMs;
    if (typeof t !== 'number' || !(t > 0)) throw new InvalidArgumentError(`timeoutMs must be a positive number, got ${preview(t)}`);
    return { deadline: this.clock.now() + t, timeoutMs: t };
  }

  addProposal(seq: number, op: PendingOperation, signal: AbortSignal | undefined): void {
    this.add(this.proposals, seq, op, signal);
  }

  addRead(key: string, op: PendingRead, signal: AbortSignal | undefined): void {
    this.add(this.reads, key, op, signal);
  }

  addConfig(op: PendingConfig, signal: AbortSignal | undefined): void {
    this.add(this.configs, ++this.nextId, op, signal);
  }

  addTransfer(op: PendingTransfer, signal: AbortSignal | undefined): void {
    this.add(this.transfers, ++this.nextId, op, signal);
  }

  /** Removes and returns the operation under `key` (undefined if it already ended), ready to be settled. */
  take<K, T extends PendingOperation>(map: Map<K, T>, key: K): T | undefined {
    const op = map.get(key);
    if (op === undefined) return undefined;
    map.delete(key);
    op.cleanup?.();
    return op;
  }

  /** Rejects every operation of one kind that `pred` selects (all of them by default). */
  rejectWhere<K, T extends PendingOperation>(map: Map<K, T>, error: () => unknown, pred?: (op: T) => boolean): void {
    if (map.size === 0) return;
    for (const [key, op] of map) {
      if (pred !== undefined && !pred(op)) continue;
      map.delete(key);
      op.cleanup?.();
      op.reject(error());
    }
  }

  /** Rejects what passed its deadline with a `TimeoutError` naming the kind of operation. */
  expire(now: number): void {
    for (const [field, what] of KINDS) {
      const map = this[field] as Map<unknown, PendingOperation>;
      if (map.size === 0) continue;
      for (const [key, op] of map) {
        if (op.deadline > now) continue;
        map.delete(key);
        op.cleanup?.();
        op.reject(new TimeoutError(op.timeoutMs, what));
      }
    }
  }

  /** Rejects everything pending (the node stops or failed). */
  rejectAll(error: () => unknown): void {
    for (const [field] of KINDS) this.rejectWhere(this[field] as Map<unknown, PendingOperation>, error);
  }

  private add<K, T extends PendingOperation>(map: Map<K, T>, key: K, op: T, signal: AbortSignal | undefined): void {
    map.set(key, op);
    if (signal !== undefined) {
      const onAbort = () => {
        if (map.get(key) === op && map.delete(key)) op.reject(new AbortedError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      op.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
  }
}
