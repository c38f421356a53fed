import {
  ConfigError,
  NotLeaderError,
  describeEntry,
  isConsensusError,
  type AnyProtocolModule,
  type NodeId,
  type Protocol,
} from '@consensus-kit/core';
import { instantiateInvariants, type ReplicaView, type SimView } from '@consensus-kit/core/testing';
import { ClusterChecks } from './checks';
import { EventQueue } from './event-queue';
import { SCENARIO_WINDOW_TICKS, describeAction, isPartitionAction, type LinkSettings, randomSchedule, resolveIntensity, validateLinkSettings, validateSchedule, type DelayRange, type FaultAction, type FaultEvent } from './faults';
import { linearizabilityChecker, type HistoryChecker, type HistoryVerdict } from './history-checker';
import type { ClientOp, HistoryOp } from './history';
import { kvWorkload } from './kv-workload';
import { SimNetwork } from './network';
import type { SimObserver } from './observer';
import { ReplicaHost, type HostEnv } from './replica-host';
import { Rng } from './rng';
import { Stop, US_PER_MS, type SimContext, type SimEvent } from './sim-context';
import { nonNegativeInt, positiveInt, resolveNodes, type SimResult, type SimStats, type SimulateOptions, type Violation } from './sim-options';
import { kvStateMachine } from './sim-state-machine';
import { startScenario, type ScenarioHost, type ScenarioScript, type ScenarioWait } from './scenarios';
import type { ClientRequest, ClientSteer, Workload, WorkloadFactory, WorkloadHost } from './workload';

export { resolveNodes } from './sim-options';
export type { NetworkOptions, SimResult, SimStats, SimulateOptions, Violation } from './sim-options';

/**
 * Runs `nodes` replicas of `protocol` in one process against a simulated network, disk and clock, under a
 * fault schedule, with a workload whose history is checked at the end (by default: KV, linearizability).
 * Fully determined by `seed`: the same options give the same result and a byte-identical trace.
 *
 * Throws a `ConfigError` (`UnknownProtocolError`, `FaultScheduleError`, an unknown protocol option) for bad
 * options before anything runs; every failure of the protocol under test is reported in the result instead.
 */
export function simulate<Op extends ClientOp = HistoryOp>(options: SimulateOptions<Op>): SimResult<Op> {
  return new Simulation<Op>(options).run();
}

/** How often a leader proposes a time entry, in ticks of its own clock (50 ms at the default 10 ms tick). */
export const TIME_EVERY_TICKS = 5;

class Simulation<Op extends ClientOp> implements SimContext {
  private readonly module: AnyProtocolModule;
  private readonly ids: NodeId[];
  private readonly ticks: number;
  private readonly tickUs: number;
  private readonly endTime: number;
  private readonly rng: Rng;
  private readonly diskRng: Rng;
  /** Crashes of a random schedule wait (briefly) for a save at the disk, see `fault`. */
  private readonly armCrashes: boolean;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly replicas: ReplicaHost[];
  private readonly schedule: FaultEvent[];
  private readonly traceLines: string[] | undefined;
  private readonly network: SimNetwork;
  private readonly workload: Workload<Op>;
  private readonly checker: HistoryChecker<Op> | undefined;
  private readonly checks: ClusterChecks;
  private readonly quietFrom: number;
  private readonly scenarioRng: Rng;
  /** The running scenario script and what it waits for (see scenarios.ts); at most one at a time. */
  private scenario: { script: ScenarioScript; wait: ScenarioWait; deadline: number; id: number; untilTick: number } | undefined;
  /** Whether the schedule was drawn at random (a scenario then stops where random faults resume). */
  private readonly randomFaults: boolean;
  private scenarioSeq = 0;
  /** Links a scenario changed: back to the defaults when it ends (or is cut short by the quiet tail). */
  private readonly scenarioLinks = new Set<string>();
  /** Links a scenario stalled: they recover when it ends. */
  private readonly scenarioStalls = new Set<string>();
  /** Whether a scenario placed the clients (`steer`): they go back to roaming when it ends. */
  private scenarioSteered = false;
  /** The default network settings when the running scenario started, if it changed them since. */
  private scenarioNetwork: LinkSettings | undefined;
  private scenarioNetworkAtStart: LinkSettings | undefined;
  readonly observer: SimObserver | undefined;
  private readonly view: SimView;
  now = 0;
  private violation: Violation | undefined;
  readonly stats: SimStats = {
    steps: 0,
    messagesSent: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    crashes: 0,
    crashesMidSave: 0,
    tornSaves: 0,
    restarts: 0,
    committedIndex: 0,
    ops: 0,
    opsOk: 0,
    opsIndeterminate: 0,
  };

  constructor(private readonly options: SimulateOptions<Op>) {
    const o = options;
    if (typeof o !== 'object' || o === null) throw new ConfigError('simulate() needs an options object');
    const m = o.protocol as Partial<AnyProtocolModule> | null;
    if (typeof m !== 'object' || m === null || typeof m.create !== 'function' || typeof m.parseOptions !== 'function') {
      throw new ConfigError('options.protocol must be a ProtocolModule ({ name, options, parseOptions(raw), create(options) })');
    }
    this.module = o.protocol;
    // Typed protocol options (DESIGN r2): an unknown or ill-typed one is the module's ConfigError, now.
    const protocolOptions = this.module.parseOptions(o.protocolOptions ?? {}) as Record<string, unknown>;
    if (!Number.isSafeInteger(o.seed)) throw new ConfigError(`options.seed must be an integer, got ${String(o.seed)}`);
    this.ids = resolveNodes(o.nodes);
    this.ticks = positiveInt(o.ticks ?? 400, 'ticks');
    const tickMs = o.tickMs ?? 10;
    if (!(tickMs > 0 && Number.isFinite(tickMs))) throw new ConfigError(`tickMs must be a positive number, got ${String(tickMs)}`);
    this.tickUs = Math.max(1, Math.round(tickMs * US_PER_MS));
    this.endTime = this.ticks * this.tickUs;
    this.rng = new Rng(o.seed);
    this.diskRng = this.rng.fork('disk');

    const custom = typeof o.workload === 'function';
    const factory = (custom ? o.workload : kvWorkload(o.workload as Parameters<typeof kvWorkload>[0])) as WorkloadFactory<Op>;
    this.workload = factory({ rng: this.rng, nodes: this.ids, tickUs: this.tickUs, ticks: this.ticks });
    const checker = o.checker ?? (custom ? undefined : (linearizabilityChecker() as unknown as HistoryChecker<Op>));
    this.checker = o.checkLinearizability === false ? undefined : checker;
    const newStateMachine = o.stateMachine ?? kvStateMachine;
    if (typeof newStateMachine !== 'function') throw new ConfigError('options.stateMachine must be a function that makes a SimStateMachine');

    this.network = new SimNetwork(this, this.rng.fork('network'), this.ids, o.network ?? {});
    const fsync: DelayRange = o.fsyncMs ?? { min: 0.2, max: 2 };
    validateLinkSettings({ delay: fsync }, 'fsyncMs');
    const snapshotEvery = nonNegativeInt(o.snapshotEvery ?? 0, 'snapshotEvery');
    if (o.electionTicks !== undefined) positiveInt(o.electionTicks, 'electionTicks');
    if (o.heartbeatTicks !== undefined) positiveInt(o.heartbeatTicks, 'heartbeatTicks');

    const quietFrom = Math.max(0, this.ticks - Math.min(Math.max(this.workload.timeoutTicks * 2, 60), Math.floor(this.ticks / 3)));
    this.scenarioRng = this.rng.fork('scenario');
    const intensity = resolveIntensity(o.faults);
    if (intensity === undefined) {
      this.schedule = validateSchedule((o.faults as { events?: unknown }).events, this.ids, this.ticks);
      this.quietFrom = this.ticks;
      this.randomFaults = false;
    } else {
      this.randomFaults = true;
      this.schedule = randomSchedule(this.rng.fork('faults'), this.ids, this.ticks, quietFrom, intensity, this.scenarioRng);
      this.quietFrom = quietFrom;
    }
    this.traceLines = o.trace ? [] : undefined;
    this.observer = o.observer;

    const crashMidSave = o.crashMidSave ?? true;
    this.armCrashes = crashMidSave && intensity !== undefined;
    const env: HostEnv = {
      ctx: this,
      module: this.module,
      ids: this.ids,
      createOptions: {
        ...protocolOptions,
        ...(o.electionTicks !== undefined ? { electionTicks: o.electionTicks } : {}),
        ...(o.heartbeatTicks !== undefined ? { heartbeatTicks: o.heartbeatTicks } : {}),
      },
      random: (id, inc) => this.rng.fork(`node:${id}:${inc}`).next,
      newStateMachine,
      fsyncDelay: () => Math.round((fsync.min + this.diskRng.next() * (fsync.max - fsync.min)) * US_PER_MS),
      survivingSteps: (steps) => (crashMidSave ? this.diskRng.int(0, steps) : undefined),
      saveAtDisk: (r, delay) => {
        // An armed crash strikes while this save is at the disk: some prefix of it survives.
        const until = r.crashArmedUntil;
        if (until === undefined || this.now >= until) return;
        const at = Math.min(until, this.now + this.diskRng.int(0, Math.max(0, delay - 1)));
        this.queue.push(at, { k: 'fault', action: { type: 'crash', node: r.id } });
      },
      snapshotEvery,
      crashBetweenSnapshotAndCompaction: (r) => {
        // An armed crash (see `fault`) may also strike between a snapshot's write and the log's compaction.
        if (r.crashArmedUntil === undefined || this.now >= r.crashArmedUntil || !this.diskRng.chance(0.5)) return false;
        this.trace({ ev: 'fault', action: `crash ${r.id}`, between: 'snapshot-and-compaction' });
        this.crashNow(r);
        return true;
      },
      send: (r, messages) => {
        for (const env of messages) this.network.send(r.id, env);
      },
      persisted: (r, rd) => {
        if (this.traceLines && (rd.entries.length > 0 || rd.truncateAfter !== undefined || rd.hardState !== undefined)) {
          this.trace({ ev: 'persist', node: r.id, hardState: rd.hardState !== undefined, truncateAfter: rd.truncateAfter, entries: rd.entries.map(describeEntry) });
        }
        if (rd.truncateAfter !== undefined || rd.snapshot !== undefined) this.checks.ackedDurable();
      },
      applied: (r, entry, result) => {
        if (this.traceLines) this.trace({ ev: 'apply', node: r.id, entry: describeEntry(entry) });
        this.checks.applied(r.id, entry, entry.type === 'command' ? this.workload.applied(r.id, entry, result) : undefined);
      },
      reads: (r, reads) => {
        for (const rs of reads) this.workload.readReleased(r.id, rs.ctx, r.sm);
      },
    };
    this.replicas = this.ids.map((id, idx) => new ReplicaHost(env, id, idx, this.tickUs));
    this.view = this.makeView();
    this.checks = new ClusterChecks(this, this.replicas, instantiateInvariants(o.invariants), this.view);
  }

  run(): SimResult<Op> {
    this.trace({ ev: 'start', protocol: this.module.name, seed: this.options.seed, nodes: this.ids, ticks: this.ticks });
    for (const e of this.schedule) this.trace({ ev: 'schedule', at: e.at, action: describeAction(e.action) });
    const observer = this.observer;
    if (observer?.attach) {
      const network = this.network;
      observer.attach({ view: this.view, nodes: this.ids, tickUs: this.tickUs, cut: (from, to) => network.isCut(from, to) });
    }
    try {
      for (const r of this.replicas) r.boot();
      for (const e of this.schedule) this.queue.push(Math.round(e.at * this.tickUs), { k: 'fault', action: e.action });
      this.workload.start(this.workloadHost());
      observer?.step?.(this.now);
      let sameInstant = 0;
      for (;;) {
        const next = this.queue.pop();
        if (next === undefined || next.time > this.endTime) break;
        sameInstant = next.time === this.now ? sameInstant + 1 : 0;
        if (sameInstant > 1_000_000) this.violate('time-advances', `more than a million events at ${next.time} µs: simulated time stopped advancing`);
        this.now = next.time;
        this.stats.steps++;
        this.handle(next.event);
        this.checks.afterStep();
        if (this.scenario?.wait.until !== undefined && this.scenario.wait.until()) this.stepScenario(this.scenario.id);
        observer?.step?.(this.now);
      }
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    this.now = Math.max(this.now, this.violation ? this.now : this.endTime);
    this.workload.end();
    const history = this.workload.history();
    let check: HistoryVerdict<Op> | undefined;
    if (this.violation === undefined && this.checker !== undefined) {
      check = this.checker.check(history);
      if (check.result === 'illegal') {
        // Mark the moment the counterexample was complete: its last response (or invocation).
        const at = check.ops.length > 0 ? Math.max(...check.ops.map((op) => op.complete ?? op.invoke)) : this.now;
        const name = this.checker.name;
        this.violation = { kind: name === 'linearizability' ? 'linearizability' : 'history', name, message: check.message, time: at };
      }
    }
    if (this.violation) this.trace({ ev: 'violation', kind: this.violation.kind, name: this.violation.name, message: this.violation.message });
    this.trace({ ev: 'end', ok: this.violation === undefined, steps: this.stats.steps });
    const result: SimResult<Op> = {
      seed: this.options.seed,
      protocol: this.module.name,
      nodes: [...this.ids],
      ok: this.violation === undefined,
      history,
      schedule: this.schedule,
      stats: { ...this.stats, ...this.workload.stats, committedIndex: this.checks.committed.size },
      endTime: this.now,
      ticks: this.ticks,
      tickUs: this.tickUs,
    };
    if (this.violation) result.violation = this.violation;
    if (check) result.check = check;
    if (this.traceLines) result.trace = this.traceLines;
    return result;
  }

  // --- events -----------------------------------------------------------------------------------------------

  private handle(e: SimEvent): void {
    switch (e.k) {
      case 'tick': {
        const r = this.replicas[e.node] as ReplicaHost;
        if (r.incarnation !== e.inc || r.state === 'crashed') return;
        this.queue.push(this.now + r.tickPeriod, e);
        if (r.state === 'paused') return; // a stalled process misses its ticks
        r.clockTicks++;
        r.call('tick', (p) => p.tick());
        this.proposeTime(r);
        r.pump();
        return;
      }
      case 'deliver':
      case 'persisted':
      case 'request': {
        const r = this.replicas[e.k === 'deliver' ? e.to : e.node] as ReplicaHost;
        if (r.state === 'paused') {
          r.inbox.push(e);
          return;
        }
        return this.handleAtReplica(r, e);
      }
      case 'workload':
        return this.workload.onTimer(e.timer);
      case 'fault':
        return this.fault(e.action);
      case 'scenario':
        return this.stepScenario(e.id);
    }
  }

  // --- scenarios --------------------------------------------------------------------------------------------

  private scenarioHost(): ScenarioHost {
    return {
      nodes: this.ids,
      rng: this.scenarioRng,
      electionTicks: this.options.electionTicks ?? 10,
      tickMs: this.tickUs / US_PER_MS,
      leader: () => {
        let best: { id: NodeId; term: number } | undefined;
        for (const r of this.replicas) {
          if (r.state !== 'up') continue;
          const s = r.protocol?.status();
          if (s?.role === 'leader' && (best === undefined || s.term > best.term)) best = { id: r.id, term: s.term };
        }
        return best;
      },
      commitIndex: (id) => {
        const r = this.replica(id);
        return r.state === 'crashed' ? undefined : r.protocol?.status().commitIndex;
      },
      snapshotIndex: (id) => this.replica(id).durable.snapshot?.index ?? 0,
      lastIndex: (id) => {
        const d = this.replica(id).durable;
        return d.compactedIndex + d.log.length;
      },
      fault: (action) => this.fault(action),
      steer: (st) => {
        this.scenarioSteered = st.unreachable.length > 0 || st.readers.length > 0;
        this.steer(st);
      },
    };
  }

  private steer(st: ClientSteer): void {
    this.trace({ ev: 'steer', unreachable: st.unreachable, readers: st.readers });
    this.workload.steer?.(st);
  }

  /** Runs the scenario script `id` to its next wait (a scenario stops at the quiet tail of a random schedule). */
  private stepScenario(id: number): void {
    const sc = this.scenario;
    if (sc === undefined || sc.id !== id) return;
    const nowTicks = this.now / this.tickUs;
    if (sc.wait.until !== undefined && !sc.wait.until() && this.now < sc.deadline) return;
    const step = nowTicks >= sc.untilTick ? { done: true as const, value: undefined } : sc.script.next();
    if (step.done) {
      this.scenario = undefined;
      for (const key of this.scenarioLinks) {
        const [from, to] = key.split('>') as [NodeId, NodeId];
        this.fault({ type: 'link', from, to, settings: null });
      }
      this.scenarioLinks.clear();
      for (const key of this.scenarioStalls) {
        const [from, to] = key.split('>') as [NodeId, NodeId];
        this.fault({ type: 'unstall', from, to });
      }
      this.scenarioStalls.clear();
      if (this.scenarioSteered) this.steer({ unreachable: [], readers: [] });
      if (this.scenarioNetwork !== undefined) this.fault({ type: 'network', settings: this.scenarioNetwork });
      this.scenarioNetwork = this.scenarioNetworkAtStart = undefined;
      this.trace({ ev: 'scenario-end' });
      return;
    }
    sc.wait = step.value;
    sc.deadline = this.now + Math.max(0, Math.round(step.value.ticks * this.tickUs));
    this.queue.push(sc.deadline, { k: 'scenario', id });
  }

  private handleAtReplica(r: ReplicaHost, e: SimEvent): void {
    if (e.k === 'deliver') {
      const env = this.network.receive(e.env, e.wire, r.state !== 'crashed');
      if (env === undefined) return;
      r.call('step', (p) => p.step(env));
      r.pump();
    } else if (e.k === 'persisted') {
      r.persisted(e.inc);
    } else if (e.k === 'request') {
      this.request(r, e.request);
    }
  }

  /**
   * DESIGN r2, time for state machines: a leader proposes its state machine's time entry when it starts leading
   * a term and then every `TIME_EVERY_TICKS` of its own clock, as core's ConsensusNode does (that host keeps one
   * open at a time; here the interval alone bounds them). Its clock runs at the replica's skewed rate.
   */
  private proposeTime(r: ReplicaHost): void {
    const timeEntry = r.sm.timeEntry;
    const p = r.protocol;
    if (timeEntry === undefined || p === undefined || r.state !== 'up') return;
    const { role, term } = p.status();
    if (role !== 'leader') return;
    const last = r.timeProposed;
    if (last !== undefined && last.term === term && r.clockTicks - last.tick < TIME_EVERY_TICKS) return;
    r.timeProposed = { term, tick: r.clockTicks };
    const data = timeEntry.call(r.sm, term, Math.round(r.clockTicks * (this.tickUs / US_PER_MS)));
    try {
      p.propose(data);
    } catch (err) {
      if (isConsensusError(err) && err.code !== 'INVARIANT') return;
      this.fail('protocol-error', 'propose', r.id, err);
    }
  }

  /** A client request reached `r`: propose or start a read barrier there, and tell the workload how it went. */
  private request(r: ReplicaHost, req: ClientRequest): void {
    if (!this.workload.live(req)) return;
    if (r.state === 'crashed') return this.workload.refused(r.id, req, undefined);
    const p = r.protocol as Protocol;
    try {
      if (req.kind === 'read') p.readIndex(req.ctx);
      else p.propose(req.data);
    } catch (err) {
      if (NotLeaderError.is(err)) return this.workload.refused(r.id, req, err.leaderHint);
      if (isConsensusError(err) && err.code !== 'INVARIANT') return this.workload.refused(r.id, req, undefined);
      return this.fail('protocol-error', req.kind === 'read' ? 'readIndex' : 'propose', r.id, err);
    }
    this.workload.accepted(r.id, req);
    r.pump();
  }

  // --- faults -----------------------------------------------------------------------------------------------

  private fault(a: FaultAction): void {
    this.trace({ ev: 'fault', action: describeAction(a) });
    this.observer?.fault?.(a);
    if (isPartitionAction(a)) return this.network.partition(a);
    switch (a.type) {
      case 'scenario': {
        if (this.scenario !== undefined) return; // one at a time
        const id = ++this.scenarioSeq;
        this.scenarioNetworkAtStart = this.network.current();
        const untilTick = this.randomFaults ? Math.min(this.quietFrom, this.now / this.tickUs + SCENARIO_WINDOW_TICKS) : this.quietFrom;
        this.scenario = { script: startScenario(a.scenario, this.scenarioHost()), wait: { ticks: 0 }, deadline: this.now, id, untilTick };
        return this.stepScenario(id);
      }
      case 'crash': {
        const r = this.replica(a.node);
        if (r.state === 'crashed') return;
        if (this.armCrashes && !r.saving) {
          // A crash at a random instant almost never finds a save at the disk (saves take a few percent of the
          // time), so crash mid-save would go untested: the crash waits up to a tick for the node's next
          // save and strikes during it, or strikes at the deadline. A restart is at least a tick later.
          if (r.crashArmedUntil === undefined) {
            r.crashArmedUntil = this.now + this.tickUs - 1;
            this.queue.push(r.crashArmedUntil, { k: 'fault', action: a });
            return;
          }
          if (this.now < r.crashArmedUntil) return;
        }
        this.crashNow(r);
        return;
      }
      case 'restart': {
        const r = this.replica(a.node);
        if (r.state === 'crashed') r.boot();
        return;
      }
      case 'pause': {
        const r = this.replica(a.node);
        if (r.state === 'up') {
          r.state = 'paused';
          r.pausedAt = this.now;
        }
        return;
      }
      case 'resume': {
        const r = this.replica(a.node);
        if (r.state !== 'paused') return;
        r.state = 'up';
        // The process's clock jumped while it stood still: the ticks it missed arrive at once, before anything
        // that queued up meanwhile (a lease or an election timer sees the jump before the first message).
        const missed = Math.min(100_000, Math.floor((this.now - r.pausedAt) / r.tickPeriod));
        this.trace({ ev: 'resume', node: r.id, missedTicks: missed });
        for (let i = 0; i < missed && r.state === 'up'; i++) {
          r.clockTicks++;
          r.call('tick', (p) => p.tick());
        }
        // The first time entry after the pause carries the jump (the state machine clamps it).
        if (r.state === 'up') this.proposeTime(r);
        const inbox = r.inbox;
        r.inbox = [];
        for (const e of inbox) this.handleAtReplica(r, e);
        r.pump();
        return;
      }
      case 'clock':
        this.replica(a.node).tickPeriod = Math.max(1, Math.round(this.tickUs / a.rate));
        return;
      case 'network':
        if (this.scenario !== undefined && this.scenarioNetwork === undefined) this.scenarioNetwork = this.scenarioNetworkAtStart;
        return this.network.update(a.settings);
      case 'stall':
        if (this.scenario !== undefined) this.scenarioStalls.add(`${a.from}>${a.to}`);
        return this.network.stall(a.from, a.to);
      case 'unstall':
        return this.network.unstall(a.from, a.to);
      case 'link':
        if (this.scenario !== undefined && a.settings !== null) this.scenarioLinks.add(`${a.from}>${a.to}`);
        return this.network.setLink(a.from, a.to, a.settings ?? undefined);
      default:
        return;
    }
  }

  private crashNow(r: ReplicaHost): void {
    this.stats.crashes++;
    r.crash();
    this.workload.crashed(r.id);
    this.checks.ackedDurable();
  }

  // --- plumbing ---------------------------------------------------------------------------------------------

  get tracing(): boolean {
    return this.traceLines !== undefined;
  }

  push(at: number, event: SimEvent): void {
    this.queue.push(at, event);
  }

  fail(kind: Violation['kind'], what: string, node: NodeId, err: unknown): never {
    const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.violation = { kind, name: what, message: `${node}.${what} threw ${msg}`, time: this.now };
    throw new Stop();
  }

  violate(name: string, message: string): never {
    this.violation = { kind: 'invariant', name, message, time: this.now };
    throw new Stop();
  }

  trace(fields: Record<string, unknown>): void {
    if (this.traceLines === undefined && this.observer?.trace === undefined) return;
    const record = { t: this.now, ...fields };
    if (this.traceLines) this.traceLines.push(JSON.stringify(record));
    this.observer?.trace?.(record);
  }

  private replica(id: NodeId): ReplicaHost {
    return this.replicas[this.ids.indexOf(id)] as ReplicaHost;
  }

  private workloadHost(): WorkloadHost {
    return {
      nodes: this.ids,
      tickUs: this.tickUs,
      endTime: this.endTime,
      now: () => this.now,
      setTimer: (at, timer) => this.queue.push(at, { k: 'workload', timer }),
      request: (at, node, request) => this.queue.push(at, { k: 'request', node: this.ids.indexOf(node), request }),
      tracing: this.tracing,
      trace: (fields) => this.trace(fields),
    };
  }

  private makeView(): SimView {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
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
        return r.appliedIndex;
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
      get committed() {
        return self.checks.committed;
      },
      protocolAs: <T extends Protocol>(id: NodeId) => this.replica(id)?.protocol as T | undefined,
    };
  }
}
