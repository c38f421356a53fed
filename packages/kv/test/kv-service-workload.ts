/**
 * The simulator's workload for the real key-value store (`KvStateMachine`): registers checked for
 * linearizability, leases kept alive or abandoned under faults, and watchers that must see the committed event
 * sequence exactly once. Used by `kv-service.sim.test.ts`; deeper sweeps: `KV_SIM_SEEDS=2000 npx vitest run test/kv-service`.
 */
import { pack, unpack } from 'msgpackr';
import { isConsensusError, type LogEntry, type NodeId } from '@consensus-kit/core';
import {
  KvWorkload,
  linearizabilityChecker,
  type AppliedCommand,
  type ClientRequest,
  type HistoryChecker,
  type HistoryOp,
  type HistoryVerdict,
  type KvInput,
  type KvOutput,
  type Rng,
  type SimStateMachine,
  type SimulateOptions,
  type Workload,
  type WorkloadHost,
  type WorkloadInit,
  type WorkloadOptions,
} from '@consensus-kit/sim';
import type { KvCommand } from '../src/commands';
import { KvStateMachine, type KvEvent } from '../src/index';
import { leaseGrant, leaseKeepAlive, putWithLease } from './lease-commands';

/** The prefix of the keys attached to leases: their deletion events show an expiry. */
const LEASE_KEY = 'lease/';

/**
 * An upper bound on how much faster than the reference clock any replica's clock runs in the schedules this
 * workload is run with (heavy faults draw rates in [0.7, 1.3]): replicated time moves at most this fast.
 */
export const MAX_CLOCK_RATE = 1.35;

/**
 * The renewal of an acknowledged keepalive counts from the last time entry before it in the log, which the
 * leader proposed up to one time-entry interval earlier (5 ticks of its clock, 7.2 reference ticks at rate
 * 0.7): the lease check allows that much, plus a tick.
 */
const TIME_ENTRY_SLACK_TICKS = 8.2;

/** A log entry of this workload, besides the register commands of the inner `KvWorkload` ({ c, o, in }). */
type Envelope = { t: [term: number, clockMs: number] } | { L: [client: number, op: number]; cmd: KvCommand };

/** What the replica's state machine hands the workload for every applied entry. */
interface Applied {
  replica: KvReplica;
  /** The first revision this entry may have written (the store's revision before it, plus one). */
  from: number;
  /** For a register or lease command: its result (or `{ error: code }`). */
  out?: unknown;
  time?: boolean;
}

/**
 * One replica's state machine: the real `KvStateMachine`, keeping all history (watchers replay from any
 * revision), its time fed by the simulator's time entries.
 */
export class KvReplica implements SimStateMachine {
  readonly kv = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY, minLeaseTtlMs: 100 });

  apply(entry: LogEntry): Applied {
    const from = this.kv.currentRevision + 1;
    let msg: unknown;
    try {
      msg = unpack(entry.data);
    } catch {
      return { replica: this, from };
    }
    if (typeof msg !== 'object' || msg === null) return { replica: this, from };
    if ('t' in msg) {
      const [term, ms] = (msg as { t: [number, number] }).t;
      this.kv.apply(entry, this.kv.timeCommand(term, ms));
      return { replica: this, from, time: true };
    }
    if ('in' in msg) return { replica: this, from, out: this.register(entry, (msg as { in: KvInput }).in) };
    if ('L' in msg) return { replica: this, from, out: this.run(entry, (msg as unknown as { cmd: KvCommand }).cmd) };
    return { replica: this, from };
  }

  /** A register op of the inner workload, as the real store's commands: put, and cas as a transaction. */
  private register(entry: LogEntry, input: KvInput): KvOutput {
    switch (input.f) {
      case 'put':
        this.kv.apply(entry, { cmd: { op: 'put', key: input.key, value: input.value } });
        return { ok: true };
      case 'cas': {
        const r = this.kv.apply(entry, {
          cmd: {
            op: 'txn',
            if: [input.from === null ? { key: input.key, target: 'version', cmp: '=', value: 0 } : { key: input.key, target: 'value', cmp: '=', value: input.from }],
            then: [{ op: 'put', key: input.key, value: input.to }],
          },
        });
        return { swapped: (r as { succeeded: boolean }).succeeded };
      }
      default:
        throw new Error(`the kv service workload issues no ${input.f}`);
    }
  }

  private run(entry: LogEntry, cmd: KvCommand): unknown {
    try {
      return { ok: this.kv.apply(entry, { cmd }) };
    } catch (e) {
      if (isConsensusError(e)) return { error: e.code };
      throw e;
    }
  }

  query(key: unknown): string | null {
    const kv = this.kv.query({ op: 'get', key: String(key) }) as { value: unknown } | undefined;
    return kv === undefined ? null : String(kv.value);
  }

  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }

  restore(data: Uint8Array): void {
    this.kv.restore(data);
  }

  timeEntry(term: number, clockMs: number): Uint8Array {
    return pack({ t: [term, clockMs] } satisfies Envelope);
  }
}

export interface KvServiceWorkloadOptions {
  /** The register clients (put / get / cas, checked for linearizability). Default 3 clients on 3 keys. */
  registers?: Pick<WorkloadOptions, 'clients' | 'keys' | 'timeoutTicks' | 'thinkTicks'>;
  /** Clients that grant leases, attach a key and keep them alive for a while, then abandon them. Default 2. */
  leaseClients?: number;
  /** TTL of every lease, in ms. Default 1,000 (the run is 6 s long in the tests). */
  ttlMs?: number;
  /** Watchers of the whole key space, each bound to a node (moving on when it crashes). Default 2. */
  watchers?: number;
}

interface LeaseRecord {
  ttlMs: number;
  /** Invocation times (µs) of the grant and keepalives the client saw acknowledged. */
  acked: number[];
  /** When a replica first applied the deletion of its key by expiry (µs). */
  expiredAt?: number;
}

interface LeaseOp {
  seq: number;
  kind: 'grant' | 'attach' | 'keepalive';
  invoke: number;
  acceptedBy?: NodeId;
}

interface LeaseClient {
  id: number;
  rng: Rng;
  target: number;
  op: LeaseOp | undefined;
  seq: number;
  /** The lease being worked with, and how many more keepalives it gets before it is abandoned. */
  lease: { id: number; keepLeft: number; attached: boolean } | undefined;
  leases: number;
}

interface Watcher {
  id: number;
  node: NodeId;
  start: number;
  /** The next revision it wants. */
  next: number;
  /** Active from this time (µs). */
  from: number;
  events: KvEvent[];
  /** Why it could not go on (its node no longer had the history it needed). */
  broken?: string;
}

type Mine = { mine: 'lease'; client: number; seq: number } | { mine: 'timeout'; client: number; seq: number };
type MineToken = { mine: true; client: number; seq: number };

function isMine(x: unknown): boolean {
  return typeof x === 'object' && x !== null && 'mine' in x;
}

/**
 * The inner `KvWorkload`'s register clients, plus lease clients and watchers. Their own checks run at the end
 * (`check`), after the registers' linearizability.
 */
export class KvServiceWorkload implements Workload<HistoryOp> {
  readonly timeoutTicks: number;
  private readonly inner: KvWorkload;
  private readonly nodes: readonly NodeId[];
  private readonly ttlMs: number;
  private readonly leaseClients: LeaseClient[] = [];
  private readonly watchers: Watcher[] = [];
  readonly leases = new Map<number, LeaseRecord>();
  /** The latest state machine seen at each node (its current incarnation's). */
  private readonly replicas = new Map<NodeId, KvReplica>();
  private readonly rng: Rng;
  private host!: WorkloadHost;
  private leaseOps = { ops: 0, ok: 0, indeterminate: 0 };

  constructor(o: KvServiceWorkloadOptions, init: WorkloadInit) {
    this.nodes = init.nodes;
    this.rng = init.rng.fork('kv-service');
    this.inner = new KvWorkload({ clients: 3, keys: 3, ...o.registers, listKeys: 0, mix: { put: 3, get: 4, cas: 3 } }, { ...init, rng: init.rng.fork('registers') });
    this.timeoutTicks = this.inner.timeoutTicks;
    this.ttlMs = o.ttlMs ?? 1000;
    for (let c = 0; c < (o.leaseClients ?? 2); c++) {
      const rng = this.rng.fork(`lease:${c}`);
      this.leaseClients.push({ id: c, rng, target: rng.int(0, this.nodes.length - 1), op: undefined, seq: 0, lease: undefined, leases: 0 });
    }
    for (let w = 0; w < (o.watchers ?? 2); w++) {
      this.watchers.push({ id: w, node: this.rng.pick(this.nodes), start: 1, next: 1, from: 0, events: [] });
    }
  }

  get stats(): { ops: number; opsOk: number; opsIndeterminate: number } {
    const s = this.inner.stats;
    return { ops: s.ops + this.leaseOps.ops, opsOk: s.opsOk + this.leaseOps.ok, opsIndeterminate: s.opsIndeterminate + this.leaseOps.indeterminate };
  }

  start(host: WorkloadHost): void {
    this.host = host;
    this.inner.start(host);
    for (const c of this.leaseClients) this.schedule(c, host.tickUs * (1 + c.rng.int(0, 5)));
    // The first watcher watches from the start; the others join later and replay from a past revision.
    this.watchers.forEach((w, i) => {
      w.from = i === 0 ? 0 : Math.round((host.endTime / 3) * (i / this.watchers.length + 0.5));
    });
  }

  onTimer(timer: unknown): void {
    if (!isMine(timer)) return this.inner.onTimer(timer);
    const t = timer as Mine;
    const c = this.leaseClients[t.client] as LeaseClient;
    if (t.mine === 'lease') return this.next(c);
    if (c.op !== undefined && c.op.seq === t.seq) {
      this.leaseOps.indeterminate++;
      this.done(c, undefined);
      if (this.nodes.length > 1 && c.rng.chance(0.5)) c.target = c.rng.int(0, this.nodes.length - 1);
    }
  }

  live(request: ClientRequest): boolean {
    if (!isMine(request.token)) return this.inner.live(request);
    const t = request.token as MineToken;
    return this.leaseClients[t.client]?.op?.seq === t.seq;
  }

  accepted(node: NodeId, request: ClientRequest): void {
    if (!isMine(request.token)) return this.inner.accepted(node, request);
    const op = this.leaseClients[(request.token as MineToken).client]?.op;
    if (op !== undefined) op.acceptedBy = node;
  }

  refused(node: NodeId, request: ClientRequest, hint: NodeId | undefined): void {
    if (!isMine(request.token)) return this.inner.refused(node, request, hint);
    const c = this.leaseClients[(request.token as MineToken).client] as LeaseClient;
    const h = hint === undefined ? -1 : this.nodes.indexOf(hint);
    c.target = h >= 0 && h !== c.target ? h : c.rng.int(0, this.nodes.length - 1);
    this.host.request(this.host.now() + Math.round(this.host.tickUs / 2) + c.rng.int(0, this.host.tickUs), this.nodes[c.target] as NodeId, request);
  }

  applied(node: NodeId, entry: LogEntry, result: unknown): AppliedCommand | undefined {
    const a = result as Applied | undefined;
    if (a?.replica === undefined) return undefined;
    this.replicas.set(node, a.replica);
    this.deliver(node, a.replica);
    if (a.time === true) {
      this.noteExpiries(a);
      return undefined;
    }
    const registers = this.inner.applied(node, entry, a.out);
    if (registers !== undefined) return registers;
    let msg: Envelope;
    try {
      msg = unpack(entry.data) as Envelope;
    } catch {
      return undefined;
    }
    if (!('L' in msg)) return undefined;
    const [client, seq] = msg.L;
    const c = this.leaseClients[client];
    const acknowledged = c?.op !== undefined && c.op.seq === seq && c.op.acceptedBy === node;
    if (acknowledged) {
      this.leaseOps.ok++;
      this.done(c, a.out as { ok?: unknown; error?: string });
    }
    return { id: `lease:${client}:${seq}`, acknowledged };
  }

  readReleased(node: NodeId, ctx: Uint8Array, sm: SimStateMachine): void {
    this.inner.readReleased(node, ctx, sm);
  }

  crashed(node: NodeId): void {
    this.inner.crashed(node);
    for (const c of this.leaseClients) {
      if (c.op?.acceptedBy === node) {
        this.leaseOps.indeterminate++;
        this.done(c, undefined);
      }
    }
    // A watcher's connection to a crashed node drops: it reconnects to another node and resumes from `next`.
    for (const w of this.watchers) if (w.node === node && this.nodes.length > 1) w.node = this.rng.pick(this.nodes.filter((n) => n !== node));
    this.replicas.delete(node);
  }

  steer(s: Parameters<NonNullable<Workload['steer']>>[0]): void {
    this.inner.steer(s);
  }

  end(): void {
    this.inner.end();
    for (const c of this.leaseClients) if (c.op !== undefined) this.leaseOps.indeterminate++;
  }

  history(): HistoryOp[] {
    return this.inner.history();
  }

  // --- watchers --------------------------------------------------------------------------------------------

  /** What a watch on `node` pushes after an apply there: the store's changes from the watcher's next revision. */
  private deliver(node: NodeId, replica: KvReplica): void {
    const now = this.host.now();
    for (const w of this.watchers) {
      if (w.node !== node || now < w.from) continue;
      if (w.events.length === 0 && w.next === 1 && w.from > 0) {
        // Joining late: start from a revision this node has seen, replaying history from there.
        w.start = w.next = Math.max(1, replica.kv.currentRevision - this.rng.int(0, 20));
      }
      if (replica.kv.currentRevision < w.next || w.broken !== undefined) continue;
      let events: KvEvent[];
      try {
        events = replica.kv.changes(w.next);
      } catch (e) {
        // History is never compacted here: a node that cannot replay from `next` lost some.
        w.broken = `at ${node}, resuming from revision ${w.next}: ${(e as Error).message}`;
        continue;
      }
      for (const e of events) w.events.push(e);
      w.next = replica.kv.currentRevision + 1;
    }
  }

  /** Deletions of lease keys written by a time entry are expiries: the first replica to apply one dates it. */
  private noteExpiries(a: Applied): void {
    if (a.replica.kv.currentRevision < a.from) return;
    for (const e of a.replica.kv.changes(a.from)) {
      if (e.type !== 'delete' || !e.key.startsWith(LEASE_KEY)) continue;
      const rec = this.leases.get(Number(e.key.slice(LEASE_KEY.length)));
      if (rec !== undefined && rec.expiredAt === undefined) rec.expiredAt = this.host.now();
    }
  }

  // --- lease clients ---------------------------------------------------------------------------------------

  private schedule(c: LeaseClient, delay: number): void {
    this.host.setTimer(this.host.now() + 1 + delay, { mine: 'lease', client: c.id, seq: c.seq } satisfies Mine);
  }

  /** The client's next step: grant a lease, attach its key, keep it alive, or abandon it and start again. */
  private next(c: LeaseClient): void {
    if (c.op !== undefined) return;
    const now = this.host.now();
    if (now + this.timeoutTicks * this.host.tickUs > this.host.endTime) return;
    if (c.lease === undefined || c.lease.keepLeft < 0) {
      c.leases++;
      const id = (c.id + 1) * 1_000_000 + c.leases;
      c.lease = { id, keepLeft: c.rng.int(0, 12), attached: false };
      this.leases.set(id, { ttlMs: this.ttlMs, acked: [] });
      return this.send(c, 'grant', leaseGrant(id, this.ttlMs));
    }
    if (!c.lease.attached) {
      c.lease.attached = true;
      return this.send(c, 'attach', putWithLease(`${LEASE_KEY}${c.lease.id}`, `v${c.id}.${c.seq}`, c.lease.id));
    }
    c.lease.keepLeft--;
    if (c.lease.keepLeft < 0) {
      // Abandoned: no more keepalives; it must expire on its own.
      return this.schedule(c, c.rng.int(0, 4) * this.host.tickUs);
    }
    this.send(c, 'keepalive', leaseKeepAlive([c.lease.id]));
  }

  private send(c: LeaseClient, kind: LeaseOp['kind'], cmd: KvCommand): void {
    const now = this.host.now();
    c.seq++;
    c.op = { seq: c.seq, kind, invoke: now };
    this.leaseOps.ops++;
    if (this.nodes.length > 1 && c.rng.chance(1 / 4)) c.target = c.rng.int(0, this.nodes.length - 1);
    this.host.setTimer(now + this.timeoutTicks * this.host.tickUs, { mine: 'timeout', client: c.id, seq: c.seq } satisfies Mine);
    const data = pack({ L: [c.id, c.seq], cmd } satisfies Envelope);
    this.host.request(now + 1 + c.rng.int(0, 200), this.nodes[c.target] as NodeId, { kind: 'propose', data, token: { mine: true, client: c.id, seq: c.seq } satisfies MineToken });
  }

  /** The op completed (`out`) or became indeterminate (undefined): record it and go on. */
  private done(c: LeaseClient, out: { ok?: unknown; error?: string } | undefined): void {
    const op = c.op as LeaseOp;
    c.op = undefined;
    const lease = c.lease;
    if (lease !== undefined && out !== undefined && out.error === undefined && op.kind !== 'attach') {
      // A keepalive that found the lease gone answers without error but with no TTL: not a renewal.
      if (op.kind === 'grant' || keptAlive(out.ok, lease.id)) this.leases.get(lease.id)?.acked.push(op.invoke);
    }
    if (op.kind === 'grant' && (out === undefined || out.error !== undefined)) c.lease = undefined;
    // Keepalives every quarter TTL; the other steps follow at once.
    this.schedule(c, op.kind === 'keepalive' ? Math.round((this.ttlMs * 1000) / 4) : 0);
  }

  // --- the end-of-run checks -------------------------------------------------------------------------------

  /**
   * Every watcher saw exactly the committed event sequence from its start revision (no gap, no duplicate, in
   * order, same content); no lease expired sooner than `ttl / MAX_CLOCK_RATE` (minus one time-entry interval)
   * after the invocation of a keepalive or grant the client saw acknowledged. Returns a message or undefined.
   */
  check(): string | undefined {
    let ref: KvReplica | undefined;
    for (const r of this.replicas.values()) if (ref === undefined || r.kv.currentRevision > ref.kv.currentRevision) ref = r;
    for (const w of this.watchers) {
      if (w.broken !== undefined) return `watcher w${w.id} (from revision ${w.start}) could not go on ${w.broken}`;
    }
    for (const w of this.watchers) {
      if (w.events.length === 0 || ref === undefined) continue;
      let want: KvEvent[];
      try {
        want = ref.kv.changes(w.start, w.events.length);
      } catch (e) {
        return `the most advanced replica cannot replay from revision ${w.start} for watcher w${w.id}: ${(e as Error).message}`;
      }
      for (let i = 0; i < w.events.length; i++) {
        const got = describeEvent(w.events[i] as KvEvent);
        const exp = want[i] === undefined ? 'nothing' : describeEvent(want[i] as KvEvent);
        if (got !== exp) return `watcher w${w.id} (from revision ${w.start}): event #${i} is ${got}, but the committed sequence has ${exp}`;
      }
    }
    const slackUs = TIME_ENTRY_SLACK_TICKS * this.host.tickUs;
    for (const [id, rec] of this.leases) {
      if (rec.expiredAt === undefined) continue;
      const minUs = (rec.ttlMs * 1000) / MAX_CLOCK_RATE - slackUs;
      for (const at of rec.acked) {
        if (rec.expiredAt - at < minUs) {
          return `lease ${id} (ttl ${rec.ttlMs} ms) expired at ${rec.expiredAt} µs, ${rec.expiredAt - at} µs after an acknowledged keepalive invoked at ${at} µs (at least ${Math.round(minUs)} µs expected)`;
        }
      }
    }
    return undefined;
  }

  /** Watchers and leases, for tests. */
  summary(): { watcherEvents: number[]; leases: number; expired: number; abandonedLive: number } {
    let expired = 0;
    for (const rec of this.leases.values()) if (rec.expiredAt !== undefined) expired++;
    return { watcherEvents: this.watchers.map((w) => w.events.length), leases: this.leases.size, expired, abandonedLive: 0 };
  }
}

/** Whether a keepalive's answer renewed lease `id` (one that found it gone lists it as missing). */
function keptAlive(answer: unknown, id: number): boolean {
  const r = answer as { kept?: [number, number][] } | undefined;
  return r?.kept?.some(([k]) => k === id) === true;
}

function describeEvent(e: KvEvent): string {
  if (e.type === 'delete') return `delete ${e.key} @${e.revision}`;
  return `put ${e.kv.key}=${String(e.kv.value)} @${e.revision} (create ${e.kv.createRevision}, version ${e.kv.version}, lease ${e.kv.lease})`;
}

/**
 * Simulate options for the kv service workload: the workload, the replicas' state machine and a checker that
 * runs linearizability on the registers, then the watch and lease checks.
 */
export function kvServiceSimulation(options: KvServiceWorkloadOptions = {}): Pick<SimulateOptions, 'workload' | 'stateMachine' | 'checker'> & {
  workload: (init: WorkloadInit) => KvServiceWorkload;
  last(): KvServiceWorkload | undefined;
} {
  let current: KvServiceWorkload | undefined;
  const lin = linearizabilityChecker();
  const checker: HistoryChecker<HistoryOp> = {
    name: 'kv-service',
    check(history): HistoryVerdict<HistoryOp> {
      const v = lin.check(history);
      if (v.result !== 'ok') return v;
      const problem = current?.check();
      if (problem !== undefined) return { result: 'illegal', checkedOps: v.checkedOps, message: problem, ops: [] };
      return v;
    },
  };
  return {
    workload: (init) => (current = new KvServiceWorkload(options, init)),
    stateMachine: () => new KvReplica(),
    checker,
    last: () => current,
  };
}
