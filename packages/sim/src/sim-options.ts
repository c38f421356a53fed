import { ConfigError, type AnyProtocolModule, type NodeId } from '@consensus-kit/core';
import type { InvariantSource } from '@consensus-kit/core/testing';
import type { DelayRange, FaultEvent, FaultOptions, LinkSettings } from './faults';
import type { HistoryChecker, HistoryVerdict } from './history-checker';
import type { SimObserver } from './observer';
import type { ClientOp, HistoryOp } from './history';
import type { WorkloadOptions } from './kv-workload';
import type { SimStateMachineFactory } from './sim-state-machine';
import type { WorkloadFactory } from './workload';

export interface NetworkOptions extends LinkSettings {
  /** Per directed link overrides, keyed `from->to`. */
  links?: Record<string, LinkSettings>;
  /** Round-trip messages through msgpackr, as a wire would (default true). */
  serialize?: boolean;
}

export interface SimulateOptions<Op extends ClientOp = HistoryOp> {
  /** Any `ProtocolModule`: the simulator only speaks the contract of `@consensus-kit/core`. */
  protocol: AnyProtocolModule;
  /**
   * The protocol's own options (Raft's `preVote`...), untyped as a config file or a CLI flag gives them:
   * validated by `protocol.parseOptions` before anything runs (an unknown or ill-typed one is a `ConfigError`).
   */
  protocolOptions?: Record<string, unknown>;
  /** Replica count (ids n1..nN) or explicit ids. Default 3. */
  nodes?: number | NodeId[];
  /** The whole run is a function of this seed. */
  seed: number;
  /** Length of the run in ticks of the reference clock. Default 400. */
  ticks?: number;
  /** Milliseconds of simulated time per tick. Default 10. */
  tickMs?: number;
  /** A level (`none`, `light`, `heavy`), random faults with custom intensities, or a scripted schedule. */
  faults?: FaultOptions;
  /** The default KV workload's settings, or your own workload (`(init) => Workload`). */
  workload?: WorkloadOptions | WorkloadFactory<Op>;
  /** The replicas' state machine, one per incarnation. Default: the KV store of the default workload. */
  stateMachine?: SimStateMachineFactory;
  /** Judges the history at the end. Default: `linearizabilityChecker()` for the KV workload, none for your own. */
  checker?: HistoryChecker<Op>;
  network?: NetworkOptions;
  /** Simulated fsync latency in milliseconds. Default 0.2-2. */
  fsyncMs?: DelayRange;
  /**
   * A crash while a save is at the disk keeps a random prefix of its steps (snapshot, truncation, each entry,
   * hard state: DESIGN r2's pinned order), drawn from the seed. Default true; false loses the whole save.
   */
  crashMidSave?: boolean;
  /** Protocol-specific invariants, checked after every step with the generic ones. */
  invariants?: InvariantSource;
  /** Passed to `create()`. Defaults are the protocol's own. */
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Take a state-machine snapshot and compact the log every N applied entries (0 = never, the default). */
  snapshotEvery?: number;
  /** Collect the NDJSON trace in the result (default false: faster). */
  trace?: boolean;
  /** Check the client history at the end (default true). */
  checkLinearizability?: boolean;
  /** Watches the run step by step without changing it (see `SimObserver`; the UI recorder uses it). */
  observer?: SimObserver;
}

export interface Violation {
  /** `linearizability` / `history`: the checker (by its name) found the history wrong at the end. */
  kind: 'invariant' | 'linearizability' | 'history' | 'protocol-error';
  /** Invariant name, the checker's name, or the protocol method that threw. */
  name: string;
  message: string;
  /** Simulated time (µs) at which it was detected. */
  time: number;
}

export interface SimStats {
  steps: number;
  messagesSent: number;
  messagesDelivered: number;
  messagesDropped: number;
  messagesDuplicated: number;
  crashes: number;
  /** Crashes that found a save at the disk (whatever part of it survived). */
  crashesMidSave: number;
  /** Crashes that hit a save at the disk and kept a strict, non-empty prefix of it. */
  tornSaves: number;
  restarts: number;
  committedIndex: number;
  ops: number;
  opsOk: number;
  opsIndeterminate: number;
}

export interface SimResult<Op extends ClientOp = HistoryOp> {
  seed: number;
  protocol: string;
  nodes: NodeId[];
  ok: boolean;
  violation?: Violation;
  history: Op[];
  /** The fault schedule that ran (for random faults: the one drawn from the seed). */
  schedule: FaultEvent[];
  /** What the history checker said (absent when the run stopped earlier, or nothing checks the history). */
  check?: HistoryVerdict<Op>;
  stats: SimStats;
  /** End of the run in µs of simulated time. */
  endTime: number;
  /** Length of the run in ticks, and µs per tick. */
  ticks: number;
  tickUs: number;
  /** NDJSON lines, when `trace` was set. */
  trace?: string[];
}

export function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new ConfigError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

export function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ConfigError(`${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}

export function resolveNodes(nodes: number | NodeId[] | undefined): NodeId[] {
  if (nodes === undefined) return ['n1', 'n2', 'n3'];
  if (typeof nodes === 'number') {
    if (!Number.isSafeInteger(nodes) || nodes < 1 || nodes > 64) throw new ConfigError(`nodes must be an integer in [1, 64], got ${nodes}`);
    return Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  }
  if (!Array.isArray(nodes) || nodes.length === 0) throw new ConfigError('nodes must be a count or a non-empty list of node ids');
  const seen = new Set<string>();
  for (const id of nodes) {
    if (typeof id !== 'string' || !/^[^\s>]{1,128}$/.test(id)) throw new ConfigError(`node id ${JSON.stringify(id)} is invalid (1-128 characters, no whitespace or ">")`);
    if (seen.has(id)) throw new ConfigError(`node id ${id} is listed twice`);
    seen.add(id);
  }
  return [...nodes];
}
