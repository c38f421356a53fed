import { NotLeaderError } from '../errors';
import { MemoryStorage, emptyMemoryStorageState, type MemoryStorageState } from '../memory-storage';
import type { Envelope, LogEntry, NodeId, Protocol, ProtocolModule, ReadState, Status } from '../types';
import { seededRandom } from '../validate';

export interface TestClusterOptions {
  /** Seed for every node's injected random (node i gets seed + i). Default 1. */
  seed?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Extra options passed through to `module.create` (protocol-specific knobs). */
  protocolOptions?: Record<string, unknown>;
}

export interface TestReplica {
  id: NodeId;
  protocol: Protocol;
  storage: MemoryStorage;
  /** Everything this replica applied since it last (re)started, in order. */
  applied: LogEntry[];
  reads: ReadState[];
  up: boolean;
}

/**
 * A synchronous, deterministic cluster for protocol tests: messages are queued and delivered in order by
 * `deliverAll()`, storage is a `MemoryStorage` written synchronously, and `crash`/`restart` rebuild a protocol
 * over what was persisted. The simulator (`@consensus-kit/sim`) is the randomized, fault-injecting version.
 */
export class TestCluster {
  readonly replicas = new Map<NodeId, TestReplica>();
  private queue: Envelope[] = [];
  private readonly cut = new Set<string>();
  private readonly states = new Map<NodeId, MemoryStorageState>();

  constructor(
    private readonly module: ProtocolModule,
    readonly ids: NodeId[],
    private readonly options: TestClusterOptions = {},
  ) {
    for (const id of ids) {
      this.states.set(id, emptyMemoryStorageState());
      this.start(id);
    }
  }

  private start(id: NodeId): void {
    const storage = new MemoryStorage(this.states.get(id));
    const index = this.ids.indexOf(id);
    const snap = storage.snapshot();
    const protocol = this.module.create({
      ...this.options.protocolOptions,
      id,
      peers: this.ids,
      storage,
      applied: snap?.index ?? 0,
      electionTicks: this.options.electionTicks ?? 10,
      heartbeatTicks: this.options.heartbeatTicks ?? 1,
      random: seededRandom((this.options.seed ?? 1) + index),
    });
    this.replicas.set(id, { id, protocol, storage, applied: [], reads: [], up: true });
  }

  replica(id: NodeId): TestReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  /** Handle every pending Ready of every live replica (persist, queue messages, apply, advance). */
  processReady(): void {
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      let guard = 0;
      while (r.protocol.hasReady()) {
        if (++guard > 1000) throw new Error(`replica ${r.id} never stops producing Ready`);
        const rd = r.protocol.ready();
        if (rd.snapshot !== undefined) r.storage.installSnapshotNow(rd.snapshot);
        r.storage.saveNow({ ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.truncateAfter !== undefined ? { truncateAfter: rd.truncateAfter } : {}), entries: rd.entries });
        for (const m of rd.messages) this.queue.push(m);
        for (const e of rd.committed) r.applied.push(e);
        for (const rs of rd.reads) r.reads.push(rs);
        r.protocol.advance(rd);
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
        to.protocol.step(m);
      }
      this.processReady();
    }
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

  /** Start a crashed replica again from its persisted storage, with a fresh state machine. */
  restart(id: NodeId): void {
    this.start(id);
    this.deliverAll();
  }
}
