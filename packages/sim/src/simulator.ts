import { pack, unpack } from 'msgpackr';
import {
  ConfigError,
  MemoryStorage,
  NotLeaderError,
  decodeClusterConfig,
  describeEntry,
  describeEnvelope,
  describeStatus,
  emptyMemoryStorageState,
  isConsensusError,
  type ClusterConfig,
  type Envelope,
  type LogEntry,
  type MemoryStorageState,
  type NodeId,
  type Protocol,
  type ProtocolModule,
  type Ready,
  type Status,
} from '@consensus-kit/core';
import { EventQueue } from './event-queue';
import {
  blockedLinks,
  describeAction,
  isPartitionAction,
  randomSchedule,
  resolveIntensity,
  validateLinkSettings,
  validateSchedule,
  type DelayRange,
  type FaultAction,
  type FaultEvent,
  type FaultOptions,
  type LinkSettings,
} from './faults';
import { describeInput, describeOp, type History, type HistoryOp, type KvInput } from './history';
import { instantiateInvariants, type Invariant, type InvariantSource, type ReplicaView, type SimView } from './invariant';
import { KvStateMachine, decodeCommand, encodeCommand } from './kv-state-machine';
import { checkLinearizability, type LinearizabilityResult } from './linearizability';
import { Rng } from './rng';

/** Simulated time is kept in integer microseconds; options speak milliseconds and ticks. */
const US_PER_MS = 1000;

export interface WorkloadOptions {
  /** Concurrent clients, each with one operation outstanding at a time. Default 3; 0 disables the workload. */
  clients?: number;
  /** Keys for put/get/cas. Default 3. */
  keys?: number;
  /** Keys for appends (read back whole, which reveals the order of appends). Default 1. */
  listKeys?: number;
  /** Ticks after which an operation that has not completed is recorded as indeterminate. Default 40. */
  timeoutTicks?: number;
  /** Ticks a client waits between operations, drawn uniformly. Default [0, 3]. */
  thinkTicks?: [number, number];
  /** Relative weights of the operation kinds. Default { put: 3, get: 4, cas: 2, append: 2 }. */
  mix?: Partial<Record<KvInput['f'], number>>;
}

export interface NetworkOptions extends LinkSettings {
  /** Per directed link overrides, keyed `from->to`. */
  links?: Record<string, LinkSettings>;
  /** Round-trip messages through msgpackr, as a wire would (default true). */
  serialize?: boolean;
}

export interface SimulateOptions {
  /** Any `ProtocolModule`: the simulator only speaks the contract of `@consensus-kit/core`. */
  protocol: ProtocolModule;
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
  workload?: WorkloadOptions;
  network?: NetworkOptions;
  /** Simulated fsync latency in milliseconds: a crash before it completes loses the batch. Default 0.2-2. */
  fsyncMs?: DelayRange;
  /** Protocol-specific invariants, checked after every step with the generic ones. */
  invariants?: InvariantSource;
  /** Passed to `create()`. Defaults are the protocol's own. */
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Take a state-machine snapshot and compact the log every N applied entries (0 = never, the default). */
  snapshotEvery?: number;
  /** Collect the NDJSON trace in the result (default false: faster). */
  trace?: boolean;
  /** Check the client history for linearizability at the end (default true). */
  checkLinearizability?: boolean;
}

export interface Violation {
  kind: 'invariant' | 'linearizability' | 'protocol-error';
  /** Invariant name, `linearizability`, or the protocol method that threw. */
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
  restarts: number;
  committedIndex: number;
  ops: number;
  opsOk: number;
  opsIndeterminate: number;
}

export interface SimResult {
  seed: number;
  protocol: string;
  nodes: NodeId[];
  ok: boolean;
  violation?: Violation;
  history: History;
  /** The fault schedule that ran (for random faults: the one drawn from the seed). */
  schedule: FaultEvent[];
  linearizability?: LinearizabilityResult;
  stats: SimStats;
  /** End of the run in µs of simulated time. */
  endTime: number;
  /** Length of the run in ticks, and µs per tick. */
  ticks: number;
  tickUs: number;
  /** NDJSON lines, when `trace` was set. */
  trace?: string[];
}

type SimEvent =
  | { k: 'tick'; node: number; inc: number }
  | { k: 'deliver'; to: number; env: Envelope; wire: unknown }
  | { k: 'persisted'; node: number; inc: number }
  | { k: 'request'; client: number; op: number; node: number }
  | { k: 'client'; client: number }
  | { k: 'timeout'; client: number; op: number }
  | { k: 'fault'; action: FaultAction };

interface Replica {
  id: NodeId;
  idx: number;
  state: 'up' | 'paused' | 'crashed';
  incarnation: number;
  protocol: Protocol | undefined;
  /** Durable state: what survives a crash. */
  durable: MemoryStorageState;
  storage: MemoryStorage;
  sm: KvStateMachine;
  applied: number;
  appliedConfig: ClusterConfig;
  appliedTerm: number;
  /** The Ready handed to the simulated disk, not yet durable. */
  inFlight: Ready | undefined;
  /** Reads released by the protocol, waiting for `applied >= index`. */
  reads: { ctx: Uint8Array; index: number }[];
  /** Events that reached the process while it was paused. */
  inbox: SimEvent[];
  tickPeriod: number;
  lastCommit: number;
  lastApplied: number;
  lastStatus: string;
}

interface Client {
  id: number;
  target: number;
  op: HistoryOp | undefined;
  /** The replica that accepted the current op (it completes when that replica applies or answers it). */
  acceptedBy: number | undefined;
  seq: number;
  rng: Rng;
  lastSeen: Map<string, string>;
}

class Stop extends Error {}

/**
 * Runs `nodes` replicas of `protocol` in one process against a simulated network, disk and clock, under a
 * fault schedule, with a KV workload whose history is checked for linearizability. Fully determined by
 * `seed`: the same options give the same result and a byte-identical trace.
 *
 * Throws a `ConfigError` (`UnknownProtocolError`, `FaultScheduleError`) for bad options before anything runs;
 * every failure of the protocol under test is reported in the result instead.
 */
export function simulate(options: SimulateOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly module: ProtocolModule;
  private readonly ids: NodeId[];
  private readonly ticks: number;
  private readonly tickUs: number;
  private readonly endTime: number;
  private readonly quietFrom: number;
  private readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly diskRng: Rng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly replicas: Replica[];
  private readonly clients: Client[] = [];
  private readonly history: History = [];
  private readonly schedule: FaultEvent[];
  private readonly invariants: Invariant[];
  private readonly committed = new Map<number, LogEntry>();
  private readonly commandIndex = new Map<string, number>();
  private readonly acked = new Map<number, LogEntry>();
  private readonly traceLines: string[] | undefined;
  private readonly view: SimView;
  private readonly keys: string[];
  private readonly listKeys: string[];
  private readonly mix: [KvInput['f'], number][];
  private readonly timeoutUs: number;
  private readonly thinkTicks: [number, number];
  private readonly fsync: DelayRange;
  private readonly snapshotEvery: number;
  private readonly serialize: boolean;
  private net: Required<LinkSettings> & { delay: DelayRange };
  private readonly linkOverrides = new Map<string, LinkSettings>();
  private blocked = new Set<string>();
  private now = 0;
  private violation: Violation | undefined;
  private readonly stats: SimStats = {
    steps: 0,
    messagesSent: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    crashes: 0,
    restarts: 0,
    committedIndex: 0,
    ops: 0,
    opsOk: 0,
    opsIndeterminate: 0,
  };

  constructor(private readonly options: SimulateOptions) {
    const o = options;
    if (typeof o !== 'object' || o === null) throw new ConfigError('simulate() needs an options object');
    if (typeof o.protocol !== 'object' || o.protocol === null || typeof o.protocol.create !== 'function') {
      throw new ConfigError('options.protocol must be a ProtocolModule ({ name, create(options) })');
    }
    this.module = o.protocol;
    if (!Number.isSafeInteger(o.seed)) throw new ConfigError(`options.seed must be an integer, got ${String(o.seed)}`);
    this.ids = resolveNodes(o.nodes);
    this.ticks = positiveInt(o.ticks ?? 400, 'ticks');
    const tickMs = o.tickMs ?? 10;
    if (!(tickMs > 0 && Number.isFinite(tickMs))) throw new ConfigError(`tickMs must be a positive number, got ${String(tickMs)}`);
    this.tickUs = Math.max(1, Math.round(tickMs * US_PER_MS));
    this.endTime = this.ticks * this.tickUs;
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('network');
    this.diskRng = this.rng.fork('disk');

    const w = o.workload ?? {};
    const clients = nonNegativeInt(w.clients ?? 3, 'workload.clients');
    this.keys = Array.from({ length: nonNegativeInt(w.keys ?? 3, 'workload.keys') }, (_, i) => `k${i}`);
    this.listKeys = Array.from({ length: nonNegativeInt(w.listKeys ?? 1, 'workload.listKeys') }, (_, i) => `l${i}`);
    const timeoutTicks = positiveInt(w.timeoutTicks ?? 40, 'workload.timeoutTicks');
    this.timeoutUs = timeoutTicks * this.tickUs;
    this.thinkTicks = w.thinkTicks ?? [0, 3];
    if (!Array.isArray(this.thinkTicks) || !(this.thinkTicks[0] >= 0) || !(this.thinkTicks[1] >= this.thinkTicks[0])) {
      throw new ConfigError('workload.thinkTicks must be [min, max] with 0 <= min <= max');
    }
    const mix = { put: 3, get: 4, cas: 2, append: 2, ...(w.mix ?? {}) };
    if (this.keys.length === 0) mix.put = mix.cas = 0;
    if (this.listKeys.length === 0) mix.append = 0;
    if (this.keys.length === 0 && this.listKeys.length === 0) mix.get = 0;
    this.mix = (Object.entries(mix) as [KvInput['f'], number][]).filter(([, v]) => {
      if (typeof v !== 'number' || !(v >= 0)) throw new ConfigError('workload.mix weights must be non-negative numbers');
      return v > 0;
    });
    if (clients > 0 && this.mix.length === 0) throw new ConfigError('the workload has clients but no operation it can issue (check keys, listKeys and mix)');

    const n = o.network ?? {};
    validateLinkSettings({ ...(n.delay ? { delay: n.delay } : {}), ...pick3(n) }, 'network');
    this.net = { delay: n.delay ?? { min: 0.5, max: 5 }, drop: n.drop ?? 0, duplicate: n.duplicate ?? 0, reorder: n.reorder ?? 0 };
    for (const [key, s] of Object.entries(n.links ?? {})) {
      const m = /^(.+)->(.+)$/.exec(key);
      if (m === null || !this.ids.includes(m[1] as string) || !this.ids.includes(m[2] as string)) {
        throw new ConfigError(`network.links key ${JSON.stringify(key)} must be "from->to" between existing nodes (${this.ids.join(' ')})`);
      }
      validateLinkSettings(s, `network.links[${key}]`);
      this.linkOverrides.set(`${m[1]}>${m[2]}`, s);
    }
    this.serialize = n.serialize ?? true;
    this.fsync = o.fsyncMs ?? { min: 0.2, max: 2 };
    validateLinkSettings({ delay: this.fsync }, 'fsyncMs');
    this.snapshotEvery = nonNegativeInt(o.snapshotEvery ?? 0, 'snapshotEvery');
    if (o.electionTicks !== undefined) positiveInt(o.electionTicks, 'electionTicks');
    if (o.heartbeatTicks !== undefined) positiveInt(o.heartbeatTicks, 'heartbeatTicks');

    this.quietFrom = Math.max(0, this.ticks - Math.min(Math.max(timeoutTicks * 2, 60), Math.floor(this.ticks / 3)));
    const intensity = resolveIntensity(o.faults);
    if (intensity === undefined) {
      this.schedule = validateSchedule((o.faults as { events?: unknown }).events, this.ids, this.ticks);
    } else {
      this.schedule = randomSchedule(this.rng.fork('faults'), this.ids, this.ticks, this.quietFrom, intensity);
    }
    this.invariants = instantiateInvariants(o.invariants);
    this.traceLines = o.trace ? [] : undefined;

    this.replicas = this.ids.map((id, idx) => {
      const durable = emptyMemoryStorageState();
      return {
        id,
        idx,
        state: 'crashed',
        incarnation: 0,
        protocol: undefined,
        durable,
        storage: new MemoryStorage(durable),
        sm: new KvStateMachine(),
        applied: 0,
        appliedConfig: { voters: [...this.ids], learners: [] },
        appliedTerm: 0,
        inFlight: undefined,
        reads: [],
        inbox: [],
        tickPeriod: this.tickUs,
        lastCommit: 0,
        lastApplied: 0,
        lastStatus: '',
      } satisfies Replica;
    });
    for (let c = 0; c < clients; c++) {
      const crng = this.rng.fork(`client:${c}`);
      this.clients.push({ id: c, target: crng.int(0, this.ids.length - 1), op: undefined, acceptedBy: undefined, seq: 0, rng: crng, lastSeen: new Map() });
    }
    this.view = this.makeView();
  }

  run(): SimResult {
    this.trace({ ev: 'start', protocol: this.module.name, seed: this.options.seed, nodes: this.ids, ticks: this.ticks });
    for (const e of this.schedule) this.trace({ ev: 'schedule', at: e.at, action: describeAction(e.action) });
    try {
      for (const r of this.replicas) this.boot(r);
      for (const e of this.schedule) this.queue.push(Math.round(e.at * this.tickUs), { k: 'fault', action: e.action });
      for (const c of this.clients) this.queue.push(this.tickUs + c.rng.int(0, this.tickUs), { k: 'client', client: c.id });
      let sameInstant = 0;
      for (;;) {
        const next = this.queue.pop();
        if (next === undefined || next.time > this.endTime) break;
        sameInstant = next.time === this.now ? sameInstant + 1 : 0;
        if (sameInstant > 1_000_000) this.violate('time-advances', `more than a million events at ${next.time} µs: simulated time stopped advancing`);
        this.now = next.time;
        this.stats.steps++;
        this.handle(next.event);
        this.checkInvariants();
      }
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    this.now = Math.max(this.now, this.violation ? this.now : this.endTime);
    for (const c of this.clients) if (c.op !== undefined) this.indeterminate(c, 'run-ended');
    let lin: LinearizabilityResult | undefined;
    if (this.violation === undefined && this.options.checkLinearizability !== false) {
      lin = checkLinearizability(this.history);
      if (lin.result === 'illegal') {
        // Mark the moment the counterexample was complete: its last response (or invocation).
        const at = Math.max(...lin.counterexample.map((op) => op.complete ?? op.invoke));
        this.violation = {
          kind: 'linearizability',
          name: 'linearizability',
          message: `history of key ${lin.key} is not linearizable; smallest failing sub-history:\n  ${lin.counterexample.map(describeOp).join('\n  ')}`,
          time: at,
        };
      }
    }
    if (this.violation) this.trace({ ev: 'violation', kind: this.violation.kind, name: this.violation.name, message: this.violation.message });
    this.trace({ ev: 'end', ok: this.violation === undefined, steps: this.stats.steps });
    const result: SimResult = {
      seed: this.options.seed,
      protocol: this.module.name,
      nodes: [...this.ids],
      ok: this.violation === undefined,
      history: this.history,
      schedule: this.schedule,
      stats: { ...this.stats, committedIndex: this.committed.size },
      endTime: this.now,
      ticks: this.ticks,
      tickUs: this.tickUs,
    };
    if (this.violation) result.violation = this.violation;
    if (lin) result.linearizability = lin;
    if (this.traceLines) result.trace = this.traceLines;
    return result;
  }

  // --- events -----------------------------------------------------------------------------------------------

  private handle(e: SimEvent): void {
    switch (e.k) {
      case 'tick': {
        const r = this.replicas[e.node] as Replica;
        if (r.incarnation !== e.inc || r.state === 'crashed') return;
        this.queue.push(this.now + r.tickPeriod, e);
        if (r.state === 'paused') return; // a stalled process misses its ticks
        this.call(r, 'tick', (p) => p.tick());
        this.pump(r);
        return;
      }
      case 'deliver':
      case 'persisted':
      case 'request': {
        const r = this.replicas[e.k === 'deliver' ? e.to : e.node] as Replica;
        if (r.state === 'paused') {
          r.inbox.push(e);
          return;
        }
        return this.handleAtReplica(r, e);
      }
      case 'client':
        return this.startOp(this.clients[e.client] as Client);
      case 'timeout': {
        const c = this.clients[e.client] as Client;
        if (c.op !== undefined && c.op.id === e.op) this.indeterminate(c, 'timeout');
        return;
      }
      case 'fault':
        return this.fault(e.action);
    }
  }

  private handleAtReplica(r: Replica, e: SimEvent): void {
    if (e.k === 'deliver') {
      if (r.state === 'crashed') return this.drop(e.env, 'receiver-down');
      if (this.blocked.has(`${e.env.from}>${e.env.to}`)) return this.drop(e.env, 'partitioned');
      const env: Envelope = this.serialize ? { from: e.env.from, to: e.env.to, msg: unpack(e.wire as Uint8Array) } : e.env;
      this.stats.messagesDelivered++;
      if (this.traceLines) this.trace({ ev: 'recv', msg: describeEnvelope(env) });
      this.call(r, 'step', (p) => p.step(env));
      this.pump(r);
    } else if (e.k === 'persisted') {
      if (r.incarnation !== e.inc || r.state === 'crashed' || r.inFlight === undefined) return;
      const rd = r.inFlight;
      r.inFlight = undefined;
      this.complete(r, rd);
      this.pump(r);
    } else if (e.k === 'request') {
      const c = this.clients[e.client] as Client;
      if (c.op === undefined || c.op.id !== e.op) return;
      if (r.state === 'crashed') return this.retry(c, undefined);
      const op = c.op;
      const ctx = pack([c.id, op.id]);
      try {
        if (op.input.f === 'get') (r.protocol as Protocol).readIndex(ctx);
        else (r.protocol as Protocol).propose(encodeCommand({ c: c.id, o: op.id, in: op.input }));
      } catch (err) {
        if (NotLeaderError.is(err)) return this.retry(c, err.leaderHint);
        if (isConsensusError(err) && err.code !== 'INVARIANT') return this.retry(c, undefined);
        return this.fail('protocol-error', op.input.f === 'get' ? 'readIndex' : 'propose', r, err);
      }
      c.acceptedBy = r.idx;
      if (this.traceLines) this.trace({ ev: 'accepted', node: r.id, op: op.id, client: c.id });
      this.pump(r);
    }
  }

  /** Host loop, one replica: hand each Ready to the simulated disk; finish it when durable. */
  private pump(r: Replica): void {
    for (let round = 0; ; round++) {
      // A protocol whose hasReady() never turns false would hang the run: fail it instead.
      if (round > 100_000) this.fail('protocol-error', 'hasReady', r, new Error('hasReady() stayed true through 100000 Ready batches'));
      const p = r.protocol;
      if (p === undefined || r.state !== 'up' || r.inFlight !== undefined) return;
      let has = false;
      this.call(r, 'hasReady', (q) => (has = q.hasReady()));
      if (!has) return;
      let rd: Ready | undefined;
      this.call(r, 'ready', (q) => (rd = q.ready()));
      const ready = rd as Ready;
      if (ready.hardState !== undefined || ready.truncateAfter !== undefined || ready.entries.length > 0 || ready.snapshot !== undefined) {
        r.inFlight = ready;
        const delay = Math.round((this.fsync.min + this.diskRng.next() * (this.fsync.max - this.fsync.min)) * US_PER_MS);
        this.queue.push(this.now + delay, { k: 'persisted', node: r.idx, inc: r.incarnation });
        return;
      }
      this.complete(r, ready);
    }
  }

  /** persist -> send -> apply -> release reads -> advance (the order of core's Ready contract). */
  private complete(r: Replica, rd: Ready): void {
    const durableTouched = rd.truncateAfter !== undefined || rd.snapshot !== undefined;
    try {
      if (rd.snapshot !== undefined) r.storage.installSnapshotNow(rd.snapshot);
      if (rd.hardState !== undefined || rd.truncateAfter !== undefined || rd.entries.length > 0) {
        r.storage.saveNow({ hardState: rd.hardState, truncateAfter: rd.truncateAfter, entries: rd.entries });
      }
    } catch (err) {
      this.fail('protocol-error', 'ready (storage rejected the batch)', r, err);
    }
    if (this.traceLines) {
      if (rd.status) this.trace({ ev: 'status', status: describeStatus(rd.status) });
      if (rd.entries.length > 0 || rd.truncateAfter !== undefined || rd.hardState !== undefined) {
        this.trace({ ev: 'persist', node: r.id, hardState: rd.hardState !== undefined, truncateAfter: rd.truncateAfter, entries: rd.entries.map(describeEntry) });
      }
    }
    if (durableTouched) this.checkAckedDurable();
    for (const env of rd.messages) this.send(r, env);
    if (rd.snapshot !== undefined) {
      if (rd.snapshot.index > r.applied) {
        r.sm.restore(rd.snapshot.data);
        r.applied = rd.snapshot.index;
        r.appliedTerm = rd.snapshot.term;
        r.appliedConfig = rd.snapshot.config;
        this.trace({ ev: 'restore', node: r.id, index: rd.snapshot.index });
      }
    }
    for (const entry of rd.committed) this.apply(r, entry);
    if (rd.reads.length > 0) r.reads.push(...rd.reads);
    this.releaseReads(r);
    this.call(r, 'advance', (p) => p.advance(rd));
    this.maybeSnapshot(r);
  }

  private apply(r: Replica, entry: LogEntry): void {
    if (entry.index <= r.applied && entry.index <= (r.storage.snapshot()?.index ?? 0)) return; // covered by the restored snapshot
    if (entry.index !== r.applied + 1) {
      this.violate('applied-in-order', `${r.id} applied index ${entry.index} after ${r.applied}: committed entries must be applied once, in index order`);
    }
    const first = this.committed.get(entry.index);
    if (first === undefined) {
      this.committed.set(entry.index, entry);
    } else if (!sameEntry(first, entry)) {
      this.violate('log-agreement', `${r.id} committed ${describeEntry(entry)} at index ${entry.index}, where ${describeEntry(first)} was committed before`);
    }
    r.applied = entry.index;
    r.appliedTerm = entry.term;
    if (this.traceLines) this.trace({ ev: 'apply', node: r.id, entry: describeEntry(entry) });
    if (entry.type === 'config') {
      try {
        r.appliedConfig = decodeClusterConfig(entry.data);
      } catch {
        // A config entry the host cannot read: leave the configuration as it was.
      }
      return;
    }
    if (entry.type !== 'command') return;
    let cmd;
    try {
      cmd = decodeCommand(entry.data);
    } catch {
      return; // not one of ours (a protocol may append its own commands)
    }
    const key = `${cmd.c}:${cmd.o}`;
    const seen = this.commandIndex.get(key);
    if (seen === undefined) this.commandIndex.set(key, entry.index);
    else if (seen !== entry.index) {
      this.violate('no-duplicate-commands', `command of client ${cmd.c} op ${cmd.o} was proposed once but committed at ${seen} and ${entry.index}`);
    }
    const output = r.sm.apply(entry, cmd);
    const c = this.clients[cmd.c];
    if (c?.op !== undefined && c.op.id === cmd.o && c.acceptedBy === r.idx) {
      this.acked.set(entry.index, entry);
      this.finish(c, output, r.id);
    }
  }

  private releaseReads(r: Replica): void {
    if (r.reads.length === 0) return;
    const keep: typeof r.reads = [];
    for (const rs of r.reads) {
      if (rs.index > r.applied) {
        keep.push(rs);
        continue;
      }
      let ctx: unknown;
      try {
        ctx = unpack(rs.ctx);
      } catch {
        continue;
      }
      if (!Array.isArray(ctx)) continue;
      const c = this.clients[ctx[0] as number];
      if (c?.op !== undefined && c.op.id === ctx[1] && c.acceptedBy === r.idx && c.op.input.f === 'get') {
        this.finish(c, { value: r.sm.query(c.op.input.key) }, r.id);
      }
    }
    r.reads = keep;
  }

  private maybeSnapshot(r: Replica): void {
    if (this.snapshotEvery === 0) return;
    const snap = r.storage.snapshot();
    const at = r.applied;
    if (at - (snap?.index ?? 0) < this.snapshotEvery || at > r.storage.lastIndex()) return;
    try {
      if (r.storage.term(at) !== r.appliedTerm) return;
      r.storage.saveSnapshotNow({ index: at, term: r.appliedTerm, config: r.appliedConfig, data: r.sm.snapshot() });
      // Keep a tail of the log so slow followers can still be caught up without a snapshot.
      const keepFrom = at - Math.floor(this.snapshotEvery / 2);
      if (keepFrom > r.storage.firstIndex()) r.storage.compactNow(keepFrom - 1);
      this.trace({ ev: 'snapshot', node: r.id, index: at });
    } catch {
      // A snapshot is an optimisation: skip it if storage disagrees.
    }
  }

  // --- network ----------------------------------------------------------------------------------------------

  private send(r: Replica, env: Envelope): void {
    this.stats.messagesSent++;
    const to = this.ids.indexOf(env.to);
    if (env.from !== r.id || to < 0) return this.drop(env, env.from !== r.id ? 'forged-sender' : 'unknown-receiver');
    const link = this.linkOverrides.get(`${env.from}>${env.to}`);
    const delay = link?.delay ?? this.net.delay;
    if (this.netRng.chance(link?.drop ?? this.net.drop)) return this.drop(env, 'lost');
    let wire: unknown;
    try {
      wire = this.serialize ? pack(env.msg) : env.msg;
    } catch (err) {
      return this.fail('protocol-error', 'message (not msgpack-encodable)', r, err);
    }
    const copies = this.netRng.chance(link?.duplicate ?? this.net.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.messagesDuplicated++;
    for (let i = 0; i < copies; i++) {
      let d = delay.min + this.netRng.next() * (delay.max - delay.min);
      if (this.netRng.chance(link?.reorder ?? this.net.reorder)) d += this.netRng.next() * 10 * Math.max(delay.max, 1);
      this.queue.push(this.now + Math.max(1, Math.round(d * US_PER_MS)), { k: 'deliver', to, env, wire });
    }
    if (this.traceLines) this.trace({ ev: 'send', msg: describeEnvelope(env), copies });
  }

  private drop(env: Envelope, why: string): void {
    this.stats.messagesDropped++;
    if (this.traceLines) this.trace({ ev: 'drop', why, msg: describeEnvelope(env) });
  }

  // --- faults -----------------------------------------------------------------------------------------------

  private fault(a: FaultAction): void {
    this.trace({ ev: 'fault', action: describeAction(a) });
    if (isPartitionAction(a)) {
      this.blocked = blockedLinks(a, this.ids);
      return;
    }
    switch (a.type) {
      case 'crash':
        return this.crash(this.replica(a.node));
      case 'restart': {
        const r = this.replica(a.node);
        if (r.state === 'crashed') this.boot(r);
        return;
      }
      case 'pause': {
        const r = this.replica(a.node);
        if (r.state === 'up') r.state = 'paused';
        return;
      }
      case 'resume': {
        const r = this.replica(a.node);
        if (r.state !== 'paused') return;
        r.state = 'up';
        const inbox = r.inbox;
        r.inbox = [];
        for (const e of inbox) this.handleAtReplica(r, e);
        this.pump(r);
        return;
      }
      case 'clock': {
        this.replica(a.node).tickPeriod = Math.max(1, Math.round(this.tickUs / a.rate));
        return;
      }
      case 'network': {
        const s = a.settings;
        this.net = { delay: s.delay ?? this.net.delay, drop: s.drop ?? this.net.drop, duplicate: s.duplicate ?? this.net.duplicate, reorder: s.reorder ?? this.net.reorder };
        return;
      }
      default:
        return;
    }
  }

  private crash(r: Replica): void {
    if (r.state === 'crashed') return;
    this.stats.crashes++;
    const lost = r.inFlight;
    r.state = 'crashed';
    r.protocol = undefined;
    r.inFlight = undefined;
    r.inbox = [];
    r.reads = [];
    this.trace({ ev: 'crash', node: r.id, lostBatch: lost !== undefined ? lost.entries.map(describeEntry) : [] });
    for (const c of this.clients) if (c.op !== undefined && c.acceptedBy === r.idx) this.indeterminate(c, `leader-crashed:${r.id}`);
    this.checkAckedDurable();
  }

  /** First boot or restart from durable state, with a fresh state machine restored from the durable snapshot. */
  private boot(r: Replica): void {
    const restart = r.incarnation > 0;
    if (restart) this.stats.restarts++;
    r.incarnation++;
    r.state = 'up';
    r.storage = new MemoryStorage(r.durable);
    r.sm = new KvStateMachine();
    const snap = r.storage.snapshot();
    r.applied = 0;
    r.appliedTerm = 0;
    r.appliedConfig = { voters: [...this.ids], learners: [] };
    if (snap !== undefined) {
      r.sm.restore(snap.data);
      r.applied = snap.index;
      r.appliedTerm = snap.term;
      r.appliedConfig = snap.config;
    }
    r.lastCommit = r.applied;
    r.lastApplied = r.applied;
    r.lastStatus = '';
    try {
      r.protocol = this.module.create({
        id: r.id,
        peers: [...this.ids],
        storage: r.storage,
        applied: r.applied,
        random: this.rng.fork(`node:${r.id}:${r.incarnation}`).next,
        ...(this.options.electionTicks !== undefined ? { electionTicks: this.options.electionTicks } : {}),
        ...(this.options.heartbeatTicks !== undefined ? { heartbeatTicks: this.options.heartbeatTicks } : {}),
      });
    } catch (err) {
      if (!restart && isConsensusError(err, 'CONFIG')) throw err;
      this.fail('protocol-error', restart ? 'create (restart from durable state)' : 'create', r, err);
    }
    this.trace({ ev: restart ? 'restart' : 'boot', node: r.id, incarnation: r.incarnation, applied: r.applied, lastIndex: r.storage.lastIndex() });
    this.queue.push(this.now + r.tickPeriod, { k: 'tick', node: r.idx, inc: r.incarnation });
    this.pump(r);
  }

  // --- clients ----------------------------------------------------------------------------------------------

  private startOp(c: Client): void {
    if (c.op !== undefined) return;
    if (this.now + this.timeoutUs > this.endTime) return; // every op gets its full timeout before the end
    const f = weighted(c.rng, this.mix);
    const value = `v${c.id}.${c.seq}`;
    let input: KvInput;
    if (f === 'append') input = { f, key: c.rng.pick(this.listKeys), value };
    else if (f === 'get') input = { f, key: c.rng.pick(c.rng.chance(this.listKeys.length / (this.keys.length + this.listKeys.length)) ? this.listKeys : this.keys.length > 0 ? this.keys : this.listKeys) };
    else if (f === 'put') input = { f, key: c.rng.pick(this.keys), value };
    else {
      const key = c.rng.pick(this.keys);
      input = { f: 'cas', key, from: c.lastSeen.get(key) ?? null, to: value };
    }
    c.seq++;
    const op: HistoryOp = { id: this.history.length, client: c.id, input, invoke: this.now, status: 'info' };
    this.history.push(op);
    this.stats.ops++;
    c.op = op;
    c.acceptedBy = undefined;
    if (this.traceLines) this.trace({ ev: 'invoke', client: c.id, op: op.id, input: describeInput(input), node: this.ids[c.target] });
    this.queue.push(this.now + this.timeoutUs, { k: 'timeout', client: c.id, op: op.id });
    this.queue.push(this.now + 1 + c.rng.int(0, 200), { k: 'request', client: c.id, op: op.id, node: c.target });
  }

  /** The op was refused without effect: try another node (the hinted leader when there is one). */
  private retry(c: Client, hint: NodeId | undefined): void {
    const op = c.op as HistoryOp;
    const h = hint === undefined ? -1 : this.ids.indexOf(hint);
    c.target = h >= 0 && h !== c.target ? h : c.rng.int(0, this.ids.length - 1);
    this.queue.push(this.now + Math.round(this.tickUs / 2) + c.rng.int(0, this.tickUs), { k: 'request', client: c.id, op: op.id, node: c.target });
  }

  private finish(c: Client, output: HistoryOp['output'], node: NodeId): void {
    const op = c.op as HistoryOp;
    op.status = 'ok';
    op.complete = this.now;
    op.output = output;
    op.note = `served by ${node}`;
    if (output && 'value' in output && output.value !== null) c.lastSeen.set(op.input.key, output.value);
    if (op.input.f === 'put' || (op.input.f === 'cas' && output && 'swapped' in output && output.swapped)) c.lastSeen.set(op.input.key, op.input.f === 'put' ? op.input.value : op.input.to);
    this.stats.opsOk++;
    if (this.traceLines) this.trace({ ev: 'complete', op: describeOp(op) });
    this.nextOp(c);
  }

  private indeterminate(c: Client, why: string): void {
    const op = c.op as HistoryOp;
    op.status = 'info';
    op.note = why;
    this.stats.opsIndeterminate++;
    if (this.traceLines) this.trace({ ev: 'indeterminate', op: describeOp(op) });
    this.nextOp(c);
  }

  private nextOp(c: Client): void {
    c.op = undefined;
    c.acceptedBy = undefined;
    const think = c.rng.int(Math.round(this.thinkTicks[0] * this.tickUs), Math.round(this.thinkTicks[1] * this.tickUs));
    this.queue.push(this.now + 1 + think, { k: 'client', client: c.id });
  }

  // --- invariants -------------------------------------------------------------------------------------------

  private checkInvariants(): void {
    for (const r of this.replicas) {
      if (r.protocol === undefined) continue;
      let s: Status | undefined;
      this.call(r, 'status', (p) => (s = p.status()));
      const st = s as Status;
      // Within an incarnation the indexes only grow; after a restart they start at the durable floor (the
      // restored snapshot), never below it: what a replica applied and made durable is never taken back.
      if (st.commitIndex < r.lastCommit) this.violate('commit-monotonic', `${r.id} (incarnation ${r.incarnation}) commit index went back from ${r.lastCommit} to ${st.commitIndex}`);
      if (st.appliedIndex < r.lastApplied) this.violate('applied-monotonic', `${r.id} (incarnation ${r.incarnation}) applied index went back from ${r.lastApplied} to ${st.appliedIndex}`);
      if (st.appliedIndex > st.commitIndex) this.violate('applied-le-commit', `${r.id} reports applied ${st.appliedIndex} beyond commit ${st.commitIndex}`);
      r.lastCommit = st.commitIndex;
      r.lastApplied = st.appliedIndex;
      if (this.traceLines) {
        const line = describeStatus(st);
        if (line !== r.lastStatus) {
          r.lastStatus = line;
          this.trace({ ev: 'status', status: line });
        }
      }
    }
    for (const inv of this.invariants) {
      let msg: string | undefined;
      try {
        msg = inv.check(this.view);
      } catch (err) {
        msg = `invariant threw: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (msg !== undefined) this.violate(inv.name, msg);
    }
  }

  /** Every acknowledged entry must still be durable on at least one replica (log or snapshot). */
  private checkAckedDurable(): void {
    for (const [index, entry] of this.acked) {
      const held = this.replicas.some((r) => {
        const snap = r.durable.snapshot;
        if (snap !== undefined && snap.index >= index) return true;
        const i = index - r.durable.compactedIndex - 1;
        const e = i >= 0 ? r.durable.log[i] : undefined;
        return e !== undefined && sameEntry(e, entry);
      });
      if (!held) this.violate('acknowledged-not-lost', `acknowledged entry ${describeEntry(entry)} is no longer durable on any replica`);
    }
  }

  // --- plumbing ---------------------------------------------------------------------------------------------

  private call(r: Replica, what: string, fn: (p: Protocol) => void): void {
    const p = r.protocol;
    if (p === undefined) return;
    try {
      fn(p);
    } catch (err) {
      this.fail('protocol-error', what, r, err);
    }
  }

  private fail(kind: Violation['kind'], what: string, r: Replica, err: unknown): never {
    const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.violation = { kind, name: what, message: `${r.id}.${what} threw ${msg}`, time: this.now };
    throw new Stop();
  }

  private violate(name: string, message: string): never {
    this.violation = { kind: 'invariant', name, message, time: this.now };
    throw new Stop();
  }

  private replica(id: NodeId): Replica {
    return this.replicas[this.ids.indexOf(id)] as Replica;
  }

  private trace(fields: Record<string, unknown>): void {
    if (this.traceLines) this.traceLines.push(JSON.stringify({ t: this.now, ...fields }));
  }

  private makeView(): SimView {
    const clock = () => this.now;
    const tickUs = this.tickUs;
    const views: ReplicaView[] = this.replicas.map((r) => ({
      id: r.id,
      get state() {
        return r.state;
      },
      get incarnation() {
        return r.incarnation;
      },
      get protocol() {
        return r.protocol;
      },
      status: () => r.protocol?.status(),
      get storage() {
        return r.storage;
      },
      get appliedIndex() {
        return r.applied;
      },
    }));
    return {
      get time() {
        return clock();
      },
      get tick() {
        return Math.floor(clock() / tickUs);
      },
      replicas: views,
      replica: (id) => {
        const v = views[this.ids.indexOf(id)];
        if (v === undefined) throw new ConfigError(`no replica ${JSON.stringify(id)}`);
        return v;
      },
      committed: this.committed,
      protocolAs: <T extends Protocol>(id: NodeId) => this.replica(id)?.protocol as T | undefined,
    };
  }
}

function sameEntry(a: LogEntry, b: LogEntry): boolean {
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function weighted<T>(rng: Rng, items: readonly [T, number][]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [v, w] of items) {
    x -= w;
    if (x < 0) return v;
  }
  return (items[items.length - 1] as [T, number])[0];
}

function pick3(s: LinkSettings): LinkSettings {
  const out: LinkSettings = {};
  if (s.drop !== undefined) out.drop = s.drop;
  if (s.duplicate !== undefined) out.duplicate = s.duplicate;
  if (s.reorder !== undefined) out.reorder = s.reorder;
  return out;
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new ConfigError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegativeInt(v: unknown, what: string): number {
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
