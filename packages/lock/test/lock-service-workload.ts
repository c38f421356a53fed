/**
 * The simulator's workload for the lock service (`LockStateMachine`): clients that open sessions, keep them
 * alive, contend for one mutex, and while they hold it write to a simulated `FencedResource`; some are killed
 * (kill -9: they stop without releasing), some are paused (SIGSTOP), some give up waiting (the abort path).
 * The end-of-run checker judges mutual exclusion at the resource, the grants the log made, fairness and lock-delay.
 * Used by `lock-service.sim.test.ts`; deeper sweeps: `LOCK_SIM_SEEDS=10000 npx vitest run test/lock-service`.
 */
import { pack, unpack } from 'msgpackr';
import { isConsensusError, type LogEntry, type NodeId } from '@consensus-kit/core';
import type {
  AppliedCommand,
  ClientOp,
  ClientRequest,
  HistoryChecker,
  HistoryVerdict,
  Rng,
  SimStateMachine,
  SimulateOptions,
  Workload,
  WorkloadHost,
  WorkloadInit,
} from '@consensus-kit/sim';
import type { LockCommand, LockEvent, LockMode, LockResult } from '../src/commands';
import { LockStateMachine, type LockStateMachineOptions } from '../src/lock-state-machine';

/** The mutex, the read/write lock and the counting semaphore the clients contend for. */
export const MUTEX = 'm';
export const RWLOCK = 'rw';
export const SEMAPHORE = 's';
/** The semaphore's size. */
export const SEM_PERMITS = 2;
/** Which locks a run's clients take. */
export type LockMix = 'mutex' | 'rw' | 'semaphore';

/**
 * An upper bound on how much faster than the reference clock any replica's clock runs in the schedules this
 * workload is run with (heavy faults draw rates in [0.7, 1.3]): replicated time moves at most this fast.
 */
export const MAX_CLOCK_RATE = 1.35;

/**
 * The renewal of an acknowledged keepalive counts from the last time entry before it in the log, which the
 * leader proposed up to one time-entry interval earlier (5 ticks of its clock, 7.2 reference ticks at rate
 * 0.7): the expiry check allows that much, plus a tick (as the kv workload's lease check does).
 */
const TIME_ENTRY_SLACK_TICKS = 8.2;

type Envelope = { t: [term: number, clockMs: number] } | { L: [client: number, seq: number]; cmd: LockCommand };

/** The lock and mode of a request, as the acquire in the log asked for it. */
interface Target {
  lock: string;
  mode: LockMode;
}

/** What a replica hands the workload for each applied entry. */
export interface Applied {
  replica: LockReplica;
  /** Replicated time after the entry. */
  now: number;
  /** The command's result, or `{ error: code }`. */
  out?: { ok: LockResult } | { error: string };
  time?: boolean;
  /** A time entry's term and the proposing leader's clock reading (ms). */
  clock?: [term: number, clockMs: number];
}

/** One replica's state machine: the real `LockStateMachine`, its time fed by the simulator's time entries. */
export class LockReplica implements SimStateMachine {
  readonly sm: LockStateMachine;
  constructor(options: LockStateMachineOptions) {
    this.sm = new LockStateMachine(options);
  }

  apply(entry: LogEntry): Applied | undefined {
    let msg: Envelope;
    try {
      msg = unpack(entry.data) as Envelope;
    } catch {
      return undefined;
    }
    if (typeof msg !== 'object' || msg === null) return undefined;
    if ('t' in msg) {
      const r = this.run(entry, this.sm.timeCommand(msg.t[0], msg.t[1]).cmd);
      return { replica: this, now: this.sm.now, out: r, time: true, clock: [msg.t[0], msg.t[1]] };
    }
    if ('L' in msg) return { replica: this, now: this.sm.now, out: this.run(entry, msg.cmd) };
    return undefined;
  }

  /** Runs one command; a mutant overrides this to change what the state machine decides. */
  protected run(entry: LogEntry, cmd: LockCommand): { ok: LockResult } | { error: string } {
    try {
      return { ok: this.sm.apply(entry, { cmd }) };
    } catch (e) {
      if (isConsensusError(e)) return { error: e.code };
      throw e;
    }
  }

  query(q: unknown): unknown {
    return this.sm.query(q as never);
  }

  snapshot(): Uint8Array {
    return this.sm.snapshot();
  }

  restore(data: Uint8Array): void {
    this.sm.restore(data);
  }

  timeEntry(term: number, clockMs: number): Uint8Array {
    return pack({ t: [term, clockMs] } satisfies Envelope);
  }
}

/**
 * A resource guarded by fencing tokens (Kleppmann, "How to do distributed locking"): it accepts a write whose
 * token is at least the highest it has accepted, and refuses a lower one. `FencedResource` of the client package
 * does the same for real resources; here it is the external store the holders write to.
 */
export class SimFencedResource {
  highest = 0;
  /** Accepts or refuses a write with `token`. */
  write(token: number): boolean {
    if (token < this.highest) return false;
    this.highest = token;
    return true;
  }
}

/**
 * The resource a read/write lock guards: readers read, writers write, each with the token of its hold. A read is
 * refused below the highest write token accepted (a writer came after its hold); a write is refused below the
 * highest token of any accepted read or write (a reader or writer came after it). Readers never fence each other:
 * they hold together, each with its own token.
 */
export class SimRwResource {
  highestWrite = 0;
  highest = 0;
  read(token: number): boolean {
    if (token < this.highestWrite) return false;
    this.highest = Math.max(this.highest, token);
    return true;
  }
  write(token: number): boolean {
    if (token < this.highest) return false;
    this.highest = token;
    this.highestWrite = token;
    return true;
  }
}

/**
 * The resource a semaphore of `permits` guards. Fencing by count, not per permit: the state machine grants
 * permits without numbering them (a hold's token is the log index of its grant, as for a mutex), so a resource
 * cannot tell which permit a writer holds; it can count. Tokens grow with the log and at most `permits` holds are
 * live at any entry, so a hold with `permits` other holds of a token as high or higher accepted before it has
 * been overtaken: it is refused. One entry can grant several permits (a release or an expiry frees them) under
 * one token, so the token alone does not name a hold: a write also names its hold (session and request, as a
 * Chubby sequencer names its holder), and holds sharing a token count against each other. Among the writes it
 * accepts, at most `permits` holds are ever active at once (the checker's count check). The price: a live holder
 * overtaken by `permits` others, short-lived or granted beside it, is refused too (safe, not live); numbered
 * permits would avoid that.
 */
export class SimCountResource {
  /** Holds accepted so far: hold id -> token. */
  private readonly holds = new Map<string, number>();
  constructor(readonly permits: number) {}
  write(token: number, hold = String(token)): boolean {
    let ahead = 0;
    for (const [id, t] of this.holds) if (id !== hold && t >= token) ahead++;
    if (ahead >= this.permits) return false;
    this.holds.set(hold, token);
    return true;
  }
}

/** What holders write to (a reader reads, when the store tells reads apart). */
export interface FencedStore {
  /** `hold` names the writer's hold (`${session}:${req}`): several holds can share a token. */
  write(token: number, hold?: string): boolean;
  read?(token: number): boolean;
}

export interface LockServiceWorkloadOptions {
  /** Contending clients. Default 4. */
  clients?: number;
  /** Session TTL, ms. Default 500. */
  ttlMs?: number;
  /** The state machine's lock-delay, ms (the test checks it against `lockDelayMs` of the replicas). Default 400. */
  lockDelayMs?: number;
  /** The resources' stand-in (a mutant of the checker's own subject: one that fences nothing), for every lock. */
  resource?: () => FencedStore;
  /** Locks the clients take (default all three: the mutex, the read/write lock with downgrades, the semaphore). */
  locks?: LockMix[];
}

/** One write to the resource. */
export interface Write {
  client: number;
  lock: string;
  /** A reader's access is a read; everyone else writes. */
  read: boolean;
  session: number;
  req: number;
  token: number;
  issued: number;
  landed?: number;
  accepted?: boolean;
}

/** One grant as the log made it (from the first replica that applied it). */
export interface LogGrant {
  lock: string;
  mode: LockMode;
  session: number;
  req: number;
  token: number;
  /** Log index of the grant. */
  index: number;
  /** Replicated time at the grant. */
  now: number;
  /** Log index of the acquire that queued it, when it waited. */
  queuedAt?: number;
  /** Log index at which the hold ended (release, close or expiry). */
  endedAt?: number;
}

interface PendingOp {
  seq: number;
  kind: LockCommand['op'];
  invoke: number;
  acceptedBy?: NodeId;
  /** The history op that records it. */
  op: ClientOp;
  cmd: LockCommand;
}

interface Holding {
  req: number;
  token: number;
  lock: string;
  mode: LockMode;
  /** A writer downgrading: the request id of its read acquire, in flight. */
  downgradeReq?: number;
  learnedAt: number;
  lastIssue?: number;
  writesLeft: number;
}

interface Client {
  id: number;
  rng: Rng;
  /** The node it sends to and listens to (its subscription). */
  node: number;
  session?: number;
  ttl: number;
  /** Its own deadline: a TTL after the invocation of the last keepalive it saw acknowledged. */
  deadline: number;
  nextReq: number;
  /** The acquire in progress (waiting for a grant). */
  waiting?: { req: number; since: number; lock: string; mode: LockMode };
  holding?: Holding;
  /** Ops in flight, by seq. */
  ops: Map<number, PendingOp>;
  seq: number;
  /** A paused client does nothing until then (SIGSTOP / a long GC pause). */
  pausedUntil: number;
  /** A client cut off from the cluster until then: its requests and the cluster's pushes are lost (the resource is still reachable). */
  isolatedUntil: number;
  /** Killed clients are gone until they start again with a new session. */
  generation: number;
  /** Requests it gave up (abort path) and whose release was acknowledged. */
  abandoned: { session: number; req: number; index: number }[];
}

type Timer =
  | { lk: 'step'; client: number; gen: number }
  | { lk: 'keepalive'; client: number; gen: number; session: number }
  | { lk: 'timeout'; client: number; seq: number }
  | { lk: 'land'; write: number }
  | { lk: 'write'; client: number; gen: number; req: number };

type Token = { lk: true; client: number; seq: number };

const isMine = (x: unknown): boolean => typeof x === 'object' && x !== null && 'lk' in x;

/** What one run exercised. */
export interface LockRunSummary {
  grants: number;
  mutexGrants: number;
  readGrants: number;
  writeGrants: number;
  semaphoreGrants: number;
  /** Read grants made while another session held the read side. */
  readersTogether: number;
  /** Semaphore grants that took the last free permit. */
  permitsFull: number;
  /** Writers that took the read side and released the write side. */
  downgrades: number;
  writes: number;
  accepted: number;
  refused: number;
  /** Client faults: kill -9, SIGSTOP, cut off from the cluster; waiters that gave up. */
  kills: number;
  pauses: number;
  aborts: number;
  expiries: number;
  isolations: number;
  /** Terms (of 10 time entries or more) whose leader's clock fed replicated time at least 10% fast, or slow. */
  fastTerms: number;
  slowTerms: number;
}

export class LockServiceWorkload implements Workload<ClientOp> {
  readonly timeoutTicks = 40;
  private host!: WorkloadHost;
  private readonly nodes: readonly NodeId[];
  private readonly clients: Client[] = [];
  private readonly ops: ClientOp[] = [];
  readonly writes: Write[] = [];
  /** The resource each lock guards. */
  private readonly resources: Map<string, FencedStore>;
  private readonly mix: LockMix[];
  /** Lock and mode of each request, from its acquire entry in the log, by `${session}:${req}`. */
  private readonly targets = new Map<string, Target>();
  /** Requests as the log left them (first replica to apply each entry), by `${session}:${req}`. */
  private readonly requests = new Map<string, 'waiting' | 'held'>();
  /** Sessions the log expired. */
  private readonly expiredSessions = new Set<number>();
  /** Per term: the first and the last time entry applied (leader clock ms, reference µs at application). */
  private readonly termClocks = new Map<number, { first: [number, number]; last: [number, number]; entries: number }>();
  readonly ttl: number;
  readonly lockDelay: number;
  /** Grants by log index of the grant, then by `${session}:${req}`. */
  readonly grants = new Map<string, LogGrant>();
  /** Described events of each applied index, to check that every replica decided the same. */
  private readonly decided = new Map<number, string>();
  /** Log indexes already processed for the log-level records (the first replica to apply each). */
  private readonly enqueued = new Map<string, number>();
  private readonly expiriesAt: { lock: string; index: number; now: number }[] = [];
  private readonly replicas = new Map<NodeId, LockReplica>();
  /** The last lock entry each replica applied (a replica that has not reached an entry is not judged by it). */
  private readonly appliedIndex = new Map<NodeId, number>();
  /** Per session: invocation times (µs) of the open and keepalives its client saw acknowledged, and when a replica first expired it. */
  readonly sessionLife = new Map<number, { ttl: number; acked: number[]; expiredAt?: number }>();
  private problem: string | undefined;
  private counts = { ops: 0, ok: 0, indeterminate: 0, kills: 0, pauses: 0, aborts: 0, isolations: 0, downgrades: 0 };

  constructor(o: LockServiceWorkloadOptions, init: WorkloadInit) {
    this.nodes = init.nodes;
    this.ttl = o.ttlMs ?? 500;
    this.lockDelay = o.lockDelayMs ?? 400;
    this.resources = new Map<string, FencedStore>([
      [MUTEX, o.resource?.() ?? new SimFencedResource()],
      [RWLOCK, o.resource?.() ?? new SimRwResource()],
      [SEMAPHORE, o.resource?.() ?? new SimCountResource(SEM_PERMITS)],
    ]);
    this.mix = o.locks ?? ['mutex', 'rw', 'semaphore'];
    if (this.mix.length === 0) throw new Error('locks: at least one lock kind');
    const rng = init.rng.fork('lock-service');
    for (let c = 0; c < (o.clients ?? 4); c++) {
      const r = rng.fork(`client:${c}`);
      this.clients.push({ id: c, rng: r, node: r.int(0, this.nodes.length - 1), ttl: this.ttl, deadline: 0, nextReq: 1, ops: new Map(), seq: 0, pausedUntil: 0, isolatedUntil: 0, generation: 0, abandoned: [] });
    }
  }

  get stats(): { ops: number; opsOk: number; opsIndeterminate: number } {
    return { ops: this.counts.ops, opsOk: this.counts.ok, opsIndeterminate: this.counts.indeterminate };
  }

  start(host: WorkloadHost): void {
    this.host = host;
    for (const c of this.clients) this.at(host.tickUs * (1 + c.rng.int(0, 5)), { lk: 'step', client: c.id, gen: c.generation });
  }

  private at(delay: number, t: Timer): void {
    this.host.setTimer(this.host.now() + 1 + Math.max(0, Math.round(delay)), t);
  }

  private get ms(): number {
    return 1000;
  }

  // --- the simulator's calls -------------------------------------------------------------------------------

  onTimer(timer: unknown): void {
    if (!isMine(timer)) return;
    const t = timer as Timer;
    const now = this.host.now();
    if (t.lk === 'land') return this.land(t.write);
    const c = this.clients[t.client] as Client;
    if (t.lk === 'timeout') {
      const op = c.ops.get(t.seq);
      if (op !== undefined) this.giveUp(c, op, 'timeout');
      return;
    }
    if (t.gen !== c.generation) return;
    if (now < c.pausedUntil) {
      // Paused: the timer fires once the process runs again.
      return this.host.setTimer(c.pausedUntil, t);
    }
    switch (t.lk) {
      case 'step':
        return this.step(c);
      case 'keepalive':
        if (c.session !== t.session) return;
        if (!this.believes(c)) return this.lose(c, 'deadline');
        // A grant pushed while the client could not hear it (paused, or from a node that then crashed) is
        // found again from its node's state, as a resumed subscription replays it.
        this.resume(c);
        this.send(c, { op: 'keepalive', session: t.session });
        return this.at((this.ttl * this.ms) / 5, t);
      case 'write':
        return this.writeStep(c, t.req);
    }
  }

  live(request: ClientRequest): boolean {
    const t = request.token as Token;
    return isMine(request.token) && this.clients[t.client]?.ops.has(t.seq) === true;
  }

  accepted(node: NodeId, request: ClientRequest): void {
    const t = request.token as Token;
    const op = this.clients[t.client]?.ops.get(t.seq);
    if (op !== undefined) op.acceptedBy = node;
  }

  refused(node: NodeId, request: ClientRequest, hint: NodeId | undefined): void {
    const t = request.token as Token;
    const c = this.clients[t.client] as Client;
    const h = hint === undefined ? -1 : this.nodes.indexOf(hint);
    c.node = h >= 0 && h !== c.node ? h : c.rng.int(0, this.nodes.length - 1);
    this.host.request(this.host.now() + Math.round(this.host.tickUs / 2) + c.rng.int(0, this.host.tickUs), this.nodes[c.node] as NodeId, request);
  }

  applied(node: NodeId, entry: LogEntry, result: unknown): AppliedCommand | undefined {
    const a = result as Applied | undefined;
    if (a?.replica === undefined) return undefined;
    this.replicas.set(node, a.replica);
    this.appliedIndex.set(node, entry.index);
    const events: LockEvent[] = a.out !== undefined && 'ok' in a.out ? a.out.ok.events : [];
    this.record(entry, a, events);
    // Server push: the clients listening to this node hear the events about their sessions.
    for (const c of this.clients) if (this.nodes[c.node] === node && this.host.now() >= c.isolatedUntil) this.push(c, events);
    if (a.time === true) return undefined;
    const msg = unpack(entry.data) as Extract<Envelope, { L: unknown }>;
    const [client, seq] = msg.L;
    const c = this.clients[client] as Client;
    const op = c.ops.get(seq);
    const acknowledged = op !== undefined && op.acceptedBy === node;
    if (acknowledged) this.complete(c, op, a.out as { ok: LockResult } | { error: string }, entry.index);
    return { id: `lock:${client}:${seq}`, acknowledged };
  }

  readReleased(): void {}

  crashed(node: NodeId): void {
    this.replicas.delete(node);
    this.appliedIndex.delete(node);
    for (const c of this.clients) {
      for (const op of [...c.ops.values()]) if (op.acceptedBy === node) this.giveUp(c, op, 'node-crashed');
      if (this.nodes[c.node] === node && this.nodes.length > 1) {
        // The subscription dropped: listen to another node and catch up from its state (resumption).
        c.node = (c.node + 1 + c.rng.int(0, this.nodes.length - 2)) % this.nodes.length;
        this.resume(c);
      }
    }
  }

  end(): void {
    for (const c of this.clients) {
      for (const op of c.ops.values()) {
        this.counts.indeterminate++;
        op.op.note = 'open at end';
      }
      c.ops.clear();
    }
  }

  history(): ClientOp[] {
    return this.ops;
  }

  // --- the log-level record --------------------------------------------------------------------------------

  private record(entry: LogEntry, a: Applied, events: LockEvent[]): void {
    const described = JSON.stringify(a.out ?? null);
    const seen = this.decided.get(entry.index);
    if (seen !== undefined) {
      if (seen !== described && this.problem === undefined) this.problem = `replicas decided entry ${entry.index} differently: ${seen} vs ${described}`;
      return;
    }
    this.decided.set(entry.index, described);
    const out = a.out !== undefined && 'ok' in a.out ? a.out.ok : undefined;
    if (a.clock !== undefined) {
      // Replicated time as each term's leader fed it: its clock against the reference clock (drift shows here).
      const [term, ms] = a.clock;
      const tc = this.termClocks.get(term);
      if (tc === undefined) this.termClocks.set(term, { first: [ms, this.host.now()], last: [ms, this.host.now()], entries: 1 });
      else {
        tc.last = [ms, this.host.now()];
        tc.entries++;
      }
    }
    const cmd = a.time === true ? undefined : (unpack(entry.data) as { cmd?: LockCommand }).cmd;
    if (cmd?.op === 'acquire' && out?.op === 'acquire') {
      const key = `${cmd.session}:${cmd.req}`;
      if (!this.targets.has(key)) this.targets.set(key, { lock: cmd.name, mode: cmd.mode });
      // The entry that queued a request is the first to answer `waiting` (a retry answers it again later).
      if (out.status === 'waiting' && !this.enqueued.has(key)) {
        this.enqueued.set(key, entry.index);
        this.requests.set(key, 'waiting');
      }
    }
    if (cmd?.op === 'release' && out?.op === 'release' && out.released !== 'none') this.requests.delete(`${cmd.session}:${cmd.req}`);
    const expiring: number[] = [];
    for (const e of events) {
      if (e.type === 'granted') {
        const key = `${e.session}:${e.req}`;
        if (this.expiredSessions.has(e.session) && this.problem === undefined) this.problem = `entry ${entry.index} granted ${e.name} to session ${e.session}, which expired before`;
        // The mode the client asked for (a state machine that answers another one is judged by the request).
        const g: LogGrant = { lock: e.name, mode: this.targets.get(key)?.mode ?? e.mode, session: e.session, req: e.req, token: e.token, index: entry.index, now: a.now };
        const q = this.enqueued.get(key);
        if (q !== undefined) g.queuedAt = q;
        if (!this.grants.has(key)) this.grants.set(key, g);
        this.requests.set(key, 'held');
      } else if (e.type === 'expired') {
        const life = this.sessionLife.get(e.session);
        if (life !== undefined && life.expiredAt === undefined) life.expiredAt = this.host.now();
        this.expiredSessions.add(e.session);
        expiring.push(e.session);
      } else if (e.type === 'lost' || e.type === 'released') {
        for (const g of this.grants.values()) if (g.session === e.session && g.token === e.token && g.lock === e.name && g.endedAt === undefined) g.endedAt = entry.index;
        if (e.type === 'lost') {
          this.expiriesAt.push({ lock: e.name, index: entry.index, now: a.now });
          this.requests.delete(`${e.session}:${e.req}`);
        }
      } else if (e.type === 'failed') this.requests.delete(`${e.session}:${e.req}`);
    }
    if (cmd?.op === 'close' && out?.op === 'close') expiring.push(-cmd.session);
    // A session's end (expiry, or a clean close) ends every request of it in the same entry: each waiter failed
    // (or dropped), each hold lost (or released). One left waiting would be granted to nobody, or to a dead session.
    for (const sid of expiring) {
      const session = Math.abs(sid);
      for (const [key, state] of this.requests) {
        if (!key.startsWith(`${session}:`)) continue;
        if (sid > 0 && this.problem === undefined) this.problem = `session ${session} expired at entry ${entry.index}, but its request ${key.slice(key.indexOf(':') + 1)} (${state}) was not ${state === 'waiting' ? 'failed' : 'lost'}`;
        this.requests.delete(key);
      }
    }
  }

  // --- clients -----------------------------------------------------------------------------------------------

  /** Whether the client still takes itself for alive: before its own deadline (a TTL after its last acknowledged keepalive). */
  private believes(c: Client): boolean {
    return c.session !== undefined && this.host.now() < c.deadline;
  }

  /** The client's next move when it has nothing in flight for the lock. */
  private step(c: Client): void {
    const now = this.host.now();
    if (now + this.timeoutTicks * this.host.tickUs > this.host.endTime) return;
    if (c.session === undefined) {
      if ([...c.ops.values()].some((o) => o.kind === 'open')) return;
      return this.send(c, { op: 'open', ttl: this.ttl, owner: `c${c.id}` });
    }
    if (c.waiting !== undefined || c.holding !== undefined) return;
    const req = c.nextReq++;
    const kind = c.rng.pick(this.mix);
    const target: Target = kind === 'mutex' ? { lock: MUTEX, mode: 'mutex' } : kind === 'semaphore' ? { lock: SEMAPHORE, mode: 'semaphore' } : { lock: RWLOCK, mode: c.rng.chance(0.5) ? 'read' : 'write' };
    c.waiting = { req, since: now, ...target };
    this.send(c, acquireCommand(c.session, req, target));
  }

  private send(c: Client, cmd: LockCommand): void {
    const now = this.host.now();
    c.seq++;
    const op: ClientOp = { id: this.ops.length, client: c.id, input: cmd, invoke: now, status: 'info' };
    this.ops.push(op);
    this.counts.ops++;
    c.ops.set(c.seq, { seq: c.seq, kind: cmd.op, invoke: now, op, cmd });
    if (this.nodes.length > 1 && c.rng.chance(1 / 8)) {
      c.node = c.rng.int(0, this.nodes.length - 1);
      this.resume(c);
    }
    this.host.setTimer(now + this.timeoutTicks * this.host.tickUs, { lk: 'timeout', client: c.id, seq: c.seq } satisfies Timer);
    if (now < c.isolatedUntil) return; // lost on the way: the op times out
    const data = pack({ L: [c.id, c.seq], cmd } satisfies Envelope);
    this.host.request(now + 1 + c.rng.int(0, 200), this.nodes[c.node] as NodeId, { kind: 'propose', data, token: { lk: true, client: c.id, seq: c.seq } satisfies Token });
  }

  /** An op became indeterminate: retry what must be retried (acquire and release, by the same request id). */
  private giveUp(c: Client, op: PendingOp, why: string): void {
    c.ops.delete(op.seq);
    op.op.note = why;
    this.counts.indeterminate++;
    if (this.nodes.length > 1 && c.rng.chance(0.5)) c.node = c.rng.int(0, this.nodes.length - 1);
    const cmd = op.cmd;
    if (cmd.op === 'open') return this.at(0, { lk: 'step', client: c.id, gen: c.generation });
    if (c.session === undefined || !('session' in cmd) || cmd.session !== c.session) return;
    if (cmd.op === 'acquire' && (c.waiting?.req === cmd.req || c.holding?.downgradeReq === cmd.req)) return this.send(c, cmd);
    if (cmd.op === 'release') return this.send(c, cmd);
  }

  private complete(c: Client, p: PendingOp, out: { ok: LockResult } | { error: string }, index: number): void {
    c.ops.delete(p.seq);
    const now = this.host.now();
    p.op.status = 'ok';
    p.op.complete = now;
    p.op.output = out;
    this.counts.ok++;
    if ('error' in out) {
      // The session is gone (expired): everything it had is over.
      if ('session' in p.cmd && p.cmd.session === c.session) this.lose(c, `error ${out.error}`);
      return;
    }
    const r = out.ok;
    switch (r.op) {
      case 'open':
        if (c.session !== undefined) return; // a retried open's orphan: it expires unused
        c.session = r.session;
        c.deadline = p.invoke + r.ttl * this.ms;
        this.sessionLife.set(r.session, { ttl: r.ttl, acked: [p.invoke] });
        this.at((this.ttl * this.ms) / 5, { lk: 'keepalive', client: c.id, gen: c.generation, session: r.session });
        return this.at(c.rng.int(0, 3) * this.host.tickUs, { lk: 'step', client: c.id, gen: c.generation });
      case 'keepalive':
        this.sessionLife.get(r.session)?.acked.push(p.invoke);
        if (r.session === c.session) c.deadline = Math.max(c.deadline, p.invoke + r.ttl * this.ms);
        return;
      case 'acquire':
        if (r.status === 'granted') this.onGrant(c, r.req, r.token);
        else if (r.status === 'waiting' && c.waiting?.req === r.req) {
          // Give up after a while: the abort path must take the waiter out of the queue.
          const req = r.req;
          const gen = c.generation;
          const patience = c.rng.chance(0.25) ? c.rng.int(2, 10) * this.host.tickUs : Number.POSITIVE_INFINITY;
          if (patience !== Number.POSITIVE_INFINITY) this.host.setTimer(now + patience, { lk: 'write', client: c.id, gen, req: -req } satisfies Timer);
        } else if (r.status === 'done' && c.waiting?.req === r.req) c.waiting = undefined;
        return;
      case 'release':
        if (r.released !== 'held' && p.cmd.op === 'release' && c.session === p.cmd.session) c.abandoned.push({ session: c.session, req: r.req, index });
        return this.at(c.rng.int(0, 10) * this.host.tickUs, { lk: 'step', client: c.id, gen: c.generation });
      default:
        return;
    }
  }

  /** Events pushed by the client's node about its session. */
  private push(c: Client, events: LockEvent[]): void {
    if (c.session === undefined) return;
    for (const e of events) {
      if (e.session !== c.session) continue;
      if (e.type === 'granted') this.onGrant(c, e.req, e.token);
      else if (e.type === 'lost' || e.type === 'failed' || e.type === 'expired') return this.lose(c, `pushed ${e.type}`);
    }
  }

  /** After switching nodes: what the new node knows of the request it waits on (a resumed subscription). */
  private resume(c: Client): void {
    const r = this.replicas.get(this.nodes[c.node] as NodeId);
    if (this.host.now() < c.isolatedUntil) return;
    if (r === undefined || c.session === undefined || c.waiting === undefined) return;
    const s = r.sm.query({ op: 'request', session: c.session, req: c.waiting.req }) as { status: string; token?: number } | undefined;
    if (s?.status === 'granted') this.granted(c, c.waiting.req, s.token as number);
  }

  /** A grant the client heard of (its answer or a push): its wait is over, or its downgrade's read side came. */
  private onGrant(c: Client, req: number, token: number): void {
    if (c.waiting?.req === req) return this.granted(c, req, token);
    const h = c.holding;
    if (h?.downgradeReq !== req || c.session === undefined || this.host.now() < c.pausedUntil || !this.believes(c)) return;
    // Downgrade (Curator's InterProcessReadWriteLock): holding the read side too, it releases the write side
    // and goes on as a reader under the read hold's own token.
    this.send(c, { op: 'release', session: c.session, req: h.req });
    c.holding = { req, token, lock: h.lock, mode: 'read', learnedAt: this.host.now(), writesLeft: c.rng.int(1, 6) };
    this.counts.downgrades++;
    this.at(c.rng.int(1, 4) * this.host.tickUs, { lk: 'write', client: c.id, gen: c.generation, req });
  }

  private granted(c: Client, req: number, token: number): void {
    const now = this.host.now();
    if (now < c.pausedUntil || !this.believes(c)) return;
    const w = c.waiting as NonNullable<Client['waiting']>;
    c.waiting = undefined;
    c.holding = { req, token, lock: w.lock, mode: w.mode, learnedAt: now, writesLeft: c.rng.int(1, 10) };
    this.writeStep(c, req);
  }

  /** A holder's next write, or its release once it has written enough; kills and pauses happen here too. */
  private writeStep(c: Client, req: number): void {
    const now = this.host.now();
    if (req < 0) {
      // An impatient waiter gives up: release its request (the abort path).
      if (c.waiting?.req === -req && c.session !== undefined) {
        c.waiting = undefined;
        this.counts.aborts++;
        this.send(c, { op: 'release', session: c.session, req: -req });
      }
      return;
    }
    const h = c.holding;
    if (h === undefined || h.req !== req || c.session === undefined) return;
    if (!this.believes(c)) return this.lose(c, 'deadline');
    if (c.rng.chance(0.02)) return this.kill(c);
    if (c.rng.chance(0.03)) {
      // Cut off from the cluster (not from the resource): its keepalives are lost, and it goes on writing until
      // its own deadline, while the cluster expires its session.
      c.isolatedUntil = now + c.rng.int(this.ttl / 2, this.ttl * 2) * this.ms;
      this.counts.isolations++;
      // A long job: it would write for a while yet, so it runs into its deadline.
      h.writesLeft += 20;
    }
    if (c.rng.chance(0.03)) {
      // SIGSTOP: the process stops for up to two TTLs; a write it had just issued may land after it resumes.
      c.pausedUntil = now + c.rng.int(this.ttl / 4, this.ttl * 2) * this.ms;
      this.counts.pauses++;
      this.issue(c, h, c.pausedUntil - now + c.rng.int(0, this.host.tickUs));
      return this.host.setTimer(c.pausedUntil, { lk: 'write', client: c.id, gen: c.generation, req } satisfies Timer);
    }
    if (h.writesLeft <= 0) {
      c.holding = undefined;
      // A downgrade still in flight is given up too (release is idempotent by request id: an acquire that
      // reaches the log after its release answers `done`).
      if (h.downgradeReq !== undefined) this.send(c, { op: 'release', session: c.session, req: h.downgradeReq });
      return this.send(c, { op: 'release', session: c.session, req });
    }
    h.writesLeft--;
    if (h.mode === 'write' && h.downgradeReq === undefined && c.rng.chance(0.15)) {
      // Start a downgrade: take the read side (reentrant: granted at once, ahead of any queue).
      h.downgradeReq = c.nextReq++;
      this.send(c, { op: 'acquire', session: c.session, name: h.lock, mode: 'read', req: h.downgradeReq });
    }
    // Mostly quick; sometimes a write is delayed in the network (the case fencing is for).
    this.issue(c, h, c.rng.chance(0.1) ? c.rng.int(1, this.ttl) * this.ms : c.rng.int(0, 2 * this.host.tickUs));
    this.at(c.rng.int(2, 8) * this.host.tickUs, { lk: 'write', client: c.id, gen: c.generation, req });
  }

  private issue(c: Client, h: Holding, delay: number): void {
    const now = this.host.now();
    h.lastIssue = now;
    this.writes.push({ client: c.id, lock: h.lock, read: h.mode === 'read', session: c.session as number, req: h.req, token: h.token, issued: now });
    this.at(delay, { lk: 'land', write: this.writes.length - 1 });
  }

  private land(i: number): void {
    const w = this.writes[i] as Write;
    w.landed = this.host.now();
    const r = this.resources.get(w.lock) as FencedStore;
    w.accepted = w.read && r.read !== undefined ? r.read(w.token) : r.write(w.token, `${w.session}:${w.req}`);
  }

  /** kill -9: the client stops at once, holding what it holds; a new incarnation starts later with a new session. */
  private kill(c: Client): void {
    this.counts.kills++;
    this.forget(c);
    this.at(c.rng.int(this.ttl / 2, this.ttl * 2) * this.ms, { lk: 'step', client: c.id, gen: c.generation });
  }

  /** The client learned (or decided) that its session is over: it stops using the lock and starts again. */
  private lose(c: Client, _why: string): void {
    this.forget(c);
    this.at(c.rng.int(0, 10) * this.host.tickUs, { lk: 'step', client: c.id, gen: c.generation });
  }

  private forget(c: Client): void {
    c.generation++;
    c.session = undefined;
    c.waiting = undefined;
    c.holding = undefined;
    c.ops.clear();
  }

  // --- the end-of-run checks -------------------------------------------------------------------------------

  /** What the checks found, or undefined. */
  check(): string | undefined {
    if (this.problem !== undefined) return this.problem;
    for (const lock of [MUTEX, RWLOCK, SEMAPHORE]) {
      const p = this.checkLock(lock);
      if (p !== undefined) return p;
    }
    // 6. No session expired sooner than its TTL of the fastest clock after the invocation of an open or keepalive
    // its client saw acknowledged (less one time-entry interval: the renewal counts from the time entry before
    // it). Expiry from a clock of the state machine's own, or a broken clamp, shows here.
    const slackUs = TIME_ENTRY_SLACK_TICKS * this.host.tickUs;
    for (const [id, life] of this.sessionLife) {
      if (life.expiredAt === undefined) continue;
      const minUs = (life.ttl * this.ms) / MAX_CLOCK_RATE - slackUs;
      for (const at of life.acked) {
        if (life.expiredAt - at < minUs) return `session ${id} (ttl ${life.ttl} ms) expired at ${life.expiredAt} µs, ${life.expiredAt - at} µs after an acknowledged keepalive invoked at ${at} µs (at least ${Math.round(minUs)} µs expected)`;
      }
    }
    // 7. Every abort path removed its waiter: no replica that applied the release still holds the request (a
    // replica still behind the release's entry at the end of the run, catching up, is not judged by it).
    for (const c of this.clients) {
      for (const x of c.abandoned) {
        for (const [node, r] of this.replicas) {
          if ((this.appliedIndex.get(node) ?? 0) < x.index) continue;
          const s = r.sm.query({ op: 'request', session: x.session, req: x.req }) as { status: string } | undefined;
          if (s !== undefined && s.status !== 'done') return `client c${c.id} gave up request ${x.req} of session ${x.session}, but ${node} still has it ${s.status}`;
        }
      }
    }
    return undefined;
  }

  /** Checks 1-5 for one lock: the log's grants, fairness, lock-delay, the resource, holders in time. */
  private checkLock(lock: string): string | undefined {
    const permits = lock === SEMAPHORE ? SEM_PERMITS : 1;
    const grants = [...this.grants.values()].filter((g) => g.lock === lock).sort((a, b) => a.index - b.index);
    const end = (g: LogGrant) => g.endedAt ?? Number.POSITIVE_INFINITY;
    const holdsAt = (session: number, index: number) => grants.some((h) => h.session === session && h.index < index && end(h) > index);
    // 1. The log. Tokens of new holds grow with the entry of the grant (readers granted together by one entry
    // share it; a session that already holds the lock may reenter it under the token it has).
    const fresh = grants.filter((g) => !holdsAt(g.session, g.index));
    for (let i = 1; i < fresh.length; i++) {
      const prev = fresh[i - 1] as LogGrant;
      const g = fresh[i] as LogGrant;
      if (g.index > prev.index && g.token <= prev.token) return `fencing token not increasing: ${describeGrant(g)} after ${describeGrant(prev)}`;
    }
    // Exclusion: a mutex or a writer has no other session beside it; a semaphore has at most `permits` holds.
    for (let i = 0; i < grants.length; i++) {
      const g = grants[i] as LogGrant;
      if (g.mode === 'semaphore') {
        const live = grants.filter((h) => h.index <= g.index && end(h) > g.index);
        if (live.length > permits) return `${live.length} holders of the ${permits}-permit semaphore at once in the log at entry ${g.index}: ${live.map(describeGrant).join('; ')}`;
        continue;
      }
      const exclusive = g.mode === 'mutex' || g.mode === 'write';
      for (let j = i + 1; j < grants.length; j++) {
        const h = grants[j] as LogGrant;
        if (h.index >= end(g)) continue;
        if (h.session === g.session && g.mode !== 'mutex') continue; // a downgrade: the writer takes the read side
        if (exclusive || h.mode === 'write' || h.mode === 'mutex') return `two holders at once in the log: ${describeGrant(g)} still held when ${describeGrant(h)} was granted`;
      }
    }
    // 2. Fairness: waiters are granted in the order of the entries that queued them (each lock its own queue).
    const queued = grants.filter((g) => g.queuedAt !== undefined);
    for (let i = 1; i < queued.length; i++) {
      const a = queued[i - 1] as LogGrant;
      const b = queued[i] as LogGrant;
      if ((b.queuedAt as number) < (a.queuedAt as number)) return `FIFO broken: ${describeGrant(b)} (queued at ${b.queuedAt}) granted after ${describeGrant(a)} (queued at ${a.queuedAt})`;
    }
    // 3. Lock-delay: after an expiry took a hold of the lock, no grant for lockDelay ms of replicated time (but a
    // session that holds the lock may take it again: a downgrade's read side).
    for (const x of this.expiriesAt) {
      if (x.lock !== lock) continue;
      const next = grants.find((g) => g.index >= x.index && !holdsAt(g.session, g.index));
      if (next !== undefined && next.now < x.now + this.lockDelay) return `lock-delay broken: ${lock} was lost by expiry at entry ${x.index} (time ${x.now} ms) and granted at entry ${next.index} (time ${next.now} ms)`;
    }
    // 4. The resource.
    const accepted = this.writes.filter((w) => w.lock === lock && w.accepted === true).sort((a, b) => (a.landed as number) - (b.landed as number));
    const grantOf: LogGrant[] = [];
    for (const w of accepted) {
      const g = this.grants.get(`${w.session}:${w.req}`);
      if (g === undefined) return `a write with token ${w.token} by client c${w.client} was accepted, but the log never granted session ${w.session} request ${w.req}`;
      grantOf.push(g);
    }
    const problem = lock === SEMAPHORE ? checkCountedResource(accepted, grantOf, permits) : checkExclusiveResource(accepted, grantOf);
    if (problem !== undefined) return problem;
    // 5. Holders in time (no fencing): a client believes it holds from the push of its grant to its last write;
    // lock-delay and the client's own TTL deadline keep those intervals apart (a semaphore: at most `permits`).
    const spans = new Map<string, Span>();
    for (const w of this.writes) {
      if (w.lock !== lock) continue;
      const k = `${w.session}:${w.req}`;
      const s = spans.get(k);
      if (s === undefined) spans.set(k, { key: k, from: w.issued, to: w.issued, client: w.client, session: w.session, shared: w.read || lock === SEMAPHORE });
      else s.to = Math.max(s.to, w.issued);
    }
    return checkSpans([...spans.values()].sort((a, b) => a.from - b.from), permits);
  }

  /** What the run exercised (the tests require each to happen across a few seeds). */
  summary(): LockRunSummary {
    const grants = [...this.grants.values()];
    const end = (g: LogGrant) => g.endedAt ?? Number.POSITIVE_INFINITY;
    const together = (mode: LockMode, n: number) => grants.filter((g) => g.mode === mode && grants.filter((h) => h.mode === mode && h.session !== g.session && h.index <= g.index && end(h) > g.index).length + 1 >= n).length;
    let fastTerms = 0;
    let slowTerms = 0;
    for (const tc of this.termClocks.values()) {
      const refMs = (tc.last[1] - tc.first[1]) / this.ms;
      if (tc.entries < 10 || refMs <= 0) continue;
      const rate = (tc.last[0] - tc.first[0]) / refMs;
      if (rate >= 1.1) fastTerms++;
      else if (rate <= 0.9) slowTerms++;
    }
    return {
      grants: grants.length,
      mutexGrants: grants.filter((g) => g.mode === 'mutex').length,
      readGrants: grants.filter((g) => g.mode === 'read').length,
      writeGrants: grants.filter((g) => g.mode === 'write').length,
      semaphoreGrants: grants.filter((g) => g.mode === 'semaphore').length,
      readersTogether: together('read', 2),
      permitsFull: together('semaphore', SEM_PERMITS),
      downgrades: this.counts.downgrades,
      writes: this.writes.length,
      accepted: this.writes.filter((w) => w.accepted === true).length,
      refused: this.writes.filter((w) => w.accepted === false).length,
      kills: this.counts.kills,
      pauses: this.counts.pauses,
      aborts: this.counts.aborts,
      expiries: this.expiriesAt.length,
      isolations: this.counts.isolations,
      fastTerms,
      slowTerms,
    };
  }
}

function acquireCommand(session: number, req: number, t: Target): LockCommand {
  return t.mode === 'semaphore' ? { op: 'acquire', session, name: t.lock, mode: t.mode, req, permits: SEM_PERMITS } : { op: 'acquire', session, name: t.lock, mode: t.mode, req };
}

interface Span {
  key: string;
  from: number;
  to: number;
  client: number;
  session: number;
  /** A reader's or a semaphore holder's: others like it may run beside it. */
  shared: boolean;
}

/**
 * Accepted writes of a mutex or a read/write lock, in landing order, with their grants: a write hold's accepted
 * accesses form a run no other session's accepted access lands inside (overlap), and no access is accepted after
 * an accepted write of a higher token, nor a write after an accepted read of a higher token (stale token). By
 * token, not by the grant's entry: a session that reenters a hold it still has (its release not yet applied)
 * is granted again under the hold's token, and a late write of the first request is no staler than the hold.
 */
export function checkExclusiveResource(accepted: Write[], grantOf: LogGrant[]): string | undefined {
  let laterWrite: LogGrant | undefined;
  let laterAny: LogGrant | undefined;
  const last = new Map<LogGrant, number>();
  for (let i = 0; i < accepted.length; i++) last.set(grantOf[i] as LogGrant, i);
  let open: { g: LogGrant; until: number } | undefined;
  for (let i = 0; i < accepted.length; i++) {
    const w = accepted[i] as Write;
    const g = grantOf[i] as LogGrant;
    if (open !== undefined && i > open.until) open = undefined;
    if (laterWrite !== undefined && laterWrite.token > g.token) return `stale-token write accepted: client c${w.client}'s ${w.read ? 'read' : 'write'} with token ${w.token} of ${describeGrant(g)} at ${w.landed} µs after a write of the later ${describeGrant(laterWrite)}`;
    if (!w.read && laterAny !== undefined && laterAny.token > g.token) return `stale-token write accepted: client c${w.client}'s write with token ${w.token} of ${describeGrant(g)} at ${w.landed} µs after an access of the later ${describeGrant(laterAny)}`;
    if (open !== undefined && open.g.session !== g.session) return `overlapping fenced writes: client c${w.client}'s ${w.read ? 'read' : 'write'} with token ${w.token} (${describeGrant(g)}) was accepted at ${w.landed} µs among the writes of ${describeGrant(open.g)}`;
    if (!w.read && (open === undefined || (last.get(g) as number) > open.until)) open = { g, until: last.get(g) as number };
    if (!w.read && (laterWrite === undefined || g.token > laterWrite.token)) laterWrite = g;
    if (laterAny === undefined || g.token > laterAny.token) laterAny = g;
  }
  return undefined;
}

/**
 * Accepted writes of a semaphore of `permits`, in landing order: at most `permits` holds active at the resource at
 * once (a hold is active from its first accepted write to its last), and no write accepted after writes of
 * `permits` other grants of the same entry or later (the rule of `SimCountResource`: such a hold was overtaken).
 */
export function checkCountedResource(accepted: Write[], grantOf: LogGrant[], permits: number): string | undefined {
  const first = new Map<LogGrant, number>();
  const last = new Map<LogGrant, number>();
  grantOf.forEach((g, i) => {
    if (!first.has(g)) first.set(g, i);
    last.set(g, i);
  });
  const seen = new Set<LogGrant>();
  for (let i = 0; i < accepted.length; i++) {
    const w = accepted[i] as Write;
    const g = grantOf[i] as LogGrant;
    const active = [...first.keys()].filter((h) => (first.get(h) as number) <= i && (last.get(h) as number) >= i);
    if (active.length > permits) return `overlapping fenced writes: ${active.length} holds of the ${permits}-permit semaphore active at the resource at ${w.landed} µs: ${active.map(describeGrant).join('; ')}`;
    const later = [...seen].filter((h) => h !== g && h.index >= g.index);
    if (later.length >= permits) return `stale-token write accepted: client c${w.client}'s write with token ${w.token} of ${describeGrant(g)} at ${w.landed} µs after writes of ${later.length} other grants of the ${permits}-permit semaphore at the same entry or later`;
    seen.add(g);
  }
  return undefined;
}

/** Holders in time: an exclusive span overlaps no other session's span; at most `permits` shared spans at once. */
function checkSpans(list: Span[], permits: number): string | undefined {
  for (let i = 0; i < list.length; i++) {
    const a = list[i] as Span;
    const beside: Span[] = [];
    for (let j = i + 1; j < list.length; j++) {
      const b = list[j] as Span;
      if (b.from > a.to) break;
      if (b.session === a.session) continue;
      if (!a.shared || !b.shared) return `holders overlapping in time: c${a.client} (${a.key}) wrote until ${a.to} µs, c${b.client} (${b.key}) from ${b.from} µs`;
      beside.push(b);
    }
    if (permits > 1) {
      // Shared spans starting within `a`: at each start, count those still running (with `a`).
      for (const b of beside) {
        const running = 1 + beside.filter((x) => x.from <= b.from && x.to >= b.from).length;
        if (running > permits) return `holders overlapping in time: ${running} holders of ${permits} permits at ${b.from} µs (c${a.client} ${a.key} among them)`;
      }
    }
  }
  return undefined;
}

function describeGrant(g: LogGrant): string {
  return `grant of ${g.lock} (${g.mode}) to session ${g.session} request ${g.req} (token ${g.token}, entry ${g.index}${g.endedAt === undefined ? ', never ended' : `, ended at ${g.endedAt}`})`;
}

/** Simulate options for the lock service: the workload, the replicas' state machine and the mutual-exclusion checker. */
export function lockServiceSimulation(
  options: LockServiceWorkloadOptions & { replica?: (o: LockStateMachineOptions) => LockReplica } = {},
): Pick<SimulateOptions<ClientOp>, 'workload' | 'stateMachine' | 'checker'> & { last(): LockServiceWorkload | undefined } {
  let current: LockServiceWorkload | undefined;
  const smOptions: LockStateMachineOptions = { minSessionTtlMs: 100, lockDelayMs: options.lockDelayMs ?? 400 };
  const checker: HistoryChecker<ClientOp> = {
    name: 'mutual-exclusion',
    check(history): HistoryVerdict<ClientOp> {
      const problem = current?.check();
      if (problem !== undefined) return { result: 'illegal', checkedOps: history.length, message: problem, ops: [] };
      return { result: 'ok', checkedOps: history.length };
    },
  };
  return {
    workload: (init) => (current = new LockServiceWorkload(options, init)),
    stateMachine: () => options.replica?.(smOptions) ?? new LockReplica(smOptions),
    checker,
    last: () => current,
  };
}
