import type { LogEntry } from '@consensus-kit/core';
import { KvStateMachine, decodeCommand } from './kv-state-machine';

/**
 * The state machine every simulated replica applies its committed log to: one fresh instance per replica
 * incarnation (a crash loses it; a restart restores it from the durable snapshot). Deterministic, like core's
 * `StateMachine`, but it decodes its own commands: the simulator hands it the raw committed entry.
 */
export interface SimStateMachine {
  /** Apply one committed `command` entry, exactly once, in index order; the result goes to the workload. */
  apply(entry: LogEntry): unknown;
  /** A local read, made by the workload once a read barrier is released. */
  query(query: unknown): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  /**
   * Optional (DESIGN r2, time for state machines): the entry data that carries a leader's clock into the log,
   * as core's `StateMachine.timeCommand`. A replica that leads proposes one when it starts leading a term and
   * then every `timeEveryTicks` of its own clock (which runs at its skewed rate and jumps after a pause).
   */
  timeEntry?(term: number, clockMs: number): Uint8Array;
}

/** Makes a fresh state machine (one per replica incarnation). */
export type SimStateMachineFactory = () => SimStateMachine;

/**
 * The default: the KV store of the default workload (`KvStateMachine`). An entry that is not a KV command (a
 * protocol may append its own commands) changes nothing and answers undefined; a query is a key.
 */
export function kvStateMachine(): SimStateMachine {
  const kv = new KvStateMachine();
  return {
    apply(entry) {
      let cmd;
      try {
        cmd = decodeCommand(entry.data);
      } catch {
        return undefined;
      }
      return kv.apply(entry, cmd);
    },
    query: (key) => kv.query(String(key)),
    snapshot: () => kv.snapshot(),
    restore: (data) => kv.restore(data),
  };
}
