import { pack, unpack } from 'msgpackr';
import { ConfigError, InvalidArgumentError, MalformedMessageError } from './errors';
import type { LogEntry, RestoreJob, SnapshotJob, StateMachine } from './types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMachine = StateMachine<any, any, any, any>;
type Machines = Record<string, AnyMachine>;

// Inferred from the methods alone: a pattern over the whole `StateMachine<never, ...>` fails for a machine with
// `timeCommand` (its command type is not `never`), which made the queries and results of kv and lock `never`.
type CmdOf<M> = M extends { apply(entry: LogEntry, command: infer C): unknown } ? C : never;
type ResOf<M> = M extends { apply(entry: LogEntry, command: never): infer R } ? R : never;
type QueryOf<M> = M extends { query(query: infer Q): unknown } ? Q : never;
type ReadOf<M> = M extends { query(query: never): infer R } ? R : never;

/**
 * A command routed to the machine registered under `sm`, or a time entry (r2) handed to every machine that
 * keeps time, each as its own `timeCommand(term, clockMs)`; with a `primary` machine, also a bare command of
 * that machine (what its log held before it was combined).
 */
export type CombinedCommand<M extends Machines, P extends keyof M & string = never> =
  | { [K in keyof M & string]: { sm: K; cmd: CmdOf<M[K]> } }[keyof M & string]
  | { time: [term: number, clockMs: number] }
  | CmdOf<M[P]>;
export type CombinedQuery<M extends Machines, P extends keyof M & string = never> =
  | { [K in keyof M & string]: { sm: K; q: QueryOf<M[K]> } }[keyof M & string]
  | QueryOf<M[P]>;
export type CombinedResult<M extends Machines> = ResOf<M[keyof M]>;
export type CombinedRead<M extends Machines> = ReadOf<M[keyof M]>;

/** The version of the combined snapshot envelope this code writes. */
export const COMBINED_SNAPSHOT_VERSION = 1;

export interface CombineOptions<P extends string> {
  /**
   * The machine that was there before the others were added (e.g. `kv` when a kv-only cluster starts running
   * `{ kv, lock }`): a command or query without `sm` (its old log entries and clients) goes to it, and a
   * snapshot that is not a combined one (a snapshot of that machine alone, written before) restores into it.
   * Without it, both are refused.
   */
  primary?: P;
}

/**
 * Several state machines on one log (e.g. `{ kv, lock }`): commands and queries carry the name of the machine
 * they are for; a snapshot is a versioned envelope holding every machine's snapshot. Routing is deterministic,
 * so an unknown name fails the same way on every replica.
 *
 * Upgrades (DESIGN, "Composition": a snapshot written by an older version restores into the machine it belongs
 * to, never into an empty one): `restore` takes this version's envelope, the unversioned map of parts of the
 * first combined format, or (with `primary`) a bare snapshot of the primary machine; a machine added since
 * keeps its initial state. A snapshot with parts for machines this node does not run is refused (their state
 * would be lost), as is an envelope of a newer version.
 */
export function combineStateMachines<M extends Machines, P extends keyof M & string = never>(
  machines: M,
  options: CombineOptions<P> = {},
): StateMachine<CombinedCommand<M, P>, CombinedResult<M>, CombinedQuery<M, P>, CombinedRead<M>> {
  const names = Object.keys(machines);
  if (names.length === 0) throw new ConfigError('combineStateMachines needs at least one state machine');
  for (const name of names) {
    const sm = machines[name];
    if (typeof sm?.apply !== 'function' || typeof sm.query !== 'function' || typeof sm.snapshot !== 'function' || typeof sm.restore !== 'function') {
      throw new ConfigError(`state machine ${JSON.stringify(name)} must implement apply, query, snapshot and restore`);
    }
  }
  const primaryName = options.primary;
  if (primaryName !== undefined && !Object.hasOwn(machines, primaryName)) {
    throw new ConfigError(`primary state machine ${JSON.stringify(primaryName)} is not one of ${names.join(', ')}`);
  }
  const primary = primaryName === undefined ? undefined : (machines[primaryName] as AnyMachine);
  const route = (name: unknown): AnyMachine => {
    const sm = typeof name === 'string' && Object.hasOwn(machines, name) ? machines[name] : undefined;
    if (sm === undefined) throw new InvalidArgumentError(`no state machine named ${JSON.stringify(name)} (have ${names.join(', ')})`);
    return sm;
  };
  /** Whether `x` names its machine (`{ sm, ... }`): anything else is a bare command or query of the primary. */
  const routed = (x: unknown): x is { sm: unknown } => typeof x === 'object' && x !== null && Object.hasOwn(x, 'sm');
  const timed = names.filter((n) => typeof machines[n]?.timeCommand === 'function');
  type Combined = StateMachine<CombinedCommand<M, P>, CombinedResult<M>, CombinedQuery<M, P>, CombinedRead<M>>;
  const combined: Combined = {
    apply(entry: LogEntry, command: CombinedCommand<M, P>) {
      if (typeof command === 'object' && command !== null && Object.hasOwn(command, 'time')) {
        const t = (command as { time: unknown }).time;
        if (!Array.isArray(t) || t.length !== 2) throw new InvalidArgumentError('a combined time entry must be { time: [term, clockMs] }');
        let result: unknown;
        for (const name of timed) {
          const sm = machines[name] as AnyMachine;
          result = sm.apply(entry, sm.timeCommand?.(t[0], t[1]));
        }
        return result as CombinedResult<M>;
      }
      if (routed(command)) return route(command.sm).apply(entry, (command as { cmd: unknown }).cmd);
      // A command without `sm`: one the primary machine's log held before it was combined.
      if (primary !== undefined) return primary.apply(entry, command);
      throw new InvalidArgumentError('combined command must be { sm, cmd } or { time }');
    },
    query(query: CombinedQuery<M, P>) {
      if (routed(query)) return route(query.sm).query((query as { q: unknown }).q);
      if (primary !== undefined) return primary.query(query);
      throw new InvalidArgumentError('combined query must be { sm, q }');
    },
    snapshot() {
      const parts: Record<string, Uint8Array> = {};
      for (const name of names) parts[name] = (machines[name] as AnyMachine).snapshot();
      return pack({ combined: COMBINED_SNAPSHOT_VERSION, parts });
    },
    /**
     * r3: incremental when any machine is. Every machine is captured now: one with `beginSnapshot` as a job,
     * any other as its `snapshot()` bytes at once; the jobs then run one after the other. The envelope is the
     * one `snapshot()` writes.
     */
    beginSnapshot(): SnapshotJob {
      const parts: Record<string, Uint8Array> = {};
      const jobs: [string, SnapshotJob][] = [];
      try {
        for (const name of names) {
          const sm = machines[name] as AnyMachine;
          if (typeof sm.beginSnapshot === 'function') jobs.push([name, sm.beginSnapshot()]);
          else parts[name] = sm.snapshot();
        }
      } catch (e) {
        for (const [, job] of jobs) job.cancel();
        throw e;
      }
      let done: Uint8Array | undefined;
      let envelope: { copy(maxBytes: number): Uint8Array | undefined } | undefined;
      return {
        step(budget: number) {
          if (done !== undefined) return done;
          const current = jobs[0];
          if (current !== undefined) {
            const bytes = current[1].step(budget);
            if (bytes === undefined) return undefined;
            parts[current[0]] = bytes;
            jobs.shift();
            if (jobs.length > 0) return undefined;
          }
          // In the machines' order, as `snapshot()` writes them: the envelope's bytes laid out piece by piece and
          // copied ENVELOPE_BYTES_PER_UNIT per unit of budget (packing it whole copied a 197 MB kv part in one
          // step: 325-384 ms).
          if (envelope === undefined) {
            const ordered: Record<string, Uint8Array> = {};
            for (const name of names) ordered[name] = parts[name] as Uint8Array;
            envelope = envelopeWriter(ordered);
          }
          done = envelope.copy(budget * ENVELOPE_BYTES_PER_UNIT);
          return done;
        },
        cancel() {
          for (const [, job] of jobs.splice(0)) job.cancel();
        },
      };
    },
    /**
     * All or nothing across the machines. The primary, the large store, is restored last and trusted to be all
     * or nothing by itself (kv's is: it builds the new state aside); every other machine is snapshotted first
     * and put back should its part or a later one be refused. Before, a good kv part and a malformed lock part
     * left kv restored and the lock table as it was, behind a MalformedMessageError.
     */
    restore(data: Uint8Array) {
      const plan = planRestore(data);
      if (plan === 'bare') return (primary as AnyMachine).restore(data);
      const ordered = [...plan.filter(([n]) => n !== primaryName), ...plan.filter(([n]) => n === primaryName)];
      const undo: [AnyMachine, Uint8Array][] = [];
      try {
        for (const [name, part] of ordered) {
          const sm = machines[name] as AnyMachine;
          if (name !== primaryName) undo.push([sm, sm.snapshot()]);
          sm.restore(part);
        }
      } catch (e) {
        for (const [sm, before] of undo.reverse()) sm.restore(before);
        throw e;
      }
    },
    /**
     * r3: incremental when any machine is. The envelope is read and checked now; the machines with
     * `beginRestore` then restore as jobs, one after the other, and the others in the step that ends the last
     * job, so a single incremental machine (kv beside the lock service) switches state in the same step as the
     * rest. With several incremental machines each switches at the end of its own job: the host applies nothing
     * and serves no read until the whole job is done. The others' parts are tried when the job begins (restored,
     * then put back from a snapshot taken just before): a part one of them refuses fails `beginRestore` itself,
     * before any machine changed, instead of the last step after the jobs switched theirs.
     */
    beginRestore(data: Uint8Array): RestoreJob {
      const plan = planRestore(data);
      const all: [string, Uint8Array][] = plan === 'bare' ? [[primaryName as string, data]] : plan;
      const jobs: RestoreJob[] = [];
      const atOnce: [AnyMachine, Uint8Array][] = [];
      try {
        for (const [name, part] of all) {
          const sm = machines[name] as AnyMachine;
          if (typeof sm.beginRestore === 'function') continue;
          // Tried now and put back (its state must not change before the jobs end): a part it refuses fails
          // the restore here, before any job switches its machine, never in the last step after they did.
          const before = sm.snapshot();
          try {
            sm.restore(part);
          } finally {
            // Also after a refusal: a machine whose restore is not all or nothing by itself (the lock table's
            // clears, then fills) may have changed part-way.
            sm.restore(before);
          }
          atOnce.push([sm, part]);
        }
        for (const [name, part] of all) {
          const sm = machines[name] as AnyMachine;
          if (typeof sm.beginRestore === 'function') jobs.push(sm.beginRestore(part));
        }
      } catch (e) {
        for (const job of jobs) job.cancel();
        throw e;
      }
      let done = false;
      return {
        step(budget: number) {
          if (done) return true;
          const current = jobs[0];
          if (current !== undefined) {
            if (!current.step(budget)) return false;
            jobs.shift();
            if (jobs.length > 0) return false;
          }
          for (const [sm, part] of atOnce) sm.restore(part);
          done = true;
          return true;
        },
        cancel() {
          for (const job of jobs.splice(0)) job.cancel();
        },
      };
    },
  };
  /**
   * What a restore of `data` does: 'bare' (a snapshot of the primary machine alone, which it restores itself),
   * or each machine's part, in the machines' order (a machine added after the snapshot was taken has none and
   * keeps its initial state). A snapshot that is neither: `MalformedMessageError`.
   */
  function planRestore(data: Uint8Array): 'bare' | [string, Uint8Array][] {
    let decoded: unknown;
    try {
      decoded = unpack(data);
    } catch (cause) {
      // Not msgpack at all: only a bare snapshot of a primary that encodes its own way.
      if (primary !== undefined) return 'bare';
      throw new MalformedMessageError('combined snapshot is not valid msgpack', { cause });
    }
    const parts = partsOf(decoded);
    if (parts === undefined) {
      if (primary !== undefined) return 'bare';
      throw new MalformedMessageError('not a combined snapshot (a snapshot of one machine restores only into a primary machine: pass { primary })');
    }
    const unknown = Object.keys(parts).filter((n) => !Object.hasOwn(machines, n));
    if (unknown.length > 0) {
      throw new MalformedMessageError(`combined snapshot holds state for ${unknown.map((n) => JSON.stringify(n)).join(', ')}, which this node does not run (have ${names.join(', ')})`);
    }
    const out: [string, Uint8Array][] = [];
    for (const name of names) {
      const part = parts[name];
      if (part !== undefined) out.push([name, part]);
    }
    return out;
  }
  if (timed.length > 0) combined.timeCommand = (term, clockMs) => ({ time: [term, clockMs] }) as CombinedCommand<M, P>;
  return combined;
}

/**
 * The parts of a combined snapshot: the versioned envelope `{ combined: 1, parts }`, or the unversioned map of
 * the first format (every value bytes). Undefined for anything else (a bare snapshot of one machine).
 */
function partsOf(decoded: unknown): Record<string, Uint8Array> | undefined {
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded) || decoded instanceof Uint8Array) return undefined;
  const d = decoded as Record<string, unknown>;
  if (Object.hasOwn(d, 'combined') && Object.hasOwn(d, 'parts') && Object.keys(d).length === 2) {
    if (d.combined !== COMBINED_SNAPSHOT_VERSION) {
      throw new MalformedMessageError(`combined snapshot has version ${String(d.combined)}; this code reads version ${COMBINED_SNAPSHOT_VERSION} (written by a newer release?)`);
    }
    const parts = d.parts;
    if (typeof parts !== 'object' || parts === null || !Object.values(parts).every((v) => v instanceof Uint8Array)) {
      throw new MalformedMessageError('combined snapshot parts must be a map of name to bytes');
    }
    return parts as Record<string, Uint8Array>;
  }
  const values = Object.values(d);
  if (values.length > 0 && values.every((v) => v instanceof Uint8Array)) return d as Record<string, Uint8Array>;
  return undefined;
}

/** Bytes of the combined envelope a snapshot step copies per unit of its budget (units are keys for kv). */
const ENVELOPE_BYTES_PER_UNIT = 4096;

/**
 * The bytes `pack({ combined: COMBINED_SNAPSHOT_VERSION, parts })` gives (msgpackr writes an object as a map16 of
 * its keys, a Uint8Array as a bin), copied into one buffer `copy(maxBytes)` at a time; the buffer once done.
 */
function envelopeWriter(parts: Record<string, Uint8Array>): { copy(maxBytes: number): Uint8Array | undefined } {
  const map16 = (n: number) => Uint8Array.of(0xde, n >>> 8, n & 0xff);
  const bin = (n: number) => (n < 0x100 ? Uint8Array.of(0xc4, n) : n < 0x10000 ? Uint8Array.of(0xc5, n >>> 8, n & 0xff) : Uint8Array.of(0xc6, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  const names = Object.keys(parts);
  const pieces: Uint8Array[] = [map16(2), pack('combined'), pack(COMBINED_SNAPSHOT_VERSION), pack('parts'), map16(names.length)];
  for (const name of names) pieces.push(pack(name), bin((parts[name] as Uint8Array).length), parts[name] as Uint8Array);
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let next = 0;
  let partial = 0;
  let at = 0;
  return {
    copy(maxBytes: number) {
      let left = maxBytes;
      while (next < pieces.length && left > 0) {
        const p = pieces[next] as Uint8Array;
        const k = Math.min(p.length - partial, left);
        out.set(p.subarray(partial, partial + k), at);
        at += k;
        partial += k;
        left -= k;
        if (partial === p.length) {
          next++;
          partial = 0;
        }
      }
      while (next < pieces.length && (pieces[next] as Uint8Array).length === 0) next++;
      return next < pieces.length ? undefined : out;
    },
  };
}
