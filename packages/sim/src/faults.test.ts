import { describe, expect, it } from 'vitest';
import { FAULT_LEVELS, blockedLinks, randomSchedule, validateSchedule, type FaultAction } from './faults';
import { Rng } from './rng';

const N5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** Which undirected pairs can talk both ways, as "a-b" strings, and which one-way links exist. */
function shape(action: FaultAction, nodes = N5) {
  const cut = blockedLinks(action, nodes);
  const both: string[] = [];
  const oneWay: string[] = [];
  for (const a of nodes) {
    for (const b of nodes) {
      if (a >= b) continue;
      const ab = !cut.has(`${a}>${b}`);
      const ba = !cut.has(`${b}>${a}`);
      if (ab && ba) both.push(`${a}-${b}`);
      else if (ab) oneWay.push(`${a}>${b}`);
      else if (ba) oneWay.push(`${b}>${a}`);
    }
  }
  return { both, oneWay };
}

describe('partition shapes', () => {
  it('symmetric partition: talk only within a group; unlisted nodes form one more group', () => {
    expect(shape({ type: 'partition', groups: [['n1', 'n2'], ['n3']] })).toEqual({ both: ['n1-n2', 'n4-n5'], oneWay: [] });
  });

  it('one-way: the listed direction is cut, the other works', () => {
    expect(shape({ type: 'one-way', from: ['n1'], to: ['n2', 'n3'] }, ['n1', 'n2', 'n3'])).toEqual({ both: ['n2-n3'], oneWay: ['n2>n1', 'n3>n1'] });
  });

  it('bridge: the two halves only meet through the bridge node', () => {
    const { both } = shape({ type: 'bridge', bridge: 'n3', left: ['n1', 'n2'], right: ['n4', 'n5'] });
    expect(both).toEqual(['n1-n2', 'n1-n3', 'n2-n3', 'n3-n4', 'n3-n5', 'n4-n5']);
  });

  it('quorum-loss: only the hub reaches everyone (OmniPaxos)', () => {
    expect(shape({ type: 'quorum-loss', hub: 'n2' }).both).toEqual(['n1-n2', 'n2-n3', 'n2-n4', 'n2-n5']);
  });

  it('chained: each node reaches only its neighbours (OmniPaxos)', () => {
    expect(shape({ type: 'chained', chain: ['n3', 'n1', 'n5'] }).both).toEqual(['n1-n3', 'n1-n5']);
  });

  it('links and heal', () => {
    expect(shape({ type: 'links', links: [['n1', 'n4']] }).both).toEqual(['n1-n4']);
    expect(shape({ type: 'heal' }).both.length).toBe(10);
    expect(shape({ type: 'isolate', node: 'n5' }).both).toEqual(['n1-n2', 'n1-n3', 'n1-n4', 'n2-n3', 'n2-n4', 'n3-n4']);
  });
});

describe('random schedules', () => {
  it('are a function of the seed, validate as scripted schedules, and end healed and restarted', () => {
    const a = randomSchedule(new Rng(9), N5, 400, 320, FAULT_LEVELS.heavy);
    const b = randomSchedule(new Rng(9), N5, 400, 320, FAULT_LEVELS.heavy);
    expect(a).toEqual(b);
    expect(randomSchedule(new Rng(10), N5, 400, 320, FAULT_LEVELS.heavy)).not.toEqual(a);
    expect(validateSchedule(a, N5, 400)).toEqual(a);
    const kinds = new Set(a.map((e) => e.action.type));
    for (const k of ['crash', 'restart', 'network', 'clock', 'heal']) expect(kinds).toContain(k);
    expect(a.filter((e) => e.at < 320).every((e) => e.at >= 0)).toBe(true);
    const tail = a.filter((e) => e.at === 320).map((e) => e.action.type);
    const restarted = new Set(a.filter((e) => e.at === 320 && e.action.type === 'restart').map((e) => (e.action as { node: string }).node));
    expect([...restarted].sort()).toEqual(N5);
    expect(tail).toContain('heal');
  });

  it('level none schedules nothing but the final heal', () => {
    const s = randomSchedule(new Rng(1), N5, 100, 80, FAULT_LEVELS.none);
    expect(s.every((e) => e.at === 80)).toBe(true);
  });

  it('draw partitions of every shape across seeds', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) for (const e of randomSchedule(new Rng(seed), N5, 400, 320, FAULT_LEVELS.heavy)) seen.add(e.action.type);
    for (const k of ['partition', 'one-way', 'isolate', 'bridge', 'quorum-loss', 'chained', 'pause', 'resume']) expect(seen).toContain(k);
  });
});
