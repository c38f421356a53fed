import { describe, expect, it } from 'vitest';
import { FAULT_LEVELS, SCENARIO_WINDOW_TICKS, randomSchedule, validateSchedule, type FaultEvent } from './faults';
import { Rng } from './rng';
import type { SCENARIOS } from './scenarios';
import { simulate } from './simulator';
import { DEFAULT_SNAPSHOT_EVERY, replayCommand, simulateOptions } from './sweep';
import { toy, toyInvariants } from './toy/index';

const N3 = ['n1', 'n2', 'n3'];

/** The trace's fault lines of one scripted run of `scenario` on the correct toy. */
function runScenario(scenario: (typeof SCENARIOS)[number], seed: number) {
  const events: FaultEvent[] = [{ at: 50, action: { type: 'scenario', scenario } }];
  const run = simulate({ protocol: toy, invariants: toyInvariants, seed, nodes: 3, ticks: 500, snapshotEvery: 20, faults: { kind: 'scripted', events }, trace: true });
  const lines = (run.trace ?? []).map((l) => JSON.parse(l) as { ev: string; action?: string; missedTicks?: number; between?: string; [k: string]: unknown });
  return { run, faults: lines.filter((e) => e.ev === 'fault').map((e) => e.action as string), lines };
}

describe('targeted scenarios', () => {
  it('figure8: the leader is cut off with a minority and crashes; the next leader is isolated and crashed; the old one restarts, is cut off after its first commit and crashes', () => {
    let full = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const { run, faults } = runScenario('figure8', seed);
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      // A calm network for the scenario, back to the run's settings when it stops.
      expect(faults[1]).toBe('network {"drop":0,"duplicate":0,"reorder":0}');
      expect(faults.at(-1)).toMatch(/^network /);
      expect(faults[2]).toMatch(/^partition \(n\d\) \| \(n\d n\d\)$/);
      expect(faults[3]).toMatch(/^crash n\d$/);
      const old = /crash (n\d)/.exec(faults[3] as string)?.[1];
      if (faults.some((f) => f.startsWith('one-way'))) {
        full++;
        expect(faults).toContain(`restart ${old}`);
        expect(faults.findIndex((f) => f.startsWith('isolate'))).toBeLessThan(faults.indexOf(`restart ${old}`));
      }
    }
    expect(full).toBeGreaterThanOrEqual(3);
  });

  it('stale-read: the leader is isolated and paused; on resume its clock jumps (missed ticks), then the partition heals', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const { run, faults, lines } = runScenario('stale-read', seed);
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      const node = /isolate (n\d)/.exec(faults[1] as string)?.[1];
      expect(faults).toContain(`pause ${node}`);
      expect(faults).toContain(`resume ${node}`);
      expect(faults.at(-1)).toBe('heal');
      expect(lines.find((e) => e.ev === 'resume')?.missedTicks).toBeGreaterThan(0);
    }
  });

  it('stale-read: the roaming clients leave the cut-off leader and a reader bound to it keeps asking it', () => {
    let readerOps = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const { run, faults, lines } = runScenario('stale-read', seed);
      const node = /isolate (n\d)/.exec(faults[1] as string)?.[1] as string;
      const steers = lines.filter((e) => e.ev === 'steer') as unknown as { unreachable: string[]; readers: string[] }[];
      expect(steers[0]).toMatchObject({ unreachable: [node], readers: [node] });
      expect(steers.at(-1)).toMatchObject({ unreachable: [], readers: [] });
      // Clients 0-2 roam; the reader bound to the old leader is client 3 and only reads.
      const reader = run.history.filter((op) => op.client === 3);
      expect(reader.every((op) => op.input.f === 'get')).toBe(true);
      readerOps += reader.length;
    }
    expect(readerOps).toBeGreaterThan(0);
  });

  it("stalled-leader: the leader's link to one follower stalls and its backlog arrives, in order, after the others elected a new leader", () => {
    let released = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const { run, faults, lines } = runScenario('stalled-leader', seed);
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      const stall = faults.find((f) => f.startsWith('stall '));
      const m = /^stall (n\d)->(n\d)$/.exec(stall ?? '');
      expect(m, faults.join(' / ')).not.toBeNull();
      const [, L, A] = m as unknown as [string, string, string];
      expect(faults[faults.indexOf(stall as string) + 1]).toMatch(/^links /);
      const unstallAt = lines.findIndex((e) => e.ev === 'fault' && e.action === `unstall ${L}->${A}`);
      if (unstallAt < 0) continue; // no new leader within the scenario's wait
      released++;
      // What L sent to A meanwhile was held, and arrives after the stall ends, in the order it was sent.
      const held = (lines as unknown as { ev: string; msg?: string; held?: boolean }[]).filter((e) => e.ev === 'send' && e.held === true).map((e) => e.msg);
      expect(held.length).toBeGreaterThan(0);
      const after = (lines.slice(unstallAt) as unknown as { ev: string; msg?: string }[]).filter((e) => e.ev === 'recv' && e.msg?.startsWith(`${L}->${A}`)).map((e) => e.msg);
      expect(after.slice(0, held.length)).toEqual(held);
      // A new leader was elected before the backlog arrived.
      const status = (lines.slice(0, unstallAt) as unknown as { ev: string; status?: string }[]).filter((e) => e.ev === 'status' && / leader /.test(e.status ?? ''));
      expect(status.some((e) => !(e.status as string).startsWith(L))).toBe(true);
    }
    expect(released).toBeGreaterThanOrEqual(3);
  });

  it('lagging-acks: a follower keeps up while its answers arrive late, then restarts while the leader holds a snapshot it has not taken', () => {
    let second = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const { run, faults } = runScenario('lagging-acks', seed);
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      const F = /^crash (n\d)$/.exec(faults[2] as string)?.[1];
      expect(F).toBeDefined();
      expect(faults[3]).toBe(`restart ${F}`);
      expect(faults[4]).toMatch(new RegExp(`^link ${F}->n\\d \\{"delay"`));
      if (faults.filter((f) => f === `crash ${F}`).length === 2) second++;
      // Every link it changed is back to the defaults.
      for (const f of faults.filter((x) => x.startsWith('link ') && !x.endsWith('default'))) {
        const link = f.split(' ')[1];
        expect(faults.lastIndexOf(`link ${link} default`)).toBeGreaterThan(faults.indexOf(f));
      }
    }
    expect(second).toBeGreaterThan(0);
  });

  it('snapshot-race: slow and lossy links to and from a follower, a restart of it, the leader crashes; the links go back to the defaults', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const { run, faults } = runScenario('snapshot-race', seed);
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      const set = faults.filter((f) => f.startsWith('link') && !f.endsWith('default'));
      const reset = faults.filter((f) => f.startsWith('link') && f.endsWith('default'));
      expect(set).toHaveLength(2);
      expect(reset.length).toBeGreaterThanOrEqual(2);
      expect(faults.some((f) => f.startsWith('crash'))).toBe(true);
    }
  });

  it('a scenario cut short by the quiet tail of a random schedule puts its links back to the defaults', () => {
    // Heavy seeds: whenever a run changed a link, it set it back before the end.
    let seen = 0;
    for (let seed = 1; seed <= 60 && seen < 3; seed++) {
      const run = simulate({ protocol: toy, invariants: toyInvariants, seed, nodes: 3, faults: 'heavy', snapshotEvery: 20, trace: true });
      const faults = (run.trace ?? []).map((l) => JSON.parse(l) as { ev: string; action?: string }).filter((e) => e.ev === 'fault').map((e) => e.action as string);
      const links = new Map<string, boolean>();
      for (const f of faults) {
        const m = /^link (\S+) (.*)$/.exec(f);
        if (m) links.set(m[1] as string, m[2] !== 'default');
      }
      if (links.size > 0) seen++;
      for (const [link, changed] of links) expect(changed, `seed ${seed} ${link}`).toBe(false);
    }
    expect(seen).toBeGreaterThan(0);
  });

  it('heavy random schedules mix a scenario into about 45% of the seeds (a third of them figure8), with no other crash, pause or partition in its window; light ones never', () => {
    let withScenario = 0;
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= 200; seed++) {
      const events = randomSchedule(new Rng(seed).fork('faults'), N3, 400, 340, FAULT_LEVELS.heavy, new Rng(seed).fork('scenario'));
      const sc = events.find((e) => e.action.type === 'scenario');
      if (sc === undefined) continue;
      withScenario++;
      const kind = (sc.action as { scenario: string }).scenario;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const inWindow = events.filter((e) => e.at >= sc.at && e.at < Math.min(340, sc.at + SCENARIO_WINDOW_TICKS) && ['crash', 'pause', 'partition', 'isolate', 'one-way', 'bridge', 'quorum-loss', 'chained'].includes(e.action.type));
      expect(inWindow).toEqual([]);
      const light = randomSchedule(new Rng(seed).fork('faults'), N3, 400, 340, FAULT_LEVELS.light, new Rng(seed).fork('scenario'));
      expect(light.some((e) => e.action.type === 'scenario')).toBe(false);
    }
    expect(withScenario).toBeGreaterThan(70);
    expect(withScenario).toBeLessThan(110);
    expect(kinds.get('figure8')).toBeGreaterThan(withScenario / 5);
    for (const k of ['stale-read', 'snapshot-race', 'stalled-leader', 'lagging-acks']) expect(kinds.get(k), k).toBeGreaterThan(3);
  });

  it('scripted schedules: an unknown scenario or a link to itself is a FaultScheduleError', () => {
    expect(() => validateSchedule([{ at: 1, action: { type: 'scenario', scenario: 'figure9' } }], N3, 100)).toThrow(/unknown scenario "figure9"/);
    expect(() => validateSchedule([{ at: 1, action: { type: 'link', from: 'n1', to: 'n1', settings: null } }], N3, 100)).toThrow(/must differ/);
    expect(() => validateSchedule([{ at: 1, action: { type: 'link', from: 'n1', to: 'n9', settings: null } }], N3, 100)).toThrow(/n9/);
    expect(() => validateSchedule([{ at: 1, action: { type: 'link', from: 'n1', to: 'n2', settings: { drop: 2 } } }], N3, 100)).toThrow(/drop/);
  });

  it('a link action changes one direction only', () => {
    const events: FaultEvent[] = [{ at: 0, action: { type: 'link', from: 'n1', to: 'n2', settings: { drop: 1 } } }];
    const run = simulate({ protocol: toy, seed: 3, nodes: 3, ticks: 200, faults: { kind: 'scripted', events }, trace: true });
    const recv = (run.trace ?? []).map((l) => JSON.parse(l) as { ev: string; msg?: string }).filter((e) => e.ev === 'recv').map((e) => e.msg as string);
    expect(recv.some((m) => /^n1->n2 /.test(m))).toBe(false);
    expect(recv.some((m) => /^n2->n1 /.test(m))).toBe(true);
  });
});

describe('snapshots and crashes around them', () => {
  it('a crash of the random schedule can strike between a snapshot write and the log compaction, and the run goes on from there', () => {
    let between = 0;
    for (let seed = 1; seed <= 80 && between === 0; seed++) {
      const run = simulate({ protocol: toy, invariants: toyInvariants, seed, nodes: 3, faults: 'heavy', snapshotEvery: 10, trace: true });
      expect(run.ok, `seed ${seed}: ${run.violation?.message}`).toBe(true);
      between += (run.trace ?? []).filter((l) => l.includes('"between":"snapshot-and-compaction"')).length;
    }
    expect(between).toBeGreaterThan(0);
  });

  it('sweeps snapshot every 25 entries unless told otherwise; 0 turns it off and the replay command says so', async () => {
    const { resolveProtocol } = await import('./resolve-protocol');
    const protocol = await resolveProtocol('toy');
    expect(DEFAULT_SNAPSHOT_EVERY).toBe(25);
    expect(simulateOptions({ protocol }, 1, false).snapshotEvery).toBe(25);
    expect(simulateOptions({ protocol, snapshotEvery: 0 }, 1, false).snapshotEvery).toBeUndefined();
    expect(simulateOptions({ protocol, snapshotEvery: 7 }, 1, false).snapshotEvery).toBe(7);
    expect(replayCommand({ protocol }, 4)).toBe('pnpm sim --protocol toy --seed 4');
    expect(replayCommand({ protocol, snapshotEvery: 25 }, 4)).toBe('pnpm sim --protocol toy --seed 4');
    expect(replayCommand({ protocol, snapshotEvery: 0 }, 4)).toBe('pnpm sim --protocol toy --seed 4 --snapshot-every 0');
  });
});
