import type { NodeId } from '@consensus-kit/core';
import { FaultScheduleError } from './errors';
import type { Rng } from './rng';
import { SCENARIOS, type ScenarioName } from './scenarios';

/** Delay of one link, in milliseconds of simulated time (uniform in [min, max]). */
export interface DelayRange {
  min: number;
  max: number;
}

/** Network behaviour, for every link or (in `links`) for one directed link. Rates are per message. */
export interface LinkSettings {
  delay?: DelayRange;
  drop?: number;
  duplicate?: number;
  /** Probability that a message is held back long enough to overtake later ones. */
  reorder?: number;
}

/**
 * One thing that happens to the cluster. Partition actions replace the current topology (they do not add up);
 * `heal` restores every link. Partial-connectivity shapes follow the OmniPaxos paper (Ng et al., EuroSys '23).
 */
export type FaultAction =
  /** Symmetric split: nodes talk only within their group; nodes listed in no group form one more group. */
  | { type: 'partition'; groups: NodeId[][] }
  /** Asymmetric: messages from each of `from` to each of `to` are lost; the other direction works. */
  | { type: 'one-way'; from: NodeId[]; to: NodeId[] }
  | { type: 'isolate'; node: NodeId }
  /** `left` and `right` cannot talk to each other; `bridge` reaches both. */
  | { type: 'bridge'; bridge: NodeId; left: NodeId[]; right: NodeId[] }
  /** Quorum-loss scenario: only `hub` stays connected to everyone; every other pair is cut. */
  | { type: 'quorum-loss'; hub: NodeId }
  /** Chained scenario: each node of `chain` reaches only its neighbours in the chain; others are isolated. */
  | { type: 'chained'; chain: NodeId[] }
  /** Only these bidirectional links work. */
  | { type: 'links'; links: [NodeId, NodeId][] }
  /** `heal` also ends every stall. */
  | { type: 'heal' }
  /**
   * The directed link hangs without breaking (a stalled TCP connection): what `from` sends to `to` waits, in
   * order, and arrives together at `unstall` (or `heal`), however stale by then. Not a partition: the others stay.
   */
  | { type: 'stall'; from: NodeId; to: NodeId }
  | { type: 'unstall'; from: NodeId; to: NodeId }
  /** The node stops; whatever it had not yet made durable is lost. */
  | { type: 'crash'; node: NodeId }
  /** The node starts again from its durable state. No-op if it is up. */
  | { type: 'restart'; node: NodeId }
  /** The process stalls: no ticks, inbound messages queue up, until `resume`. */
  | { type: 'pause'; node: NodeId }
  | { type: 'resume'; node: NodeId }
  /** The node's clock runs at `rate` times the reference speed (1 = normal). */
  | { type: 'clock'; node: NodeId; rate: number }
  /** Change the default link settings from now on. */
  | { type: 'network'; settings: LinkSettings }
  /** Settings of one directed link from now on (overriding the defaults); `null` goes back to the defaults. */
  | { type: 'link'; from: NodeId; to: NodeId; settings: LinkSettings | null }
  /** A targeted scenario that reacts to the cluster (see scenarios.ts); its faults are traced as they happen. */
  | { type: 'scenario'; scenario: ScenarioName };

/** A fault at a time given in ticks of the reference clock. */
export interface FaultEvent {
  at: number;
  action: FaultAction;
}

/** How often random faults strike. Probabilities are per 100 ticks; durations in ticks. */
export interface FaultIntensity {
  /** Chance per node per 100 ticks of a crash (restarted after a random duration). */
  crash: number;
  /** Chance per 100 ticks that a partition (of a random shape) starts, if none is in force. */
  partition: number;
  /** Chance per node per 100 ticks of a pause. */
  pause: number;
  /** Clock rates are drawn in [1 - clockSkew, 1 + clockSkew]. */
  clockSkew: number;
  drop: number;
  duplicate: number;
  reorder: number;
  /** Mean number of ticks a fault lasts. */
  meanDuration: number;
  /**
   * Chance per run that one targeted scenario (figure8, stale-read, snapshot-race; see scenarios.ts) is mixed
   * in, in a window of the run (`SCENARIO_WINDOW_TICKS`) where no other random crash, pause or partition starts.
   */
  scenario: number;
}

export type FaultLevel = 'none' | 'light' | 'heavy';

export const FAULT_LEVELS: Record<FaultLevel, FaultIntensity> = {
  none: { crash: 0, partition: 0, pause: 0, clockSkew: 0, drop: 0, duplicate: 0, reorder: 0, meanDuration: 0, scenario: 0 },
  light: { crash: 0.5, partition: 0.6, pause: 0.3, clockSkew: 0.1, drop: 0.01, duplicate: 0.01, reorder: 0.05, meanDuration: 30, scenario: 0 },
  heavy: { crash: 6, partition: 6, pause: 1, clockSkew: 0.3, drop: 0.08, duplicate: 0.03, reorder: 0.2, meanDuration: 15, scenario: 0.45 },
};

/** Ticks a random schedule keeps free of other faults after a scenario starts (scenarios stop at its end too). */
export const SCENARIO_WINDOW_TICKS = 160;

export type FaultOptions =
  | FaultLevel
  | ({ kind: 'random' } & Partial<FaultIntensity>)
  | { kind: 'scripted'; events: FaultEvent[] };

const NODE_ACTIONS = new Set(['isolate', 'crash', 'restart', 'pause', 'resume']);

/**
 * Validates a scripted schedule against the cluster; throws `FaultScheduleError` naming the event at fault.
 * Returns the events sorted by time (stable).
 */
export function validateSchedule(events: unknown, nodes: readonly NodeId[], ticks: number): FaultEvent[] {
  if (!Array.isArray(events)) throw new FaultScheduleError('a scripted fault schedule must be an array of { at, action } events');
  const known = new Set(nodes);
  events.forEach((ev: unknown, i) => {
    if (typeof ev !== 'object' || ev === null) throw new FaultScheduleError('an event must be an object { at, action }', i);
    const { at, action } = ev as { at?: unknown; action?: unknown };
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw new FaultScheduleError(`"at" must be a non-negative number of ticks, got ${String(at)}`, i);
    if (at > ticks) throw new FaultScheduleError(`"at" (${at}) is after the end of the run (${ticks} ticks)`, i);
    if (typeof action !== 'object' || action === null) throw new FaultScheduleError('"action" must be an object with a "type"', i);
    const a = action as Record<string, unknown>;
    const node = (v: unknown, what: string) => {
      if (typeof v !== 'string' || !known.has(v)) throw new FaultScheduleError(`${what} names node ${JSON.stringify(v)}, which does not exist (nodes: ${nodes.join(' ')})`, i);
    };
    const list = (v: unknown, what: string, min = 0) => {
      if (!Array.isArray(v) || v.length < min) throw new FaultScheduleError(`${a.type}: "${what}" must be a list of at least ${min} node ids`, i);
      v.forEach((x, j) => node(x, `${a.type}: ${what}[${j}]`));
      if (new Set(v).size !== v.length) throw new FaultScheduleError(`${a.type}: "${what}" lists a node twice`, i);
      return v as NodeId[];
    };
    const disjoint = (lists: NodeId[][]) => {
      const seen = new Set<NodeId>();
      for (const l of lists) for (const n of l) {
        if (seen.has(n)) throw new FaultScheduleError(`${a.type}: node ${n} appears in two groups`, i);
        seen.add(n);
      }
    };
    if (typeof a.type === 'string' && NODE_ACTIONS.has(a.type)) {
      node(a.node, `${a.type}: "node"`);
      return;
    }
    switch (a.type) {
      case 'partition': {
        if (!Array.isArray(a.groups) || a.groups.length === 0) throw new FaultScheduleError('partition: "groups" must be a non-empty list of node lists', i);
        disjoint(a.groups.map((g, j) => list(g, `groups[${j}]`, 1)));
        return;
      }
      case 'one-way':
        list(a.from, 'from', 1);
        list(a.to, 'to', 1);
        return;
      case 'bridge':
        node(a.bridge, 'bridge: "bridge"');
        disjoint([[a.bridge as NodeId], list(a.left, 'left', 1), list(a.right, 'right', 1)]);
        return;
      case 'quorum-loss':
        node(a.hub, 'quorum-loss: "hub"');
        return;
      case 'chained':
        list(a.chain, 'chain', 2);
        return;
      case 'links':
        if (!Array.isArray(a.links)) throw new FaultScheduleError('links: "links" must be a list of [a, b] pairs', i);
        a.links.forEach((pair, j) => {
          if (!Array.isArray(pair) || pair.length !== 2) throw new FaultScheduleError(`links: links[${j}] must be a pair [a, b]`, i);
          node(pair[0], `links: links[${j}][0]`);
          node(pair[1], `links: links[${j}][1]`);
        });
        return;
      case 'heal':
        return;
      case 'clock':
        node(a.node, 'clock: "node"');
        if (typeof a.rate !== 'number' || !(a.rate >= 0.1 && a.rate <= 10)) throw new FaultScheduleError(`clock: "rate" must be a number in [0.1, 10], got ${String(a.rate)}`, i);
        return;
      case 'network':
        validateLinkSettings(a.settings, `event #${i} network.settings`);
        return;
      case 'stall':
      case 'unstall':
        node(a.from, `${a.type}: "from"`);
        node(a.to, `${a.type}: "to"`);
        if (a.from === a.to) throw new FaultScheduleError(`${a.type}: "from" and "to" must differ`, i);
        return;
      case 'link':
        node(a.from, 'link: "from"');
        node(a.to, 'link: "to"');
        if (a.from === a.to) throw new FaultScheduleError('link: "from" and "to" must differ', i);
        if (a.settings !== null) validateLinkSettings(a.settings, `event #${i} link.settings`);
        return;
      case 'scenario':
        if (!SCENARIOS.includes(a.scenario as ScenarioName)) throw new FaultScheduleError(`scenario: unknown scenario ${JSON.stringify(a.scenario)} (expected ${SCENARIOS.join(', ')})`, i);
        return;
      default:
        throw new FaultScheduleError(`unknown action type ${JSON.stringify(a.type)}`, i);
    }
  });
  return (events as FaultEvent[]).map((e, i) => ({ e, i })).sort((x, y) => x.e.at - y.e.at || x.i - y.i).map((x) => x.e);
}

export function validateLinkSettings(s: unknown, what: string): asserts s is LinkSettings {
  if (typeof s !== 'object' || s === null) throw new FaultScheduleError(`${what} must be an object`);
  const o = s as Record<string, unknown>;
  for (const k of ['drop', 'duplicate', 'reorder']) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw new FaultScheduleError(`${what}.${k} must be a probability in [0, 1], got ${String(v)}`);
  }
  for (const k of Object.keys(o)) {
    if (!['drop', 'duplicate', 'reorder', 'delay'].includes(k)) throw new FaultScheduleError(`${what} has an unknown setting ${JSON.stringify(k)}`);
  }
  if (o.delay !== undefined) {
    const d = o.delay as Partial<DelayRange>;
    if (typeof d !== 'object' || d === null || typeof d.min !== 'number' || typeof d.max !== 'number' || !(d.min >= 0) || !(d.max >= d.min) || !Number.isFinite(d.max)) {
      throw new FaultScheduleError(`${what}.delay must be { min, max } milliseconds with 0 <= min <= max`);
    }
  }
}

export function resolveIntensity(faults: FaultOptions | undefined): FaultIntensity | undefined {
  if (faults === undefined) return FAULT_LEVELS.none;
  if (typeof faults === 'string') {
    const level = FAULT_LEVELS[faults as FaultLevel];
    if (level === undefined) throw new FaultScheduleError(`unknown fault level ${JSON.stringify(faults)} (expected none, light or heavy)`);
    return level;
  }
  if (typeof faults !== 'object' || faults === null) throw new FaultScheduleError('faults must be a level name or a { kind } object');
  if (faults.kind === 'scripted') return undefined;
  if (faults.kind !== 'random') throw new FaultScheduleError(`unknown fault kind ${JSON.stringify((faults as { kind?: unknown }).kind)} (expected random or scripted)`);
  const out: FaultIntensity = { ...FAULT_LEVELS.light };
  for (const [k, v] of Object.entries(faults)) {
    if (k === 'kind') continue;
    if (!(k in out)) throw new FaultScheduleError(`unknown fault intensity ${JSON.stringify(k)}`);
    const max = k === 'drop' || k === 'duplicate' || k === 'reorder' || k === 'scenario' ? 1 : k === 'clockSkew' ? 0.9 : Number.POSITIVE_INFINITY;
    if (typeof v !== 'number' || !(v >= 0 && v <= max)) throw new FaultScheduleError(`fault intensity ${k} must be a number in [0, ${max}], got ${String(v)}`);
    out[k as keyof FaultIntensity] = v;
  }
  return out;
}

/**
 * Draws a fault schedule from the seed: network settings and clock rates at time 0, then crashes, pauses
 * and partitions of random shapes with random durations, and a quiet tail (`quietFrom` on) where everything is
 * healed, restarted and resumed so pending work can finish. The result is an ordinary scripted schedule: it
 * is written to the trace and replays like one.
 */
export function randomSchedule(rng: Rng, nodes: readonly NodeId[], ticks: number, quietFrom: number, f: FaultIntensity, scenarioRng?: Rng): FaultEvent[] {
  const out: FaultEvent[] = [];
  // A targeted scenario, drawn from its own stream (so the other draws of a seed stay as they were), in a
  // window of its own: no random crash, pause or partition starts in it.
  let windowFrom = Number.POSITIVE_INFINITY;
  let windowTo = Number.NEGATIVE_INFINITY;
  if (scenarioRng !== undefined && f.scenario > 0 && scenarioRng.chance(f.scenario) && nodes.length >= 3) {
    // Figure 8 needs the most to line up (an old leader re-elected and cut off right after a commit): it gets
    // a third of the draws, the others a sixth each.
    const scenario = scenarioRng.chance(1 / 3) ? 'figure8' : scenarioRng.pick(SCENARIOS.filter((x) => x !== 'figure8'));
    windowFrom = Math.round(quietFrom * (0.1 + scenarioRng.next() * 0.3));
    // Scenarios last up to about 15 election timeouts of 10 ticks; random faults resume after that.
    windowTo = Math.min(quietFrom, windowFrom + SCENARIO_WINDOW_TICKS);
    out.push({ at: windowFrom, action: { type: 'scenario', scenario } });
  }
  if (f.drop > 0 || f.duplicate > 0 || f.reorder > 0) {
    out.push({ at: 0, action: { type: 'network', settings: { drop: f.drop, duplicate: f.duplicate, reorder: f.reorder } } });
  }
  if (f.clockSkew > 0) {
    for (const node of nodes) {
      const rate = Math.round((1 - f.clockSkew + rng.next() * 2 * f.clockSkew) * 1000) / 1000;
      out.push({ at: 0, action: { type: 'clock', node, rate } });
    }
  }
  const WINDOW = 10;
  const duration = () => Math.max(2, Math.round(f.meanDuration * (0.3 + rng.next() * 1.4)));
  const busyUntil = new Map<NodeId, number>();
  let partitionUntil = 0;
  for (let t = WINDOW; t < quietFrom; t += WINDOW) {
    // Faults drawn here last at most 1.7 mean durations: none may still be in force when the scenario starts.
    if (t + f.meanDuration * 1.7 >= windowFrom && t < windowTo) continue;
    for (const node of nodes) {
      if ((busyUntil.get(node) ?? 0) > t) continue;
      if (rng.chance((f.crash * WINDOW) / 100)) {
        // Half the crashes are quick restarts (a killed process brought back by its supervisor at once):
        // those catch state that was not made durable, such as a vote, within the same election.
        const end = Math.min(t + (rng.chance(0.5) ? rng.int(1, 3) : duration()), quietFrom);
        out.push({ at: t, action: { type: 'crash', node } }, { at: end, action: { type: 'restart', node } });
        busyUntil.set(node, end + 1);
      } else if (rng.chance((f.pause * WINDOW) / 100)) {
        const end = Math.min(t + Math.ceil(duration() / 2), quietFrom);
        out.push({ at: t, action: { type: 'pause', node } }, { at: end, action: { type: 'resume', node } });
        busyUntil.set(node, end + 1);
      }
    }
    if (partitionUntil <= t && rng.chance((f.partition * WINDOW) / 100)) {
      const end = Math.min(t + duration(), quietFrom);
      out.push({ at: t, action: randomPartition(rng, nodes) }, { at: end, action: { type: 'heal' } });
      partitionUntil = end + 1;
    }
  }
  out.push({ at: quietFrom, action: { type: 'heal' } });
  for (const node of nodes) {
    out.push({ at: quietFrom, action: { type: 'restart', node } }, { at: quietFrom, action: { type: 'resume', node } });
  }
  void ticks;
  return out.map((e, i) => ({ e, i })).sort((x, y) => x.e.at - y.e.at || x.i - y.i).map((x) => x.e);
}

function randomPartition(rng: Rng, nodes: readonly NodeId[]): FaultAction {
  const n = nodes.length;
  const shapes = n >= 3 ? ['split', 'one-way', 'isolate', 'bridge', 'quorum-loss', 'chained'] : ['split', 'one-way', 'isolate'];
  const shuffled = rng.sample(nodes, n);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [shuffled[i], shuffled[j]] = [shuffled[j] as NodeId, shuffled[i] as NodeId];
  }
  switch (rng.pick(shapes)) {
    case 'split': {
      const k = rng.int(1, Math.floor(n / 2));
      return { type: 'partition', groups: [shuffled.slice(0, k), shuffled.slice(k)] };
    }
    case 'one-way': {
      const node = shuffled[0] as NodeId;
      const rest = shuffled.slice(1);
      return rng.chance(0.5) ? { type: 'one-way', from: [node], to: rest } : { type: 'one-way', from: rest, to: [node] };
    }
    case 'isolate':
      return { type: 'isolate', node: shuffled[0] as NodeId };
    case 'bridge': {
      const rest = shuffled.slice(1);
      const k = Math.floor(rest.length / 2);
      return { type: 'bridge', bridge: shuffled[0] as NodeId, left: rest.slice(0, k), right: rest.slice(k) };
    }
    case 'quorum-loss':
      return { type: 'quorum-loss', hub: shuffled[0] as NodeId };
    default:
      return { type: 'chained', chain: shuffled };
  }
}

/**
 * The set of cut directed links (`from>to`) a partition action leaves in force. Actions are already validated.
 */
export function blockedLinks(action: FaultAction, nodes: readonly NodeId[]): Set<string> {
  const cut = new Set<string>();
  const allow = (ok: (a: NodeId, b: NodeId) => boolean) => {
    for (const a of nodes) for (const b of nodes) if (a !== b && !ok(a, b)) cut.add(`${a}>${b}`);
  };
  switch (action.type) {
    case 'partition': {
      const group = new Map<NodeId, number>();
      action.groups.forEach((g, i) => g.forEach((n) => group.set(n, i)));
      allow((a, b) => (group.get(a) ?? -1) === (group.get(b) ?? -1));
      break;
    }
    case 'one-way':
      for (const a of action.from) for (const b of action.to) if (a !== b) cut.add(`${a}>${b}`);
      break;
    case 'isolate':
      allow((a, b) => a !== action.node && b !== action.node);
      break;
    case 'bridge': {
      const left = new Set(action.left);
      const right = new Set(action.right);
      allow((a, b) => !((left.has(a) && right.has(b)) || (right.has(a) && left.has(b))));
      break;
    }
    case 'quorum-loss':
      allow((a, b) => a === action.hub || b === action.hub);
      break;
    case 'chained': {
      const pos = new Map(action.chain.map((n, i) => [n, i] as const));
      allow((a, b) => {
        const i = pos.get(a);
        const j = pos.get(b);
        return i !== undefined && j !== undefined && Math.abs(i - j) === 1;
      });
      break;
    }
    case 'links': {
      const ok = new Set(action.links.flatMap(([a, b]) => [`${a}>${b}`, `${b}>${a}`]));
      allow((a, b) => ok.has(`${a}>${b}`));
      break;
    }
    default:
      break;
  }
  return cut;
}

export function isPartitionAction(a: FaultAction): boolean {
  return ['partition', 'one-way', 'isolate', 'bridge', 'quorum-loss', 'chained', 'links', 'heal'].includes(a.type);
}

export function describeAction(a: FaultAction): string {
  switch (a.type) {
    case 'partition':
      return `partition ${a.groups.map((g) => `(${g.join(' ')})`).join(' | ')}`;
    case 'one-way':
      return `one-way (${a.from.join(' ')}) -/-> (${a.to.join(' ')})`;
    case 'bridge':
      return `bridge ${a.bridge} between (${a.left.join(' ')}) and (${a.right.join(' ')})`;
    case 'quorum-loss':
      return `quorum-loss hub=${a.hub}`;
    case 'chained':
      return `chained ${a.chain.join('-')}`;
    case 'links':
      return `links ${a.links.map(([x, y]) => `${x}-${y}`).join(' ')}`;
    case 'heal':
      return 'heal';
    case 'clock':
      return `clock ${a.node} x${a.rate}`;
    case 'network':
      return `network ${JSON.stringify(a.settings)}`;
    case 'scenario':
      return `scenario ${a.scenario}`;
    case 'stall':
    case 'unstall':
      return `${a.type} ${a.from}->${a.to}`;
    case 'link':
      return `link ${a.from}->${a.to} ${a.settings === null ? 'default' : JSON.stringify(a.settings)}`;
    default:
      return `${a.type} ${a.node}`;
  }
}
