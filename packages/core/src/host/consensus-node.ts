import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Unpackr, pack } from 'msgpackr';
import { applyConfigChange, configsEqual, decodeClusterConfig, isJoint } from '../config';
import {
  AbortedError,
  ConfigError,
  InvalidArgumentError,
  InvariantError,
  LeadershipLostError,
  StoppedError,
  TimeoutError,
  isConsensusError,
} from '../errors';
import { systemClock, silentLogger } from './clock';
import {
  canObserveCompaction,
  canReportUnreachable,
  type ClusterConfig,
  type Clock,
  type ConfigChange,
  type DurableStorage,
  type Envelope,
  type LogEntry,
  type Logger,
  type NodeId,
  type Protocol,
  type ProtocolModule,
  type Ready,
  type StateMachine,
  type Status,
  type Transport,
} from '../types';
import { assertNodeId, assertPositiveInteger, preview, seededRandom } from '../validate';

/**
 * Encodes commands into entry bytes and back. The default is msgpackr, and its `decode` copies binary fields.
 * A custom `decode` should copy any bytes the state machine keeps as well: an entry's data may be a view of
 * a larger buffer (a follower receives a batch of entries in one message), which a kept view would pin.
 */
export interface CommandCodec<Cmd> {
  encode(command: Cmd): Uint8Array;
  decode(data: Uint8Array): Cmd;
}

export interface ConsensusNodeOptions<Cmd, Res, Q, R> {
  id: NodeId;
  /**
   * Voters, including `id`, on first boot. Empty for a node that joins an existing cluster: it starts with no
   * configuration and learns it from the leader once a membership change adds it.
   */
  peers: NodeId[];
  protocol: ProtocolModule;
  storage: DurableStorage;
  transport: Transport;
  stateMachine: StateMachine<Cmd, Res, Q, R>;
  /** Wall-clock length of one protocol tick. Default 100 ms. */
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Randomness for the protocol (election jitter). Default: seeded from the OS. */
  random?: () => number;
  /** Extra, protocol-specific options passed to `protocol.create` (e.g. raft's `preVote`). */
  protocolOptions?: Record<string, unknown>;
  /** Default timeout of `propose`, `read`, `changeMembership` and `transferLeadership`. Default 5000 ms. */
  timeoutMs?: number;
  /** Take a state-machine snapshot after this many applied entries (0: never). Default 10,000. */
  snapshotEvery?: number;
  /** Entries kept in the log behind a snapshot, for slow followers. Default 1,000. */
  snapshotKeep?: number;
  codec?: CommandCodec<Cmd>;
  clock?: Clock;
  logger?: Logger;
}

export interface OperationOptions {
  signal?: AbortSignal;
  /** Overrides the node's default timeout. */
  timeoutMs?: number;
}

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

type Settle = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

interface Pending extends Settle {
  deadline: number;
  timeoutMs: number;
  cleanup?: () => void;
}

interface PendingRead extends Pending {
  query: unknown;
  /** Set once the protocol has confirmed the read index. */
  index?: number;
}

interface PendingConfig extends Pending {
  target: ClusterConfig;
}

interface PendingTransfer extends Pending {
  to: NodeId;
}

/** Header of a host-framed command entry: magic, 8-byte incarnation, 8-byte sequence number. */
const FRAME_MAGIC = 0xc7;
const FRAME_HEADER = 17;

/** Copies binary fields, so what a state machine keeps from a command never pins the entry's buffer. */
const commandUnpackr = new Unpackr({ useRecords: false, copyBuffers: true });

const defaultCodec: CommandCodec<never> = {
  encode: (command) => pack(command),
  decode: (data) => commandUnpackr.unpack(data) as never,
};

/**
 * Runs one protocol for real. It owns the tick timer, feeds inbound envelopes to `step`, and drains `Ready`
 * in the order persist -> send -> apply -> advance, with group commit: while one `save` is in flight, the
 * protocol keeps accumulating work, which the next `ready()` hands over as one batch.
 *
 * Each proposal is framed with this host's incarnation and a sequence number, so the node that proposed an
 * entry can hand the state machine's result back to its caller when the entry is applied.
 */
export class ConsensusNode<Cmd = unknown, Res = unknown, Q = unknown, R = unknown> extends EventEmitter<ConsensusNodeEvents<Res>> {
  readonly id: NodeId;
  private readonly opts: ConsensusNodeOptions<Cmd, Res, Q, R>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly codec: CommandCodec<Cmd>;
  private readonly timeoutMs: number;
  private readonly snapshotEvery: number;
  private readonly snapshotKeep: number;
  private readonly incarnation = randomBytes(8);
  private protocol: Protocol | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private ticker: unknown;
  private draining = false;
  private kickScheduled = false;
  private drainDone: Promise<void> = Promise.resolve();
  private seq = 0;
  private readSeq = 0;
  private readonly proposals = new Map<number, Pending>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly configChanges = new Set<PendingConfig>();
  private readonly transfers = new Set<PendingTransfer>();
  private appliedIndex = 0;
  private appliedTerm = 0;
  private appliedConfig: ClusterConfig;
  private lastSnapshotIndex = 0;
  /** The local snapshot being written, if any: one at a time, beside the drain loop. */
  private snapshotting: Promise<void> | undefined;
  /** A compaction made safe by a durable snapshot, run by the drain loop between batches. */
  private compactTo: number | undefined;
  private lastStatus: Status | undefined;
  private fatal: unknown;
  private stopped: Promise<void> | undefined;

  constructor(options: ConsensusNodeOptions<Cmd, Res, Q, R>) {
    super();
    validateNodeOptions(options);
    this.opts = options;
    this.id = options.id;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.codec = options.codec ?? (defaultCodec as CommandCodec<Cmd>);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.snapshotEvery = options.snapshotEvery ?? 10_000;
    this.snapshotKeep = options.snapshotKeep ?? 1000;
    this.appliedConfig = { voters: [...options.peers], learners: [] };
  }

  /** Recovers from storage, creates the protocol, starts the transport and the tick timer. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`node ${this.id} was already started`);
    this.state = 'starting';
    const { storage, stateMachine } = this.opts;
    const snap = storage.snapshot();
    if (snap !== undefined) {
      stateMachine.restore(snap.data);
      this.appliedIndex = snap.index;
      this.appliedTerm = snap.term;
      this.appliedConfig = snap.config;
      this.lastSnapshotIndex = snap.index;
    }
    this.protocol = this.opts.protocol.create({
      ...this.opts.protocolOptions,
      id: this.id,
      peers: this.opts.peers,
      storage,
      applied: this.appliedIndex,
      ...(this.opts.electionTicks !== undefined ? { electionTicks: this.opts.electionTicks } : {}),
      ...(this.opts.heartbeatTicks !== undefined ? { heartbeatTicks: this.opts.heartbeatTicks } : {}),
      random: this.opts.random ?? osSeededRandom(),
    });
    await this.opts.transport.start({
      deliver: (envelope) => this.deliver(envelope),
      unreachable: (peer) => {
        const p = this.protocol;
        if (p !== undefined && canReportUnreachable(p)) p.reportUnreachable(peer);
      },
    });
    this.state = 'running';
    this.ticker = this.clock.setInterval(() => this.tick(), this.opts.tickMs ?? 100);
    this.kick();
  }

  /** The protocol's status, with this host's applied index. */
  status(): Status {
    const p = this.requireProtocol();
    return { ...p.status(), appliedIndex: this.appliedIndex };
  }

  /** Resolves with the leader's id as soon as this node knows one (at once if it already does). */
  waitForLeader(options: OperationOptions = {}): Promise<NodeId> {
    return new Promise<NodeId>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const known = p.status().leader;
        if (known !== undefined) return resolve(known);
        const { timeoutMs } = this.deadline(options);
        const done = (fn: () => void) => {
          this.clock.clearTimeout(timer);
          this.off('leader', onLeader);
          signal?.removeEventListener('abort', onAbort);
          fn();
        };
        const onLeader = (leader: NodeId | undefined) => {
          if (leader !== undefined) done(() => resolve(leader));
        };
        const onAbort = () => done(() => reject(new AbortedError(signal?.reason)));
        const timer = this.clock.setTimeout(() => done(() => reject(new TimeoutError(timeoutMs, 'waiting for a leader'))), timeoutMs);
        this.on('leader', onLeader);
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
        const due = this.deadline(options);
        let payload: Uint8Array;
        try {
          payload = this.codec.encode(command);
        } catch (cause) {
          throw new InvalidArgumentError(`command cannot be encoded: ${preview(command)}`, { cause });
        }
        if (!(payload instanceof Uint8Array)) throw new InvalidArgumentError('codec.encode must return a Uint8Array');
        const seq = ++this.seq;
        // Every byte is written below. Buffer.allocUnsafe takes small sizes from Node's shared pool: much
        // cheaper than a zeroed ArrayBuffer of its own per entry.
        const data = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
        data[0] = FRAME_MAGIC;
        data.set(this.incarnation, 1);
        writeSeq(data, 9, seq);
        data.set(payload, FRAME_HEADER);
        p.propose(data);
        const pending: Pending = { resolve: resolve as (v: unknown) => void, reject, deadline: due.deadline, timeoutMs: due.timeoutMs };
        this.track(this.proposals, seq, pending, signal);
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
        const due = this.deadline(options);
        const ctx = new Uint8Array(16);
        ctx.set(this.incarnation, 0);
        new DataView(ctx.buffer).setFloat64(8, ++this.readSeq);
        const key = ctxKey(ctx);
        p.readIndex(ctx);
        const pending: PendingRead = { resolve: resolve as (v: unknown) => void, reject, ...due, query };
        this.track(this.reads, key, pending, signal);
        this.kick();
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Changes membership; resolves with the new configuration once it is committed and applied here. */
  changeMembership(change: ConfigChange, options: OperationOptions = {}): Promise<ClusterConfig> {
    return new Promise<ClusterConfig>((resolve, reject) => {
      try {
        const p = this.requireRunning();
        const signal = checkSignal(options.signal);
        const due = this.deadline(options);
        const target = applyConfigChange(this.appliedConfig, change);
        p.proposeConfigChange(change);
        const pending: PendingConfig = { resolve: resolve as (v: unknown) => void, reject, ...due, target };
        this.trackSet(this.configChanges, pending, signal);
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
        const due = this.deadline(options);
        p.transferLeadership(to);
        // Already the leader (raft ignores a transfer to itself, as etcd's does): nothing to wait for.
        if (p.status().leader === to) {
          resolve();
          return;
        }
        const pending: PendingTransfer = { resolve: resolve as (v: unknown) => void, reject, ...due, to };
        this.trackSet(this.transfers, pending, signal);
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
    await this.drainDone;
    await this.snapshotting;
    this.rejectAll(() => new StoppedError());
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
    this.expire(this.clock.now());
    this.kick();
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

  // ---- the Ready loop ------------------------------------------------------------------------------------

  /**
   * Schedules the Ready loop to run once the current callback returns (a microtask), rather than inside it.
   * Everything one callback delivers (a socket read holding many client requests, several peer messages)
   * then shares one batch and one durable write. Starting the loop at once wrote the first proposal of a
   * burst alone: with 64 requests in flight the leader wrote 1 entry, then 63, then 1, and every write costs
   * a device flush whatever its size. A microtask, unlike `setImmediate`, adds no turn of the event loop to
   * a lone request's latency.
   */
  private kick(): void {
    if (this.kickScheduled || this.draining || this.state !== 'running') return;
    this.kickScheduled = true;
    queueMicrotask(() => {
      this.kickScheduled = false;
      this.startDrain();
    });
  }

  /** Starts draining unless a drain is already running (then the running loop picks the work up). */
  private startDrain(): void {
    if (this.draining || this.state !== 'running') return;
    if (!this.protocol?.hasReady() && this.compactTo === undefined) return;
    this.draining = true;
    this.drainDone = this.drain().finally(() => {
      this.draining = false;
      // Work that arrived after the loop's last look (while its promise settled) must not wait for a tick.
      if (this.state === 'running') this.kick();
    });
  }

  private async drain(): Promise<void> {
    const p = this.requireProtocol();
    const { storage, transport } = this.opts;
    while (this.fatal === undefined) {
      if (this.compactTo !== undefined) await this.compact(p);
      if (!p.hasReady()) break;
      const rd = p.ready();
      try {
        // 1. persist: snapshot first, then hard state, truncation and entries in one write.
        if (rd.snapshot !== undefined) await storage.installSnapshot(rd.snapshot);
        if (rd.hardState !== undefined || rd.truncateAfter !== undefined || rd.entries.length > 0) {
          await storage.save({
            ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}),
            ...(rd.truncateAfter !== undefined ? { truncateAfter: rd.truncateAfter } : {}),
            entries: rd.entries,
          });
        }
      } catch (e) {
        this.fail(e);
        return;
      }
      // 2. send, only now that the batch is durable.
      if (rd.messages.length > 0 && this.state !== 'stopped') transport.send(rd.messages);
      // 3. apply, then release reads, then report status.
      this.applyReady(rd);
      try {
        p.advance(rd);
      } catch (e) {
        this.fail(e);
        return;
      }
      if (rd.status !== undefined) this.onStatus(rd.status);
      this.maybeSnapshot();
    }
  }

  private applyReady(rd: Ready): void {
    if (rd.snapshot !== undefined) {
      this.opts.stateMachine.restore(rd.snapshot.data);
      this.appliedIndex = rd.snapshot.index;
      this.appliedTerm = rd.snapshot.term;
      this.appliedConfig = rd.snapshot.config;
      this.lastSnapshotIndex = rd.snapshot.index;
      this.emit('snapshot', rd.snapshot.index);
    }
    for (const entry of rd.committed) {
      if (entry.index <= this.appliedIndex) continue; // already reflected by a restored snapshot
      if (entry.index !== this.appliedIndex + 1) {
        this.fail(new InvariantError(`committed entry ${entry.index} does not follow applied index ${this.appliedIndex}`));
        return;
      }
      this.applyEntry(entry);
      this.appliedIndex = entry.index;
      this.appliedTerm = entry.term;
    }
    for (const rs of rd.reads) {
      const pending = this.reads.get(ctxKey(rs.ctx));
      if (pending !== undefined) pending.index = rs.index;
    }
    this.releaseReads();
  }

  private applyEntry(entry: LogEntry): void {
    if (entry.type === 'noop') return;
    if (entry.type === 'config') {
      try {
        this.appliedConfig = decodeClusterConfig(entry.data);
      } catch (e) {
        this.logger.error('undecodable config entry', { index: entry.index, error: String(e) });
        return;
      }
      this.settleConfigChanges();
      this.emit('apply', { entry });
      return;
    }
    const data = entry.data;
    if (data.length < FRAME_HEADER || data[0] !== FRAME_MAGIC) {
      // Not written by a ConsensusNode; deterministic on every replica, so skipping keeps them in step.
      this.logger.error('skipped a command entry without a host frame', { index: entry.index });
      return;
    }
    let result: Res | undefined;
    let error: unknown;
    try {
      const command = this.codec.decode(data.subarray(FRAME_HEADER));
      result = this.opts.stateMachine.apply(entry, command);
    } catch (e) {
      error = e;
    }
    if (this.isMine(data)) {
      const seq = readSeq(data, 9);
      const pending = this.proposals.get(seq);
      if (pending !== undefined) {
        this.proposals.delete(seq);
        pending.cleanup?.();
        if (error === undefined) pending.resolve(result);
        else pending.reject(error);
      }
    }
    this.emit('apply', error === undefined ? { entry, result: result as Res } : { entry, error });
  }

  private isMine(data: Uint8Array): boolean {
    for (let i = 0; i < 8; i++) if (data[1 + i] !== this.incarnation[i]) return false;
    return true;
  }

  private releaseReads(): void {
    if (this.reads.size === 0) return;
    for (const [key, r] of this.reads) {
      if (r.index === undefined || r.index > this.appliedIndex) continue;
      this.reads.delete(key);
      r.cleanup?.();
      try {
        r.resolve(this.opts.stateMachine.query(r.query as Q));
      } catch (e) {
        r.reject(e);
      }
    }
  }

  private settleConfigChanges(): void {
    if (isJoint(this.appliedConfig)) return;
    for (const c of this.configChanges) {
      if (!configsEqual(c.target, this.appliedConfig)) continue;
      this.configChanges.delete(c);
      c.cleanup?.();
      c.resolve(this.appliedConfig);
    }
  }

  private onStatus(status: Status): void {
    const prev = this.lastStatus;
    this.lastStatus = status;
    this.emit('status', { ...status, appliedIndex: this.appliedIndex });
    if (prev?.term !== status.term) this.emit('term', status.term);
    if (prev?.role !== status.role) this.emit('role', status.role, status.term);
    if (prev?.leader !== status.leader || prev?.term !== status.term) this.emit('leader', status.leader, status.term);
    const lostLeadership = prev?.role === 'leader' && (status.role !== 'leader' || status.term !== prev.term);
    if (lostLeadership) {
      // Entries proposed here may still commit under the next leader, or may be overwritten: unknown.
      this.rejectMap(this.proposals, () => new LeadershipLostError());
      for (const c of this.configChanges) {
        c.cleanup?.();
        c.reject(new LeadershipLostError());
      }
      this.configChanges.clear();
    }
    if (prev !== undefined && (prev.leader !== status.leader || prev.term !== status.term)) {
      // Read barriers not yet confirmed were addressed to a leader that is gone.
      for (const [key, r] of this.reads) {
        if (r.index !== undefined) continue;
        this.reads.delete(key);
        r.cleanup?.();
        r.reject(new LeadershipLostError('leader changed before the read barrier was confirmed'));
      }
    }
    for (const t of this.transfers) {
      if (status.leader !== t.to) continue;
      this.transfers.delete(t);
      t.cleanup?.();
      t.resolve(undefined);
    }
  }

  /**
   * Takes a snapshot of the state machine every `snapshotEvery` applied entries. The state is captured here,
   * synchronously, at the applied index; writing it to storage is not awaited, so batches keep flowing while
   * a large snapshot is written and synced. Once it is durable, the drain loop compacts the log behind it
   * (`compact`), between batches, as before.
   */
  private maybeSnapshot(): void {
    if (this.snapshotting !== undefined || this.snapshotEvery <= 0 || this.appliedIndex - this.lastSnapshotIndex < this.snapshotEvery) return;
    const { storage, stateMachine } = this.opts;
    const index = this.appliedIndex;
    this.lastSnapshotIndex = index; // also on failure: do not retry on every batch
    let saved: Promise<void>;
    try {
      saved = storage.saveSnapshot({ index, term: this.appliedTerm, config: this.appliedConfig, data: stateMachine.snapshot() });
    } catch (e) {
      saved = Promise.reject(e);
    }
    this.snapshotting = saved.then(
      () => {
        this.snapshotting = undefined;
        this.emit('snapshot', index);
        if (this.state !== 'running') return;
        this.compactTo = Math.max(this.compactTo ?? 0, index - this.snapshotKeep);
        this.kick();
      },
      (e: unknown) => {
        this.snapshotting = undefined;
        this.logger.warn('snapshot failed; will retry later', { index, error: String(e) });
      },
    );
  }

  private async compact(p: Protocol): Promise<void> {
    const { storage } = this.opts;
    const compactTo = this.compactTo as number;
    this.compactTo = undefined;
    if (compactTo < storage.firstIndex()) return;
    try {
      await storage.compact(compactTo);
      if (canObserveCompaction(p)) p.compacted(compactTo);
    } catch (e) {
      this.logger.warn('compaction failed; will retry after the next snapshot', { index: compactTo, error: String(e) });
    }
  }

  // ---- pending operations ----------------------------------------------------------------------------------

  private deadline(options: OperationOptions): { deadline: number; timeoutMs: number } {
    const t = options.timeoutMs ?? this.timeoutMs;
    if (typeof t !== 'number' || !(t > 0)) throw new InvalidArgumentError(`timeoutMs must be a positive number, got ${preview(t)}`);
    return { deadline: this.clock.now() + t, timeoutMs: t };
  }

  private track<K>(map: Map<K, Pending>, key: K, pending: Pending, signal: AbortSignal | undefined): void {
    map.set(key, pending);
    if (signal !== undefined) {
      const onAbort = () => {
        if (map.delete(key)) pending.reject(new AbortedError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
  }

  private trackSet<T extends Pending>(set: Set<T>, pending: T, signal: AbortSignal | undefined): void {
    set.add(pending);
    if (signal !== undefined) {
      const onAbort = () => {
        if (set.delete(pending)) pending.reject(new AbortedError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** Rejects what passed its deadline. Runs once per tick: timeouts resolve to within one tick. */
  private expire(now: number): void {
    const timedOut = (p: Pending) => p.deadline <= now;
    for (const [k, p] of this.proposals) if (timedOut(p)) this.expireOne(this.proposals, k, p, 'proposal');
    for (const [k, p] of this.reads) if (timedOut(p)) this.expireOne(this.reads, k, p, 'read');
    for (const set of [this.configChanges, this.transfers] as Set<Pending>[]) {
      for (const p of set) {
        if (!timedOut(p)) continue;
        set.delete(p);
        p.cleanup?.();
        p.reject(new TimeoutError(p.timeoutMs, set === this.transfers ? 'leadership transfer' : 'membership change'));
      }
    }
  }

  private expireOne<K>(map: Map<K, Pending>, key: K, p: Pending, what: string): void {
    map.delete(key);
    p.cleanup?.();
    p.reject(new TimeoutError(p.timeoutMs, what));
  }

  private rejectMap<K>(map: Map<K, Pending>, error: () => unknown): void {
    for (const p of map.values()) {
      p.cleanup?.();
      p.reject(error());
    }
    map.clear();
  }

  private rejectAll(error: () => unknown): void {
    this.rejectMap(this.proposals, error);
    this.rejectMap(this.reads, error);
    for (const set of [this.configChanges, this.transfers] as Set<Pending>[]) {
      for (const p of set) {
        p.cleanup?.();
        p.reject(error());
      }
      set.clear();
    }
  }

  /** A storage failure or broken invariant: stop taking work, fail everything pending, report it. */
  private fail(error: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = error;
    this.logger.error('node failed; stopping', { error: String(error), code: isConsensusError(error) ? error.code : undefined });
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    this.rejectAll(() => error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    void this.stop();
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

/** Scratch space for a proposal's sequence number (big-endian float64), so no DataView is made per entry. */
const SEQ_SCRATCH = new DataView(new ArrayBuffer(8));
const SEQ_BYTES = new Uint8Array(SEQ_SCRATCH.buffer);

function writeSeq(target: Uint8Array, offset: number, seq: number): void {
  SEQ_SCRATCH.setFloat64(0, seq);
  target.set(SEQ_BYTES, offset);
}

function readSeq(source: Uint8Array, offset: number): number {
  for (let i = 0; i < 8; i++) SEQ_BYTES[i] = source[offset + i] as number;
  return SEQ_SCRATCH.getFloat64(0);
}

function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('base64');
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

function validateNodeOptions<Cmd, Res, Q, R>(o: ConsensusNodeOptions<Cmd, Res, Q, R>): void {
  if (typeof o !== 'object' || o === null) throw new ConfigError('ConsensusNode options must be an object');
  assertNodeId(o.id, 'options.id');
  if (!Array.isArray(o.peers) || (o.peers.length > 0 && !o.peers.includes(o.id))) {
    throw new ConfigError('options.peers must include options.id (or be empty for a node joining an existing cluster)');
  }
  for (const p of o.peers) assertNodeId(p, 'options.peers[]');
  if (typeof o.protocol?.create !== 'function') throw new ConfigError('options.protocol must be a ProtocolModule');
  if (typeof o.storage?.save !== 'function') throw new ConfigError('options.storage must be a DurableStorage');
  if (typeof o.transport?.send !== 'function') throw new ConfigError('options.transport must be a Transport');
  const sm = o.stateMachine;
  if (typeof sm?.apply !== 'function' || typeof sm.query !== 'function' || typeof sm.snapshot !== 'function' || typeof sm.restore !== 'function') {
    throw new ConfigError('options.stateMachine must implement apply, query, snapshot and restore');
  }
  if (o.tickMs !== undefined) assertPositiveInteger(o.tickMs, 'options.tickMs');
  if (o.timeoutMs !== undefined) assertPositiveInteger(o.timeoutMs, 'options.timeoutMs');
  if (o.snapshotEvery !== undefined && (!Number.isSafeInteger(o.snapshotEvery) || o.snapshotEvery < 0)) {
    throw new ConfigError(`options.snapshotEvery must be a non-negative integer, got ${preview(o.snapshotEvery)}`);
  }
  if (o.snapshotKeep !== undefined && (!Number.isSafeInteger(o.snapshotKeep) || o.snapshotKeep < 0)) {
    throw new ConfigError(`options.snapshotKeep must be a non-negative integer, got ${preview(o.snapshotKeep)}`);
  }
  const e = o.electionTicks ?? 10;
  const h = o.heartbeatTicks ?? 1;
  if (e <= h) throw new ConfigError(`electionTicks (${e}) must be greater than heartbeatTicks (${h})`);
}
