import { pack, unpack } from 'msgpackr';
import { ApplyStep } from '../apply-step';
import { NotLeaderError } from '../errors';
import { MemoryStorage, emptyMemoryStorageState, type MemoryStorageState } from '../memory-storage';
import { canObserveCompaction, type AnyProtocolModule, type EntryType, type Envelope, type LogEntry, type NodeId, type Protocol, type Ready, type ReadState, type Snapshot, type Status } from '../types';
import { seededRandom } from '../validate';
import { ReadyDriver } from './ready-driver';

export interface TestClusterOptions {
  /** Seed for every node's injected random (node i gets seed + i). Default 1. */
  seed?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Protocol-specific options, validated by the module's `parseOptions` (an unknown one is a `ConfigError`). */
  protocolOptions?: Record<string, unknown>;
  /**
   * Check after every Ready that the protocol neither truncates nor rewrites an index at or below the commit
   * index it reported before that Ready (DESIGN r2). A violation throws at once. Default true.
   */
  checkCommitted?: boolean;
}

export interface TestReplica {
  readonly id: NodeId;
  protocol: Protocol;
  storage: MemoryStorage;
  /** The shared synchronous Ready loop (persist -> send -> apply -> advance) driving this replica. */
  driver: ReadyDriver;
  /** The shared apply step: applied index, its term and the configuration as of it. */
  applier: ApplyStep;
  /**
   * The replica's state machine: every entry its state reflects, in index order. A restored snapshot brings
   * the entries it covers; a restart starts from the stored snapshot (or from nothing) and re-applies.
   */
  applied: LogEntry[];
  /** Read states released since the last (re)start: their index was applied. */
  reads: ReadState[];
  /** Snapshots installed from a leader (through a Ready) since the last (re)start. */
  installedSnapshots: number;
  up: boolean;
  /** The commit index the protocol reported after its last Ready. */
  commitSeen: number;
}

/** What a test-cluster snapshot holds: the entries the state machine reflects. */
type SnapshotEntry = { index: number; term: number; type: EntryType; data: Uint8Array };

const encodeState = (entries: readonly LogEntry[]): Uint8Array => pack(entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data })));
const decodeState = (data: Uint8Array): LogEntry[] =>
  (unpack(data) as SnapshotEntry[]).map((e) => ({ index: e.index, term: e.term, type: e.type, data: new Uint8Array(e.data) }));

/**
 * A synchronous, deterministic cluster for protocol tests, built on the same loop as everything else: each
 * replica runs core's `ReadyDriver` over a `MemoryStorage` and the shared `ApplyStep` (DESIGN r2: one loop
 * semantics). Messages are queued and delivered in order by `deliverAll()`; `crash`/`restart` rebuild a
 * protocol over what was persisted; `snapshot`/`compact` are what a host does; `add` starts a node that joins.
 * The simulator (`@consensus-kit/sim`) is the randomized, fault-injecting version.
 */
export class TestCluster {
  readonly replicas = new Map<NodeId, TestReplica>();
  /** Every node ever started, in order: the initial voters first, then the nodes added. */
  readonly ids: NodeId[];
  private readonly initial: NodeId[];
  private queue: Envelope[] = [];
  /** Every message delivered so far, in order: what `redeliverAll` sends again. */
  private delivered: Envelope[] = [];
  private readonly cut = new Set<string>();
  private readonly states = new Map<NodeId, MemoryStorageState>();
  private readonly protocolOptions: Record<string, unknown>;

  constructor(
    private readonly module: AnyProtocolModule,
    ids: NodeId[],
    private readonly options: TestClusterOptions = {},
  ) {
    this.ids = [...ids];
    this.initial = [...ids];
    this.protocolOptions = module.parseOptions(options.protocolOptions ?? {}) as Record<string, unknown>;
    for (const id of ids) {
      this.states.set(id, emptyMemoryStorageState());
      this.start(id);
    }
  }

  private start(id: NodeId): void {
    const storage = new MemoryStorage(this.states.get(id));
    const snap = storage.snapshot();
    const peers = this.initial.includes(id) ? this.initial : [];
    const protocol = this.module.create({
      ...this.protocolOptions,
      id,
      peers,
      storage,
      applied: snap?.index ?? 0,
      electionTicks: this.options.electionTicks ?? 10,
      heartbeatTicks: this.options.heartbeatTicks ?? 1,
      random: seededRandom((this.options.seed ?? 1) + this.ids.indexOf(id)),
    });
    const replica = { id, protocol, storage, applied: [], reads: [], installedSnapshots: 0, up: true } as unknown as TestReplica;
    replica.applier = new ApplyStep(
      {
        restore: (s) => {
          replica.applied = decodeState(s.data);
          replica.installedSnapshots++;
        },
        apply: (e) => replica.applied.push(e),
      },
      snap ?? { index: 0, term: 0, config: { voters: [...peers], learners: [] } },
    );
    if (snap !== undefined) replica.applied = decodeState(snap.data);
    replica.driver = new ReadyDriver({
      protocol,
      storage,
      applier: replica.applier,
      send: (messages) => {
        for (const m of messages) this.queue.push(m);
      },
      onReads: (reads) => {
        for (const rs of reads) replica.reads.push(rs);
      },
    });
    replica.commitSeen = protocol.status().commitIndex;
    this.replicas.set(id, replica);
  }

  replica(id: NodeId): TestReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  /** Handle every pending Ready of every live replica through its driver, checking each against the commit index. */
  processReady(): void {
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      for (let guard = 0; ; guard++) {
        if (guard > 1000) throw new Error(`replica ${r.id} never stops producing Ready`);
        const rd = r.driver.take();
        if (rd === undefined) break;
        if (this.options.checkCommitted !== false) checkCommitted(r, rd);
        r.driver.persist(rd);
        r.driver.complete(rd);
        r.commitSeen = r.protocol.status().commitIndex;
      }
    }
  }

  /** Deliver queued messages (and the messages they cause) until the network is quiet. */
  deliverAll(maxRounds = 10_000): void {
    this.processReady();
    for (let round = 0; this.queue.length > 0; round++) {
      if (round > maxRounds) throw new Error('messages kept flowing: no quiescence');
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        const to = this.replicas.get(m.to);
        if (to === undefined || !to.up || this.cut.has(`${m.from}\u0000${m.to}`)) continue;
        this.delivered.push(m);
        to.protocol.step(m);
      }
      this.processReady();
    }
  }

  /**
   * The network duplicates: every message delivered so far arrives again, in its original order, then the
   * cluster runs until quiet. A protocol must shrug off stale and repeated messages; in particular a repeated
   * append of entries a follower already committed must not make it rewrite them (checked after every Ready).
   */
  redeliverAll(): void {
    const again = this.delivered;
    this.delivered = [];
    this.queue.push(...again);
    this.deliverAll();
  }

  /** Tick every live replica `n` times, delivering messages after each tick. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const r of this.replicas.values()) if (r.up) r.protocol.tick();
      this.deliverAll();
    }
  }

  /** Tick until `pred` holds; returns the number of ticks taken, throws after `maxTicks`. */
  tickUntil(pred: () => boolean, maxTicks = 1000): number {
    for (let t = 0; t <= maxTicks; t++) {
      if (pred()) return t;
      this.tick();
    }
    throw new Error(`condition not reached within ${maxTicks} ticks`);
  }

  statuses(): Status[] {
    return [...this.replicas.values()].filter((r) => r.up).map((r) => r.protocol.status());
  }

  /** The live leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: Status | undefined;
    for (const s of this.statuses()) if (s.role === 'leader' && (best === undefined || s.term > best.term)) best = s;
    return best?.id;
  }

  /** Propose on the current leader (throws `NotLeaderError` when there is none). */
  propose(data: Uint8Array, on?: NodeId): void {
    const id = on ?? this.leader();
    if (id === undefined) throw new NotLeaderError(undefined);
    this.replica(id).protocol.propose(data);
    this.deliverAll();
  }

  /** Starts a new, empty node that joins the cluster (`peers: []`): add it to the configuration to let it in. */
  add(id: NodeId): TestReplica {
    if (this.states.has(id)) throw new Error(`replica ${id} exists already`);
    this.ids.push(id);
    this.states.set(id, emptyMemoryStorageState());
    this.start(id);
    return this.replica(id);
  }

  /**
   * What a host does every N entries: snapshot the state machine at its applied index into storage. Returns
   * the snapshot's index.
   */
  snapshot(id: NodeId): number {
    const r = this.replica(id);
    const { index, term, config } = r.applier;
    const snap: Snapshot = { index, term, config, data: encodeState(r.applied) };
    r.storage.saveSnapshotNow(snap);
    return index;
  }

  /** Drops the log through `index` (at most the latest snapshot's) and tells the protocol, as a host does. */
  compact(id: NodeId, index: number): void {
    const r = this.replica(id);
    r.storage.compactNow(index);
    if (canObserveCompaction(r.protocol)) r.protocol.compacted(index);
  }

  /** Cut the links between `id` and every other node, both ways. */
  isolate(id: NodeId): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.cut.add(`${id}\u0000${other}`);
      this.cut.add(`${other}\u0000${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stop a replica: it loses everything not persisted (here: nothing in flight) and its queued messages. */
  crash(id: NodeId): void {
    this.replica(id).up = false;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Start a crashed replica again from its persisted storage, with its state machine restored from its snapshot. */
  restart(id: NodeId): void {
    this.start(id);
    this.deliverAll();
  }
}

/**
 * DESIGN r2: a protocol never rewrites or truncates an index at or below its own commit index. `r.commitSeen`
 * is the commit index it reported after its previous Ready, i.e. before the input that produced this one.
 */
function checkCommitted(r: TestReplica, rd: Ready): void {
  const commit = r.commitSeen;
  if (rd.snapshot !== undefined) return; // a snapshot replaces the log wholesale; it is past the commit index
  if (rd.truncateAfter !== undefined && rd.truncateAfter < commit) {
    throw new Error(`${r.id}: Ready truncates after ${rd.truncateAfter}, below its commit index ${commit}`);
  }
  const first = rd.entries[0];
  if (first !== undefined && first.index <= commit) {
    throw new Error(`${r.id}: Ready rewrites index ${first.index}, at or below its commit index ${commit}`);
  }
}
