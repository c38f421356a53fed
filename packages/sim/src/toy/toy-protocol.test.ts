import { describe, expect, it } from 'vitest';
import type { FaultOptions } from '../faults';
import type { SimView } from '../invariant';
import { simulate, type SimResult } from '../simulator';
import { createToyModule, toy, toyInvariants, type ToyFlaws } from './index';

/** The first seed in 1..limit whose run fails `caught`, with its result. */
function firstCaught(flaws: ToyFlaws, faults: FaultOptions, limit: number, caught: (r: SimResult) => boolean, nodes = 3) {
  const module = createToyModule(flaws, 'broken-toy');
  for (let seed = 1; seed <= limit; seed++) {
    const r = simulate({ protocol: module, seed, faults, nodes, invariants: toyInvariants });
    if (caught(r)) return { seed, result: r };
  }
  return undefined;
}

/** Crash-and-partition heavy: quick restarts land inside elections, where a forgotten vote matters. */
const ELECTION_STORM: FaultOptions = { kind: 'random', crash: 8, meanDuration: 10, partition: 8, drop: 0.1 };

describe('the simulator catches known bugs in the toy protocol', () => {
  it('commits on one ack: caught by the log-agreement invariant within 200 seeds', () => {
    const found = firstCaught({ commitOnOneAck: true }, 'heavy', 200, (r) => r.violation?.kind === 'invariant');
    expect(found).toBeDefined();
    expect(['log-agreement', 'acknowledged-not-lost']).toContain(found!.result.violation!.name);
    // The same seed and faults with the correct protocol pass: the bug, not the setting, fails the run.
    const control = simulate({ protocol: toy, seed: found!.seed, faults: 'heavy', invariants: toyInvariants });
    expect(control.violation).toBeUndefined();
  });

  it('forgets its vote on restart: caught by election safety within 200 seeds of heavy faults', () => {
    const found = firstCaught({ forgetVoteOnRestart: true }, 'heavy', 200, (r) => !r.ok);
    expect(found).toBeDefined();
    expect(found!.result.violation).toMatchObject({ kind: 'invariant', name: 'election-safety' });
    expect(found!.result.violation!.message).toMatch(/two leaders in term \d+/);
    const control = simulate({ protocol: toy, seed: found!.seed, faults: 'heavy', invariants: toyInvariants });
    expect(control.violation).toBeUndefined();
  });

  it('both bugs together: caught within 200 seeds', () => {
    expect(firstCaught({ commitOnOneAck: true, forgetVoteOnRestart: true }, 'light', 200, (r) => !r.ok)).toBeDefined();
  });

  it('reads served locally without a barrier: caught by the linearizability checker within a few seeds', () => {
    const found = firstCaught({ localReads: true }, 'light', 10, (r) => !r.ok);
    expect(found).toBeDefined();
    const r = found!.result;
    expect(r.violation!.kind).toBe('linearizability');
    expect(r.check?.result).toBe('illegal');
    if (r.check?.result !== 'illegal') return;
    const cx = r.check.ops;
    expect(cx.length).toBeGreaterThanOrEqual(2);
    // Shrunk, but closed under "saw the value of": a stale read of a list keeps every append it returned.
    expect(cx.length).toBeLessThan(r.history.length / 4);
    expect(cx.some((op) => op.input.f === 'get')).toBe(true);
    const control = simulate({ protocol: toy, seed: found!.seed, faults: 'light', invariants: toyInvariants });
    expect(control.ok).toBe(true);
  });

  it('the correct toy passes the election-storm profile on 60 seeds', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = simulate({ protocol: toy, seed, faults: ELECTION_STORM, invariants: toyInvariants });
      expect(r.violation, `seed ${seed}`).toBeUndefined();
    }
  });
});

describe('snapshots', () => {
  it('replicas compact their logs, lagging followers catch up by snapshot, restarts restore from it', () => {
    let installs = 0;
    let restoredRestarts = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = simulate({ protocol: toy, seed, faults: 'heavy', nodes: 5, snapshotEvery: 10, invariants: toyInvariants, trace: true });
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      for (const line of r.trace!) {
        const ev = JSON.parse(line) as { ev: string; applied?: number };
        if (ev.ev === 'restore') installs++;
        if (ev.ev === 'restart' && (ev.applied ?? 0) > 0) restoredRestarts++;
      }
    }
    expect(installs).toBeGreaterThan(0);
    expect(restoredRestarts).toBeGreaterThan(0);
  });
});

describe('the toy speaks the r2 contract', () => {
  it('reports a neutral status, its progress in protocol-owned details', () => {
    const statuses: { role: string; details?: Record<string, unknown> }[] = [];
    const watch = {
      name: 'watch',
      check(view: SimView) {
        for (const r of view.replicas) {
          const s = r.status();
          if (s !== undefined) statuses.push(s);
        }
        return undefined;
      },
    };
    simulate({ protocol: toy, seed: 2, ticks: 100, invariants: [watch] });
    expect(new Set(statuses.map((s) => s.role))).toEqual(new Set(['leader', 'follower', 'candidate']));
    const leader = statuses.find((s) => s.role === 'leader')!;
    expect(Object.keys(leader.details!.progress as object).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(statuses.filter((s) => s.role !== 'leader').every((s) => s.details === undefined)).toBe(true);
  });

  it('declares and validates its options', () => {
    expect(Object.keys(toy.options)).toEqual(['maxBatch']);
    expect(toy.parseOptions({ maxBatch: 3 })).toEqual({ maxBatch: 3 });
    expect(toy.parseOptions(undefined)).toEqual({});
    expect(() => toy.parseOptions({ maxBatch: 1.5 })).toThrow(/maxBatch must be an integer/);
  });
});
