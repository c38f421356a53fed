import type { NodeId } from '@consensus-kit/core';
import {
  UI_ACTION_NAMES,
  UI_LOG_TAIL,
  type UiAction,
  type UiActionName,
  type UiActionResult,
  type UiEvent,
  type UiEventKind,
  type UiFrame,
  type UiHello,
  type UiLink,
  type UiLogEntry,
  type UiMembers,
  type UiMessage,
  type UiNodeState,
  type UiSource,
} from '@consensus-kit/ui';
import { ClusterDir, type ClusterFile, type ClusterNode } from './cluster-file';
import { readNodeConfig } from './config';
import { membershipNotes } from './pending-add';
import type { NodeUiAnswer, ObservedEvent, ObservedMessage } from './node-observe';

/**
 * The live source of the visualizer (#23): polls every node of a cluster the CLI started (`GET /ui?since=<seq>`
 * on each node's http server, see node-observe.ts) and turns the answers into one `UiFrame` per poll, kept in a
 * bounded history for the page's timeline. It re-reads the cluster file on every poll, so a member added later
 * shows up, and it never throws on what a node answers: a node that does not answer in time is down, one that
 * answers nonsense is down with an `error` event.
 */

export interface LiveSourceOptions {
  /** The cluster directory (`consensus-cli start --dir`). */
  dir: string;
  /** Milliseconds between polls (default 200). */
  intervalMs?: number;
  /** Frames kept for the timeline (default 3,000: ten minutes at the default interval). */
  historyLimit?: number;
  /** How long a node has to answer one poll before it is shown down (default 500 ms). */
  timeoutMs?: number;
  /** Runs the page's actions (`createUiActions`); without it the source is read-only. */
  act?: (action: UiAction) => Promise<UiActionResult>;
  /** The actions `act` supports (default: every action when `act` is given, none without). */
  actions?: readonly UiActionName[];
  /** Milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

export interface LiveSource extends UiSource {
  /** Polls once now, then every `intervalMs` until `close()`. Idempotent. */
  start(): void;
  /** Stops polling (waits for a poll in flight) and drops every listener. */
  close(): Promise<void>;
  /** Polls once and returns the frame made (what the timer does; for tests and a first frame on demand). */
  poll(): Promise<UiFrame>;
}

/** Messages carried in one frame at most (the latest); the nodes sample, this bounds a burst of many nodes. */
export const LIVE_FRAME_MESSAGES = 256;
/** Events carried in one frame at most (the latest). */
export const LIVE_FRAME_EVENTS = 256;
/**
 * The most bytes of one node's `/ui` answer read (8 MiB; a node's answer is bounded far below it: 48 log entries,
 * 512 messages, 256 events). Past it the answer is an error: whatever listens on that port (not a node, or a
 * broken one) cannot make the ui process buffer without bound within the poll's timeout.
 */
export const LIVE_ANSWER_MAX_BYTES = 8 * 1024 * 1024;
/** Rates are computed over about this many milliseconds of counter history. */
const RATE_WINDOW_MS = 1000;

/** What the source remembers of one node between polls. */
interface NodeTrack {
  /** The `seq` to ask after (the latest seen from this node's process). */
  since: number;
  pid?: number;
  up: boolean;
  /** Reported once per distinct problem, not on every poll. */
  lastError?: string;
  /** Recent counter readings, oldest first: { at, sent to each peer }. */
  counters: { at: number; sent: Record<NodeId, number> }[];
  last?: NodeUiAnswer;
  /** The log tail of the previous frame: its entry objects are shared with the next frame where unchanged. */
  log: UiLogEntry[];
}

type Answer = { ok: true; body: NodeUiAnswer } | { ok: false; reason: 'down' | 'starting' | 'error'; text: string };

export function liveSource(options: LiveSourceOptions): LiveSource {
  const cd = new ClusterDir(options.dir);
  const intervalMs = positive(options.intervalMs ?? 200, 'intervalMs');
  const historyLimit = positive(options.historyLimit ?? 3000, 'historyLimit');
  const timeoutMs = positive(options.timeoutMs ?? 500, 'timeoutMs');
  const now = options.now ?? Date.now;
  const act = options.act;
  const actionNames = act === undefined ? [] : [...(options.actions ?? UI_ACTION_NAMES)];

  // The cluster file as first read: the protocol and title do not change; the node list is re-read per poll.
  let cluster: ClusterFile | undefined;
  let clusterError: string | undefined;
  try {
    cluster = cd.read();
  } catch (e) {
    clusterError = (e as Error).message;
  }
  const electionTimeout = cluster === undefined ? undefined : electionTimeoutOf(cd, cluster);

  const history: UiFrame[] = [];
  const listeners = new Set<(frame: UiFrame) => void>();
  const tracks = new Map<NodeId, NodeTrack>();
  /** Events made between polls (action results), carried by the next frame. */
  let pending: UiEvent[] = [];
  let seq = 0;
  let agreedLeader: { id: NodeId; term: number } | undefined;
  let hadLeader: boolean | undefined;
  let lastCutText = '';
  /** Per node marked "add outcome unknown" in the cluster file: what the configuration said of it at the last event. */
  const pendingSeen = new Map<NodeId, string>();
  let cutKnown = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let closed = false;
  let inFlight: Promise<UiFrame> | undefined;

  const hello = (): UiHello => ({
    mode: 'live',
    protocol: cluster?.protocol ?? 'unknown',
    title: cd.dir,
    timeUnit: 'ms',
    actions: actionNames,
    ...(electionTimeout !== undefined ? { electionTimeout } : {}),
  });

  const fetchNode = async (n: ClusterNode, since: number): Promise<Answer> => {
    let res: Response;
    try {
      // A redirect is answered as it is (an error below): the source polls the node's own port, nothing else.
      res = await fetch(`http://${n.host}:${n.httpPort}/ui?since=${since}`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      const name = (e as Error).name;
      return { ok: false, reason: 'down', text: name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause ?? (e as Error).message) };
    }
    let text: string | undefined;
    try {
      text = await readCapped(res, LIVE_ANSWER_MAX_BYTES);
    } catch (e) {
      return { ok: false, reason: 'down', text: (e as Error).message };
    }
    if (text === undefined) return { ok: false, reason: 'error', text: `GET /ui answered ${res.status} with an answer larger than ${LIVE_ANSWER_MAX_BYTES} bytes (no node's answer is)` };
    if (res.status === 503) return { ok: false, reason: 'starting', text: 'starting' };
    if (res.status !== 200) return { ok: false, reason: 'error', text: `GET /ui answered ${res.status}: ${text.slice(0, 200)}` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'error', text: `GET /ui answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}` };
    }
    const problem = answerProblem(body, n.id);
    if (problem !== undefined) return { ok: false, reason: 'error', text: `GET /ui answered ${problem}` };
    return { ok: true, body: body as NodeUiAnswer };
  };

  const pollOnce = async (): Promise<UiFrame> => {
    const at0 = now();
    const events: UiEvent[] = pending;
    pending = [];
    let nodesOfFile: ClusterNode[];
    try {
      cluster = cd.read();
      nodesOfFile = cluster.nodes;
      if (clusterError !== undefined) clusterError = undefined;
    } catch (e) {
      const text = (e as Error).message;
      if (text !== clusterError) events.push({ at: at0, kind: 'error', text });
      clusterError = text;
      nodesOfFile = cluster?.nodes ?? [];
    }
    const answers = await Promise.all(
      nodesOfFile.map(async (n) => {
        const t = tracks.get(n.id);
        const a = await fetchNode(n, t?.since ?? 0);
        if (!a.ok || t === undefined || t.since === 0 || (a.body.seq >= t.since && a.body.pid === t.pid)) return a;
        // A new process (restarted) counts its seq and its counters from 0 again: ask it for all it kept.
        t.since = 0;
        t.counters = [];
        return fetchNode(n, 0);
      }),
    );
    const at = now();
    for (const id of [...tracks.keys()]) if (!nodesOfFile.some((n) => n.id === id)) tracks.delete(id);

    const messages: UiMessage[] = [];
    const nodes: UiNodeState[] = [];
    const polled = new Set(nodesOfFile.map((n) => n.id));
    nodesOfFile.forEach((n, i) => {
      const a = answers[i] as Answer;
      let t = tracks.get(n.id);
      const first = t === undefined;
      if (t === undefined) {
        t = { since: 0, up: false, counters: [], log: [] };
        tracks.set(n.id, t);
      }
      const base = { id: n.id, address: `${n.host}:${n.port}`, http: `${n.host}:${n.httpPort}` };
      if (!a.ok) {
        if (t.up) events.push({ at, kind: 'crash', node: n.id, text: `${n.id} is down (${a.text})` });
        if (a.reason === 'error' && a.text !== t.lastError) events.push({ at, kind: 'error', node: n.id, text: `${n.id}: ${a.text}` });
        t.lastError = a.reason === 'error' ? a.text : undefined;
        t.up = false;
        t.counters = [];
        t.last = undefined;
        nodes.push({ ...base, up: false, log: [] });
        return;
      }
      const b = a.body;
      if (!t.up && !first) events.push({ at, kind: 'restart', node: n.id, text: `${n.id} is up (pid ${b.pid})` });
      // Killed and started again between two polls: never seen down, but a new process all the same.
      else if (t.up && t.pid !== undefined && t.pid !== b.pid) events.push({ at, kind: 'restart', node: n.id, text: `${n.id} restarted (pid ${t.pid}, now ${b.pid})` });
      const fresh = t.since === 0;
      t.up = true;
      t.pid = b.pid;
      t.lastError = undefined;
      t.last = b;
      // On first contact the node hands over its whole ring: only the last second of it is news.
      for (const m of b.messages) {
        if (m.seq <= t.since || (fresh && m.at < at - RATE_WINDOW_MS)) continue;
        // Each message is sampled by its sender; the receiver's sample is used only when the sender is not polled.
        if (m.from === n.id || !polled.has(m.from)) messages.push({ from: m.from, to: m.to, type: m.type, at: m.at, ...(typeof m.dropped === 'string' ? { dropped: m.dropped } : {}) });
      }
      // What a node tells of itself is its own view (each node reports the leader it follows): listed on request.
      for (const e of b.events) if (e.seq > t.since) events.push({ at: e.at, kind: e.kind, node: n.id, text: e.text, scope: 'node' });
      t.since = Math.max(t.since, b.seq);
      const sent: Record<NodeId, number> = {};
      for (const [peer, c] of Object.entries(b.peers)) sent[peer] = c.sent;
      t.counters.push({ at: b.at, sent });
      while (t.counters.length > 2 && (t.counters[1] as { at: number }).at <= b.at - RATE_WINDOW_MS) t.counters.shift();
      const s = b.status;
      nodes.push({
        ...base,
        up: true,
        role: s.role,
        term: s.term,
        ...(s.leader !== undefined ? { leader: s.leader } : {}),
        commitIndex: s.commitIndex,
        appliedIndex: s.appliedIndex,
        lastIndex: s.lastIndex,
        firstIndex: b.firstIndex,
        snapshotIndex: b.snapshotIndex,
        log: (t.log = shareLog(t.log, b.log.slice(-UI_LOG_TAIL))),
        partitioned: b.partitioned,
        pid: b.pid,
        ...(s.details !== undefined ? { details: s.details } : {}),
      });
    });

    // Lag: behind the highest commit index any node reports.
    let highest = 0;
    for (const n of nodes) if (n.commitIndex !== undefined) highest = Math.max(highest, n.commitIndex);
    for (const n of nodes) if (n.appliedIndex !== undefined) n.lag = Math.max(0, highest - n.appliedIndex);

    const answered = nodesOfFile.map((n) => tracks.get(n.id)?.last).filter((b): b is NodeUiAnswer => b !== undefined);
    const members = membersOf(answered, nodesOfFile, cluster?.protocol);
    const links = linksOf(nodesOfFile, tracks);
    // A message on a cut link never arrives: the sender sampled it before its transport (or the receiver's) dropped it.
    const cut = new Set(links.filter((l) => l.blocked).map((l) => `${l.from}>${l.to}`));
    if (cut.size > 0) for (const m of messages) if (m.dropped === undefined && cut.has(`${m.from}>${m.to}`)) m.dropped = 'partitioned';
    // The cut links as the cluster has them (whichever command or page cut them): one event when they change.
    const cutText = describeCuts(links);
    if (cutKnown && cutText !== lastCutText) events.push(cutText === '' ? { at, kind: 'heal', text: 'every link restored' } : { at, kind: 'partition', text: `links cut: ${cutText}` });
    lastCutText = cutText;
    cutKnown = true;

    // A node whose add gave up with the outcome unknown (marked so in the cluster file): an event when it is first
    // seen and whenever what the configuration in force says of it changes (unknown, not a member, a learner).
    const pendingNow = membershipNotes({ version: 1, clusterId: '', protocol: '', nodes: nodesOfFile }, answered).filter((m) => m.pending !== undefined);
    for (const m of pendingNow) {
      if (pendingSeen.get(m.node) === m.membership) continue;
      pendingSeen.set(m.node, m.membership);
      events.push({ at, kind: 'config', node: m.node, text: m.text });
    }
    for (const id of [...pendingSeen.keys()]) if (!pendingNow.some((m) => m.node === id)) pendingSeen.delete(id);

    // The leader as the cluster sees it: a node leading whose term a majority of the answers share with it.
    const leader = leaderOf(answered, members);
    if (leader !== undefined && (agreedLeader?.id !== leader.id || agreedLeader.term !== leader.term)) {
      events.push({ at, kind: 'leader', node: leader.id, text: `${leader.id} is the cluster's leader (term ${leader.term})${agreedLeader !== undefined ? `, after ${agreedLeader.id}` : ''}` });
    }
    if (leader === undefined && hadLeader === true) events.push({ at, kind: 'election', text: 'no leader' });
    if (leader !== undefined) agreedLeader = leader;
    hadLeader = leader !== undefined;

    messages.sort((x, y) => x.at - y.at);
    events.sort((x, y) => x.at - y.at);
    const frame: UiFrame = {
      seq: seq++,
      at,
      members,
      nodes,
      links,
      messages: messages.slice(-LIVE_FRAME_MESSAGES),
      events: events.slice(-LIVE_FRAME_EVENTS),
    };
    history.push(frame);
    if (history.length > historyLimit) history.splice(0, history.length - historyLimit);
    for (const l of listeners) {
      try {
        l(frame);
      } catch {
        // a listener's failure is its own
      }
    }
    return frame;
  };

  const poll = (): Promise<UiFrame> => {
    // One poll at a time: a slow node delays the next frame rather than piling polls up.
    inFlight ??= pollOnce().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const schedule = (): void => {
    if (!running) return;
    timer = setTimeout(() => {
      timer = undefined;
      poll().then(schedule, schedule);
    }, intervalMs);
  };

  const source: LiveSource = {
    hello,
    history: () => [...history],
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    start() {
      if (running || closed) return;
      running = true;
      poll().then(schedule, schedule);
    },
    poll,
    async close() {
      closed = true;
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
      listeners.clear();
    },
  };
  if (act !== undefined) {
    source.act = async (action: UiAction): Promise<UiActionResult> => {
      let result: UiActionResult;
      try {
        result = await act(action);
      } catch (e) {
        result = { ok: false, text: e instanceof Error ? e.message : String(e) };
      }
      const node = 'node' in action && typeof action.node === 'string' ? action.node : 'to' in action ? action.to : undefined;
      // An event's text names its node (the page does not print `node` again): "kill n2: timed out".
      const text = node === undefined || namesNode(result.text, node) ? result.text : `${action.action} ${node}: ${result.text}`;
      pending.push({ at: now(), kind: result.ok ? actionKind(action.action) : 'error', ...(node !== undefined ? { node } : {}), text });
      return result;
    };
  }
  return source;
}

/**
 * The log tail to put in a frame: `prev` itself when nothing changed, else `next` with the entries that did not
 * change taken from `prev`. The history keeps thousands of frames, and a log tail barely moves between two polls
 * of an idle cluster: shared, it costs its memory once rather than once per frame.
 */
export function shareLog(prev: readonly UiLogEntry[], next: readonly UiLogEntry[]): UiLogEntry[] {
  const base = prev[0]?.index ?? 0;
  let same = prev.length === next.length;
  const out = next.map((e) => {
    const p = prev[e.index - base];
    if (p !== undefined && p.index === e.index && p.term === e.term && p.type === e.type) return p;
    same = false;
    return e;
  });
  return same ? (prev as UiLogEntry[]) : out;
}

/** The body of `res` as text, or undefined (the rest cancelled) once it is longer than `max` bytes. */
async function readCapped(res: Response, max: number): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > max || res.body === null) {
    await res.body?.cancel();
    return res.body === null ? '' : undefined;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The event kind an action's result is marked with on the timeline. */
function actionKind(name: UiActionName): UiEventKind {
  return name === 'kill' || name === 'restart' || name === 'partition' || name === 'heal' ? name : name === 'add-member' || name === 'remove-member' ? 'config' : 'action';
}

/**
 * The configuration in force: the leader's (the leading node with the highest term), else the most advanced
 * node's (highest commit index, then last index); without any answer, every node of the cluster file as a voter.
 * Core's non-voting members are ZAB's observers (ZooKeeper's name for them) and Raft's and Paxos' learners.
 */
export function membersOf(answers: readonly Pick<NodeUiAnswer, 'status'>[], file: readonly Pick<ClusterNode, 'id'>[], protocol?: string): UiMembers {
  let from: Pick<NodeUiAnswer, 'status'> | undefined;
  for (const a of answers) if (a.status.role === 'leader' && (from === undefined || a.status.term > from.status.term)) from = a;
  if (from === undefined) {
    for (const a of answers) {
      const s = a.status;
      if (from === undefined || s.commitIndex > from.status.commitIndex || (s.commitIndex === from.status.commitIndex && s.lastIndex > from.status.lastIndex)) from = a;
    }
  }
  if (from === undefined) return { voters: file.map((n) => n.id), learners: [], observers: [] };
  const c = from.status.config;
  const voters = [...c.voters];
  for (const v of c.outgoing ?? []) if (!voters.includes(v)) voters.push(v);
  return protocol === 'zab' ? { voters, learners: [], observers: [...c.learners] } : { voters, learners: [...c.learners], observers: [] };
}

/** A node that leads and a majority of the voters that answered agree with (same leader, same term). */
function leaderOf(answers: readonly NodeUiAnswer[], members: UiMembers): { id: NodeId; term: number } | undefined {
  const voters = new Set(members.voters);
  for (const a of answers) {
    if (a.status.role !== 'leader') continue;
    let agree = 0;
    for (const b of answers) if (voters.has(b.id) && b.status.leader === a.id && b.status.term === a.status.term) agree++;
    if (agree * 2 > voters.size) return { id: a.id, term: a.status.term };
  }
  return undefined;
}

/**
 * Every direction of every link between the cluster's nodes: its rate (messages per second the sender counted
 * over about the last second) and whether it is cut (the sender drops outbound, or the receiver drops inbound).
 */
function linksOf(nodes: readonly ClusterNode[], tracks: ReadonlyMap<NodeId, NodeTrack>): UiLink[] {
  const links: UiLink[] = [];
  for (const from of nodes) {
    const t = tracks.get(from.id);
    const first = t?.counters[0];
    const last = t?.counters[t.counters.length - 1];
    for (const to of nodes) {
      if (to.id === from.id) continue;
      let rate = 0;
      if (first !== undefined && last !== undefined && last.at > first.at) {
        const delta = (last.sent[to.id] ?? 0) - (first.sent[to.id] ?? 0);
        rate = Math.max(0, Math.round((delta * 1000) / (last.at - first.at)));
      }
      const out = t?.last?.blocked.outbound.includes(to.id) ?? false;
      const inb = tracks.get(to.id)?.last?.blocked.inbound.includes(from.id) ?? false;
      links.push({ from: from.id, to: to.id, rate, blocked: out || inb });
    }
  }
  return links;
}

/** Whether `text` names the node `id` as a word of its own ("n2 killed", "cut n2 off", not "n21 killed"). */
export function namesNode(text: string, id: string): boolean {
  for (let at = text.indexOf(id); at >= 0; at = text.indexOf(id, at + 1)) {
    const before = at === 0 ? '' : (text[at - 1] as string);
    const after = text[at + id.length] ?? '';
    if (!/[\w-]/.test(before) && !/[\w-]/.test(after)) return true;
  }
  return false;
}

/**
 * The cut links in a few words, each pair once: `n1 <-> n2` when cut both ways, `n1 -> n3` when one way; '' for
 * none.
 */
export function describeCuts(links: readonly UiLink[]): string {
  const cut = new Set(links.filter((l) => l.blocked).map((l) => `${l.from}>${l.to}`));
  const parts: string[] = [];
  for (const l of links) {
    if (!l.blocked) continue;
    const back = cut.has(`${l.to}>${l.from}`);
    if (back && l.to < l.from) continue;
    parts.push(back ? `${l.from} <-> ${l.to}` : `${l.from} -> ${l.to}`);
  }
  return parts.join(', ');
}

/**
 * The election timeout the nodes run with, in ms: tickMs x electionTicks from the node configs (the largest if
 * they differ), with the defaults the nodes use (100 ms, 10 ticks) for what a config leaves out.
 */
export function electionTimeoutOf(cd: ClusterDir, cluster: ClusterFile): number | undefined {
  let most: number | undefined;
  for (const n of cluster.nodes) {
    try {
      const c = readNodeConfig(cd.configFile(n.id));
      const ms = (c.tickMs ?? 100) * (c.electionTicks ?? 10);
      most = Math.max(most ?? 0, ms);
    } catch {
      // a config that cannot be read says nothing about the timeout
    }
  }
  return most;
}

/** What is wrong with a `/ui` answer, or undefined when it has the shape node-observe.ts gives it. */
export function answerProblem(body: unknown, id: NodeId): string | undefined {
  if (typeof body !== 'object' || body === null) return 'a body that is not an object';
  const b = body as Partial<Record<keyof NodeUiAnswer, unknown>>;
  if (b.id !== id) return `the id ${JSON.stringify(b.id)}, not ${id}: another node listens on its http port`;
  const s = b.status as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null) return 'no status';
  for (const k of ['term', 'commitIndex', 'appliedIndex', 'lastIndex'] as const) if (!isCount(s[k])) return `a status without a ${k}`;
  if (typeof s.role !== 'string') return 'a status without a role';
  const c = s.config as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || !isIds(c.voters) || !isIds(c.learners) || (c.outgoing !== undefined && !isIds(c.outgoing))) return 'a status without a configuration';
  if (!isCount(b.pid) || !isCount(b.seq) || !isCount(b.at) || !isCount(b.firstIndex) || !isCount(b.snapshotIndex)) return 'no pid, seq, at, firstIndex or snapshotIndex';
  if (!Array.isArray(b.log) || !b.log.every(isLogEntry)) return 'a log that is not a list of { index, term, type }';
  if (!isIds(b.partitioned)) return 'partitioned peers that are not a list of ids';
  const blocked = b.blocked as Record<string, unknown> | undefined;
  if (typeof blocked !== 'object' || blocked === null || !isIds(blocked.outbound) || !isIds(blocked.inbound)) return 'no blocked { outbound, inbound }';
  if (typeof b.peers !== 'object' || b.peers === null || !Object.values(b.peers).every((p) => isCount((p as { sent?: unknown })?.sent) && isCount((p as { received?: unknown })?.received))) {
    return 'peer counters that are not { sent, received }';
  }
  if (!Array.isArray(b.messages) || !b.messages.every(isMessage)) return 'messages that are not { seq, from, to, type, at }';
  if (!Array.isArray(b.events) || !b.events.every(isEvent)) return 'events that are not { seq, at, kind, text }';
  return undefined;
}

const EVENT_KINDS: ReadonlySet<string> = new Set<UiEventKind>(['election', 'leader', 'config', 'snapshot', 'partition', 'heal', 'kill', 'restart', 'crash', 'pause', 'resume', 'action', 'error', 'violation']);
const ENTRY_TYPES: ReadonlySet<string> = new Set(['command', 'noop', 'config']);

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isIds(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isLogEntry(v: unknown): v is UiLogEntry {
  const e = v as Partial<UiLogEntry> | null;
  return typeof e === 'object' && e !== null && isCount(e.index) && isCount(e.term) && (e.type === undefined || ENTRY_TYPES.has(e.type));
}

function isMessage(v: unknown): v is ObservedMessage {
  const m = v as Partial<ObservedMessage> | null;
  return typeof m === 'object' && m !== null && isCount(m.seq) && typeof m.from === 'string' && typeof m.to === 'string' && typeof m.type === 'string' && isCount(m.at) && (m.dropped === undefined || typeof m.dropped === 'string');
}

function isEvent(v: unknown): v is ObservedEvent {
  const e = v as Partial<ObservedEvent> | null;
  return typeof e === 'object' && e !== null && isCount(e.seq) && isCount(e.at) && typeof e.kind === 'string' && EVENT_KINDS.has(e.kind) && typeof e.text === 'string';
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, not ${n}`);
  return n;
}
