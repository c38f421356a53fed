import type { Envelope, NodeId } from '@consensus-kit/core';
import type { SimView } from '@consensus-kit/core/testing';
import type { FaultAction } from './faults';

/** What an observer can look at during a run: the replicas (as invariants see them) and the network's cuts. */
export interface SimObservation {
  readonly view: SimView;
  readonly nodes: readonly NodeId[];
  /** Microseconds of simulated time per tick of the reference clock. */
  readonly tickUs: number;
  /** Whether the partition in force cuts the directed link `from` -> `to` (a stall is not a cut). */
  cut(from: NodeId, to: NodeId): boolean;
}

/**
 * Watches a run as it happens (the UI recorder of `consensus-sim replay --ui` is one). It only looks: it draws
 * nothing from the run's random streams and changes nothing, so a run with an observer is the same run
 * (same result, same trace) as one without. Every method is optional.
 */
export interface SimObserver {
  /** Called once before the replicas boot. */
  attach?(observation: SimObservation): void;
  /**
   * The records of the trace (`t` in µs), as objects, whether or not `trace` is set: boot, crash, restart,
   * snapshot, restore, compact, fault, ... Those that cost to build (sends, receives, drops, persists, applies,
   * statuses, client ops) come only when `trace` is set.
   */
  trace?(fields: Readonly<Record<string, unknown>>): void;
  /** A fault action is carried out (scheduled, or by a scenario; a crash waiting for a save may come twice). */
  fault?(action: FaultAction): void;
  /** A message reached its receiver's process and is stepped into it. */
  delivered?(env: Envelope): void;
  /** A message was lost: `lost` on the wire, `partitioned` at arrival, `receiver-down`, ... */
  dropped?(env: Envelope, why: string): void;
  /**
   * After the boot (time 0) and after each step whose checks passed (simulated time `time`, µs). A step that
   * ends the run with a violation is not reported here: `end` sees the state it left.
   */
  step?(time: number): void;
}
