import type { Envelope, NodeId } from '@consensus-kit/core';
import type { FaultAction } from './faults';
import type { SimObserver } from './observer';
import type { SimStats, Violation } from './sim-options';
import type { ClientRequest } from './workload';

/** Simulated time is kept in integer microseconds; options speak milliseconds and ticks. */
export const US_PER_MS = 1000;

/** Everything that can happen in a run, in the one event queue. */
export type SimEvent =
  | { k: 'tick'; node: number; inc: number }
  | { k: 'deliver'; to: number; env: Envelope; wire: unknown }
  | { k: 'persisted'; node: number; inc: number }
  | { k: 'request'; node: number; request: ClientRequest }
  | { k: 'workload'; timer: unknown }
  | { k: 'fault'; action: FaultAction }
  /** The scenario script `id` reached the end of a wait. */
  | { k: 'scenario'; id: number };

/** Thrown to end a run at its first violation; never escapes `simulate`. */
export class Stop extends Error {}

/**
 * What the parts of a run (replica hosts, network, checks) share: the clock, the event queue, the trace, the
 * counters, and the way to end the run with a violation.
 */
export interface SimContext {
  readonly now: number;
  readonly stats: SimStats;
  /** Whether a trace is being collected (skip building trace lines when not). */
  readonly tracing: boolean;
  /** Watches the run (never changes it), when one was given. */
  readonly observer: SimObserver | undefined;
  trace(fields: Record<string, unknown>): void;
  push(at: number, event: SimEvent): void;
  /** Ends the run with an invariant violation. */
  violate(name: string, message: string): never;
  /** Ends the run: `node`'s protocol (or storage) failed in `what`. */
  fail(kind: Violation['kind'], what: string, node: NodeId, err: unknown): never;
}
