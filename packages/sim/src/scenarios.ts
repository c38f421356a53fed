import type { NodeId } from '@consensus-kit/core';
import type { FaultAction } from './faults';
import type { Rng } from './rng';
import type { ClientSteer } from './workload';

/**
 * Targeted fault scenarios: short scripts that react to the cluster (who leads now, who was elected next) to
 * reach the interleavings behind the classic consensus bugs, which independent random faults almost never
 * line up. A random schedule mixes one in with some probability (`FaultIntensity.scenario`); a scripted one
 * starts one with `{ type: 'scenario', scenario }`. They only speak the `ProtocolModule` contract (the status
 * role and term), so they apply to any protocol. Every fault they cause is traced like any other; the network
 * settings and links a scenario changes go back to what they were when it stops.
 *
 * - `figure8` (Raft paper Figure 8 / thesis 3.6.2): the leader is cut off with a minority and crashes after
 *   replicating entries to that minority only; the majority elects a new leader, which is cut off and crashed
 *   at once, before it replicates much; the old leader restarts and may be re-elected with its old-term entries,
 *   re-replicates them, and crashes again soon after; the second leader comes back and may be re-elected.
 * - `stale-read`: the leader is isolated and its process paused; the others elect a new leader and commit
 *   writes; the old leader resumes (its clock jumps, see `resume`) while clients still send it reads, then
 *   the partition heals.
 * - `snapshot-race`: a follower is cut off long enough for the others to snapshot and compact past it, then
 *   reconnected over a network that reorders and duplicates, so its snapshot catch-up races new appends; it
 *   crash-restarts during the catch-up, and then the third replica is cut off (commits need the caught-up
 *   follower) and the leader crashes.
 * - `stalled-leader`: the leader is cut off from all but one follower A, and its link to A stalls (a hung TCP
 *   connection: what it sends waits there). The others elect a new leader, A with them, and commit writes
 *   from clients on their side while a reader bound to the old leader keeps asking it. Then the stall ends:
 *   the old leader's backlog (proposals and heartbeats of its old term or ballot) reaches A, which has promised
 *   the new leader, and A's answers reach the old leader, which may not know yet that it was deposed.
 * - `lagging-acks`: a follower F's answers take the long way for a while, so the leader's view of what F holds
 *   freezes while F keeps up (and the leader snapshots and compacts past that view); then F crash-restarts,
 *   coming back with its log but not its commit index (volatile), and its new answers overtake the old ones: the
 *   leader, going by the stale view, may send F a snapshot of entries F already holds, with more after them
 *   (Raft paper Figure 13 rule 6, thesis 5.3).
 *
 * In `stale-read` and `stalled-leader` the clients take sides (`ClientSteer`): the roaming ones cannot reach the
 * old leader while it is cut off, and a reader bound to it stays, as a Jepsen client bound to that node would.
 */
export type ScenarioName = 'figure8' | 'stale-read' | 'snapshot-race' | 'stalled-leader' | 'lagging-acks';

export const SCENARIOS: readonly ScenarioName[] = ['figure8', 'stale-read', 'snapshot-race', 'stalled-leader', 'lagging-acks'];

/** What a scenario script sees of the run and may do to it. */
export interface ScenarioHost {
  readonly nodes: readonly NodeId[];
  readonly rng: Rng;
  /** Election timeout in ticks the scenario assumes (the `electionTicks` option, else 10). */
  readonly electionTicks: number;
  /** Milliseconds of simulated time per tick. */
  readonly tickMs: number;
  /** The up replica that reports itself leader with the highest term, if any. */
  leader(): { id: NodeId; term: number } | undefined;
  /** A replica's commit index (its status), undefined while it is down. */
  commitIndex(id: NodeId): number | undefined;
  /** The index of a replica's durable snapshot (0 without one). */
  snapshotIndex(id: NodeId): number;
  /** The last index of a replica's durable log. */
  lastIndex(id: NodeId): number;
  fault(action: FaultAction): void;
  /** Places the clients (see `ClientSteer`); they go back to roaming when the scenario ends. */
  steer(s: ClientSteer): void;
}

/** A scenario step waits this many ticks, or until `until()` holds (checked after every step) for at most `ticks`. */
export interface ScenarioWait {
  ticks: number;
  until?: () => boolean;
}

export type ScenarioScript = Generator<ScenarioWait, void, void>;

export function startScenario(name: ScenarioName, h: ScenarioHost): ScenarioScript {
  switch (name) {
    case 'figure8':
      return figure8(h);
    case 'stale-read':
      return staleRead(h);
    case 'snapshot-race':
      return snapshotRace(h);
    case 'stalled-leader':
      return stalledLeader(h);
    case 'lagging-acks':
      return laggingAcks(h);
  }
}

function* awaitLeader(h: ScenarioHost, ticks: number, other?: (l: { id: NodeId; term: number }) => boolean): Generator<ScenarioWait, { id: NodeId; term: number } | undefined, void> {
  const ok = () => {
    const l = h.leader();
    return l !== undefined && (other === undefined || other(l));
  };
  if (!ok()) yield { ticks, until: ok };
  const l = h.leader();
  return l !== undefined && (other === undefined || other(l)) ? l : undefined;
}

function* figure8(h: ScenarioHost): ScenarioScript {
  const E = h.electionTicks;
  const n = h.nodes.length;
  if (n < 3) return;
  const first = yield* awaitLeader(h, 3 * E);
  if (first === undefined) return;
  const L = first.id;
  // A calm network: every step below depends on which messages get through before a cut or a crash, which
  // random loss and reordering would decide instead (the settings come back when the scenario stops).
  h.fault({ type: 'network', settings: { drop: 0, duplicate: 0, reorder: 0 } });
  const others = h.rng.sample(h.nodes.filter((x) => x !== L), n - 1);
  // A minority with the leader: what it replicates there is not committed.
  const minority = [L, ...others.slice(0, Math.floor(n / 2) - 1)];
  const majority = h.nodes.filter((x) => !minority.includes(x));
  h.fault({ type: 'partition', groups: [minority, majority] });
  yield { ticks: h.rng.int(1, 6) };
  h.fault({ type: 'crash', node: L });
  // The majority elects a second leader; cut it off at once (it may have sent a little), then crash it.
  const second = yield* awaitLeader(h, 4 * E, (l) => l.id !== L && l.term > first.term);
  if (second === undefined) return;
  const L2 = second.id;
  h.fault({ type: 'isolate', node: L2 });
  yield { ticks: h.rng.int(0, 2) };
  h.fault({ type: 'crash', node: L2 });
  h.fault({ type: 'restart', node: L });
  h.fault({ type: 'partition', groups: [h.nodes.filter((x) => x !== L2), [L2]] });
  // The old leader may win again with its old-term entries and re-replicate them. Cut its outbound links at a
  // random instant of that catch-up (acknowledgements still reach it), so the others hold a random prefix of
  // what it sends, then crash it.
  const third = yield* awaitLeader(h, 4 * E, (l) => l.term > second.term);
  if (third !== undefined) {
    // Mostly right after its first commit in the new term (a crash point right after a commit decision).
    const c0 = h.commitIndex(third.id) ?? 0;
    if (h.rng.chance(0.7)) yield { ticks: 3, until: () => (h.commitIndex(third.id) ?? 0) > c0 };
    else yield { ticks: h.rng.next() * 0.8 };
    h.fault({ type: 'one-way', from: [third.id], to: h.nodes.filter((x) => x !== third.id) });
    yield { ticks: h.rng.int(1, 3) };
    h.fault({ type: 'crash', node: third.id });
  }
  h.fault({ type: 'restart', node: L2 });
  h.fault({ type: 'heal' });
  yield { ticks: h.rng.int(2, 3 * E) };
  if (third !== undefined) h.fault({ type: 'restart', node: third.id });
}

function* staleRead(h: ScenarioHost): ScenarioScript {
  const E = h.electionTicks;
  const first = yield* awaitLeader(h, 3 * E);
  if (first === undefined || h.nodes.length < 3) return;
  const L = first.id;
  h.fault({ type: 'isolate', node: L });
  h.steer({ unreachable: [L], readers: [L] });
  yield { ticks: h.rng.int(0, 2) };
  h.fault({ type: 'pause', node: L });
  // Others elect a leader and commit writes meanwhile; clients that knew L keep sending it requests. A short
  // pause leaves L believing it leads for a while after it resumes; a long one makes its clock jump past that.
  let next: { id: NodeId; term: number } | undefined;
  if (h.rng.chance(0.5)) {
    yield { ticks: h.rng.int(1, E) };
  } else {
    next = yield* awaitLeader(h, 4 * E, (l) => l.id !== L && l.term > first.term);
    yield { ticks: next === undefined ? 0 : h.rng.int(1, 2 * E) };
  }
  // A replica that promised (voted for) the new leader restarts: what it had not made durable is gone.
  const bystanders = h.nodes.filter((x) => x !== L && x !== next?.id);
  if (bystanders.length > 0 && h.rng.chance(0.5)) {
    const A = h.rng.pick(bystanders);
    h.fault({ type: 'crash', node: A });
    yield { ticks: h.rng.int(1, 2) };
    h.fault({ type: 'restart', node: A });
  }
  h.fault({ type: 'resume', node: L });
  // The old leader comes back soon (its messages may still reach the others before it learns of the new
  // leader), or after a while.
  yield { ticks: h.rng.chance(0.5) ? h.rng.int(0, 3) : h.rng.int(2 * E, 6 * E) };
  h.fault({ type: 'heal' });
  h.steer({ unreachable: [], readers: [] });
}

function* stalledLeader(h: ScenarioHost): ScenarioScript {
  const E = h.electionTicks;
  const first = yield* awaitLeader(h, 3 * E);
  if (first === undefined || h.nodes.length < 3) return;
  const L = first.id;
  h.fault({ type: 'network', settings: { drop: 0, duplicate: 0, reorder: 0 } });
  const A = h.rng.pick(h.nodes.filter((x) => x !== L));
  const rest = h.nodes.filter((x) => x !== L);
  const clique = (ids: readonly NodeId[]): [NodeId, NodeId][] => ids.flatMap((a, i) => ids.slice(i + 1).map((b) => [a, b] as [NodeId, NodeId]));
  // What L sends to A from now on waits in the stall; L hears from no one (A has nothing to answer).
  h.fault({ type: 'stall', from: L, to: A });
  h.fault({ type: 'links', links: [...clique(rest), [L, A]] });
  yield { ticks: h.rng.int(0, 1) };
  h.steer({ unreachable: [L], readers: [L] });
  // The others elect a leader (A promises it) and, mostly, commit a few writes first.
  const next = yield* awaitLeader(h, 3 * E, (l) => l.id !== L && l.term > first.term);
  if (next === undefined) return;
  // Mostly the stall ends soon, so the backlog may reach A while L still believes it leads; otherwise later, so
  // the reader bound to L asks it for a while after the new leader committed writes (L's lease, if any, and its
  // check-quorum timer are what stop it then).
  yield { ticks: h.rng.chance(0.6) ? h.rng.int(0, 4) : h.rng.int(E / 2, 2 * E) };
  // The stall ends: L's backlog reaches A, and A's answers reach L.
  h.fault({ type: 'unstall', from: L, to: A });
  yield { ticks: h.rng.int(1, E) };
  h.fault({ type: 'heal' });
  h.steer({ unreachable: [], readers: [] });
}

function* snapshotRace(h: ScenarioHost): ScenarioScript {
  const E = h.electionTicks;
  const first = yield* awaitLeader(h, 3 * E);
  if (first === undefined || h.nodes.length < 3) return;
  const L = first.id;
  const followers = h.nodes.filter((x) => x !== L);
  const F = h.rng.pick(followers);
  const others = followers.filter((x) => x !== F);
  const ms = h.tickMs;
  // F's acknowledgements crawl back and overtake each other, and appends to it are slow and lossy: the
  // leader's view of F falls behind what F holds, a rejection (after a lost append) overtakes older
  // acknowledgements, and the leader, which compacted meanwhile, starts a snapshot for F while F holds
  // entries past it; late acknowledgements switch it back to appends, racing the snapshot in flight.
  h.fault({ type: 'link', from: F, to: L, settings: { delay: { min: 1, max: h.rng.int(2, 2 * E) * ms }, reorder: 0.3 } });
  h.fault({ type: 'link', from: L, to: F, settings: { delay: { min: 1, max: h.rng.int(1, 4) * ms }, drop: 0.1 + h.rng.next() * 0.2, reorder: 0.3 } });
  yield { ticks: h.rng.int(2 * E, 6 * E) };
  // Commits now need F; F restarts (its commit index is volatile) while the snapshot may still be in flight.
  h.fault({ type: 'partition', groups: [[L, F], others] });
  yield { ticks: h.rng.int(0, 2 * E) };
  h.fault({ type: 'crash', node: F });
  yield { ticks: h.rng.int(1, 3) };
  h.fault({ type: 'restart', node: F });
  yield { ticks: h.rng.int(1, 4 * E) };
  // The leader goes; the others come back and elect with F.
  h.fault({ type: 'crash', node: L });
  h.fault({ type: 'link', from: F, to: L, settings: null });
  h.fault({ type: 'link', from: L, to: F, settings: null });
  h.fault({ type: 'heal' });
  yield { ticks: h.rng.int(2 * E, 4 * E) };
  h.fault({ type: 'restart', node: L });
}

function* laggingAcks(h: ScenarioHost): ScenarioScript {
  const E = h.electionTicks;
  const first = yield* awaitLeader(h, 3 * E);
  if (first === undefined || h.nodes.length < 3) return;
  const L = first.id;
  h.fault({ type: 'network', settings: { drop: 0, duplicate: 0, reorder: 0 } });
  const F = h.rng.pick(h.nodes.filter((x) => x !== L));
  // A restart first: F replays its log in one batch, so its snapshots no longer fall on the leader's indexes.
  h.fault({ type: 'crash', node: F });
  yield { ticks: h.rng.int(1, 2) };
  h.fault({ type: 'restart', node: F });
  yield { ticks: 3 * E, until: () => (h.commitIndex(F) ?? 0) >= (h.commitIndex(L) ?? 0) - 1 };
  const late = h.rng.int(4 * E, 6 * E) * h.tickMs;
  h.fault({ type: 'link', from: F, to: L, settings: { delay: { min: late, max: late } } });
  // Appends reach F in order (a fixed delay), so F keeps up without a gap it would have to report.
  const d = h.tickMs / 5;
  h.fault({ type: 'link', from: L, to: F, settings: { delay: { min: d, max: d } } });
  // The leader goes on with the others: it commits, applies, snapshots and compacts past what it knows of F.
  yield { ticks: h.rng.int(2 * E, 4 * E) };
  // F goes down while the leader holds a snapshot F has not taken (yet) and F's log holds that snapshot's last
  // entry and more: F comes back with a commit index (its own snapshot's) below the leader's snapshot.
  const ready = () => h.snapshotIndex(L) > h.snapshotIndex(F) && h.lastIndex(F) > h.snapshotIndex(L);
  yield { ticks: 8 * E, until: ready };
  if (!ready()) return;
  h.fault({ type: 'crash', node: F });
  h.fault({ type: 'link', from: F, to: L, settings: null });
  h.fault({ type: 'link', from: L, to: F, settings: null });
  yield { ticks: h.rng.int(1, 2) };
  h.fault({ type: 'restart', node: F });
  // F rejects the leader's next append (those sent while it was down are lost); its answer arrives before the
  // old ones still on the way.
  yield { ticks: h.rng.int(2 * E, 4 * E) };
}
