import { pack, unpack } from 'msgpackr';
import { ApplyStep } from '../apply-step';
import { MemoryStorage, type MemoryStorageState } from '../memory-storage';
import type { ClusterConfig, Envelope, NodeId, Protocol, ProtocolOptions, Ready, ReadState } from '../types';
import { seededRandom } from '../validate';
import { ReadyDriver } from './ready-driver';

/**
 * One replica of a `ScenarioNetwork`: a protocol instance, its storage, and a tiny state machine (every
 * applied command decoded as UTF-8 text; its snapshot is that list as JSON).
 */
export interface ScenarioReplica<P extends Protocol = Protocol> {
  readonly id: NodeId;
  /** The running protocol instance (the last one, while the replica is down). */
  node: P;
  /** What the replica has made durable. */
  storage: MemoryStorage;
  /** The state machine: every applied command, decoded as text. */
  applied: string[];
  /** The last index applied to the state machine. */
  readonly appliedIndex: number;
  /** The configuration as of `appliedIndex` (what a snapshot taken now records). */
  readonly appliedConfig: ClusterConfig;
  /** Reads released to this replica's clients (their index is applied), in order. */
  reads: ReadState[];
  /** The voters it was first booted with ([] = joins an existing cluster). */
  readonly peers: NodeId[];
  up: boolean;
  /** 1 on first boot, +1 on every restart. */
  incarnation: number;
  /** The synchronous Ready loop driving it (core's one loop). */
  driver: ReadyDriver;
  applier: ApplyStep;
}

/** What `create` gets for one incarnation of a replica. */
export type ScenarioNodeOptions = ProtocolOptions & { random: () => number; applied: number };

export interface ScenarioNetworkOptions<P extends Protocol> {
  /** Creates one incarnation of a replica (e.g. `(o) => raft.create({ ...o, preVote: false })`). */
  create(options: ScenarioNodeOptions): P;
  /** Seeds every replica's `random` (with its id and the number of restarts so far). Default 1. */
  seed?: number;
  /** Round-trip every message through msgpack, as a real wire would. Default true. */
  serialize?: boolean;
  /** Called with each Ready once it is durable, before its messages leave (e.g. "no vote leaves unpersisted"). */
  onPersisted?(replica: ScenarioReplica<P>, rd: Ready): void;
  /** Called after each Ready has been handled and `advance`d: the place for invariant checks. */
  afterReady?(replica: ScenarioReplica<P>, rd: Ready): void;
  /** Called when a replica restarts (stateful invariants forget its volatile state). */
  onRestart?(replica: ScenarioReplica<P>): void;
}

/** A delivery attempt: the envelope and whether the network dropped it. */
export interface Delivery {
  env: Envelope;
  dropped: boolean;
}

const text = new TextDecoder();
const encoder = new TextEncoder();

/**
 * A small deterministic network of replicas of any protocol, for scenario scripts and randomized tests
 * (DESIGN r2: one scenario network in `core/testing`, protocols layer their own checks on top).
 *
 * - Messages wait in one FIFO `queue` until delivered; links can be blocked one way, partitions cut groups
 *   off, a `filter` can drop chosen messages.
 * - Every Ready is handled by core's `ReadyDriver` (persist in the pinned order, send, apply through the
 *   shared `ApplyStep`, advance); `process` is the single place it happens, so a test may wrap it.
 * - Replicas crash (volatile state lost, storage kept), restart from storage, take snapshots and compact, or
 *   crash in the middle of a save (a prefix of the pinned save order survives).
 */
export class ScenarioNetwork<P extends Protocol = Protocol> {
  readonly replicas = new Map<NodeId, ScenarioReplica<P>>();
  /** Messages in flight, oldest first. Tests may reorder, drop or duplicate them. */
  queue: Envelope[] = [];
  /** Round-trip messages through msgpack, as a real wire would. */
  serialize: boolean;
  /** Optional fault injection for deliveries: return false to drop the message. */
  filter: ((env: Envelope) => boolean) | undefined;
  /** Messages delivered so far. */
  delivered = 0;
  private readonly blocked = new Set<string>();
  private readonly seed: number;
  private restarts = 0;

  constructor(
    ids: readonly NodeId[],
    private readonly options: ScenarioNetworkOptions<P>,
  ) {
    this.seed = options.seed ?? 1;
    this.serialize = options.serialize ?? true;
    for (const id of ids) this.addNode(id, [...ids]);
  }

  /** Adds a replica booting with `peers` as its voters (`[]`: a fresh node that learns the configuration). */
  addNode(id: NodeId, peers: NodeId[]): ScenarioReplica<P> {
    const r = { id, peers, applied: [], reads: [], up: true, incarnation: 1, storage: new MemoryStorage() } as unknown as ScenarioReplica<P>;
    this.boot(r, { index: 0, term: 0, config: { voters: [...peers].sort(), learners: [] } });
    this.replicas.set(id, r);
    return r;
  }

  private boot(r: ScenarioReplica<P>, start: { index: number; term: number; config: ClusterConfig }): void {
    let h = this.seed * 7919 + this.restarts * 104729;
    for (const c of r.id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    const applier = new ApplyStep(
      {
        restore: (snap) => {
          r.applied = JSON.parse(text.decode(snap.data)) as string[];
        },
        apply: (e) => {
          if (e.type === 'command') r.applied.push(text.decode(e.data));
        },
      },
      start,
    );
    const node = this.options.create({ id: r.id, peers: r.peers, storage: r.storage, applied: start.index, random: seededRandom(h) });
    const mutable = r as { -readonly [K in keyof ScenarioReplica<P>]: ScenarioReplica<P>[K] };
    mutable.node = node;
    mutable.applier = applier;
    Object.defineProperty(r, 'appliedIndex', { get: () => applier.index, configurable: true, enumerable: true });
    Object.defineProperty(r, 'appliedConfig', { get: () => applier.config, configurable: true, enumerable: true });
    mutable.driver = new ReadyDriver({
      protocol: node,
      storage: r.storage,
      applier,
      send: (messages) => {
        for (const env of messages) this.queue.push(this.serialize ? { from: env.from, to: env.to, msg: unpack(pack(env.msg)) as unknown } : env);
      },
      onPersisted: (rd) => this.options.onPersisted?.(r, rd),
      onReads: (reads) => {
        r.reads.push(...reads);
      },
    });
  }

  get(id: NodeId): ScenarioReplica<P> {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no node ${id}`);
    return r;
  }

  ids(): NodeId[] {
    return [...this.replicas.keys()];
  }

  // -- links --------------------------------------------------------------------------------------------

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(`${from}>${to}`);
  }

  /** Cuts the given nodes off from every other node (both directions); the group can still talk internally. */
  partition(group: readonly NodeId[]): void {
    const inside = new Set(group);
    for (const a of this.ids()) {
      for (const b of this.ids()) {
        if (a !== b && inside.has(a) !== inside.has(b)) this.block(a, b);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  // -- driving ------------------------------------------------------------------------------------------

  /** Handles one Ready of `id` like a host: persist, send, apply, advance. Returns whether there was one. */
  process(id: NodeId): boolean {
    const r = this.get(id);
    if (!r.up) return false;
    const rd = r.driver.cycle();
    if (rd === undefined) return false;
    this.options.afterReady?.(r, rd);
    return true;
  }

  /** Processes every replica until none has a Ready. */
  processAll(): void {
    for (let guard = 0; guard < 1000; guard++) {
      let any = false;
      for (const id of this.ids()) if (this.process(id)) any = true;
      if (!any) return;
    }
    throw new Error('processAll did not settle');
  }

  /** `n` ticks of one replica, each followed by `processAll`. */
  tick(id: NodeId, n = 1): void {
    const r = this.get(id);
    for (let i = 0; i < n; i++) {
      if (!r.up) return;
      r.node.tick();
      this.processAll();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const id of this.ids()) this.tick(id);
  }

  /** Delivers the oldest queued message (dropped when its link is cut or its target is down). */
  deliverOne(): Delivery | undefined {
    const env = this.queue.shift();
    if (env === undefined) return undefined;
    const target = this.replicas.get(env.to);
    const dropped = this.isBlocked(env.from, env.to) || target === undefined || !target.up || (this.filter !== undefined && !this.filter(env));
    if (!dropped) {
      this.delivered++;
      (target as ScenarioReplica<P>).node.step(env);
      this.processAll();
    }
    return { env, dropped };
  }

  /** Delivers until no message is left (bounded). Returns every delivery attempt, in order. */
  deliver(limit = 100_000): Delivery[] {
    this.processAll();
    const out: Delivery[] = [];
    for (let i = 0; i < limit; i++) {
      const d = this.deliverOne();
      if (d === undefined) return out;
      out.push(d);
    }
    throw new Error('deliver did not settle');
  }

  // -- faults -------------------------------------------------------------------------------------------

  /** Crash: volatile state is lost (waiting reads too), storage (everything saved) survives. */
  crash(id: NodeId): void {
    const r = this.get(id);
    r.up = false;
    r.applier.dropReads();
  }

  /**
   * Takes the next Ready of `id`, makes only the first `steps` of its save steps durable (pinned order:
   * snapshot, truncation, entries, hard state) and crashes the replica before anything is sent. Returns
   * whether there was a Ready.
   */
  crashMidSave(id: NodeId, steps: number): boolean {
    const r = this.get(id);
    if (!r.up) return false;
    const rd = r.driver.take();
    if (rd !== undefined) r.driver.persist(rd, steps);
    this.crash(id);
    return rd !== undefined;
  }

  /** Restarts from storage; the state machine restarts from the stored snapshot, or empty. */
  restart(id: NodeId): void {
    const r = this.get(id);
    this.restarts++;
    r.storage = new MemoryStorage(r.storage.raw as MemoryStorageState);
    const snap = r.storage.snapshot();
    r.applied = [];
    r.reads = [];
    r.incarnation++;
    this.boot(r, snap === undefined ? { index: 0, term: 0, config: { voters: [...r.peers].sort(), learners: [] } } : snap);
    if (snap !== undefined) r.applied = JSON.parse(text.decode(snap.data)) as string[];
    r.up = true;
    this.options.onRestart?.(r);
    this.processAll();
  }

  /** The host takes a snapshot of its state machine at the applied index and compacts the log. Returns the index. */
  snapshot(id: NodeId): number {
    const r = this.get(id);
    const { index, term, config } = r.applier;
    r.storage.saveSnapshotNow({ index, term, config, data: encoder.encode(JSON.stringify(r.applied)) });
    r.storage.compactNow(index);
    return index;
  }

  // -- observation --------------------------------------------------------------------------------------

  /** The live replica that reports `leader` in the highest term, if any. */
  leader(): ScenarioReplica<P> | undefined {
    let best: ScenarioReplica<P> | undefined;
    let bestTerm = -1;
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      const s = r.node.status();
      if (s.role === 'leader' && s.term > bestTerm) {
        best = r;
        bestTerm = s.term;
      }
    }
    return best;
  }
}
