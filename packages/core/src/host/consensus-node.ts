import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { ApplyStep, type ApplyHandler } from '../apply-step';
import { applyConfigChange, configsEqual } from '../config';
import { AbortedError, ConfigError, InvalidArgumentError, InvariantError, LeadershipLostError, NotLeaderError, StoppedError, TimeoutError, isConsensusError } from '../errors';
import {
  canReportUnreachable,
  type ClusterConfig,
  type Clock,
  type ConfigChange,
  type Envelope,
  type LogEntry,
  type Logger,
  type NodeId,
  type Protocol,
  type Ready,
  type Snapshot,
  type Status,
} from '../types';
import { assertNodeId, seededRandom } from '../validate';
import { systemClock } from './clock';
import { CommandFraming, ctxKey, defaultCodec, type CommandCodec } from './command-framing';
import { silentLogger } from './logger';
import { PendingOperations, type OperationOptions, type PendingOperation, type PendingRead } from './pending-operations';
import { ReadyLoop } from './ready-loop';
import { DEFAULT_TIME_INTERVAL_MS, validateNodeOptions, type ConsensusNodeOptions } from './node-options';
import { DEFAULT_SNAPSHOT_BYTES, Snapshotter } from './snapshotter';
import { runRestoreJob } from './restorer';

export type { CommandCodec } from './command-framing';
export type { OperationOptions } from './pending-operations';
export type { ConsensusNodeOptions } from './node-options';

export interface ApplyEvent<Res = unknown> {
  entry: LogEntry;
  result?: Res;
  error?: unknown;
}

export interface ConsensusNodeEvents<Res> {
  status: [status: Status];
  leader: [leader: NodeId | undefined, term: number];
  role: [role: Status['role'], term: number];
  term: [term: number];
  apply: [event: ApplyEvent<Res>];
  snapshot: [index: number];
  error: [error: unknown];
}

/**
 * Runs one protocol for real. It owns the tick timer, feeds inbound envelopes to `step`, and drains `Ready`
 * through the `ReadyLoop` (persist -> send -> apply -> advance, with group commit). It is the facade over the
 * host's parts: the `ReadyLoop`, core's `ApplyStep` (the apply step every test loop shares), one
 * `PendingOperations` registry for what callers wait for, `CommandFraming` (each proposal carries this host's
 * incarnation and a sequence number, so the node that proposed an entry hands the state machine's result back
 * to its caller when the entry applies), and the `Snapshotter`.
 */
export class ConsensusNode<Cmd = unknown, Res = unknown, Q = unknown, R = unknown> extends EventEmitter<ConsensusNodeEvents<Res>> {
  readonly id: NodeId;
  private readonly opts: ConsensusNodeOptions<Cmd, Res, Q, R>;
  private readonly protocolOptions: Record<string, unknown>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly framing: CommandFraming<Cmd>;
  private readonly pending: PendingOperations;
  private readonly snapshotter: Snapshotter;
  private applier: ApplyStep;
  private protocol: Protocol | undefined;
  private loop: ReadyLoop | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private ticker: unknown;
  /** Time entries (r2): the term and clock reading of the last one proposed, and whether it is still open. */
  private timeProposed: { term: number; at: number; open: boolean } | undefined;
  /** The index of a config entry whose data did not decode: it applies as nothing. */
  private badConfigIndex = -1;
  private lastStatus: Status | undefined;
  /** A snapshot from the leader whose incremental restore has finished: the apply step must not restore it again. */
  private restoredAhead: Snapshot | undefined;
  private fatal: unknown;
  private stopped: Promise<void> | undefined;
  /** `waitForLeader` callers: they end with the stop or failure that ends every other wait. */
  private readonly leaderWaiters = new Set<(error: unknown) => void>();

  constructor(options: ConsensusNodeOptions<Cmd, Res, Q, R>) {
    super();
    validateNodeOptions(options);
    this.opts = options;
    this.id = options.id;
    this.protocolOptions = options.protocol.parseOptions(options.protocolOptions ?? {}) as Record<string, unknown>;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.framing = new CommandFraming(options.codec ?? (defaultCodec as CommandCodec<Cmd>));
    this.pending = new PendingOperations(this.clock, options.timeoutMs ?? 5000);
    this.snapshotter = new Snapshotter({
      storage: options.storage,
      stateMachine: options.stateMachine,
      logger: this.logger,
      every: options.snapshotEvery ?? 10_000,
      bytes: options.snapshotBytes ?? DEFAULT_SNAPSHOT_BYTES,
      keep: options.snapshotKeep ?? 1000,
      onSnapshot: (index) => this.emit('snapshot', index),
      running: () => this.state === 'running',
      kick: () => this.kick(),
    });
    this.applier = new ApplyStep(this.applyHandler(), { index: 0, term: 0, config: { voters: [...options.peers], learners: [] } });
  }

  /** Recovers from storage, creates the protocol, starts the transport and the tick timer. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`node ${this.id} was already started`);
    this.state = 'starting';
    const { storage, stateMachine, transport } = this.opts;
    const snap = storage.snapshot();
    if (snap !== undefined) {
      stateMachine.restore(snap.data);
      this.applier = new ApplyStep(this.applyHandler(), snap);
      this.snapshotter.restored(snap.index);
    }
    const protocol = this.opts.protocol.create({
      ...this.protocolOptions,
      id: this.id,
      peers: this.opts.peers,
      storage,
      applied: this.applier.index,
      ...(this.opts.electionTicks !== undefined ? { electionTicks: this.opts.electionTicks } : {}),
      ...(this.opts.heartbeatTicks !== undefined ? { heartbeatTicks: this.opts.heartbeatTicks } : {}),
      random: this.opts.random ?? osSeededRandom(),
    });
    this.protocol = protocol;
    this.loop = new ReadyLoop({
      protocol,
      storage,
      transport,
      snapshotter: this.snapshotter,
      running: () => this.state === 'running',
      failed: () => this.fatal !== undefined,
      canSend: () => this.state !== 'stopped',
      apply: (rd) => this.applyReady(rd),
      advanced: (rd) => {
        if (rd.status !== undefined) this.onStatus(rd.status);
        if (this.pending.configs.size > 0) this.settleConfigChanges(protocol);
        this.snapshotter.noteApplied(rd.committed);
        this.snapshotter.maybeSnapshot(this.applier);
      },
      fail: (e) => this.fail(e),
    });
    await transport.start({
      deliver: (envelope) => this.deliver(envelope),
      unreachable: (peer) => {
        if (canReportUnreachable(protocol)) protocol.reportUnreachable(peer);
      },
    });
    this.state = 'running';
    this.ticker = this.clock.setInterval(() => this.tick(), this.opts.tickMs ?? 100);
    this.kick();
  }

  /** The protocol's status, with this host's applied index. */
  status(): Status {
    const p = this.requireProtocol();
    return { ...p.status(), appliedIndex: this.applier.index };
  }

  /** Resolves with the leader's id as soon as this node knows one (at once if it already does). */
  waitForLeader(options: OperationOptions = {}): Promise<NodeId> {
    return new Promise<NodeId>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const known = p.status().leader;
        if (known !== undefined) return resolve(known);
        const { timeoutMs } = this.pending.due(options);
        const done = (fn: () => void) => {
          this.clock.clearTimeout(timer);
          this.off('leader', onLeader);
          signal?.removeEventListener('abort', onAbort);
          this.leaderWaiters.delete(onEnd);
          fn();
        };
        const onEnd = (error: unknown) => done(() => reject(error));
        const onLeader = (leader: NodeId | undefined) => {
          if (leader !== undefined) done(() => resolve(leader));
        };
        const onAbort = () => done(() => reject(new AbortedError(signal?.reason)));
        const timer = this.clock.setTimeout(() => done(() => reject(new TimeoutError(timeoutMs, 'waiting for a leader'))), timeoutMs);
        this.on('leader', onLeader);
        this.leaderWaiters.add(onEnd);
        signal?.addEventListener('abort', onAbort, { once: true });
      } catch (e) {
        reject(e);
      }
    });
  }

  get isLeader(): boolean {
    return this.protocol?.status().role === 'leader';
  }

  /**
   * Replicates `command` and resolves with the state machine's result once it is applied here. Rejects with
   * `NotLeaderError` (with a leader hint) on a follower, `LeadershipLostError` when leadership is lost before
   * the entry applies (outcome unknown), `TimeoutError`, `AbortedError`, `StoppedError`, or the protocol's own
   * refusal (`ProposalDroppedError`).
   */
  propose(command: Cmd, options: OperationOptions = {}): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const due = this.pending.due(options);
        const data = this.framing.frame(command);
        p.propose(data);
        const op: PendingOperation = { resolve: resolve as (v: unknown) => void, reject, deadline: due.deadline, timeoutMs: due.timeoutMs };
        this.pending.addProposal(this.framing.lastSeq, op, signal);
        this.kick();
      } catch (e) {
        reject(e);
      }
    });
  }

  /** A linearizable read: waits for a read barrier (ReadIndex), then for the state machine to catch up. */
  read(query: Q, options: OperationOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const due = this.pending.due(options);
        const ctx = this.framing.readContext();
        p.readIndex(ctx);
        const op: PendingRead = { resolve: resolve as (v: unknown) => void, reject, ...due, query };
        this.pending.addRead(ctxKey(ctx), op, signal);
        this.kick();
      } catch (e) {
        reject(e);
      }
    });
  }

  /**
   * Changes membership; resolves with the new configuration once it is in force: the applied configuration
   * equals the target and is not transitional (has no `outgoing`), and so does the configuration the protocol
   * reports in force (`status().config`). How the protocol gets there (one step, a joint configuration, an
   * activation window) is its own policy, not the host's (DESIGN r2). For Raft the two agree once the entry
   * applies; Multi-Paxos decides a configuration in slot s and governs with it from slot s + WINDOW (PMMC
   * section 4), so until then the old configuration still decides every slot, and a caller that stopped a
   * removed member on the answer could leave the old configuration without a quorum.
   */
  changeMembership(change: ConfigChange, options: OperationOptions = {}): Promise<ClusterConfig> {
    return new Promise<ClusterConfig>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const due = this.pending.due(options);
        // Leadership first: a follower's applied configuration may lag the leader's (an add committed but not yet
        // applied here), so judging the change against it could refuse a valid one instead of redirecting it.
        const status = p.status();
        if (status.role !== 'leader') throw new NotLeaderError(status.leader === this.id ? undefined : status.leader);
        const target = applyConfigChange(this.applier.config, change);
        p.proposeConfigChange(change);
        this.pending.addConfig({ resolve: resolve as (v: unknown) => void, reject, ...due, target }, signal);
        this.kick();
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Hands leadership to `to`; resolves once this node sees `to` as leader. */
  transferLeadership(to: NodeId, options: OperationOptions = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      try {
        assertNodeId(to, 'transfer target');
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const due = this.pending.due(options);
        p.transferLeadership(to);
        // Already the leader (raft ignores a transfer to itself, as etcd's does): nothing to wait for.
        if (p.status().leader === to) {
          resolve();
          return;
        }
        this.pending.addTransfer({ resolve: resolve as (v: unknown) => void, reject, ...due, to }, signal);
        this.kick();
      } catch (e) {
        reject(e);
      }
    });
  }

  /**
   * Stops ticking and accepting work, lets the batch in flight finish (so what was acknowledged is durable),
   * rejects everything still pending with `StoppedError`, then stops the transport and closes storage.
   */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    await this.loop?.idle;
    await this.snapshotter.settled;
    this.pending.rejectAll(() => new StoppedError());
    this.rejectLeaderWaiters(() => new StoppedError());
    if (wasRunning) await this.opts.transport.stop().catch((e: unknown) => this.logger.warn('transport stop failed', { error: String(e) }));
    await this.opts.storage.close().catch((e: unknown) => this.logger.warn('storage close failed', { error: String(e) }));
    this.state = 'stopped';
  }

  // ---- inputs --------------------------------------------------------------------------------------------

  private tick(): void {
    if (this.state !== 'running') return;
    try {
      this.requireProtocol().tick();
    } catch (e) {
      this.fail(e);
      return;
    }
    this.pending.expire(this.clock.now());
    this.proposeTime();
    this.kick();
  }

  /**
   * DESIGN r2, time for state machines: while this node leads, it proposes the state machine's time command
   * carrying its term and clock, as soon as it leads a term and then every `timeIntervalMs`. One at a time:
   * a slow log is not flooded with them (replicated time then moves by at most its max step per entry).
   */
  private proposeTime(): void {
    const sm = this.opts.stateMachine;
    if (sm.timeCommand === undefined || this.protocol === undefined) return;
    const { role, term } = this.protocol.status();
    if (role !== 'leader') return;
    const now = this.clock.now();
    const last = this.timeProposed;
    if (last !== undefined && last.term === term && (last.open || now - last.at < (this.opts.timeIntervalMs ?? DEFAULT_TIME_INTERVAL_MS))) return;
    const proposed = { term, at: now, open: true };
    this.timeProposed = proposed;
    let command: Cmd;
    try {
      command = sm.timeCommand(term, now);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.propose(command).then(
      () => (proposed.open = false),
      // Lost leadership, a timeout, a stop: the next leader (or the next tick here) proposes afresh.
      () => (proposed.open = false),
    );
  }

  private deliver(envelope: Envelope): void {
    if (this.state !== 'running') return;
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.from !== 'string' || envelope.to !== this.id) {
      this.logger.warn('dropped a misaddressed envelope', { to: (envelope as Partial<Envelope> | null)?.to, from: (envelope as Partial<Envelope> | null)?.from });
      return;
    }
    try {
      this.requireProtocol().step(envelope);
    } catch (e) {
      // Remote input never crashes a node; a protocol that throws here has a bug worth logging loudly.
      if (InvariantError.is(e)) {
        this.fail(e);
        return;
      }
      this.logger.warn('protocol rejected a message', { from: envelope.from, error: String(e) });
    }
    this.kick();
  }

  private kick(): void {
    this.loop?.kick();
  }

  // ---- the apply step ------------------------------------------------------------------------------------

  /**
   * Step 3 of a durable Ready. A snapshot from the leader, newer than what is applied, into a state machine with
   * `beginRestore`: restored in slices first (`runRestoreJob`), the event loop free between them, while the
   * Ready loop waits: the batch's committed entries, later batches and every read wait for it (DESIGN: the
   * snapshot is restored before committed entries apply), and the state machine switches state in its last step.
   * Then, as for every other Ready, core's shared `ApplyStep` and the reads it releases.
   */
  private applyReady(rd: Ready): void | Promise<void> {
    const snap = rd.snapshot;
    const sm = this.opts.stateMachine;
    if (snap !== undefined && snap.index > this.applier.index && typeof sm.beginRestore === 'function') {
      this.snapshotter.abandon();
      const job = sm.beginRestore(snap.data);
      return runRestoreJob(job, { running: () => this.state === 'running' }).then(() => {
        this.restoredAhead = snap;
        this.applyBatch(rd);
      });
    }
    this.applyBatch(rd);
  }

  /** Core's shared `ApplyStep` over a durable Ready, then the reads it confirms and releases. */
  private applyBatch(rd: Ready): void {
    const released = this.applier.applyReady(rd);
    const { reads } = this.pending;
    if (rd.reads.length > 0) {
      for (const rs of rd.reads) {
        const op = reads.get(ctxKey(rs.ctx));
        if (op !== undefined) op.index = rs.index;
      }
    }
    if (released.length === 0) return;
    for (const rs of released) {
      const op = this.pending.take(reads, ctxKey(rs.ctx));
      if (op === undefined) continue; // timed out or aborted meanwhile
      try {
        op.resolve(this.opts.stateMachine.query(op.query as Q));
      } catch (e) {
        op.reject(e);
      }
    }
  }

  private applyHandler(): ApplyHandler {
    return {
      restore: (snapshot: Snapshot) => {
        if (this.restoredAhead === snapshot) this.restoredAhead = undefined;
        else this.opts.stateMachine.restore(snapshot.data);
        this.snapshotter.restored(snapshot.index);
        this.emit('snapshot', snapshot.index);
      },
      apply: (entry: LogEntry) => this.applyEntry(entry),
      configError: (entry: LogEntry, error: unknown) => {
        this.badConfigIndex = entry.index;
        this.logger.error('undecodable config entry', { index: entry.index, error: String(error) });
      },
    };
  }

  private applyEntry(entry: LogEntry): void {
    if (entry.type === 'noop') return;
    if (entry.type === 'config') {
      if (entry.index === this.badConfigIndex) return;
      this.emit('apply', { entry });
      return;
    }
    const data = entry.data;
    if (!this.framing.isFramed(data)) {
      // Not written by a ConsensusNode; deterministic on every replica, so skipping keeps them in step.
      this.logger.error('skipped a command entry without a host frame', { index: entry.index });
      return;
    }
    let result: Res | undefined;
    let error: unknown;
    try {
      result = this.opts.stateMachine.apply(entry, this.framing.decode(data));
    } catch (e) {
      error = e;
    }
    const seq = this.framing.ownSeq(data);
    if (seq !== undefined) {
      const op = this.pending.take(this.pending.proposals, seq);
      if (op !== undefined) {
        if (error === undefined) op.resolve(result);
        else op.reject(error);
      }
    }
    this.emit('apply', error === undefined ? { entry, result: result as Res } : { entry, error });
  }

  /**
   * After each advance while a membership change waits: it resolves once the applied configuration is its target
   * and not transitional, and the protocol reports that configuration in force (see `changeMembership`).
   */
  private settleConfigChanges(protocol: Protocol): void {
    const applied = this.applier.config;
    if (applied.outgoing !== undefined) return;
    const { configs } = this.pending;
    let inForce: ClusterConfig | undefined;
    for (const [key, c] of configs) {
      if (!configsEqual(c.target, applied)) continue;
      inForce ??= protocol.status().config;
      if (configsEqual(c.target, inForce)) this.pending.take(configs, key)?.resolve(applied);
    }
  }

  private onStatus(status: Status): void {
    const prev = this.lastStatus;
    this.lastStatus = status;
    this.emit('status', { ...status, appliedIndex: this.applier.index });
    if (prev?.term !== status.term) this.emit('term', status.term);
    if (prev?.role !== status.role) this.emit('role', status.role, status.term);
    if (prev?.leader !== status.leader || prev?.term !== status.term) this.emit('leader', status.leader, status.term);
    const { pending } = this;
    const lostLeadership = prev?.role === 'leader' && (status.role !== 'leader' || status.term !== prev.term);
    if (lostLeadership) {
      // Entries proposed here may still commit under the next leader, or may be overwritten: unknown.
      pending.rejectWhere(pending.proposals, () => new LeadershipLostError());
      pending.rejectWhere(pending.configs, () => new LeadershipLostError());
    }
    if (prev !== undefined && (prev.leader !== status.leader || prev.term !== status.term)) {
      // Read barriers not yet confirmed were addressed to a leader that is gone.
      pending.rejectWhere(pending.reads, () => new LeadershipLostError('leader changed before the read barrier was confirmed'), (r) => r.index === undefined);
    }
    for (const [key, t] of pending.transfers) {
      if (status.leader === t.to) pending.take(pending.transfers, key)?.resolve(undefined);
    }
  }

  /** A storage failure or broken invariant: stop taking work, fail everything pending, report it. */
  private fail(error: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = error;
    this.logger.error('node failed; stopping', { error: String(error), code: isConsensusError(error) ? error.code : undefined });
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    this.pending.rejectAll(() => error);
    this.rejectLeaderWaiters(() => error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    void this.stop();
  }

  private rejectLeaderWaiters(error: () => unknown): void {
    for (const end of [...this.leaderWaiters]) end(error());
  }

  private requireProtocol(): Protocol {
    if (this.protocol === undefined) throw new StoppedError(`node ${this.id} is not started`);
    return this.protocol;
  }

  private requireRunning(): Protocol {
    if (this.fatal !== undefined) throw new StoppedError(`node ${this.id} stopped after a failure: ${String(this.fatal)}`);
    if (this.state !== 'running') throw new StoppedError(`node ${this.id} is ${this.state === 'new' ? 'not started' : 'stopped'}`);
    return this.requireProtocol();
  }
}

function checkSignal(signal: AbortSignal | undefined): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (typeof signal !== 'object' || typeof signal.addEventListener !== 'function') {
    throw new InvalidArgumentError('signal must be an AbortSignal');
  }
  if (signal.aborted) throw new AbortedError(signal.reason);
  return signal;
}

function osSeededRandom(): () => number {
  // Hosts are not pure: jitter seeded from the OS is what production wants. Protocols still only see a function.
  return seededRandom(randomBytes(4).readUInt32LE(0));
}
