import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Envelope, NodeId, Status, Storage, Transport } from '@consensus-kit/core';
import { UI_LOG_TAIL, type UiEventKind, type UiLogEntry } from '@consensus-kit/ui';

/**
 * What one node tells the visualizer (`GET /ui?since=<seq>` on its http server, #23): its status, the tail of its
 * log, what it sent to each peer, a sample of its messages and what happened to it. The live source of
 * `consensus-cli ui` (ui-live.ts) polls every node for it and draws the cluster from the answers.
 *
 * The observer sits on the node's peer traffic, so it must cost nothing a benchmark can measure: per message it
 * increments a counter on an object looked up by peer and compares one window number; only the few messages it
 * samples (at most `samplesPerWindow` per link per `windowMs`) allocate anything.
 */

/** One sampled peer message; `seq` orders it among the node's messages and events. */
export interface ObservedMessage {
  seq: number;
  from: NodeId;
  to: NodeId;
  /** The protocol's own message type (`AppendEntries`, `Prepare`, `PROPOSAL`, ...), read without encoding it. */
  type: string;
  /** Milliseconds since the epoch. */
  at: number;
  /**
   * `'partitioned'` when the node sent it on a link its fault switch cuts (`consensus-cli partition`): sampled
   * here before the transport drops it, it never arrives.
   */
  dropped?: string;
}

/** Something that happened to the node: an election, a new leader, a membership change, a snapshot, a partition. */
export interface ObservedEvent {
  seq: number;
  at: number;
  kind: UiEventKind;
  text: string;
}

/** Peer messages this node sent to and received from one peer since it started. */
export interface PeerCounters {
  sent: number;
  received: number;
}

/** The answer to `GET /ui?since=<seq>`. */
export interface NodeUiAnswer {
  id: NodeId;
  /** The node's process. */
  pid: number;
  status: Status;
  /** The last entries of the log (at most `UI_LOG_TAIL`), oldest first; none below `firstIndex`. */
  log: UiLogEntry[];
  firstIndex: number;
  /** The index of the latest snapshot (0 without one). */
  snapshotIndex: number;
  /** Peers this node is cut off from, in either direction (`consensus-cli partition`). */
  partitioned: NodeId[];
  /** The same, by direction. */
  blocked: { outbound: NodeId[]; inbound: NodeId[] };
  peers: Record<NodeId, PeerCounters>;
  /** Sampled messages with `seq > since`, oldest first (the ring keeps the latest `ringSize`). */
  messages: ObservedMessage[];
  /** Events with `seq > since`, oldest first (the latest `eventLimit` are kept). */
  events: ObservedEvent[];
  /** The latest seq handed out: ask with `since=<seq>` next time. */
  seq: number;
  /** Milliseconds since the epoch, when the answer was made. */
  at: number;
}

/** The parts of a node the observer reads. */
export interface ObservedNode {
  status(): Status;
  on(event: 'leader', listener: (leader: NodeId | undefined, term: number) => void): unknown;
  on(event: 'role', listener: (role: Status['role'], term: number) => void): unknown;
  on(event: 'snapshot', listener: (index: number) => void): unknown;
  on(event: 'status', listener: (status: Status) => void): unknown;
}

/** The parts of storage the observer reads. */
export type ObservedStorage = Pick<Storage, 'entries' | 'term' | 'firstIndex' | 'lastIndex' | 'snapshot'>;

/**
 * The most entry bytes one `/ui` answer reads from storage for the types of the log tail (1 MiB): 48 large
 * entries (a kv value may be 4 MiB) would otherwise be read from disk, five times a second, when not cached.
 */
export const LOG_READ_BYTES = 1024 * 1024;

/** The transport's fault switch (transport-tcp's `FaultControl`): what is blocked now. */
export interface ObservedFaults {
  blocked(): { outbound: NodeId[]; inbound: NodeId[] };
}

export interface NodeObserverOptions {
  id: NodeId;
  /** Sampling window (default 100 ms). */
  windowMs?: number;
  /** Messages sampled per link and direction per window (default 2). */
  samplesPerWindow?: number;
  /** Sampled messages kept (default 512). */
  ringSize?: number;
  /** Events kept (default 256). */
  eventLimit?: number;
  /** Log entries in an answer (default `UI_LOG_TAIL`). */
  logTail?: number;
  /** Milliseconds since the epoch (default `Date.now`); read only for sampled messages and events. */
  now?: () => number;
  /**
   * Advance the sampling window by a timer (default true). Off in tests, which call `nextWindow()` themselves.
   */
  timer?: boolean;
}

/** Per-peer state, one object per peer: counters and the sampling windows of both directions. */
interface PeerState {
  sent: number;
  received: number;
  sentWindow: number;
  sentSampled: number;
  receivedWindow: number;
  receivedSampled: number;
}

/** A bad `since`: the http answer is 400 with this message. */
export class BadSinceError extends Error {
  constructor(raw: string) {
    super(`since must be a non-negative integer, not ${JSON.stringify(raw.slice(0, 40))}`);
    this.name = 'BadSinceError';
  }
}

export class NodeObserver {
  readonly id: NodeId;
  private readonly samplesPerWindow: number;
  private readonly ringSize: number;
  private readonly eventLimit: number;
  private readonly logTail: number;
  private readonly now: () => number;
  private readonly peers = new Map<NodeId, PeerState>();
  /** The sampling window: advanced every `windowMs` by the timer (or by the test). */
  private window = 1;
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private readonly ring: (ObservedMessage | undefined)[];
  private ringNext = 0;
  private readonly events: ObservedEvent[] = [];
  private seq = 0;
  private node: ObservedNode | undefined;
  private storage: ObservedStorage | undefined;
  private faults: ObservedFaults | undefined;
  private snapshotIndex = 0;
  private configKey: string | undefined;

  constructor(options: NodeObserverOptions) {
    this.id = options.id;
    this.samplesPerWindow = positive(options.samplesPerWindow ?? 2, 'samplesPerWindow');
    this.ringSize = positive(options.ringSize ?? 512, 'ringSize');
    this.eventLimit = positive(options.eventLimit ?? 256, 'eventLimit');
    this.logTail = positive(options.logTail ?? UI_LOG_TAIL, 'logTail');
    this.now = options.now ?? Date.now;
    this.ring = new Array<ObservedMessage | undefined>(this.ringSize).fill(undefined);
    if (options.timer !== false) {
      this.timer = setInterval(() => this.nextWindow(), positive(options.windowMs ?? 100, 'windowMs'));
      this.timer.unref();
    }
  }

  /** Starts a new sampling window: each link may have `samplesPerWindow` messages sampled again. */
  nextWindow(): void {
    this.window++;
  }

  /** The transport as the node sees it: the same, counting (and sampling) every envelope each way. */
  watchTransport(transport: Transport): Transport {
    return {
      start: (handler) =>
        transport.start({
          ...handler,
          deliver: (envelope) => {
            this.received(envelope);
            handler.deliver(envelope);
          },
        }),
      send: (envelopes) => {
        for (let i = 0; i < envelopes.length; i++) this.sent(envelopes[i] as Envelope);
        transport.send(envelopes);
      },
      stop: () => {
        this.close();
        return transport.stop();
      },
    };
  }

  /** Reads the node, its storage and its fault switch from now on; call once the node has started. */
  attach(parts: { node: ObservedNode; storage: ObservedStorage; faults?: ObservedFaults }): void {
    this.node = parts.node;
    this.storage = parts.storage;
    this.faults = parts.faults;
    // The node restored this snapshot on start, so storage holds it read already; later ones come as events.
    this.snapshotIndex = safe(() => parts.storage.snapshot()?.index, undefined) ?? 0;
    const status = parts.node.status();
    this.configKey = configKey(status);
    if (status.leader !== undefined) this.record('leader', this.leaderText(status.leader, status.term));
    parts.node.on('role', (role, term) => {
      if (role === 'candidate') this.record('election', `${this.id} stands for election (term ${term})`);
    });
    parts.node.on('leader', (leader, term) => {
      if (leader === undefined) this.record('election', `${this.id} knows no leader (term ${term})`);
      else this.record('leader', this.leaderText(leader, term));
    });
    parts.node.on('status', (s) => this.noteConfig(s));
    parts.node.on('snapshot', (index) => {
      if (index <= this.snapshotIndex) return;
      this.snapshotIndex = index;
      this.record('snapshot', `${this.id} snapshot at index ${index}`);
    });
  }

  /** Notes an admin request the node received (`admin.partition`, `admin.heal`); others are not events here. */
  admin(req: { t: string; peers?: unknown; direction?: unknown }): void {
    if (req.t === 'admin.partition' && Array.isArray(req.peers)) {
      const dir = typeof req.direction === 'string' && req.direction !== 'both' ? ` (${req.direction})` : '';
      this.record('partition', `${this.id} cut off from ${req.peers.map(String).join(', ')}${dir}`);
    } else if (req.t === 'admin.heal') {
      this.record('heal', `${this.id} healed: every link restored`);
    }
  }

  /** Records one event. */
  record(kind: UiEventKind, text: string): void {
    this.events.push({ seq: ++this.seq, at: this.now(), kind, text });
    if (this.events.length > this.eventLimit) this.events.splice(0, this.events.length - this.eventLimit);
  }

  /** The answer to `GET /ui?since=<since>`. Throws when the node is not attached yet. */
  answer(since: number): NodeUiAnswer {
    const node = this.node;
    const storage = this.storage;
    if (node === undefined || storage === undefined) throw new Error(`node ${this.id} is starting`);
    const status = node.status();
    this.noteConfig(status);
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    const lo = Math.max(firstIndex, lastIndex - this.logTail + 1);
    const log: UiLogEntry[] = [];
    if (lastIndex >= lo) {
      // entries() hands out the stored objects (from the storage's cache, or read from disk): index, term and
      // type are kept, nothing else. At most LOG_READ_BYTES of them are read per answer (plus one entry, which
      // entries() always returns): past that, the terms alone, which storage knows without reading an entry.
      const read = safe(() => storage.entries(lo, lastIndex + 1, LOG_READ_BYTES), []);
      for (const e of read) log.push({ index: e.index, term: e.term, type: e.type });
      for (let i = lo + read.length; i <= lastIndex; i++) {
        const term = safe<number | undefined>(() => storage.term(i), undefined);
        if (term === undefined) break;
        log.push({ index: i, term });
      }
    }
    const blocked = this.faults?.blocked() ?? { outbound: [], inbound: [] };
    const peers: Record<NodeId, PeerCounters> = {};
    for (const [id, p] of [...this.peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) peers[id] = { sent: p.sent, received: p.received };
    const messages: ObservedMessage[] = [];
    for (let i = 0; i < this.ringSize; i++) {
      const m = this.ring[(this.ringNext + i) % this.ringSize];
      if (m !== undefined && m.seq > since) messages.push(m);
    }
    return {
      id: this.id,
      pid: process.pid,
      status,
      log,
      firstIndex,
      snapshotIndex: this.snapshotIndex,
      partitioned: [...new Set([...blocked.outbound, ...blocked.inbound])].sort(),
      blocked,
      peers,
      messages,
      events: this.events.filter((e) => e.seq > since),
      seq: this.seq,
      at: this.now(),
    };
  }

  /**
   * Serves `GET /ui?since=<seq>`: 200 with the answer, 400 for a bad `since`, 405 for another method, 503 while
   * the node starts. `since` defaults to 0 (everything kept).
   */
  serve(req: IncomingMessage, res: ServerResponse): void {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, { error: 'method not allowed: GET /ui?since=<seq>' });
      return;
    }
    let since: number;
    try {
      since = parseSince(req.url ?? '/ui');
    } catch (e) {
      send(400, { error: (e as Error).message });
      return;
    }
    if (this.node === undefined) {
      send(503, { status: 'unavailable', reason: 'starting', message: 'the node is starting' });
      return;
    }
    let body: NodeUiAnswer;
    try {
      body = this.answer(since);
    } catch (e) {
      send(500, { error: String(e) });
      return;
    }
    send(200, body);
  }

  /** Stops the window timer (the transport's `stop` does it too). */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private leaderText(leader: NodeId, term: number): string {
    return leader === this.id ? `${this.id} leads (term ${term})` : `${this.id} follows leader ${leader} (term ${term})`;
  }

  private peer(id: NodeId): PeerState {
    let p = this.peers.get(id);
    if (p === undefined) {
      p = { sent: 0, received: 0, sentWindow: 0, sentSampled: 0, receivedWindow: 0, receivedSampled: 0 };
      this.peers.set(id, p);
    }
    return p;
  }

  private sent(envelope: Envelope): void {
    const p = this.peer(envelope.to);
    p.sent++;
    if (p.sentWindow !== this.window) {
      p.sentWindow = this.window;
      p.sentSampled = 0;
    }
    if (p.sentSampled < this.samplesPerWindow) {
      p.sentSampled++;
      // Only a sampled message asks the fault switch (a few per link per window, not every message).
      this.sample(envelope, this.faults !== undefined && this.faults.blocked().outbound.includes(envelope.to));
    }
  }

  private received(envelope: Envelope): void {
    const p = this.peer(envelope.from);
    p.received++;
    if (p.receivedWindow !== this.window) {
      p.receivedWindow = this.window;
      p.receivedSampled = 0;
    }
    if (p.receivedSampled < this.samplesPerWindow) {
      p.receivedSampled++;
      this.sample(envelope, false);
    }
  }

  private sample(envelope: Envelope, cut: boolean): void {
    const m: ObservedMessage = { seq: ++this.seq, from: envelope.from, to: envelope.to, type: messageType(envelope.msg), at: this.now() };
    if (cut) m.dropped = 'partitioned';
    this.ring[this.ringNext] = m;
    this.ringNext = (this.ringNext + 1) % this.ringSize;
  }

  private noteConfig(status: Status): void {
    const key = configKey(status);
    if (this.configKey === undefined) this.configKey = key;
    else if (key !== this.configKey) {
      this.configKey = key;
      const c = status.config;
      const joint = c.outgoing !== undefined ? ` (joint with ${c.outgoing.join(', ')})` : '';
      const learners = c.learners.length > 0 ? `, learners ${c.learners.join(', ')}` : '';
      this.record('config', `${this.id} sees voters ${c.voters.join(', ')}${joint}${learners}`);
    }
  }
}

/** The `type` of a protocol message (every protocol's messages carry one), without encoding it. */
export function messageType(msg: unknown): string {
  const t = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  return typeof t === 'string' ? t : typeof t === 'number' ? String(t) : 'unknown';
}

/** `since` of `/ui?since=<n>`: absent means 0; anything but a non-negative safe integer throws `BadSinceError`. */
export function parseSince(url: string): number {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const raw = params.get('since');
  if (raw === null) return 0;
  if (!/^\d{1,16}$/.test(raw)) throw new BadSinceError(raw);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new BadSinceError(raw);
  return n;
}

function configKey(status: Status): string {
  const c = status.config;
  return `${c.voters.join(',')}|${(c.outgoing ?? []).join(',')}|${c.learners.join(',')}`;
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, not ${n}`);
  return n;
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
