import {
  decodeClusterConfig,
  MemoryStorage,
  seededRandom,
  type ClusterConfig,
  type Envelope,
  type LogEntry,
  type MemoryStorageState,
  type NodeId,
  type ReadState,
  type Ready,
} from '@consensus-kit/core';
import { pack, unpack } from 'msgpackr';
import { decodeHardState } from '../src/hard-state';
import { RaftInvariants, type InvariantViolation, type RaftReplicaView } from '../src/invariants';
import type { RaftMessage } from '../src/messages';
import type { RaftOptions } from '../src/options';
import { RaftNode } from '../src/rawnode';

/** Options applied to every node of a test network. */
export type NodeOptions = Omit<RaftOptions, 'id' | 'peers' | 'storage' | 'applied' | 'random'>;

/** One replica in the test network: a RaftNode, its storage, and a tiny state machine (a list of commands). */
export interface Replica {
  id: NodeId;
  node: RaftNode;
  storage: MemoryStorage;
  /** The state machine: every applied command, decoded as text. */
  applied: string[];
  appliedIndex: number;
  /** Configuration as of appliedIndex (what a host would put in a snapshot). */
  appliedConfig: ClusterConfig;
  /** Reads released by Ready.reads, rendered `ctx@index`. */
  reads: ReadState[];
  peers: NodeId[];
  up: boolean;
}

const text = new TextDecoder();

/**
 * A small deterministic network of RaftNodes for scenario scripts and randomized tests. Messages wait in one
 * FIFO queue until `deliver`; links can be cut; nodes can crash and restart from their MemoryStorage.
 * Every Ready is handled like the real host does: persist, then queue messages, then apply, then advance.
 * After every Ready the harness checks Raft's invariants and that no granted vote leaves before it is durable.
 */
export class TestNetwork {
  readonly replicas = new Map<NodeId, Replica>();
  queue: Envelope[] = [];
  private readonly blocked = new Set<string>();
  private readonly options: NodeOptions;
  private readonly seed: number;
  readonly invariants = new RaftInvariants();
  violations: InvariantViolation[] = [];
  /** Check invariants after every Ready (default true). */
  checkInvariants = true;
  /** Round-trip messages through msgpack, as a real wire would. */
  serialize = true;
  /** Optional fault injection for deliveries: return false to drop the message. */
  filter: ((env: Envelope) => boolean) | undefined;
  delivered = 0;
  private restarts = 0;

  constructor(ids: NodeId[], options: NodeOptions = {}, seed = 1) {
    this.options = options;
    this.seed = seed;
    for (const id of ids) this.addNode(id, ids);
  }

  addNode(id: NodeId, peers: NodeId[]): Replica {
    const storage = new MemoryStorage();
    const r: Replica = {
      id,
      node: undefined as unknown as RaftNode,
      storage,
      applied: [],
      appliedIndex: 0,
      appliedConfig: { voters: [...peers].sort(), learners: [] },
      reads: [],
      peers,
      up: true,
    };
    r.node = this.createNode(r, 0);
    this.replicas.set(id, r);
    return r;
  }

  private createNode(r: Replica, applied: number): RaftNode {
    let h = this.seed * 7919 + this.restarts * 104729;
    for (const c of r.id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return new RaftNode({ ...this.options, id: r.id, peers: r.peers, storage: r.storage, applied, random: seededRandom(h) });
  }

  get(id: NodeId): Replica {
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

  /** Cut the given nodes off from every other node (both directions); the group can still talk internally. */
  partition(group: NodeId[]): void {
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

  /** Handle one node's Ready like a host: persist, send, apply, advance. Returns whether there was one. */
  process(id: NodeId): boolean {
    const r = this.get(id);
    if (!r.up || !r.node.hasReady()) return false;
    const rd = r.node.ready();
    this.handleReady(r, rd);
    r.node.advance(rd);
    if (this.checkInvariants) this.check();
    return true;
  }

  private handleReady(r: Replica, rd: Ready): void {
    // 1. persist
    if (rd.snapshot !== undefined) r.storage.installSnapshotNow(rd.snapshot);
    r.storage.saveNow({ hardState: rd.hardState, truncateAfter: rd.truncateAfter, entries: rd.entries });
    // 2. send (only now that the above is durable): a granted vote must be in the persisted hard state.
    const hs = r.storage.raw.hardState === undefined ? undefined : decodeHardState(r.storage.raw.hardState);
    for (const env of rd.messages) {
      const m = env.msg as RaftMessage;
      if (m.type === 'RequestVoteResponse' && !m.reject && (hs === undefined || hs.term !== m.term || hs.vote !== env.to)) {
        throw new Error(`${r.id} granted a vote to ${env.to} in term ${m.term} before persisting it`);
      }
      this.queue.push(this.serialize ? { from: env.from, to: env.to, msg: unpack(pack(env.msg)) as unknown } : env);
    }
    // 3. apply
    if (rd.snapshot !== undefined) {
      r.applied = JSON.parse(text.decode(rd.snapshot.data)) as string[];
      r.appliedIndex = rd.snapshot.index;
      r.appliedConfig = rd.snapshot.config;
    }
    for (const e of rd.committed) {
      if (e.index !== r.appliedIndex + 1) throw new Error(`${r.id} applied ${e.index} after ${r.appliedIndex}`);
      r.appliedIndex = e.index;
      if (e.type === 'command') r.applied.push(text.decode(e.data));
      else if (e.type === 'config') r.appliedConfig = decodeClusterConfig(e.data);
    }
    for (const read of rd.reads) r.reads.push(read);
  }

  /** Process every node until none has a Ready. */
  processAll(): void {
    for (let guard = 0; guard < 1000; guard++) {
      let any = false;
      for (const id of this.ids()) if (this.process(id)) any = true;
      if (!any) return;
    }
    throw new Error('processAll did not settle');
  }

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

  /** Deliver one queued message (dropping it if its link is cut or its target is down). Returns it. */
  deliverOne(): { env: Envelope; dropped: boolean } | undefined {
    const env = this.queue.shift();
    if (env === undefined) return undefined;
    const target = this.replicas.get(env.to);
    const dropped =
      this.isBlocked(env.from, env.to) || target === undefined || !target.up || (this.filter !== undefined && !this.filter(env));
    if (!dropped) {
      this.delivered++;
      (target as Replica).node.step(env);
      this.processAll();
    }
    return { env, dropped };
  }

  /** Deliver until no message is left (bounded). Returns what was delivered, in order. */
  deliver(limit = 100_000): { env: Envelope; dropped: boolean }[] {
    this.processAll();
    const out: { env: Envelope; dropped: boolean }[] = [];
    for (let i = 0; i < limit; i++) {
      const d = this.deliverOne();
      if (d === undefined) return out;
      out.push(d);
    }
    throw new Error('deliver did not settle');
  }

  // -- faults -------------------------------------------------------------------------------------------

  /** Crash: volatile state is lost, storage (everything saved) survives. */
  crash(id: NodeId): void {
    const r = this.get(id);
    r.up = false;
  }

  /** Restart from storage; the state machine restarts from the stored snapshot, or empty. */
  restart(id: NodeId): void {
    const r = this.get(id);
    this.restarts++;
    r.storage = new MemoryStorage(r.storage.raw as MemoryStorageState);
    const snap = r.storage.snapshot();
    r.applied = snap === undefined ? [] : (JSON.parse(text.decode(snap.data)) as string[]);
    r.appliedIndex = snap?.index ?? 0;
    r.appliedConfig = snap?.config ?? { voters: [...r.peers].sort(), learners: [] };
    r.node = this.createNode(r, r.appliedIndex);
    r.up = true;
    this.invariants.restarted(id);
    this.processAll();
  }

  /** The host takes a snapshot of its state machine at the applied index and compacts the log. */
  snapshot(id: NodeId): number {
    const r = this.get(id);
    const index = r.appliedIndex;
    const term = r.node.termAt(index) ?? 0;
    r.storage.saveSnapshotNow({ index, term, config: r.appliedConfig, data: new TextEncoder().encode(JSON.stringify(r.applied)) });
    r.storage.compactNow(index);
    return index;
  }

  // -- observation --------------------------------------------------------------------------------------

  leader(): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      const s = r.node.status();
      if (s.role === 'leader' && (best === undefined || s.term > best.node.status().term)) best = r;
    }
    return best;
  }

  view(r: Replica): RaftReplicaView {
    const s = r.node.status();
    return {
      id: r.id,
      role: s.role,
      term: s.term,
      commitIndex: s.commitIndex,
      firstIndex: r.node.firstIndex(),
      lastIndex: s.lastIndex,
      entryAt: (i) => r.node.entryAt(i),
      persistedHardState: r.storage.raw.hardState,
    };
  }

  check(): void {
    const views = [...this.replicas.values()].filter((r) => r.up).map((r) => this.view(r));
    const v = this.invariants.observe(views);
    if (v.length > 0) {
      this.violations.push(...v);
      throw new Error(`invariant violated: ${v.map((x) => `${x.invariant}: ${x.message}`).join('; ')}`);
    }
  }

  /** Every node's log as `index/term type` list, for assertions. */
  entries(id: NodeId): LogEntry[] {
    const r = this.get(id);
    const out: LogEntry[] = [];
    for (let i = r.node.firstIndex(); i <= r.node.status().lastIndex; i++) {
      const e = r.node.entryAt(i);
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}
