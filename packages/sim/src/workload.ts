import type { LogEntry, NodeId } from '@consensus-kit/core';
import type { ClientOp } from './history';
import type { Rng } from './rng';
import type { SimStateMachine } from './sim-state-machine';

/** What a client asks a replica for: a proposal (one log entry) or a read barrier. */
export type ClientRequest =
  | { kind: 'propose'; data: Uint8Array; token: unknown }
  | { kind: 'read'; ctx: Uint8Array; token: unknown };

/** What the simulator offers a workload while it runs. Times are in µs of simulated time. */
export interface WorkloadHost {
  readonly nodes: readonly NodeId[];
  readonly tickUs: number;
  readonly endTime: number;
  now(): number;
  /** Calls the workload's `onTimer(timer)` at `at`. */
  setTimer(at: number, timer: unknown): void;
  /** Has `request` reach `node` at `at`: the simulator calls `propose` or `readIndex` there and reports back. */
  request(at: number, node: NodeId, request: ClientRequest): void;
  /** Whether a trace is being collected (skip building trace lines when not). */
  readonly tracing: boolean;
  trace(fields: Record<string, unknown>): void;
}

/**
 * What a targeted scenario asks of the clients while it runs (scenarios.ts): the sides a partition puts them on.
 * Jepsen binds each client process to one node; here clients follow leader hints, so without this the clients
 * would all queue at a leader that was just cut off (each op waits out its timeout there) and none would be on
 * either side of the split at the instant that matters.
 */
export interface ClientSteer {
  /**
   * Nodes the roaming clients cannot reach now (they are on the other side): an op waiting on one of them is
   * given up (indeterminate, as on a client timeout) and no new op goes there.
   */
  unreachable: readonly NodeId[];
  /** Nodes that have one dedicated reader bound to them: it reads without pause and never follows a hint. */
  readers: readonly NodeId[];
}

/** What a workload is made from, once per run: its random stream is forked from the run's seed. */
export interface WorkloadInit {
  rng: Rng;
  nodes: readonly NodeId[];
  tickUs: number;
  ticks: number;
}

/** A command entry the workload recognised as one of its own. */
export interface AppliedCommand {
  /** Unique per proposed command: the simulator fails a run that commits one command twice. */
  id: string;
  /** True when this application answered a client: the entry must then stay durable on some replica. */
  acknowledged: boolean;
}

/**
 * The clients of a run (Jepsen's generator and client in one): it issues operations through `host.request`,
 * hears what became of them, and records the history the checker judges at the end. One instance per run.
 */
export interface Workload<Op extends ClientOp = ClientOp> {
  /** Ticks after which an op that has not completed is indeterminate: random fault schedules end with a quiet period twice as long. */
  readonly timeoutTicks: number;
  /** Called once, before the first event: schedule the first operations. */
  start(host: WorkloadHost): void;
  onTimer(timer: unknown): void;
  /** Whether `request` is still wanted when it reaches its node (its op may have timed out meanwhile). */
  live(request: ClientRequest): boolean;
  /** `node` took the request (`propose` / `readIndex` returned). */
  accepted(node: NodeId, request: ClientRequest): void;
  /** `node` refused it without effect (not the leader, down...); `leaderHint` when the protocol gave one. */
  refused(node: NodeId, request: ClientRequest, leaderHint: NodeId | undefined): void;
  /** A committed command entry was applied at `node`, with the state machine's result. */
  applied(node: NodeId, entry: LogEntry, result: unknown): AppliedCommand | undefined;
  /** A read barrier with `ctx` was released at `node`: the state machine has applied its index. */
  readReleased(node: NodeId, ctx: Uint8Array, sm: SimStateMachine): void;
  /** `node` crashed: what it held for clients is now indeterminate. */
  crashed(node: NodeId): void;
  /** A scenario placed the clients (see `ClientSteer`); `{ unreachable: [], readers: [] }` when it ends. Optional. */
  steer?(s: ClientSteer): void;
  /** The run ended (or stopped at a violation): ops still open become indeterminate. */
  end(): void;
  history(): Op[];
  readonly stats: { ops: number; opsOk: number; opsIndeterminate: number };
}

/** Makes the run's workload. Throw a `ConfigError` for bad settings: it is called before anything runs. */
export type WorkloadFactory<Op extends ClientOp = ClientOp> = (init: WorkloadInit) => Workload<Op>;
