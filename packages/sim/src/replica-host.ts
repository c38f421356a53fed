import {
  ApplyStep,
  InvariantError,
  MemoryStorage,
  canObserveCompaction,
  describeEntry,
  describeStatus,
  emptyMemoryStorageState,
  isConsensusError,
  type AnyProtocolModule,
  type ClusterConfig,
  type Envelope,
  type LogEntry,
  type MemoryStorageState,
  type NodeId,
  type Protocol,
  type Ready,
  type ReadState,
} from '@consensus-kit/core';
import { ReadyDriver, needsPersist, saveSteps } from '@consensus-kit/core/testing';
import { Stop, type SimContext, type SimEvent } from './sim-context';
import type { SimStateMachine } from './sim-state-machine';

/** What a replica host needs from the run: the protocol to create, and where its outputs go. */
export interface HostEnv {
  readonly ctx: SimContext;
  readonly module: AnyProtocolModule;
  readonly ids: readonly NodeId[];
  /** Extra `create()` options: election and heartbeat ticks, the parsed protocol options. */
  readonly createOptions: Record<string, unknown>;
  /** The seeded `random` of one incarnation. */
  random(id: NodeId, incarnation: number): () => number;
  newStateMachine(): SimStateMachine;
  /** Simulated fsync latency of the next save, in µs (from the disk's random stream). */
  fsyncDelay(): number;
  /** How many of a crashed save's `steps` survive, in [0, steps] (from the disk's random stream); undefined: none (crash mid-save off). */
  survivingSteps(steps: number): number | undefined;
  readonly snapshotEvery: number;
  /** Called between a snapshot's write and the log's compaction: true when a crash struck there. */
  crashBetweenSnapshotAndCompaction(r: ReplicaHost): boolean;
  /** A save went to the disk and will be durable after `delayUs` (an armed crash may strike meanwhile). */
  saveAtDisk(r: ReplicaHost, delayUs: number): void;
  send(from: ReplicaHost, messages: Envelope[]): void;
  /** A Ready is durable (whole), before its messages leave. */
  persisted(r: ReplicaHost, rd: Ready): void;
  /** A committed entry reached the state machine (`result` for commands). */
  applied(r: ReplicaHost, entry: LogEntry, result: unknown): void;
  /** Read barriers released: their index is applied. */
  reads(r: ReplicaHost, reads: readonly ReadState[]): void;
}

/** A protocol method threw: carries which one, so the run reports it by name. */
class ProtocolFault extends Error {
  constructor(
    readonly method: string,
    readonly error: unknown,
  ) {
    super(method);
  }
}

function guard<T>(method: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new ProtocolFault(method, err);
  }
}

/**
 * One simulated replica: a protocol instance driven by core's `ReadyDriver` (persist -> send -> apply ->
 * advance) and `ApplyStep`, over a `MemoryStorage` whose state is the replica's disk. A Ready that writes
 * anything waits at the simulated disk for its fsync; meanwhile the protocol keeps ticking and stepping (group
 * commit). A crash keeps what is durable (with a crash mid-save, a prefix of the save at the disk, in DESIGN
 * r2's pinned order) and loses everything else; a restart creates a fresh protocol and state machine over it.
 */
export class ReplicaHost {
  state: 'up' | 'paused' | 'crashed' = 'crashed';
  incarnation = 0;
  protocol: Protocol | undefined;
  /** The disk: what survives a crash. */
  readonly durable: MemoryStorageState = emptyMemoryStorageState();
  storage: MemoryStorage;
  sm: SimStateMachine;
  applier: ApplyStep;
  private driver: ReadyDriver | undefined;
  /** The Ready handed to the simulated disk, not yet durable. */
  private inFlight: Ready | undefined;
  /**
   * A crash of the random fault schedule waiting, until this time, for the next save to reach the disk so that
   * it strikes in the middle of it (see `Simulator.fault`); undefined when none is armed.
   */
  crashArmedUntil: number | undefined;
  /**
   * Set by a crash that tore a snapshot install whose Ready also wrote entries above the snapshot (the
   * protocol meant to keep them): the first of those the crash lost. A torn install is the protocol's to guard
   * (Paxos Made Live 5.1), so `committed-kept` lets that loss pass; cleared by the check.
   */
  tornInstallFrom: number | undefined;
  /** Events that reached the process while it was paused. */
  inbox: SimEvent[] = [];
  /** When the current pause began (µs). */
  pausedAt = 0;
  tickPeriod: number;
  /**
   * Ticks this process's clock has counted, across restarts (a wall clock keeps going while the process is
   * down; ticks missed in a pause are counted when it resumes): its clock in ms is `clockTicks * tickMs`.
   */
  clockTicks = 0;
  /** The term and clock tick of the last time entry this replica proposed as leader. */
  timeProposed: { term: number; tick: number } | undefined;
  lastCommit = 0;
  lastApplied = 0;
  lastStatus = '';

  constructor(
    private readonly env: HostEnv,
    readonly id: NodeId,
    readonly idx: number,
    tickUs: number,
  ) {
    this.tickPeriod = tickUs;
    this.storage = new MemoryStorage(this.durable);
    this.sm = env.newStateMachine();
    this.applier = new ApplyStep({ restore: () => {}, apply: () => {} }, { index: 0, term: 0, config: this.initialConfig() });
  }

  /** The last index applied to the state machine in this incarnation. */
  get appliedIndex(): number {
    return this.applier.index;
  }

  /** First boot or restart from durable state, with a fresh state machine restored from the durable snapshot. */
  boot(): void {
    const env = this.env;
    const ctx = env.ctx;
    const restart = this.incarnation > 0;
    if (restart) ctx.stats.restarts++;
    this.incarnation++;
    this.state = 'up';
    this.storage = new MemoryStorage(this.durable);
    const sm = (this.sm = env.newStateMachine());
    const snap = this.storage.snapshot();
    if (snap !== undefined) sm.restore(snap.data);
    this.applier = new ApplyStep(
      {
        restore: (s) => {
          sm.restore(s.data);
          ctx.trace({ ev: 'restore', node: this.id, index: s.index });
        },
        apply: (entry) => env.applied(this, entry, entry.type === 'command' ? sm.apply(entry) : undefined),
      },
      snap !== undefined ? { index: snap.index, term: snap.term, config: snap.config } : { index: 0, term: 0, config: this.initialConfig() },
    );
    this.lastCommit = this.lastApplied = this.applier.index;
    this.lastStatus = '';
    let protocol: Protocol;
    try {
      protocol = env.module.create({
        id: this.id,
        peers: [...env.ids],
        storage: this.storage,
        applied: this.applier.index,
        random: env.random(this.id, this.incarnation),
        ...env.createOptions,
      });
    } catch (err) {
      if (!restart && isConsensusError(err, 'CONFIG')) throw err;
      return ctx.fail('protocol-error', restart ? 'create (restart from durable state)' : 'create', this.id, err);
    }
    this.protocol = protocol;
    // The driver sees the protocol through a guard that names the method that threw.
    const guarded = {
      hasReady: () => guard('hasReady', () => protocol.hasReady()),
      ready: () => guard('ready', () => protocol.ready()),
      advance: (rd: Ready) => guard('advance', () => protocol.advance(rd)),
    } as Protocol;
    this.driver = new ReadyDriver({
      protocol: guarded,
      storage: this.storage,
      applier: this.applier,
      send: (messages) => env.send(this, messages),
      onPersisted: (rd) => env.persisted(this, rd),
      onReads: (reads) => env.reads(this, reads),
    });
    ctx.trace({ ev: restart ? 'restart' : 'boot', node: this.id, incarnation: this.incarnation, applied: this.applier.index, lastIndex: this.storage.lastIndex() });
    ctx.push(ctx.now + this.tickPeriod, { k: 'tick', node: this.idx, inc: this.incarnation });
    this.pump();
  }

  /** Calls into the protocol, reporting a throw as a protocol error of `what`. */
  call(what: string, fn: (p: Protocol) => void): void {
    const p = this.protocol;
    if (p === undefined) return;
    try {
      fn(p);
    } catch (err) {
      this.env.ctx.fail('protocol-error', what, this.id, err);
    }
  }

  /** Host loop: hand each Ready to the simulated disk; one that writes nothing completes at once. */
  pump(): void {
    for (let round = 0; ; round++) {
      // A protocol whose hasReady() never turns false would hang the run: fail it instead.
      if (round > 100_000) this.env.ctx.fail('protocol-error', 'hasReady', this.id, new Error('hasReady() stayed true through 100000 Ready batches'));
      const driver = this.driver;
      if (driver === undefined || this.state !== 'up' || this.inFlight !== undefined) return;
      const rd = this.run(() => driver.take());
      if (rd === undefined) return;
      if (needsPersist(rd)) {
        this.inFlight = rd;
        const delay = this.env.fsyncDelay();
        this.env.ctx.push(this.env.ctx.now + delay, { k: 'persisted', node: this.idx, inc: this.incarnation });
        this.env.saveAtDisk(this, delay);
        return;
      }
      this.complete(rd);
    }
  }

  /** The fsync of the Ready at the disk finished: it is durable; complete it and go on. */
  persisted(inc: number): void {
    const rd = this.inFlight;
    if (inc !== this.incarnation || this.state === 'crashed' || rd === undefined || this.driver === undefined) return;
    this.inFlight = undefined;
    const driver = this.driver;
    try {
      driver.persist(rd);
    } catch (err) {
      this.env.ctx.fail('protocol-error', 'ready (storage rejected the batch)', this.id, err);
    }
    this.complete(rd);
    this.pump();
  }

  /** Whether a save is at the disk (handed over, its fsync not finished). */
  get saving(): boolean {
    return this.inFlight !== undefined;
  }

  /** The process stops. With a save at the disk, a prefix of it survives (or none of it). */
  crash(): void {
    const { ctx } = this.env;
    const rd = this.inFlight;
    let save: { steps: number; survived: number } | undefined;
    let lost: LogEntry[] = [];
    if (rd !== undefined && this.driver !== undefined) {
      const steps = saveSteps(rd);
      ctx.stats.crashesMidSave++;
      const survived = this.env.survivingSteps(steps) ?? 0;
      if (survived > 0) {
        try {
          this.driver.persist(rd, survived);
        } catch (err) {
          ctx.fail('protocol-error', 'ready (storage rejected the batch)', this.id, err);
        }
      }
      if (survived > 0 && survived < steps) ctx.stats.tornSaves++;
      save = { steps, survived };
      const before = (rd.snapshot !== undefined ? 1 : 0) + (rd.truncateAfter !== undefined ? 1 : 0);
      lost = rd.entries.slice(Math.max(0, Math.min(rd.entries.length, survived - before)));
      if (rd.snapshot !== undefined && survived > 0 && lost.length > 0) this.tornInstallFrom = (lost[0] as LogEntry).index;
    }
    this.state = 'crashed';
    this.crashArmedUntil = undefined;
    this.protocol = undefined;
    this.driver = undefined;
    this.inFlight = undefined;
    this.inbox = [];
    this.applier.dropReads();
    ctx.trace({ ev: 'crash', node: this.id, ...(save !== undefined ? { save } : {}), lostBatch: lost.map(describeEntry) });
  }

  /** persist is done: send, apply, release reads, advance (core's ReadyDriver), then maybe snapshot. */
  private complete(rd: Ready): void {
    const driver = this.driver as ReadyDriver;
    if (this.env.ctx.tracing && rd.status) this.env.ctx.trace({ ev: 'status', status: describeStatus(rd.status) });
    this.run(() => driver.complete(rd));
    this.maybeSnapshot();
  }

  /** Runs a driver step, turning a guarded protocol throw or an apply-order breach into the run's violation. */
  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ProtocolFault) this.env.ctx.fail('protocol-error', err.method, this.id, err.error);
      if (InvariantError.is(err)) this.env.ctx.violate('applied-in-order', `${this.id}: ${err.message}`);
      throw err;
    }
  }

  /** Every `snapshotEvery` applied entries: a state-machine snapshot, and compaction that keeps a tail of the log. */
  private maybeSnapshot(): void {
    const every = this.env.snapshotEvery;
    if (every === 0) return;
    const snap = this.storage.snapshot();
    const at = this.applier.index;
    if (at - (snap?.index ?? 0) < every || at > this.storage.lastIndex()) return;
    try {
      if (this.storage.term(at) !== this.applier.term) return;
      this.storage.saveSnapshotNow({ index: at, term: this.applier.term, config: this.applier.config, data: this.sm.snapshot() });
      this.env.ctx.trace({ ev: 'snapshot', node: this.id, index: at });
      if (this.env.crashBetweenSnapshotAndCompaction(this)) return;
      // Keep a tail of the log so slow followers can still be caught up without a snapshot.
      const keepFrom = at - Math.floor(every / 2);
      if (keepFrom > this.storage.firstIndex()) {
        this.storage.compactNow(keepFrom - 1);
        const p = this.protocol;
        if (p !== undefined && canObserveCompaction(p)) this.call('compacted', (q) => (q as typeof p).compacted(keepFrom - 1));
        this.env.ctx.trace({ ev: 'compact', node: this.id, index: keepFrom - 1 });
      }
    } catch (err) {
      if (err instanceof Stop) throw err;
      // A snapshot is an optimisation: skip it if storage disagrees.
    }
  }

  private initialConfig(): ClusterConfig {
    return { voters: [...this.env.ids], learners: [] };
  }
}
