import { ConfigError, describeConfig, type ClusterConfig, type Envelope, type LogEntry, type NodeId, type Status } from '@consensus-kit/core';
import { UI_LOG_TAIL, type UiEvent, type UiEventKind, type UiFrame, type UiHello, type UiLink, type UiLogEntry, type UiMembers, type UiMessage, type UiNodeState, type UiSource } from '@consensus-kit/ui';
import { describeAction, isPartitionAction, type FaultAction } from './faults';
import type { ClientOp, HistoryOp } from './history';
import type { SimObservation, SimObserver } from './observer';
import type { SimResult, SimulateOptions, Violation } from './sim-options';
import { simulate } from './simulator';

/** At most this many frames by default: beyond it, steps are merged (see `Recording.thinned`). */
export const DEFAULT_MAX_FRAMES = 20_000;
/** At most about this many bytes of frames (as JSON) by default: what the page fetches as history at once. */
export const DEFAULT_MAX_BYTES = 64_000_000;
/** At most this many messages listed in one frame by default (link rates count them all). */
export const DEFAULT_MAX_MESSAGES_PER_FRAME = 64;

export interface RecordOptions {
  /** At most this many frames (default 20,000, at least 2): a run with more changing steps is thinned. */
  maxFrames?: number;
  /**
   * At most about this many bytes of frames as JSON (default 64 MB; estimated from above, at least 100 kB): the
   * log tails of 5 or 7 nodes in every frame add up, and the page fetches the whole history at once.
   */
  maxBytes?: number;
  /** At most this many messages listed per frame (default 64): the first ones; link rates count them all. */
  maxMessagesPerFrame?: number;
}

/** A simulator run and the frames the visualizer steps through. */
export interface Recording<Op extends ClientOp = HistoryOp> {
  /** What `simulate` returned: the very run, the same as without the recorder. */
  result: SimResult<Op>;
  /** Oldest first; `seq` 0, 1, 2, ...; `at` in ticks of the reference clock (fractional within a tick). */
  frames: UiFrame[];
  /** Steps the run took, and how many of them changed what the page shows (each became a frame unless thinned). */
  steps: number;
  changingSteps: number;
  /** Set when the changing steps made more than `maxFrames` frames or `maxBytes`: how they were merged. */
  thinned?: string;
}

/**
 * Runs `options` with a recorder watching: one `UiFrame` per step that changes what the page shows (a role,
 * term, leader, commit, applied or last index, log, membership, partition, up/down), delivers or drops a
 * message, or has an event (elections, leader changes, config changes, snapshots, crash/restart, pause/resume,
 * partition/heal, the violation), plus one for the boot. A tick that changes nothing makes no frame.
 *
 * Frames stay within `maxFrames` and `maxBytes`: when a run has more changing steps, the recorder merges (and says so in
 * `thinned`), coarser each time the bound is reached: first the steps that only moved messages or indexes, per
 * tick; then every step of a tick; then windows of 2, 4, 8, ... ticks. A merged frame shows the state at its last
 * step and carries all events and (up to `maxMessagesPerFrame`) messages of its steps; no event is lost.
 *
 * The recorder only looks (a `SimObserver`): the run, its result and its trace are those of `simulate(options)`,
 * and the same options give the same frames.
 */
export function recordRun<Op extends ClientOp = HistoryOp>(options: SimulateOptions<Op>, record: RecordOptions = {}): Recording<Op> {
  if (options.observer !== undefined) throw new ConfigError('recordRun watches the run with its own observer: options.observer must be unset');
  const maxFrames = record.maxFrames ?? DEFAULT_MAX_FRAMES;
  if (!Number.isSafeInteger(maxFrames) || maxFrames < 2) throw new ConfigError(`maxFrames must be an integer >= 2, got ${String(maxFrames)}`);
  const maxBytes = record.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 100_000) throw new ConfigError(`maxBytes must be an integer >= 100000, got ${String(maxBytes)}`);
  const maxMessages = record.maxMessagesPerFrame ?? DEFAULT_MAX_MESSAGES_PER_FRAME;
  if (!Number.isSafeInteger(maxMessages) || maxMessages < 0) throw new ConfigError(`maxMessagesPerFrame must be an integer >= 0, got ${String(maxMessages)}`);
  const recorder = new FrameRecorder(maxFrames, maxBytes, maxMessages);
  const result = simulate({ ...options, observer: recorder });
  recorder.finish(result.violation);
  const recording: Recording<Op> = { result, frames: recorder.frames(), steps: result.stats.steps, changingSteps: recorder.changingSteps };
  const thinned = recorder.thinnedText();
  if (thinned !== undefined) recording.thinned = thinned;
  return recording;
}

export interface ReplaySourceOptions {
  protocol: string;
  /** A short title: the seed and its options, and the verdict. */
  title: string;
  /** The command that reproduces the run. */
  replayCommand: string;
  /** The election timeout in ticks, when known. */
  electionTimeout?: number;
}

/** A `UiSource` for `serveUi` that serves a recording: hello in replay mode, every frame as history, no actions. */
export function replaySource(recording: Pick<Recording<ClientOp>, 'frames'>, o: ReplaySourceOptions): UiSource {
  const hello: UiHello = { mode: 'replay', protocol: o.protocol, title: o.title, timeUnit: 'tick', actions: [], replayCommand: o.replayCommand };
  if (o.electionTimeout !== undefined) hello.electionTimeout = o.electionTimeout;
  return {
    hello: () => hello,
    history: () => recording.frames,
    // A recording is complete: nothing new ever comes.
    subscribe: () => () => {},
  };
}

/** The text of a violation as the timeline shows it. */
export function describeViolation(v: Violation): string {
  return `${v.kind} violation (${v.name}): ${v.message}`;
}

// --- the recorder -------------------------------------------------------------------------------------------

/** A frame before its `seq`: `key` when it changed a role, term, leader, commit, membership, up/down or a cut, or has events. */
interface Pending {
  frame: Omit<UiFrame, 'seq'>;
  key: boolean;
  /** Its size as JSON, estimated from above (`frameBytes`). */
  bytes: number;
}

/** What of a node the recorder compares between steps. */
interface Seen {
  state: 'up' | 'paused' | 'crashed';
  role: string | undefined;
  term: number | undefined;
  /** Role, term, leader, commit, up: a change makes a key frame. */
  keyText: string;
  /** Everything else the page shows of the node. */
  restText: string;
  node: UiNodeState;
}

class FrameRecorder implements SimObserver {
  private obs!: SimObservation;
  private readonly pending: Pending[] = [];
  /** The estimated JSON size of `pending`. */
  private bytes = 0;
  /** 0: a frame per changing step; 1: steps without key changes merged per tick; 2: per tick; n > 2: per 2^(n-2) ticks. */
  private level = 0;
  changingSteps = 0;
  private seen: Seen[] = [];
  private members: UiMembers = { voters: [], learners: [], observers: [] };
  private membersText = '';
  private cutText = '';
  private links: { from: NodeId; to: NodeId }[] = [];
  // What happened since the last frame.
  private messages: UiMessage[] = [];
  private moved = 0;
  private rates = new Map<string, number>();
  private events: UiEvent[] = [];
  /** Per node: what the trace said of its last crash (the save at the disk). */
  private crashNote = new Map<NodeId, string>();

  constructor(
    private readonly maxFrames: number,
    private readonly maxBytes: number,
    private readonly maxMessages: number,
  ) {}

  attach(observation: SimObservation): void {
    this.obs = observation;
    for (const from of observation.nodes) for (const to of observation.nodes) if (from !== to) this.links.push({ from, to });
    this.seen = observation.nodes.map((id) => ({ state: 'crashed', role: undefined, term: undefined, keyText: 'down', restText: '', node: { id, up: false, log: [] } }));
  }

  private tick(time: number): number {
    return time / this.obs.tickUs;
  }

  /** Now, in ticks. */
  private at(): number {
    return this.tick(this.obs.view.time);
  }

  private event(kind: UiEventKind, text: string, node?: NodeId): void {
    const e: UiEvent = { at: this.at(), kind, text };
    if (node !== undefined) e.node = node;
    this.events.push(e);
  }

  trace(fields: Readonly<Record<string, unknown>>): void {
    switch (fields.ev) {
      case 'snapshot':
        return this.event('snapshot', `${String(fields.node)} snapshots its state machine at ${String(fields.index)}`, fields.node as NodeId);
      case 'restore':
        return this.event('snapshot', `${String(fields.node)} installs a snapshot at ${String(fields.index)}`, fields.node as NodeId);
      case 'compact':
        return;
      case 'crash': {
        const save = fields.save as { steps: number; survived: number } | undefined;
        if (save !== undefined) this.crashNote.set(fields.node as NodeId, `, ${save.survived} of the ${save.steps} steps of the save at its disk survived`);
        else if (fields.between !== undefined) this.crashNote.set(fields.node as NodeId, ', between a snapshot and the compaction');
        return;
      }
      case 'resume':
        return;
    }
  }

  fault(a: FaultAction): void {
    switch (a.type) {
      // Crash, restart, pause and resume show as what they did to the node (see `step`).
      case 'crash':
      case 'restart':
      case 'pause':
      case 'resume':
        return;
      case 'heal':
        return this.event('heal', 'heal: every link works again');
      case 'stall':
        return this.event('partition', `${describeAction(a)} (what is sent waits)`);
      case 'unstall':
        return this.event('heal', `${describeAction(a)} (what waited arrives)`);
      default:
        if (isPartitionAction(a)) return this.event('partition', describeAction(a), a.type === 'isolate' ? a.node : undefined);
        return this.event('action', `fault: ${describeAction(a)}`);
    }
  }

  delivered(env: Envelope): void {
    this.message(env, undefined);
  }

  /** A lost message is listed with why (`partitioned`, `lost`, `receiver-down`): the page draws it stopping short. */
  dropped(env: Envelope, why: string): void {
    this.message(env, why);
  }

  private message(env: Envelope, dropped: string | undefined): void {
    this.moved++;
    const key = `${env.from}>${env.to}`;
    this.rates.set(key, (this.rates.get(key) ?? 0) + 1);
    if (this.messages.length >= this.maxMessages) return;
    const m: UiMessage = { from: env.from, to: env.to, type: messageType(env.msg), at: this.at() };
    if (dropped !== undefined) m.dropped = dropped;
    this.messages.push(m);
  }

  step(): void {
    this.capture();
  }

  /** The state the run ended in (after a violation: mid-step), and the violation where it happened. */
  finish(violation: Violation | undefined): void {
    if (this.obs === undefined) return;
    this.capture();
    if (violation !== undefined) {
      const e: UiEvent = { at: this.tick(violation.time), kind: 'violation', text: describeViolation(violation) };
      // The last frame at or before the moment it happened (the step a linearizability counterexample completed).
      let i = this.pending.length - 1;
      while (i > 0 && (this.pending[i] as Pending).frame.at > e.at) i--;
      const p = this.pending[i] as Pending;
      p.frame.events.push(e);
      p.key = true;
      const bytes = frameBytes(p.frame);
      this.bytes += bytes - p.bytes;
      p.bytes = bytes;
    }
    this.bound();
  }

  frames(): UiFrame[] {
    return this.pending.map((p, seq) => ({ seq, ...p.frame }));
  }

  thinnedText(): string | undefined {
    if (this.level === 0) return undefined;
    const how =
      this.level === 1
        ? 'steps that change no role, term, leader, commit, membership or cut are merged per tick'
        : this.level === 2
          ? 'one frame per tick'
          : `one frame per ${2 ** (this.level - 2)} ticks`;
    return `${this.changingSteps} changing steps, more than ${this.maxFrames} frames or ${this.maxBytes / 1e6} MB: ${how}`;
  }

  private capture(): void {
    const view = this.obs.view;
    const statuses: (Status | undefined)[] = view.replicas.map((r) => (r.state === 'crashed' ? undefined : r.status()));
    let maxCommit = 0;
    for (const s of statuses) if (s !== undefined && s.commitIndex > maxCommit) maxCommit = s.commitIndex;
    let key = this.events.length > 0;
    let changed = key || this.moved > 0;
    const nodes: UiNodeState[] = [];
    view.replicas.forEach((r, i) => {
      const prev = this.seen[i] as Seen;
      const s = statuses[i];
      const state = r.state;
      const partitioned = this.obs.nodes.filter((p) => p !== r.id && (this.obs.cut(r.id, p) || this.obs.cut(p, r.id)));
      if (state !== prev.state) this.stateEvent(r.id, prev.state, state, r.incarnation);
      if (s === undefined) {
        const keyText = 'down';
        const restText = partitioned.join(' ');
        if (keyText !== prev.keyText || restText !== prev.restText) {
          const node: UiNodeState = { id: r.id, up: false, log: [] };
          if (partitioned.length > 0) node.partitioned = partitioned;
          key ||= keyText !== prev.keyText;
          changed = true;
          this.seen[i] = { state, role: undefined, term: undefined, keyText, restText, node };
        } else prev.state = state;
        nodes.push((this.seen[i] as Seen).node);
        return;
      }
      if (s.role !== prev.role || s.term !== prev.term) this.roleEvent(r.id, prev, s);
      const storage = r.storage;
      const last = storage.lastIndex();
      const first = storage.firstIndex();
      const lo = Math.max(first, last - UI_LOG_TAIL + 1);
      const log: UiLogEntry[] = last >= lo ? storage.entries(lo, last + 1).map(logEntry) : [];
      const snapshotIndex = storage.snapshot()?.index ?? 0;
      const keyText = `${state} ${s.role} ${s.term} ${s.leader ?? '-'} ${s.commitIndex}`;
      const restText = `${r.appliedIndex} ${first} ${last} ${snapshotIndex} ${maxCommit} ${partitioned.join(' ')} ${log.map((e) => `${e.term}${e.type?.[0] ?? ''}`).join(',')}`;
      if (keyText === prev.keyText && restText === prev.restText) {
        nodes.push(prev.node);
        return;
      }
      key ||= keyText !== prev.keyText || partitioned.join(' ') !== prev.node.partitioned?.join(' ');
      changed = true;
      const node: UiNodeState = {
        id: r.id,
        up: true,
        role: s.role,
        term: s.term,
        commitIndex: s.commitIndex,
        appliedIndex: r.appliedIndex,
        lastIndex: last,
        firstIndex: first,
        snapshotIndex,
        lag: Math.max(0, maxCommit - r.appliedIndex),
        log,
      };
      if (s.leader !== undefined) node.leader = s.leader;
      if (partitioned.length > 0) node.partitioned = partitioned;
      if (state === 'paused') node.details = { paused: true };
      this.seen[i] = { state, role: s.role, term: s.term, keyText, restText, node };
      nodes.push(node);
    });
    const config = membersFrom(statuses);
    if (config !== undefined) {
      const text = describeConfig(config);
      if (text !== this.membersText) {
        if (this.membersText !== '') this.event('config', `configuration: ${text}`);
        this.membersText = text;
        this.members = { voters: [...config.voters], learners: [...config.learners], observers: [] };
        key = changed = true;
      }
    }
    const cuts = this.links.filter((l) => this.obs.cut(l.from, l.to));
    const cutText = cuts.map((l) => `${l.from}>${l.to}`).join(' ');
    if (cutText !== this.cutText) {
      this.cutText = cutText;
      key = changed = true;
    }
    if (this.events.length > 0) key = changed = true;
    if (!changed && this.pending.length > 0) return;
    this.changingSteps++;
    const links: UiLink[] = this.links.map((l) => ({ from: l.from, to: l.to, rate: this.rates.get(`${l.from}>${l.to}`) ?? 0, blocked: this.obs.cut(l.from, l.to) }));
    this.push({ frame: { at: this.at(), members: this.members, nodes, links, messages: this.messages, events: this.events }, key });
    this.messages = [];
    this.events = [];
    this.rates = new Map();
    this.moved = 0;
  }

  private stateEvent(id: NodeId, from: Seen['state'], to: Seen['state'], incarnation: number): void {
    if (to === 'crashed') {
      this.event('crash', `${id} crashed${this.crashNote.get(id) ?? ''}`, id);
      this.crashNote.delete(id);
    } else if (from === 'crashed') {
      if (incarnation > 1) this.event('restart', `${id} restarts from its disk (incarnation ${incarnation})`, id);
    } else if (to === 'paused') this.event('pause', `${id} paused (its process stalls: no ticks, messages wait)`, id);
    else this.event('resume', `${id} resumes (the ticks it missed arrive at once)`, id);
  }

  private roleEvent(id: NodeId, prev: Seen, s: Status): void {
    if (s.role === 'candidate' && (prev.role !== 'candidate' || s.term !== prev.term)) this.event('election', `${id} stands for election (term ${s.term})`, id);
    else if (s.role === 'leader' && (prev.role !== 'leader' || s.term !== prev.term)) this.event('leader', `${id} leads (term ${s.term})`, id);
    else if (prev.role === 'leader' && s.role !== 'leader') this.event('leader', `${id} steps down (${s.role}, term ${s.term})`, id);
  }

  private push(p: Omit<Pending, 'bytes'>): void {
    const next = { ...p, bytes: frameBytes(p.frame) };
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && this.mergeable(last, next)) {
      const merged = this.merge(last, next);
      this.bytes += merged.bytes - last.bytes;
      this.pending[this.pending.length - 1] = merged;
    } else {
      this.pending.push(next);
      this.bytes += next.bytes;
    }
    if (this.pending.length > this.maxFrames || this.bytes > this.maxBytes) this.bound();
  }

  /** Coarser and coarser until the frames fit `maxFrames` and `maxBytes`. */
  private bound(): void {
    while ((this.pending.length > this.maxFrames || this.bytes > this.maxBytes) && this.pending.length > 1) {
      this.level++;
      const merged: Pending[] = [];
      for (const p of this.pending) {
        const last = merged[merged.length - 1];
        if (last !== undefined && this.mergeable(last, p)) merged[merged.length - 1] = this.merge(last, p);
        else merged.push(p);
      }
      this.pending.length = 0;
      this.pending.push(...merged);
      this.bytes = merged.reduce((sum, p) => sum + p.bytes, 0);
    }
  }

  private mergeable(a: Pending, b: Pending): boolean {
    if (this.level === 0) return false;
    const ta = Math.floor(a.frame.at);
    const tb = Math.floor(b.frame.at);
    if (this.level === 1) return !a.key && !b.key && ta === tb;
    const w = 2 ** (this.level - 2);
    return Math.floor(ta / w) === Math.floor(tb / w);
  }

  private merge(a: Pending, b: Pending): Pending {
    const messages = a.frame.messages.length >= this.maxMessages ? a.frame.messages : [...a.frame.messages, ...b.frame.messages].slice(0, this.maxMessages);
    const links = b.frame.links.map((l, i) => ({ ...l, rate: l.rate + (a.frame.links[i] as UiLink).rate }));
    const frame = { ...b.frame, links, messages, events: [...a.frame.events, ...b.frame.events] };
    return { frame, key: a.key || b.key, bytes: frameBytes(frame) };
  }
}

/**
 * A frame's size as JSON, from above (numbers up to 12 characters, text escaped at worst 2x): cheap
 * arithmetic instead of serialising every frame.
 */
function frameBytes(f: Omit<UiFrame, 'seq'>): number {
  let n = 80 + 40 + 12 * (f.members.voters.length + f.members.learners.length + f.members.observers.length);
  for (const node of f.nodes) {
    n += 40 + 2 * node.id.length;
    if (!node.up) continue;
    n += 240 + 2 * (node.role?.length ?? 0) + 2 * (node.leader?.length ?? 0) + 40 * node.log.length;
    for (const p of node.partitioned ?? []) n += 4 + 2 * p.length;
    if (node.details !== undefined) n += 32;
  }
  for (const l of f.links) n += 60 + 2 * (l.from.length + l.to.length);
  for (const m of f.messages) n += 48 + 2 * (m.from.length + m.to.length + m.type.length) + (m.dropped === undefined ? 0 : 14 + 2 * m.dropped.length);
  for (const e of f.events) n += 60 + 2 * (e.text.length + (e.node?.length ?? 0));
  return n;
}

function logEntry(e: LogEntry): UiLogEntry {
  // `type` is left out for commands, the common case: a log tail of 48 entries per node in every frame adds up.
  return e.type === 'command' ? { index: e.index, term: e.term } : { index: e.index, term: e.term, type: e.type };
}

/** The protocol's own message type (`AppendEntries`, `Prepare`, `PROPOSAL`): the `type` tag when it has one. */
function messageType(msg: unknown): string {
  if (typeof msg === 'object' && msg !== null) {
    const t = (msg as { type?: unknown }).type;
    if (typeof t === 'string') return t;
    if (typeof t === 'number') return String(t);
  }
  return 'message';
}

/** The configuration in force as the leader of the highest term reports it, or, without one, the most advanced node. */
function membersFrom(statuses: readonly (Status | undefined)[]): ClusterConfig | undefined {
  let best: Status | undefined;
  for (const s of statuses) {
    if (s === undefined) continue;
    if (best === undefined) best = s;
    else if (s.role === 'leader' && (best.role !== 'leader' || s.term > best.term)) best = s;
    else if (best.role !== 'leader' && s.commitIndex > best.commitIndex) best = s;
  }
  return best?.config;
}
