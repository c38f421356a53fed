import { afterEach, describe, expect, it } from 'vitest';
import { solo } from '@consensus-kit/core/testing';
import { ConsensusNode, type ConsensusNodeOptions } from './consensus-node';
import {
  AbortedError,
  ConfigError,
  InvalidArgumentError,
  InvariantError,
  LeadershipLostError,
  NotLeaderError,
  ProposalDroppedError,
  StoppedError,
  StorageError,
  TimeoutError,
  isConsensusError,
} from '../errors';
import { LocalNetwork } from './local-network';
import { MemoryStorage, emptyMemoryStorageState, type MemoryStorageState } from '../memory-storage';
import { ManualClock } from './clock';
import { decodeClusterConfig, encodeClusterConfig } from '../config';
import { parseOptions } from '../options';
import { ReplicatedTime, type TimeStep } from '../replicated-time';
import type { ClusterConfig, ConfigChange, Envelope, LogEntry, NodeId, Protocol, Ready, RestoreJob, SaveBatch, Snapshot, SnapshotJob, StateMachine, Status, Transport, TransportHandler } from '../types';

/** Lets pending promise callbacks and setImmediate work run. */
const settle = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

/** A counter state machine: `add n` returns the new total; queries return the total. */
class Counter implements StateMachine<{ add: number }, number, 'total', number> {
  total = 0;
  applied: number[] = [];
  apply(entry: LogEntry, command: { add: number }): number {
    if (command.add < 0) throw new InvalidArgumentError('negative add');
    this.applied.push(entry.index);
    this.total += command.add;
    return this.total;
  }
  query(): number {
    return this.total;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.total));
  }
  restore(data: Uint8Array): void {
    this.total = Number(new TextDecoder().decode(data));
  }
}

/** MemoryStorage whose saves can be held open, and which records the order of events. */
class GatedStorage extends MemoryStorage {
  saves: SaveBatch[] = [];
  events: string[];
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  failNext: Error | undefined;
  constructor(events: string[], state?: MemoryStorageState) {
    super(state);
    this.events = events;
  }
  hold(): void {
    this.gate = new Promise((r) => {
      this.release = r;
    });
  }
  open(): void {
    this.release?.();
    this.gate = undefined;
  }
  override async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.events.push(`install@${snapshot.index}`);
    this.installSnapshotNow(snapshot);
  }
  override async save(batch: SaveBatch): Promise<void> {
    const n = this.saves.push(batch);
    const ids = batch.entries.map((e) => e.index).join(',');
    this.events.push(`save-start#${n}[${ids}]`);
    if (this.failNext !== undefined) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    if (this.gate !== undefined) await this.gate;
    this.saveNow(batch);
    this.events.push(`save-done#${n}[${ids}]`);
  }
  override async close(): Promise<void> {
    this.events.push('close');
    await super.close();
  }
}

class RecordingTransport implements Transport {
  sent: Envelope[] = [];
  constructor(private readonly events: string[]) {}
  handler: TransportHandler | undefined;
  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
  }
  send(envelopes: readonly Envelope[]): void {
    for (const e of envelopes) {
      this.sent.push(e);
      this.events.push(`send[${(e.msg as { index: number }).index}]`);
    }
  }
  async stop(): Promise<void> {}
}

/**
 * A scripted protocol: always the leader of term `term` unless told otherwise; every proposal becomes one
 * entry plus one message to `b` naming that entry; entries commit once persisted.
 */
class FakeProtocol implements Protocol {
  role: Status['role'] = 'leader';
  term = 1;
  last = 0;
  commit = 0;
  applied = 0;
  unstable: LogEntry[] = [];
  outbox: Envelope[] = [];
  reads: { ctx: Uint8Array; index: number }[] = [];
  statusDirty = true;
  /** Merged into the next Ready (a snapshot, a truncation, a hard state), to script what a real protocol emits. */
  extra: Partial<Ready> | undefined;
  dropNext: ProposalDroppedError | undefined;
  constructor(private readonly storage: MemoryStorage) {}
  /** The leader this node reports (default: itself while leader, nobody otherwise). */
  leaderId: NodeId | undefined;
  /** Thrown by the next `step`. */
  stepError: unknown;
  /**
   * Config entries written so far (index and configuration). One governs from its index + `configWindow` on, and
   * `status().config` reports the one governing the slot after the commit point: 0 reports it as soon as it is
   * written (Raft, thesis 4.1); more makes the configuration in force lag the applied entry (Multi-Paxos' WINDOW).
   */
  configs: { index: number; config: ClusterConfig }[] = [];
  configWindow = 0;
  tick(): void {}
  step(): void {
    if (this.stepError !== undefined) throw this.stepError;
  }
  propose(data: Uint8Array): void {
    if (this.role !== 'leader') throw new NotLeaderError('b');
    if (this.dropNext !== undefined) {
      const e = this.dropNext;
      this.dropNext = undefined;
      throw e;
    }
    const entry: LogEntry = { index: ++this.last, term: this.term, type: 'command', data };
    this.unstable.push(entry);
    this.outbox.push({ from: 'a', to: 'b', msg: { type: 'Append', index: entry.index } });
  }
  confirmReads = true;
  readIndex(ctx: Uint8Array): void {
    if (this.role !== 'leader') throw new NotLeaderError('b');
    if (this.confirmReads) this.reads.push({ ctx, index: this.commit });
  }
  proposeConfigChange(_c: ConfigChange): void {}
  transferLeadership(_to: NodeId): void {}
  hasReady(): boolean {
    return this.unstable.length > 0 || this.outbox.length > 0 || this.reads.length > 0 || this.statusDirty || this.applied < this.commit || this.extra !== undefined;
  }
  ready(): Ready {
    for (const e of this.unstable) if (e.type === 'config') this.configs.push({ index: e.index, config: decodeClusterConfig(e.data) });
    const committed = this.applied < this.commit ? this.storage.entries(this.applied + 1, this.commit + 1) : [];
    const rd: Ready = { entries: this.unstable, messages: this.outbox, committed, reads: this.reads, ...this.extra };
    this.extra = undefined;
    if (this.statusDirty) rd.status = this.status();
    this.unstable = [];
    this.outbox = [];
    this.reads = [];
    this.statusDirty = false;
    return rd;
  }
  advance(rd: Ready): void {
    const last = rd.entries.at(-1);
    if (last !== undefined) this.commit = last.index;
    const applied = rd.committed.at(-1);
    if (applied !== undefined) this.applied = applied.index;
  }
  status(): Status {
    return {
      id: 'a',
      role: this.role,
      term: this.term,
      ...(this.leaderId !== undefined ? { leader: this.leaderId } : this.role === 'leader' ? { leader: 'a' } : {}),
      commitIndex: this.commit,
      appliedIndex: this.applied,
      lastIndex: this.last,
      config: this.configInForce(),
    };
  }
  configInForce(): ClusterConfig {
    let config: ClusterConfig = { voters: ['a', 'b'], learners: [] };
    for (const c of this.configs) if (this.configWindow === 0 || c.index + this.configWindow <= this.commit + 1) config = c.config;
    return config;
  }
  loseLeadership(): void {
    this.role = 'follower';
    this.term++;
    this.statusDirty = true;
  }
}

interface Harness {
  node: ConsensusNode<{ add: number }, number, 'total', number>;
  storage: GatedStorage;
  transport: RecordingTransport;
  fake: FakeProtocol;
  sm: Counter;
  clock: ManualClock;
  events: string[];
}

const nodes: ConsensusNode<never, never, never, never>[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function fakeHarness(overrides: Partial<ConsensusNodeOptions<{ add: number }, number, 'total', number>> = {}, state?: MemoryStorageState): Promise<Harness> {
  const events: string[] = [];
  const storage = new GatedStorage(events, state);
  const transport = new RecordingTransport(events);
  const sm = new Counter();
  const clock = new ManualClock();
  let fake: FakeProtocol | undefined;
  const node = new ConsensusNode<{ add: number }, number, 'total', number>({
    id: 'a',
    peers: ['a', 'b'],
    protocol: {
      name: 'fake',
      options: {},
      parseOptions: () => ({}),
      create: (o) => {
        fake = new FakeProtocol(o.storage as MemoryStorage);
        return fake;
      },
    },
    storage,
    transport,
    stateMachine: sm,
    clock,
    tickMs: 10,
    timeoutMs: 1000,
    ...overrides,
  });
  nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
  await node.start();
  await settle();
  return { node, storage, transport, fake: fake as FakeProtocol, sm, clock, events };
}

async function soloNode<C = { add: number }, R = number, Q = 'total', QR = number>(
  state: MemoryStorageState,
  sm: StateMachine<C, R, Q, QR>,
  clock: ManualClock,
  snapshotEvery = 0,
  storage = new MemoryStorage(state),
) {
  const net = new LocalNetwork();
  const node = new ConsensusNode<C, R, Q, QR>({
    id: 'solo',
    peers: ['solo'],
    protocol: solo,
    storage,
    transport: net.transport('solo'),
    stateMachine: sm,
    clock,
    tickMs: 10,
    electionTicks: 3,
    snapshotEvery,
    snapshotKeep: 2,
  });
  nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
  await node.start();
  for (let i = 0; i < 5 && !node.isLeader; i++) {
    clock.advance(10);
    await settle();
  }
  expect(node.isLeader).toBe(true);
  return node;
}

describe('ConsensusNode: persist -> send -> apply -> advance', () => {
  it('never hands a message to the transport before the Ready that carried it was persisted', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const first = h.node.propose({ add: 1 });
    await settle();
    expect(h.transport.sent).toHaveLength(0); // save #1 is held: nothing may go out
    const more = [h.node.propose({ add: 2 }), h.node.propose({ add: 3 })];
    await settle();
    expect(h.transport.sent).toHaveLength(0);
    h.storage.open();
    await Promise.all([first, ...more]);
    // Every send of entry i comes after the save that contained entry i completed.
    for (const e of h.events.filter((x) => x.startsWith('send['))) {
      const index = e.slice(5, -1);
      const sendAt = h.events.indexOf(e);
      const doneAt = h.events.findIndex((x) => x.startsWith('save-done#') && x.slice(x.indexOf('[') + 1, -1).split(',').includes(index));
      expect(doneAt).toBeGreaterThanOrEqual(0);
      expect(doneAt).toBeLessThan(sendAt);
    }
    expect(h.transport.sent).toHaveLength(3);
  });

  it('group commit: N proposals made while one save is in flight cost at most 2 saves', async () => {
    const h = await fakeHarness();
    const before = h.storage.saves.length;
    h.storage.hold();
    const results = [h.node.propose({ add: 1 })];
    await settle();
    for (let i = 0; i < 99; i++) results.push(h.node.propose({ add: 1 }));
    h.storage.open();
    const totals = await Promise.all(results);
    expect(h.storage.saves.length - before).toBeLessThanOrEqual(2);
    expect(h.storage.saves.at(-1)?.entries).toHaveLength(99);
    expect(totals).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('proposals made in one callback share one save, even when nothing was in flight', async () => {
    // A socket read that holds 64 client requests proposes them one after another in one callback; the first
    // must not go to disk alone while the other 63 wait for the next write.
    const h = await fakeHarness();
    const before = h.storage.saves.length;
    const results = Array.from({ length: 64 }, () => h.node.propose({ add: 1 }));
    await Promise.all(results);
    expect(h.storage.saves.slice(before).map((s) => s.entries.length)).toEqual([64]);
  });

  it("resolves each proposal with the state machine's result for its own entry", async () => {
    const h = await fakeHarness();
    const [a, b, c] = await Promise.all([h.node.propose({ add: 5 }), h.node.propose({ add: 10 }), h.node.propose({ add: 1 })]);
    expect([a, b, c]).toEqual([5, 15, 16]);
    expect(h.sm.applied).toEqual([1, 2, 3]);
  });

  it('serves a linearizable read after its barrier, reflecting every write acknowledged before it', async () => {
    const h = await fakeHarness();
    await h.node.propose({ add: 7 });
    await expect(h.node.read('total')).resolves.toBe(7);
  });
});

describe('ConsensusNode: the default command codec', () => {
  it('hands the state machine copies of binary fields, never views of the entry they came from', async () => {
    const seen: { bin: Uint8Array; data: Uint8Array }[] = [];
    const sm: StateMachine<{ bin: Uint8Array }, number, 'count', number> = {
      apply(entry, command) {
        seen.push({ bin: command.bin, data: entry.data });
        return seen.length;
      },
      query: () => seen.length,
      snapshot: () => new Uint8Array(),
      restore() {},
    };
    const node = await soloNode(emptyMemoryStorageState(), sm, new ManualClock());
    await node.propose({ bin: new Uint8Array([7, 8, 9]) });
    expect(seen).toHaveLength(1);
    expect([...seen[0]!.bin]).toEqual([7, 8, 9]);
    // A kept view would pin the entry's buffer, and a follower's entries share one buffer per batch.
    expect(seen[0]!.bin.buffer).not.toBe(seen[0]!.data.buffer);
  });
});

/** A state machine that keeps time from time entries (r2) and records what each one did. */
class Timed implements StateMachine<{ time: [number, number] } | { add: number }, number, 'now', number> {
  readonly time = new ReplicatedTime({ maxStepMs: 10_000 });
  steps: TimeStep[] = [];
  apply(_entry: LogEntry, command: { time: [number, number] } | { add: number }): number {
    if ('time' in command) this.steps.push(this.time.observe(...command.time));
    return this.time.now;
  }
  query(): number {
    return this.time.now;
  }
  snapshot(): Uint8Array {
    return new Uint8Array();
  }
  restore(): void {}
  timeCommand(term: number, clockMs: number) {
    return { time: [term, clockMs] as [number, number] };
  }
}

describe('ConsensusNode: time entries (r2)', () => {
  it('proposes one time entry on leading a term, then one per timeIntervalMs, and replicated time follows the leader clock', async () => {
    const sm = new Timed();
    const clock = new ManualClock();
    const node = await soloNode<{ time: [number, number] } | { add: number }, number, 'now', number>(emptyMemoryStorageState(), sm, clock);
    await settle();
    expect(sm.steps).toEqual([{ advancedBy: 0, newTerm: true }]);
    // The default interval is 500 ms: nothing more before it.
    for (let i = 0; i < 40; i++) {
      clock.advance(10);
      await settle();
    }
    expect(sm.steps).toHaveLength(1);
    for (let i = 0; i < 12; i++) {
      clock.advance(10);
      await settle();
    }
    expect(sm.steps).toHaveLength(2);
    expect(sm.steps[1]).toEqual({ advancedBy: 500, newTerm: false });
    expect(await node.read('now')).toBe(500);
  });

  it('on the system clock, a wall-clock step (NTP setting the time an hour forward) does not move replicated time', async () => {
    const sm = new Timed();
    const node = new ConsensusNode<{ time: [number, number] } | { add: number }, number, 'now', number>({
      id: 'solo',
      peers: ['solo'],
      protocol: solo,
      storage: new MemoryStorage(),
      transport: new LocalNetwork().transport('solo'),
      stateMachine: sm,
      tickMs: 5,
      electionTicks: 2,
      timeIntervalMs: 10,
    });
    nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
    await node.start();
    await node.waitForLeader();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(60);
    const before = sm.time.now;
    const wall = Date.now;
    const offset = 3_600_000;
    Date.now = () => wall() + offset;
    try {
      await sleep(100);
    } finally {
      Date.now = wall;
    }
    await sleep(30);
    // About 130 ms of real time went by: a lease of any TTL above that is still alive. Without a monotonic
    // reading, one time entry jumps by maxStep (10 s here).
    expect(sm.time.now - before).toBeLessThan(2_000);
    expect(Math.max(...sm.steps.map((st) => st.advancedBy))).toBeLessThan(2_000);
  });

  it('keeps one time entry open at a time: a log that does not commit is not flooded', async () => {
    const events: string[] = [];
    const storage = new GatedStorage(events);
    const sm = new Timed();
    const clock = new ManualClock();
    const node = await soloNode(emptyMemoryStorageState(), sm, clock, 0, storage);
    await settle();
    const before = sm.steps.length;
    storage.hold();
    // Two seconds of a log that does not commit: four intervals pass.
    for (let i = 0; i < 200; i++) {
      clock.advance(10);
      await settle(2);
    }
    storage.open();
    await settle();
    // Only the one entry proposed before the log stalled, none queued behind it.
    expect(sm.steps.length - before).toBe(1);
    expect(node.isLeader).toBe(true);
  });
});

describe('ConsensusNode: exactly-once apply across restarts', () => {
  it('applies committed entries exactly once, in order, and again exactly once after a restart from MemoryStorage', async () => {
    const state = emptyMemoryStorageState();
    const clock = new ManualClock();
    const sm1 = new Counter();
    const n1 = await soloNode(state, sm1, clock);
    for (let i = 1; i <= 10; i++) await n1.propose({ add: i });
    expect(sm1.total).toBe(55);
    const appliedBefore = [...sm1.applied];
    await n1.stop();

    const sm2 = new Counter();
    const n2 = await soloNode(state, sm2, clock);
    // The fresh state machine replays the committed log exactly once, in order.
    expect(sm2.applied).toEqual(appliedBefore);
    expect(sm2.total).toBe(55);
    await expect(n2.propose({ add: 100 })).resolves.toBe(155);
    await expect(n2.read('total')).resolves.toBe(155);
  });

  it('restores from its own snapshot on restart and applies only the entries after it', async () => {
    const state = emptyMemoryStorageState();
    const clock = new ManualClock();
    const sm1 = new Counter();
    const n1 = await soloNode(state, sm1, clock, 4);
    for (let i = 1; i <= 10; i++) await n1.propose({ add: 1 });
    await n1.stop();
    const snap = state.snapshot;
    expect(snap).toBeDefined();
    expect(state.compactedIndex).toBeGreaterThan(0); // the log was compacted behind the snapshot

    const sm2 = new Counter();
    await soloNode(state, sm2, clock, 4);
    expect(sm2.total).toBe(10);
    expect(sm2.applied.every((i) => i > (snap?.index ?? 0))).toBe(true);
    expect(new Set(sm2.applied).size).toBe(sm2.applied.length);
  });
});

describe('ConsensusNode: snapshots beside the drain loop', () => {
  /** MemoryStorage whose snapshot writes stay pending until released. */
  class SlowSnapshots extends MemoryStorage {
    pending: Array<() => void> = [];
    override saveSnapshot(snapshot: Parameters<MemoryStorage['saveSnapshot']>[0]): Promise<void> {
      return new Promise((resolve, reject) => {
        this.pending.push(() => super.saveSnapshot(snapshot).then(resolve, reject));
      });
    }
  }

  it('keeps committing while a snapshot is written, and compacts behind it once it is durable', async () => {
    const storage = new SlowSnapshots();
    const sm = new Counter();
    const node = await soloNode(storage.raw, sm, new ManualClock(), 4, storage);
    const snapshots: number[] = [];
    node.on('snapshot', (i) => snapshots.push(i));
    for (let i = 1; i <= 12; i++) await node.propose({ add: 1 });
    // One snapshot was started (at the 4th applied entry or so) and is still being written; nothing waited.
    expect(sm.total).toBe(12);
    expect(storage.pending).toHaveLength(1);
    expect(snapshots).toEqual([]);
    expect(storage.firstIndex()).toBe(1);
    (storage.pending.shift() as () => void)();
    await settle();
    const first = snapshots[0] as number;
    expect(first).toBeGreaterThanOrEqual(4);
    expect(storage.snapshot()?.index).toBe(first);
    expect(storage.firstIndex()).toBe(first - 1); // compacted through first - snapshotKeep (2)
    // The next batch may start the next snapshot.
    await node.propose({ add: 1 });
    expect(storage.pending).toHaveLength(1);
    // stop() lets the snapshot in flight finish before it closes storage.
    const stopped = node.stop();
    (storage.pending.shift() as () => void)();
    await stopped;
    expect(snapshots).toHaveLength(2);
  });
});

/**
 * A counter with an incremental snapshot (`beginSnapshot`, r3): the job captures the total when it begins and
 * needs `steps` calls of `step` to finish; it records what happened meanwhile.
 */
class SlicedCounter extends Counter {
  steps = 3;
  began: number[] = [];
  stepsTaken = 0;
  /** Entries applied while a job was unfinished. */
  appliedDuring: number[] = [];
  cancelled = 0;
  private open = 0;
  /** The total after each applied index. */
  totals = new Map<number, number>();
  override apply(entry: LogEntry, command: { add: number }): number {
    if (this.open > 0) this.appliedDuring.push(entry.index);
    const total = super.apply(entry, command);
    this.totals.set(entry.index, total);
    return total;
  }
  beginSnapshot(): SnapshotJob {
    const captured = this.total;
    this.began.push(captured);
    this.open++;
    let left = this.steps;
    let done = false;
    return {
      step: () => {
        this.stepsTaken++;
        if (--left > 0) return undefined;
        if (!done) this.open--;
        done = true;
        return new TextEncoder().encode(String(captured));
      },
      cancel: () => {
        if (done) return;
        done = true;
        this.open--;
        this.cancelled++;
      },
    };
  }
}

describe('ConsensusNode: snapshots of a large state machine (r3)', () => {
  it('takes an incremental snapshot in slices, one turn of the event loop each, while entries keep being applied', async () => {
    const storage = new MemoryStorage();
    const sm = new SlicedCounter();
    sm.steps = 50;
    const clock = new ManualClock();
    const node = await soloNode(storage.raw, sm, clock, 4, storage);
    const snapshots: number[] = [];
    node.on('snapshot', (i) => snapshots.push(i));
    for (let i = 1; i <= 4; i++) await node.propose({ add: 1 });
    expect(sm.began).toHaveLength(1); // begun at the batch that reached snapshotEvery, not finished in it
    const at = sm.began[0] as number;
    expect(snapshots).toEqual([]);
    // More entries apply between the slices: the node never waits for the snapshot.
    for (let i = 1; i <= 3; i++) await node.propose({ add: 10 });
    expect(sm.appliedDuring.length).toBeGreaterThan(0);
    for (let i = 0; i < 200 && snapshots.length === 0; i++) await settle(1);
    expect(snapshots).toHaveLength(1);
    expect(sm.stepsTaken).toBe(50);
    // The snapshot holds the state when it began, labelled with the index applied then.
    const snap = storage.snapshot() as Snapshot;
    expect(snap.index).toBe(snapshots[0]);
    expect(new TextDecoder().decode(snap.data)).toBe(String(at));
    const lastCommandAtOrBelow = Math.max(...[...sm.totals.keys()].filter((i) => i <= snap.index));
    expect(sm.totals.get(lastCommandAtOrBelow)).toBe(at);
    expect(sm.total).toBeGreaterThan(at);
  });

  it('abandons a snapshot in progress when the node stops (the job is cancelled, stop does not wait for it)', async () => {
    const storage = new MemoryStorage();
    const sm = new SlicedCounter();
    sm.steps = 1_000_000;
    const node = await soloNode(storage.raw, sm, new ManualClock(), 2, storage);
    const snapshots: number[] = [];
    node.on('snapshot', (i) => snapshots.push(i));
    for (let i = 1; i <= 2; i++) await node.propose({ add: 1 });
    await settle(3);
    expect(sm.began).toHaveLength(1);
    await node.stop();
    expect(sm.cancelled).toBe(1);
    expect(snapshots).toEqual([]);
  });

  it('snapshots after snapshotBytes of applied entry data, with snapshotEvery off', async () => {
    const storage = new MemoryStorage();
    const sm = new Counter();
    const clock = new ManualClock();
    const net = new LocalNetwork();
    const node = new ConsensusNode<{ add: number; pad?: string }, number, 'total', number>({
      id: 'solo',
      peers: ['solo'],
      protocol: solo,
      storage,
      transport: net.transport('solo'),
      stateMachine: sm as unknown as StateMachine<{ add: number; pad?: string }, number, 'total', number>,
      clock,
      tickMs: 10,
      electionTicks: 3,
      snapshotEvery: 0,
      snapshotBytes: 1000,
    });
    nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
    await node.start();
    for (let i = 0; i < 5 && !node.isLeader; i++) {
      clock.advance(10);
      await settle();
    }
    const snapshots: number[] = [];
    node.on('snapshot', (i) => snapshots.push(i));
    // Small entries: far below 1000 bytes, no snapshot.
    for (let i = 0; i < 10; i++) await node.propose({ add: 1 });
    await settle();
    expect(snapshots).toEqual([]);
    // Three entries of ~400 bytes cross it.
    for (let i = 0; i < 3; i++) await node.propose({ add: 1, pad: 'x'.repeat(400) });
    await settle();
    expect(snapshots).toHaveLength(1);
    expect(storage.snapshot()?.index).toBe(snapshots[0]);
  });

  it('refuses a snapshotBytes that is not a non-negative integer', () => {
    for (const snapshotBytes of [-1, 1.5, Number.NaN]) {
      expect(
        () => new ConsensusNode({ id: 'a', peers: ['a'], protocol: solo, storage: new MemoryStorage(), transport: new LocalNetwork().transport('a'), stateMachine: new Counter(), snapshotBytes }),
      ).toThrow(ConfigError);
    }
  });
});

/**
 * A counter with an incremental restore (`beginRestore`, r3): the job builds the restored total aside and puts
 * it in place only at its last step, which comes once `finish` is set; it logs restores and applies in order.
 */
class SlowRestoreCounter extends Counter {
  finish = false;
  steps = 0;
  cancelled = 0;
  log: string[] = [];
  override apply(entry: LogEntry, command: { add: number }): number {
    const total = super.apply(entry, command);
    this.log.push(`apply#${entry.index}=${total}`);
    return total;
  }
  override restore(data: Uint8Array): void {
    super.restore(data);
    this.log.push(`restore()=${this.total}`);
  }
  beginRestore(data: Uint8Array): RestoreJob {
    const target = Number(new TextDecoder().decode(data));
    let state: 'running' | 'done' | 'cancelled' = 'running';
    return {
      step: () => {
        if (state === 'cancelled') throw new StoppedError('cancelled');
        if (state === 'done') return true;
        this.steps++;
        if (!this.finish) return false;
        state = 'done';
        this.total = target;
        this.log.push(`restored=${target}`);
        return true;
      },
      cancel: () => {
        if (state !== 'running') return;
        state = 'cancelled';
        this.cancelled++;
      },
    };
  }
}

describe('ConsensusNode: a snapshot from the leader restored incrementally (r3)', () => {
  const snapshotAt5 = (total: number): Snapshot => ({ index: 5, term: 1, config: { voters: ['a', 'b'], learners: [] }, data: new TextEncoder().encode(String(total)) });

  it('restores in slices with the event loop free between them; entries, later batches and reads wait for it, then see the restored state', async () => {
    const sm = new SlowRestoreCounter();
    const h = await fakeHarness({ stateMachine: sm });
    sm.total = 100; // the state before the snapshot
    h.fake.last = h.fake.commit = h.fake.applied = 5;
    h.fake.extra = { snapshot: snapshotAt5(7) };
    h.clock.advance(10);
    await settle(3);
    // Started, not finished: the Ready loop waits for it.
    expect(h.events).toContain('install@5');
    expect(sm.steps).toBeGreaterThan(0);
    const proposed = h.node.propose({ add: 1 });
    let readValue: number | undefined;
    const read = h.node.read('total').then((v) => (readValue = v));
    const stepsBefore = sm.steps;
    for (let i = 0; i < 5; i++) {
      h.clock.advance(10); // ticks go on: the protocol is driven while the restore runs
      await settle(2);
    }
    expect(sm.steps).toBeGreaterThan(stepsBefore); // more slices ran, one per turn of the event loop
    expect(sm.log).toEqual([]); // nothing applied, nothing restored yet
    expect(sm.query()).toBe(100); // the state machine is not seen half-restored: the old state until the end
    expect(readValue).toBeUndefined();
    expect(h.node.status().appliedIndex).toBe(0);
    sm.finish = true;
    await settle(5);
    expect(await proposed).toBe(8);
    await read;
    // The read was confirmed while the restore ran: it is served from the restored state, never the old one.
    expect([7, 8]).toContain(readValue);
    expect(sm.log).toEqual(['restored=7', 'apply#6=8']); // restore first, then the entries after the snapshot
    expect(h.node.status().appliedIndex).toBe(6);
  });

  it('a snapshot being taken when the restore begins is abandoned at once (it would finish over the installed one)', async () => {
    class SnapshotsToo extends SlowRestoreCounter {
      snapshotsCancelled = 0;
      beginSnapshot(): SnapshotJob {
        return { step: () => undefined, cancel: () => void this.snapshotsCancelled++ };
      }
    }
    const sm = new SnapshotsToo();
    const h = await fakeHarness({ stateMachine: sm, snapshotEvery: 1 });
    await h.node.propose({ add: 1 });
    await settle(2);
    expect(sm.snapshotsCancelled).toBe(0); // a snapshot job is running
    h.fake.last = h.fake.commit = h.fake.applied = 5;
    h.fake.extra = { snapshot: snapshotAt5(7) };
    h.clock.advance(10);
    await settle(3);
    expect(sm.steps).toBeGreaterThan(0);
    expect(sm.log).toEqual(['apply#1=1']); // the restore is still running
    expect(sm.snapshotsCancelled).toBe(1);
    sm.finish = true;
    await settle(5);
    expect(sm.total).toBe(7);
  });

  it('a stop mid-restore cancels the job and leaves the old state, without failing the node; a restart restores the installed snapshot', async () => {
    const sm = new SlowRestoreCounter();
    const h = await fakeHarness({ stateMachine: sm });
    const errors: unknown[] = [];
    h.node.on('error', (e) => errors.push(e));
    sm.total = 100;
    h.fake.last = h.fake.commit = h.fake.applied = 5;
    h.fake.extra = { snapshot: snapshotAt5(7) };
    h.clock.advance(10);
    await settle(3);
    expect(sm.steps).toBeGreaterThan(0);
    const proposed = h.node.propose({ add: 1 });
    await settle(2);
    await h.node.stop();
    await expect(proposed).rejects.toBeInstanceOf(StoppedError);
    expect(sm.cancelled).toBe(1);
    expect(sm.total).toBe(100);
    expect(sm.log).toEqual([]);
    expect(errors).toEqual([]);
    expect(h.events.at(-1)).toBe('close');
    // The snapshot was durable before the restore began (persist, then apply): a restart restores it.
    expect(h.storage.raw.snapshot?.index).toBe(5);
    const again = new SlowRestoreCounter();
    const h2 = await fakeHarness({ stateMachine: again }, h.storage.raw);
    expect(again.log).toEqual(['restore()=7']);
    expect(h2.node.status().appliedIndex).toBe(5);
  });
});

describe('ConsensusNode: every rejection path yields its typed error', () => {
  it('NotLeaderError with the leader hint on a follower', async () => {
    const h = await fakeHarness();
    h.fake.role = 'follower';
    const e = await h.node.propose({ add: 1 }).catch((x: unknown) => x);
    expect(NotLeaderError.is(e)).toBe(true);
    expect((e as NotLeaderError).leaderHint).toBe('b');
    await expect(h.node.read('total')).rejects.toSatisfy(NotLeaderError.is);
  });

  it('NotLeaderError, not a validation error, for a membership change sent to a follower behind the leader', async () => {
    // A follower that has not applied a just-committed add yet must redirect a removal of the new member to the
    // leader, not refuse it against its own stale configuration ("c is not a member").
    const h = await fakeHarness();
    h.fake.role = 'follower';
    const e = await h.node.changeMembership({ changes: [{ op: 'remove', node: 'c' }] }).catch((x: unknown) => x);
    expect(NotLeaderError.is(e)).toBe(true);
  });

  it('LeadershipLostError for proposals pending when leadership is lost', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const inFlight = h.node.propose({ add: 1 }); // its batch is being persisted
    await settle();
    const cutOff = h.node.propose({ add: 10 }); // still only in the protocol's memory
    await settle();
    h.fake.unstable = []; // the next leader overwrites it: it will never commit
    h.fake.outbox = [];
    h.fake.loseLeadership();
    h.storage.open();
    // The persisted entry still commits and applies (acknowledged); the other one's outcome is unknown.
    await expect(inFlight).resolves.toBe(1);
    await expect(cutOff).rejects.toSatisfy(LeadershipLostError.is);
  });

  it("ProposalDroppedError passed through from the protocol's refusal", async () => {
    const h = await fakeHarness();
    h.fake.dropNext = new ProposalDroppedError('transfer-in-progress');
    const e = await h.node.propose({ add: 1 }).catch((x: unknown) => x);
    expect(ProposalDroppedError.is(e)).toBe(true);
    expect((e as ProposalDroppedError).reason).toBe('transfer-in-progress');
  });

  it('TimeoutError when the entry does not apply in time', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const p = h.node.propose({ add: 1 }, { timeoutMs: 50 });
    await settle();
    h.clock.advance(60);
    await expect(p).rejects.toSatisfy(TimeoutError.is);
    h.storage.open();
  });

  it('AbortedError when the signal aborts, and at once for an aborted signal', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const ac = new AbortController();
    const p = h.node.propose({ add: 1 }, { signal: ac.signal });
    ac.abort(new Error('user gave up'));
    await expect(p).rejects.toSatisfy(AbortedError.is);
    await expect(h.node.propose({ add: 1 }, { signal: ac.signal })).rejects.toSatisfy(AbortedError.is);
    h.storage.open();
  });

  it('StoppedError for pending work on stop and for anything after it', async () => {
    const h = await fakeHarness();
    h.fake.confirmReads = false; // the barrier is never confirmed
    const read = h.node.read('total', { timeoutMs: 60_000 });
    const stopping = h.node.stop();
    await expect(read).rejects.toSatisfy(StoppedError.is);
    await stopping;
    await expect(h.node.propose({ add: 1 })).rejects.toSatisfy(StoppedError.is);
    await expect(h.node.read('total')).rejects.toSatisfy(StoppedError.is);
  });

  it("the state machine's own error for a command it refuses, and the node goes on", async () => {
    const h = await fakeHarness();
    await expect(h.node.propose({ add: -1 })).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(h.node.propose({ add: 2 })).resolves.toBe(2);
  });

  it('a storage failure fails pending work with the storage error and stops the node', async () => {
    const h = await fakeHarness();
    h.storage.failNext = new StorageError('disk full');
    const errors: unknown[] = [];
    h.node.on('error', (e) => errors.push(e));
    await expect(h.node.propose({ add: 1 })).rejects.toSatisfy(StorageError.is);
    await settle();
    expect(errors).toHaveLength(1);
    await expect(h.node.propose({ add: 1 })).rejects.toSatisfy(StoppedError.is);
  });

  it('InvalidArgumentError for bad arguments: timeout, signal, unencodable command', async () => {
    const h = await fakeHarness();
    await expect(h.node.propose({ add: 1 }, { timeoutMs: -5 })).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(h.node.propose({ add: 1 }, { signal: 'nope' as unknown as AbortSignal })).rejects.toSatisfy(InvalidArgumentError.is);
    await expect(h.node.transferLeadership('')).rejects.toSatisfy(InvalidArgumentError.is);
    // none of them reached the log
    expect(h.fake.last).toBe(0);
  });

  it('a transfer to the node that already leads resolves at once instead of waiting out its timeout', async () => {
    const h = await fakeHarness();
    let settled = false;
    const done = h.node.transferLeadership('a', { timeoutMs: 60_000 }).then(() => (settled = true));
    await settle();
    expect(settled).toBe(true);
    await done;
  });

  it('InvalidArgumentError for a command the codec cannot encode', async () => {
    const h = await fakeHarness({
      codec: {
        encode: () => {
          throw new TypeError('cannot encode');
        },
        decode: () => ({ add: 0 }),
      },
    });
    const e = await h.node.propose({ add: 1 }).catch((x: unknown) => x);
    expect(InvalidArgumentError.is(e)).toBe(true);
    expect(isConsensusError(e)).toBe(true);
    expect(h.fake.last).toBe(0);
  });

  it('ConfigError for bad options, before anything starts', () => {
    const base = { id: 'a', peers: ['a'], protocol: solo, storage: new MemoryStorage(), transport: new LocalNetwork().transport('a'), stateMachine: new Counter() };
    expect(() => new ConsensusNode({ ...base, peers: ['b'] })).toThrow(ConfigError);
    expect(() => new ConsensusNode({ ...base, electionTicks: 2, heartbeatTicks: 2 })).toThrow(/electionTicks/);
    expect(() => new ConsensusNode({ ...base, stateMachine: {} as Counter })).toThrow(ConfigError);
    expect(() => new ConsensusNode({ ...base, id: 'has space' })).toThrow(InvalidArgumentError);
    expect(() => new ConsensusNode({ ...base, tickMs: 0 })).toThrow(InvalidArgumentError);
  });

  it('drops misaddressed envelopes instead of failing', async () => {
    const events: string[] = [];
    const warnings: string[] = [];
    let deliver: ((e: Envelope) => void) | undefined;
    const transport: Transport = {
      start: async (h) => {
        deliver = h.deliver;
      },
      send: () => undefined,
      stop: async () => undefined,
    };
    const node = new ConsensusNode({
      id: 'a',
      peers: ['a'],
      protocol: solo,
      storage: new GatedStorage(events),
      transport,
      stateMachine: new Counter(),
      clock: new ManualClock(),
      logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} },
    });
    nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
    await node.start();
    deliver?.({ from: 'x', to: 'someone-else', msg: {} });
    deliver?.(null as unknown as Envelope);
    expect(warnings).toHaveLength(2);
    expect(node.status().role).toBe('follower');
  });
});

describe('ConsensusNode: events', () => {
  it('emits role, leader, term and apply events', async () => {
    const clock = new ManualClock();
    const sm = new Counter();
    const net = new LocalNetwork();
    const node = new ConsensusNode<{ add: number }, number, 'total', number>({
      id: 'solo',
      peers: ['solo'],
      protocol: solo,
      storage: new MemoryStorage(),
      transport: net.transport('solo'),
      stateMachine: sm,
      clock,
      tickMs: 10,
      electionTicks: 2,
    });
    nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
    const seen: string[] = [];
    node.on('role', (r, t) => seen.push(`role ${r} ${t}`));
    node.on('leader', (l, t) => seen.push(`leader ${l ?? '-'} ${t}`));
    node.on('apply', (e) => seen.push(`apply ${e.entry.index} ${String(e.result)}`));
    await node.start();
    for (let i = 0; i < 3; i++) {
      clock.advance(10);
      await settle();
    }
    await node.propose({ add: 4 });
    expect(seen).toContain('role leader 1');
    expect(seen).toContain('leader solo 1');
    expect(seen).toContain('apply 2 4');
  });
});

describe('ConsensusNode: waitForLeader', () => {
  it('resolves once a leader is known and times out with TimeoutError when none appears', async () => {
    const clock = new ManualClock();
    const node = await soloNode(emptyMemoryStorageState(), new Counter(), clock);
    await expect(node.waitForLeader()).resolves.toBe('solo');

    const h = await fakeHarness();
    h.fake.role = 'follower';
    h.fake.statusDirty = true;
    h.clock.advance(10);
    await settle();
    const waiting = h.node.waitForLeader({ timeoutMs: 100 });
    h.clock.advance(150);
    await expect(waiting).rejects.toSatisfy(TimeoutError.is);
  });
});

describe('ConsensusNode: waitForLeader ends like every other wait', () => {
  it('rejects with StoppedError when the node stops, and with the failure when the node fails', async () => {
    const h = await fakeHarness();
    h.fake.role = 'follower';
    h.fake.statusDirty = true;
    h.clock.advance(10);
    await settle();
    const waiting = h.node.waitForLeader({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    await h.node.stop();
    expect(StoppedError.is(await waiting)).toBe(true);

    const f = await fakeHarness();
    f.fake.role = 'follower';
    f.fake.statusDirty = true;
    f.clock.advance(10);
    await settle();
    const failing = f.node.waitForLeader({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    f.storage.failNext = new StorageError('disk full');
    f.fake.unstable.push({ index: ++f.fake.last, term: 1, type: 'noop', data: new Uint8Array() });
    f.clock.advance(10);
    await settle();
    expect(StorageError.is(await failing)).toBe(true);
  });
});

describe('ConsensusNode: r2 host rules', () => {
  it('validates protocolOptions with the protocol\'s parseOptions: an unknown or ill-typed option is a ConfigError', () => {
    const module = {
      ...solo,
      options: { preVote: { type: 'boolean', description: 'pre-vote' } } as const,
      parseOptions: (raw: unknown) => parseOptions('solo', { preVote: { type: 'boolean', description: 'pre-vote' } } as const, raw),
    };
    const base = { id: 'a', peers: ['a'], protocol: module, storage: new MemoryStorage(), transport: new LocalNetwork().transport('a'), stateMachine: new Counter() };
    expect(() => new ConsensusNode({ ...base, protocolOptions: { prevote: false } })).toThrow(/unknown solo option "prevote" \(did you mean "preVote"\?\)/);
    expect(() => new ConsensusNode({ ...base, protocolOptions: { preVote: 'yes' } })).toThrow(ConfigError);
    expect(() => new ConsensusNode({ ...base, protocol: solo, protocolOptions: { anything: 1 } })).toThrow(ConfigError);
    expect(() => new ConsensusNode({ ...base, protocolOptions: { preVote: false } })).not.toThrow();
  });

  it("protocolOptions cannot set the contract's options, even through a protocol whose parseOptions lets anything through", () => {
    const created: Record<string, unknown>[] = [];
    const lenient = {
      ...solo,
      parseOptions: (raw: unknown) => raw as Record<string, unknown>,
      create: (o: Parameters<typeof solo.create>[0]) => {
        created.push(o as unknown as Record<string, unknown>);
        return solo.create(o);
      },
    };
    const base = { id: 'a', peers: ['a'], protocol: lenient, storage: new MemoryStorage(), transport: new LocalNetwork().transport('a'), stateMachine: new Counter() };
    // electionTicks 1 <= heartbeatTicks 5 would pass the host's own check by this side door.
    expect(() => new ConsensusNode({ ...base, protocolOptions: { electionTicks: 1, heartbeatTicks: 5 } })).toThrow(/protocolOptions.electionTicks is not a protocol option.*options.electionTicks/);
    for (const key of ['id', 'peers', 'storage', 'applied', 'random']) {
      expect(() => new ConsensusNode({ ...base, protocolOptions: { [key]: 1 } })).toThrow(ConfigError);
    }
    expect(() => new ConsensusNode({ ...base, protocolOptions: [] as unknown as Record<string, unknown> })).toThrow(ConfigError);
    expect(() => new ConsensusNode({ ...base, protocolOptions: { knob: 1 } })).not.toThrow();
    expect(created).toEqual([]);
  });

  it('hands the parsed protocolOptions to create, beside the node\'s own contract options', async () => {
    const created: Record<string, unknown>[] = [];
    const module = {
      ...solo,
      parseOptions: (raw: unknown) => ({ ...(raw as Record<string, unknown>), parsed: true }),
      create: (o: Parameters<typeof solo.create>[0]) => {
        created.push(o as unknown as Record<string, unknown>);
        return solo.create(o);
      },
    };
    const node = new ConsensusNode({ id: 'a', peers: ['a'], protocol: module, protocolOptions: { knob: 1 }, storage: new MemoryStorage(), transport: new LocalNetwork().transport('a'), stateMachine: new Counter(), clock: new ManualClock(), electionTicks: 4 });
    nodes.push(node as unknown as ConsensusNode<never, never, never, never>);
    await node.start();
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ knob: 1, parsed: true, id: 'a', peers: ['a'], electionTicks: 4 });
  });

  it('sends nothing from a Ready whose save failed', async () => {
    const h = await fakeHarness();
    h.storage.failNext = new StorageError('disk full');
    const p = h.node.propose({ add: 1 }).catch((e: unknown) => e);
    expect(StorageError.is(await p)).toBe(true);
    await settle();
    expect(h.transport.sent).toEqual([]);
  });

  it('persists a Ready that carries only a hard state (a vote) before sending its messages', async () => {
    const h = await fakeHarness();
    h.events.length = 0;
    h.fake.extra = { hardState: Uint8Array.of(7), messages: [{ from: 'a', to: 'b', msg: { type: 'VoteResponse', index: 0 } }] };
    h.clock.advance(10);
    await settle();
    expect(h.events).toEqual(['save-start#1[]', 'save-done#1[]', 'send[0]']);
    expect(h.storage.saves[0]?.hardState).toEqual(Uint8Array.of(7));
  });

  it('persists in the pinned order: the snapshot install, then one save of truncation, entries and hard state; sends after', async () => {
    const h = await fakeHarness();
    h.events.length = 0;
    h.fake.last = h.fake.commit = h.fake.applied = 5;
    const entry: LogEntry = { index: 6, term: 1, type: 'noop', data: new Uint8Array(0) };
    h.fake.extra = {
      snapshot: { index: 5, term: 1, config: { voters: ['a', 'b'], learners: [] }, data: new TextEncoder().encode('7') },
      truncateAfter: 5,
      entries: [entry],
      hardState: Uint8Array.of(1, 2),
      messages: [{ from: 'a', to: 'b', msg: { type: 'Append', index: 6 } }],
    };
    h.clock.advance(10);
    await settle();
    expect(h.events).toEqual(['install@5', 'save-start#1[6]', 'save-done#1[6]', 'send[6]']);
    expect(h.storage.saves).toHaveLength(1);
    expect(h.storage.saves[0]).toMatchObject({ truncateAfter: 5, entries: [entry], hardState: Uint8Array.of(1, 2) });
    expect(h.sm.total).toBe(7);
    expect(h.node.status().appliedIndex).toBe(6);
  });

  it('resolves a membership change once the applied configuration is the target and not transitional', async () => {
    const h = await fakeHarness();
    let resolved: ClusterConfig | undefined;
    void h.node.changeMembership({ changes: [{ op: 'addVoter', node: 'c' }] }).then((c) => (resolved = c));
    const appendConfig = (config: ClusterConfig) => {
      h.fake.unstable.push({ index: ++h.fake.last, term: h.fake.term, type: 'config', data: encodeClusterConfig(config) });
      h.clock.advance(10);
    };
    appendConfig({ voters: ['a', 'b', 'c'], outgoing: ['a', 'b'], learners: [] });
    await settle();
    expect(h.node.status().appliedIndex).toBe(1);
    expect(resolved).toBeUndefined();
    appendConfig({ voters: ['a', 'b', 'c'], learners: [] });
    await settle();
    expect(resolved).toEqual({ voters: ['a', 'b', 'c'], learners: [] });
  });

  it('resolves a membership change only once the protocol reports its configuration in force, when that lags the applied entry', async () => {
    const h = await fakeHarness();
    // As Multi-Paxos (PMMC section 4): a configuration decided in slot s governs from slot s + 3 here.
    h.fake.configWindow = 3;
    let resolved: ClusterConfig | undefined;
    void h.node.changeMembership({ changes: [{ op: 'remove', node: 'a' }] }).then((c) => (resolved = c));
    const append = (type: 'config' | 'noop', data: Uint8Array = new Uint8Array(0)) => {
      h.fake.unstable.push({ index: ++h.fake.last, term: h.fake.term, type, data });
      h.clock.advance(10);
    };
    append('config', encodeClusterConfig({ voters: ['b'], learners: [] }));
    await settle();
    // Applied, and the applied configuration is the target, but {a, b} still decides slots 2 and 3.
    expect(h.node.status().appliedIndex).toBe(1);
    expect(h.node.status().config).toEqual({ voters: ['a', 'b'], learners: [] });
    expect(resolved).toBeUndefined();
    append('noop');
    await settle();
    expect(h.node.status().appliedIndex).toBe(2);
    expect(resolved).toBeUndefined();
    append('noop');
    await settle();
    expect(h.node.status().config).toEqual({ voters: ['b'], learners: [] });
    expect(resolved).toEqual({ voters: ['b'], learners: [] });
  });
});

describe('ConsensusNode: how pending operations end when leadership moves or the node stops', () => {
  /** Makes the fake report a new status (role, term, leader) at the next tick. */
  const becomes = async (h: Harness, change: { role?: Status['role']; term?: number; leader?: NodeId }) => {
    if (change.role !== undefined) h.fake.role = change.role;
    if (change.term !== undefined) h.fake.term = change.term;
    h.fake.leaderId = change.leader;
    h.fake.statusDirty = true;
    h.clock.advance(10);
    await settle();
  };

  it('a leader re-elected in a later term rejects what it proposed before with LeadershipLostError (outcome unknown)', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const blocker = h.node.propose({ add: 1 }); // keeps the loop busy, so the next one stays in the protocol's memory
    await settle();
    const proposal = h.node.propose({ add: 2 }).catch((e: unknown) => e);
    const change = h.node.changeMembership({ changes: [{ op: 'addVoter', node: 'c' }] }).catch((e: unknown) => e);
    await settle();
    h.fake.unstable = [];
    h.fake.outbox = [];
    await becomes(h, { term: 2 }); // still the leader, and still 'a': but a new term
    h.storage.open();
    expect(LeadershipLostError.is(await proposal)).toBe(true);
    expect(LeadershipLostError.is(await change)).toBe(true);
    await blocker.catch(() => undefined);
  });

  it('a read whose barrier was confirmed survives a leader change and is served once applied; an unconfirmed one is refused', async () => {
    const h = await fakeHarness();
    h.fake.readIndex = (ctx) => h.fake.reads.push({ ctx, index: 2 }); // confirmed at index 2, not applied yet
    const confirmed = h.node.read('total');
    await settle();
    h.fake.confirmReads = false;
    h.fake.readIndex = () => undefined; // never confirmed
    const unconfirmed = h.node.read('total').catch((e: unknown) => e);
    await settle();
    let served: number | undefined;
    void confirmed.then((v) => (served = v));
    await becomes(h, { role: 'follower', term: 2, leader: 'b' });
    expect(LeadershipLostError.is(await unconfirmed)).toBe(true);
    expect(served).toBeUndefined();
    // Entries 1 and 2 arrive from the new leader and apply: the confirmed read is served after them.
    for (let i = 0; i < 2; i++) h.fake.unstable.push({ index: ++h.fake.last, term: 2, type: 'command', data: new Uint8Array() });
    h.clock.advance(10);
    await settle();
    await expect(confirmed).resolves.toBe(0);
  });

  it('an unconfirmed read is refused when the term changes under the same leader', async () => {
    const h = await fakeHarness();
    h.fake.confirmReads = false;
    const read = h.node.read('total').catch((e: unknown) => e);
    await settle();
    await becomes(h, { term: 2 });
    expect(LeadershipLostError.is(await read)).toBe(true);
  });

  it('a leadership transfer resolves when its target leads, not when some other node does', async () => {
    const h = await fakeHarness();
    let done = false;
    const transfer = h.node.transferLeadership('b').then(() => (done = true));
    await settle();
    await becomes(h, { role: 'follower', term: 2, leader: 'c' });
    expect(done).toBe(false);
    await becomes(h, { role: 'follower', term: 3, leader: 'b' });
    await transfer;
    expect(done).toBe(true);
  });

  it('stop lets the save in flight finish before it closes storage, and its proposal resolves', async () => {
    const h = await fakeHarness();
    h.storage.hold();
    const proposal = h.node.propose({ add: 5 });
    await settle();
    const stopped = h.node.stop();
    await settle();
    expect(h.events).not.toContain('close'); // storage stays open under the save
    h.storage.open();
    await stopped;
    await expect(proposal).resolves.toBe(5);
    const closeAt = h.events.indexOf('close');
    expect(closeAt).toBeGreaterThan(h.events.findIndex((e) => e.startsWith('save-done#')));
    expect(h.events.slice(closeAt + 1).filter((e) => e.startsWith('save-'))).toEqual([]);
  });

  it('a protocol that breaks an invariant on a message fails the node; any other throw is logged and the node goes on', async () => {
    const h = await fakeHarness();
    const deliver = (h.transport as unknown as { handler?: { deliver(e: Envelope): void } }).handler;
    expect(deliver).toBeDefined();
    h.fake.stepError = new TypeError('bad message');
    deliver?.deliver({ from: 'b', to: 'a', msg: {} });
    h.fake.stepError = undefined;
    await expect(h.node.propose({ add: 1 })).resolves.toBe(1);
    const errors: unknown[] = [];
    h.node.on('error', (e) => errors.push(e));
    h.fake.stepError = new InvariantError('log matching broken');
    deliver?.deliver({ from: 'b', to: 'a', msg: {} });
    await settle();
    expect(errors).toHaveLength(1);
    await expect(h.node.propose({ add: 1 })).rejects.toSatisfy(StoppedError.is);
  });
});
