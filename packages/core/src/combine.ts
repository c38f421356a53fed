import { pack, unpack } from 'msgpackr';
import { ConfigError, InvalidArgumentError, MalformedMessageError } from './errors';
import type { LogEntry, StateMachine } from './types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMachine = StateMachine<any, any, any, any>;
type Machines = Record<string, AnyMachine>;

type CmdOf<M> = M extends StateMachine<infer C, unknown, unknown, unknown> ? C : never;
type ResOf<M> = M extends StateMachine<never, infer R, unknown, unknown> ? R : never;
type QueryOf<M> = M extends StateMachine<never, unknown, infer Q, unknown> ? Q : never;
type ReadOf<M> = M extends StateMachine<never, unknown, never, infer R> ? R : never;

/**
 * A command routed to the machine registered under `sm`, or a time entry (r2) handed to every machine that
 * keeps time, each as its own `timeCommand(term, clockMs)`.
 */
export type CombinedCommand<M extends Machines> =
  | { [K in keyof M & string]: { sm: K; cmd: CmdOf<M[K]> } }[keyof M & string]
  | { time: [term: number, clockMs: number] };
export type CombinedQuery<M extends Machines> = { [K in keyof M & string]: { sm: K; q: QueryOf<M[K]> } }[keyof M & string];
export type CombinedResult<M extends Machines> = ResOf<M[keyof M]>;
export type CombinedRead<M extends Machines> = ReadOf<M[keyof M]>;

/**
 * Several state machines on one log (e.g. `{ kv, lock }`): commands and queries carry the name of the machine
 * they are for; a snapshot is the map of every machine's snapshot. Routing is deterministic, so an unknown
 * name fails the same way on every replica.
 */
export function combineStateMachines<M extends Machines>(
  machines: M,
): StateMachine<CombinedCommand<M>, CombinedResult<M>, CombinedQuery<M>, CombinedRead<M>> {
  const names = Object.keys(machines);
  if (names.length === 0) throw new ConfigError('combineStateMachines needs at least one state machine');
  for (const name of names) {
    const sm = machines[name];
    if (typeof sm?.apply !== 'function' || typeof sm.query !== 'function' || typeof sm.snapshot !== 'function' || typeof sm.restore !== 'function') {
      throw new ConfigError(`state machine ${JSON.stringify(name)} must implement apply, query, snapshot and restore`);
    }
  }
  const route = (name: unknown): AnyMachine => {
    const sm = typeof name === 'string' && Object.hasOwn(machines, name) ? machines[name] : undefined;
    if (sm === undefined) throw new InvalidArgumentError(`no state machine named ${JSON.stringify(name)} (have ${names.join(', ')})`);
    return sm;
  };
  const timed = names.filter((n) => typeof machines[n]?.timeCommand === 'function');
  const combined: StateMachine<CombinedCommand<M>, CombinedResult<M>, CombinedQuery<M>, CombinedRead<M>> = {
    apply(entry: LogEntry, command: CombinedCommand<M>) {
      if (typeof command !== 'object' || command === null) throw new InvalidArgumentError('combined command must be { sm, cmd }');
      if ('time' in command) {
        const t = command.time;
        if (!Array.isArray(t) || t.length !== 2) throw new InvalidArgumentError('a combined time entry must be { time: [term, clockMs] }');
        let result: unknown;
        for (const name of timed) {
          const sm = machines[name] as AnyMachine;
          result = sm.apply(entry, sm.timeCommand?.(t[0], t[1]));
        }
        return result as CombinedResult<M>;
      }
      return route(command.sm).apply(entry, command.cmd);
    },
    query(query: CombinedQuery<M>) {
      if (typeof query !== 'object' || query === null) throw new InvalidArgumentError('combined query must be { sm, q }');
      return route(query.sm).query(query.q);
    },
    snapshot() {
      const parts: Record<string, Uint8Array> = {};
      for (const name of names) parts[name] = (machines[name] as AnyMachine).snapshot();
      return pack(parts);
    },
    restore(data: Uint8Array) {
      let parts: unknown;
      try {
        parts = unpack(data);
      } catch (cause) {
        throw new MalformedMessageError('combined snapshot is not valid msgpack', { cause });
      }
      if (typeof parts !== 'object' || parts === null) throw new MalformedMessageError('combined snapshot is not a map');
      for (const name of names) {
        const part = (parts as Record<string, unknown>)[name];
        // A machine added after the snapshot was taken keeps its initial state.
        if (part instanceof Uint8Array) (machines[name] as AnyMachine).restore(part);
      }
    },
  };
  if (timed.length > 0) combined.timeCommand = (term, clockMs) => ({ time: [term, clockMs] });
  return combined;
}
