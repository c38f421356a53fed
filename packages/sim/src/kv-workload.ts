import { pack, unpack } from 'msgpackr';
import { ConfigError, type LogEntry, type NodeId } from '@consensus-kit/core';
import { describeInput, describeOp, type History, type HistoryOp, type KvInput, type KvOutput } from './history';
import { decodeCommand, encodeCommand } from './kv-state-machine';
import type { Rng } from './rng';
import type { SimStateMachine } from './sim-state-machine';
import type { AppliedCommand, ClientRequest, ClientSteer, Workload, WorkloadHost, WorkloadInit } from './workload';

/** The default workload's settings. */
export interface WorkloadOptions {
  /** Concurrent clients, each with one operation outstanding at a time. Default 3; 0 disables the workload. */
  clients?: number;
  /** Keys for put/get/cas. Default 3. */
  keys?: number;
  /** Keys for appends (read back whole, which reveals the order of appends). Default 1. */
  listKeys?: number;
  /** Ticks after which an operation that has not completed is recorded as indeterminate. Default 40. */
  timeoutTicks?: number;
  /** Ticks a client waits between operations, drawn uniformly. Default [0, 3]. */
  thinkTicks?: [number, number];
  /** Relative weights of the operation kinds. Default { put: 3, get: 4, cas: 2, append: 2 }. */
  mix?: Partial<Record<KvInput['f'], number>>;
}

interface Client {
  id: number;
  target: number;
  op: HistoryOp | undefined;
  /** The replica that accepted the current op (it completes when that replica applies or answers it). */
  acceptedBy: NodeId | undefined;
  seq: number;
  rng: Rng;
  lastSeen: Map<string, string>;
  /** A reader bound to this node (`ClientSteer.readers`): gets only, never follows a hint. */
  boundTo?: NodeId;
  /** A bound reader issues ops only while a scenario wants it. */
  active: boolean;
  /** A timer for this client's next op is set. */
  waiting: boolean;
}

type Timer = { k: 'client'; client: number } | { k: 'timeout'; client: number; op: number };
/** What travels with a request: which op of which client. */
interface Token {
  client: number;
  op: number;
}

/**
 * The default workload: clients issue put / get / cas on a few keys and appends to list keys (reading a list
 * reveals the order of appends) through `propose` and `readIndex`, following `NotLeaderError` hints. Commands
 * carry client id + op id, so the log maps back to the history. An op that times out, or whose replica
 * crashed, is indeterminate, never failed. Checked by `linearizabilityChecker()`.
 */
export function kvWorkload(options: WorkloadOptions = {}): (init: WorkloadInit) => Workload<HistoryOp> {
  return (init) => new KvWorkload(options, init);
}

export class KvWorkload implements Workload<HistoryOp> {
  readonly timeoutTicks: number;
  readonly stats = { ops: 0, opsOk: 0, opsIndeterminate: 0 };
  private readonly clients: Client[] = [];
  private readonly ops: History = [];
  private readonly keys: string[];
  private readonly listKeys: string[];
  private readonly mix: [KvInput['f'], number][];
  private readonly thinkTicks: [number, number];
  private readonly nodes: readonly NodeId[];
  private readonly rng: Rng;
  /** Nodes the roaming clients cannot reach now (`steer`). */
  private unreachable = new Set<NodeId>();
  /** The bound readers made so far, by node (made at the first `steer` that names the node). */
  private readonly readers = new Map<NodeId, Client>();
  private host!: WorkloadHost;

  constructor(w: WorkloadOptions, init: WorkloadInit) {
    this.nodes = init.nodes;
    this.rng = init.rng;
    const clients = nonNegativeInt(w.clients ?? 3, 'workload.clients');
    this.keys = Array.from({ length: nonNegativeInt(w.keys ?? 3, 'workload.keys') }, (_, i) => `k${i}`);
    this.listKeys = Array.from({ length: nonNegativeInt(w.listKeys ?? 1, 'workload.listKeys') }, (_, i) => `l${i}`);
    this.timeoutTicks = nonNegativeInt(w.timeoutTicks ?? 40, 'workload.timeoutTicks');
    if (this.timeoutTicks === 0) throw new ConfigError('workload.timeoutTicks must be a positive integer, got 0');
    this.thinkTicks = w.thinkTicks ?? [0, 3];
    if (!Array.isArray(this.thinkTicks) || !(this.thinkTicks[0] >= 0) || !(this.thinkTicks[1] >= this.thinkTicks[0])) {
      throw new ConfigError('workload.thinkTicks must be [min, max] with 0 <= min <= max');
    }
    const mix = { put: 3, get: 4, cas: 2, append: 2, ...(w.mix ?? {}) };
    if (this.keys.length === 0) mix.put = mix.cas = 0;
    if (this.listKeys.length === 0) mix.append = 0;
    if (this.keys.length === 0 && this.listKeys.length === 0) mix.get = 0;
    this.mix = (Object.entries(mix) as [KvInput['f'], number][]).filter(([, v]) => {
      if (typeof v !== 'number' || !(v >= 0)) throw new ConfigError('workload.mix weights must be non-negative numbers');
      return v > 0;
    });
    if (clients > 0 && this.mix.length === 0) throw new ConfigError('the workload has clients but no operation it can issue (check keys, listKeys and mix)');
    for (let c = 0; c < clients; c++) {
      const crng = init.rng.fork(`client:${c}`);
      this.clients.push({ id: c, target: crng.int(0, this.nodes.length - 1), op: undefined, acceptedBy: undefined, seq: 0, rng: crng, lastSeen: new Map(), active: true, waiting: false });
    }
  }

  start(host: WorkloadHost): void {
    this.host = host;
    for (const c of this.clients) {
      c.waiting = true;
      host.setTimer(host.tickUs + c.rng.int(0, host.tickUs), { k: 'client', client: c.id } satisfies Timer);
    }
  }

  onTimer(timer: unknown): void {
    const t = timer as Timer;
    const c = this.clients[t.client] as Client;
    if (t.k === 'client') {
      c.waiting = false;
      return this.startOp(c);
    }
    if (c.op !== undefined && c.op.id === t.op) {
      this.indeterminate(c, 'timeout');
      if (c.boundTo !== undefined) return;
      // Client failover, as etcd's client does: half the time the next op goes to another replica, so clients
      // leave a leader that is cut off or stalled and find the new one while the old one may still act.
      if (this.nodes.length > 1 && c.rng.chance(0.5)) c.target = (c.target + c.rng.int(1, this.nodes.length - 1)) % this.nodes.length;
    }
  }

  live(request: ClientRequest): boolean {
    const t = request.token as Token;
    const op = this.clients[t.client]?.op;
    return op !== undefined && op.id === t.op;
  }

  accepted(node: NodeId, request: ClientRequest): void {
    const t = request.token as Token;
    (this.clients[t.client] as Client).acceptedBy = node;
    if (this.host.tracing) this.host.trace({ ev: 'accepted', node, op: t.op, client: t.client });
  }

  /** The op was refused without effect: try another node (the hinted leader when there is one). */
  refused(_node: NodeId, request: ClientRequest, hint: NodeId | undefined): void {
    const c = this.clients[(request.token as Token).client] as Client;
    if (c.boundTo === undefined) {
      const h = hint === undefined || this.unreachable.has(hint) ? -1 : this.nodes.indexOf(hint);
      c.target = h >= 0 && h !== c.target ? h : this.reachableTarget(c);
    }
    const at = this.host.now() + Math.round(this.host.tickUs / 2) + c.rng.int(0, this.host.tickUs);
    this.host.request(at, this.nodes[c.target] as NodeId, request);
  }

  applied(node: NodeId, entry: LogEntry, result: unknown): AppliedCommand | undefined {
    let cmd;
    try {
      cmd = decodeCommand(entry.data);
    } catch {
      return undefined; // not one of ours (a protocol may append its own commands)
    }
    const c = this.clients[cmd.c];
    const acknowledged = c?.op !== undefined && c.op.id === cmd.o && c.acceptedBy === node;
    if (acknowledged) this.finish(c, result as KvOutput, node);
    return { id: `${cmd.c}:${cmd.o}`, acknowledged };
  }

  readReleased(node: NodeId, ctxBytes: Uint8Array, sm: SimStateMachine): void {
    let ctx: unknown;
    try {
      ctx = unpack(ctxBytes);
    } catch {
      return;
    }
    if (!Array.isArray(ctx)) return;
    const c = this.clients[ctx[0] as number];
    if (c?.op !== undefined && c.op.id === ctx[1] && c.acceptedBy === node && c.op.input.f === 'get') {
      this.finish(c, { value: sm.query(c.op.input.key) as string | null }, node);
    }
  }

  steer(st: ClientSteer): void {
    this.unreachable = new Set(st.unreachable.filter((n) => this.nodes.includes(n)));
    if (this.unreachable.size >= this.nodes.length) this.unreachable.clear();
    for (const c of this.clients) {
      if (c.boundTo !== undefined) {
        const want = st.readers.includes(c.boundTo);
        c.active = want;
        if (want && c.op === undefined && !c.waiting) this.nextOp(c);
        continue;
      }
      if (!this.unreachable.has(this.nodes[c.target] as NodeId) && (c.acceptedBy === undefined || !this.unreachable.has(c.acceptedBy))) continue;
      // This client is on the other side now: what it waited for there is lost to it (indeterminate).
      if (c.op !== undefined) this.indeterminate(c, 'client-cut-off');
      c.target = this.reachableTarget(c);
    }
    for (const node of st.readers) {
      if (!this.nodes.includes(node) || this.readers.has(node)) continue;
      const id = this.clients.length;
      const c: Client = { id, target: this.nodes.indexOf(node), op: undefined, acceptedBy: undefined, seq: 0, rng: this.rng.fork(`reader:${node}`), lastSeen: new Map(), boundTo: node, active: true, waiting: false };
      this.clients.push(c);
      this.readers.set(node, c);
      this.nextOp(c);
    }
  }

  /** A node this roaming client can reach: its target if it still can, else one at random. */
  private reachableTarget(c: Client): number {
    if (this.unreachable.size === 0) return c.rng.int(0, this.nodes.length - 1);
    const ok = this.nodes.map((_, i) => i).filter((i) => !this.unreachable.has(this.nodes[i] as NodeId));
    if (ok.includes(c.target) && c.rng.chance(0.5)) return c.target;
    return c.rng.pick(ok.length > 0 ? ok : this.nodes.map((_, i) => i));
  }

  crashed(node: NodeId): void {
    for (const c of this.clients) if (c.op !== undefined && c.acceptedBy === node) this.indeterminate(c, `leader-crashed:${node}`);
  }

  end(): void {
    for (const c of this.clients) if (c.op !== undefined) this.indeterminate(c, 'run-ended');
  }

  history(): History {
    return this.ops;
  }

  private startOp(c: Client): void {
    if (c.op !== undefined || !c.active) return;
    const now = this.host.now();
    const timeoutUs = this.timeoutTicks * this.host.tickUs;
    if (now + timeoutUs > this.host.endTime) return; // every op gets its full timeout before the end
    // A third of the ops go to a replica picked at random (etcd's client balances requests over its endpoints);
    // the others to the replica that last served this client. A refused op follows the leader hint.
    if (c.boundTo === undefined) {
      if (this.nodes.length > 1 && c.rng.chance(1 / 3)) c.target = c.rng.int(0, this.nodes.length - 1);
      if (this.unreachable.has(this.nodes[c.target] as NodeId)) c.target = this.reachableTarget(c);
    }
    const f = c.boundTo !== undefined ? 'get' : weighted(c.rng, this.mix);
    const value = `v${c.id}.${c.seq}`;
    let input: KvInput;
    if (f === 'append') input = { f, key: c.rng.pick(this.listKeys), value };
    else if (f === 'get') input = { f, key: c.rng.pick(c.rng.chance(this.listKeys.length / (this.keys.length + this.listKeys.length)) ? this.listKeys : this.keys.length > 0 ? this.keys : this.listKeys) };
    else if (f === 'put') input = { f, key: c.rng.pick(this.keys), value };
    else {
      const key = c.rng.pick(this.keys);
      input = { f: 'cas', key, from: c.lastSeen.get(key) ?? null, to: value };
    }
    c.seq++;
    const op: HistoryOp = { id: this.ops.length, client: c.id, input, invoke: now, status: 'info' };
    this.ops.push(op);
    this.stats.ops++;
    c.op = op;
    c.acceptedBy = undefined;
    if (this.host.tracing) this.host.trace({ ev: 'invoke', client: c.id, op: op.id, input: describeInput(input), node: this.nodes[c.target] });
    this.host.setTimer(now + timeoutUs, { k: 'timeout', client: c.id, op: op.id } satisfies Timer);
    const token: Token = { client: c.id, op: op.id };
    const request: ClientRequest =
      input.f === 'get' ? { kind: 'read', ctx: pack([c.id, op.id]), token } : { kind: 'propose', data: encodeCommand({ c: c.id, o: op.id, in: input }), token };
    this.host.request(now + 1 + c.rng.int(0, 200), this.nodes[c.target] as NodeId, request);
  }

  private finish(c: Client, output: KvOutput, node: NodeId): void {
    const op = c.op as HistoryOp;
    op.status = 'ok';
    op.complete = this.host.now();
    op.output = output;
    op.note = `served by ${node}`;
    if (output && 'value' in output && output.value !== null) c.lastSeen.set(op.input.key, output.value);
    if (op.input.f === 'put' || (op.input.f === 'cas' && output && 'swapped' in output && output.swapped)) c.lastSeen.set(op.input.key, op.input.f === 'put' ? op.input.value : op.input.to);
    this.stats.opsOk++;
    if (this.host.tracing) this.host.trace({ ev: 'complete', op: describeOp(op) });
    this.nextOp(c);
  }

  private indeterminate(c: Client, why: string): void {
    const op = c.op as HistoryOp;
    op.status = 'info';
    op.note = why;
    this.stats.opsIndeterminate++;
    if (this.host.tracing) this.host.trace({ ev: 'indeterminate', op: describeOp(op) });
    this.nextOp(c);
  }

  private nextOp(c: Client): void {
    c.op = undefined;
    c.acceptedBy = undefined;
    const tickUs = this.host.tickUs;
    // A bound reader asks again within a tick: it is there to catch a stale leader in the act.
    const think = c.boundTo !== undefined ? c.rng.int(0, tickUs) : c.rng.int(Math.round(this.thinkTicks[0] * tickUs), Math.round(this.thinkTicks[1] * tickUs));
    c.waiting = true;
    this.host.setTimer(this.host.now() + 1 + think, { k: 'client', client: c.id } satisfies Timer);
  }
}

function weighted<T>(rng: Rng, items: readonly [T, number][]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [v, w] of items) {
    x -= w;
    if (x < 0) return v;
  }
  return (items[items.length - 1] as [T, number])[0];
}

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ConfigError(`${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}
