import { describe, expect, it } from 'vitest';
import { seededRandom } from '@consensus-kit/core';
import { TestNetwork, type NodeOptions } from './network';

const enc = new TextEncoder();

interface Shape {
  name: string;
  ids: string[];
  options: NodeOptions;
}

const E = 10;
const SHAPES: Shape[] = [
  { name: '3 nodes, majorities', ids: ['a', 'b', 'c'], options: {} },
  { name: '5 nodes, majorities', ids: ['a', 'b', 'c', 'd', 'e'], options: {} },
  { name: '5 nodes, |Q2| = 2, |Q1| = 4', ids: ['a', 'b', 'c', 'd', 'e'], options: { phase2Quorum: 2 } },
  { name: '4 nodes, |Q2| = 2, |Q1| = 3', ids: ['a', 'b', 'c', 'd'], options: { phase2Quorum: 2 } },
  { name: '3 nodes, |Q2| = 1, |Q1| = 3', ids: ['a', 'b', 'c'], options: { phase2Quorum: 1 } },
  { name: '5 nodes, leases', ids: ['a', 'b', 'c', 'd', 'e'], options: { leaseReads: true } },
];

/**
 * Faults for a while (one-way and two-way link cuts, a paused node that neither ticks nor hears nor speaks, crashes
 * and restarts, leader transfers), then a quiet network: a single leader that every replica follows must emerge
 * within a bounded number of rounds and decide a new value everywhere. Returns the rounds the quiet phase took.
 */
function run(shape: Shape, seed: number): number {
  const r = seededRandom(seed); // replays exactly
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const net = new TestNetwork(shape.ids, { electionTicks: E, heartbeatTicks: 1 + Math.floor(r() * 3), ...shape.options }, seed);
  const ids = shape.ids;
  let paused: string | undefined;
  let counter = 0;
  const round = () => {
    for (const id of ids) if (id !== paused) net.tick(id);
    net.deliver();
  };
  for (let t = 0; t < 300; t++) {
    if (t % 7 === 0) {
      net.heal();
      for (const a of ids) for (const b of ids) if (a !== b && r() < 0.2) net.block(a, b);
      if (paused !== undefined && r() < 0.5) paused = undefined;
      if (paused === undefined && r() < 0.4) paused = r() < 0.7 ? (net.leader()?.id ?? pick(ids)) : pick(ids);
    }
    if (paused !== undefined) {
      for (const x of ids) {
        if (x === paused) continue;
        net.block(x, paused);
        net.block(paused, x);
      }
    }
    if (r() < 0.02) {
      const v = pick(ids);
      if (net.get(v).up) net.crash(v);
    }
    if (r() < 0.05) for (const v of ids) if (!net.get(v).up) net.restart(v);
    const l = net.leader();
    if (l !== undefined && l.id !== paused) {
      if (r() < 0.5) {
        try {
          l.node.propose(enc.encode(`v${counter++}`));
        } catch {
          // not taking proposals (a transfer in progress)
        }
      }
      if (r() < 0.02) {
        try {
          l.node.transferLeadership(pick(ids));
        } catch {
          // target not a voter
        }
      }
    }
    round();
  }
  net.heal();
  paused = undefined;
  for (const v of ids) if (!net.get(v).up) net.restart(v);
  const bound = 30 * E;
  for (let q = 1; q <= bound; q++) {
    round();
    const leaders = ids.filter((id) => net.get(id).node.status().role === 'leader');
    if (leaders.length !== 1) continue;
    const l = leaders[0] as string;
    if (!ids.every((id) => id === l || net.get(id).node.status().leader === l)) continue;
    const value = `final${seed}`;
    try {
      net.get(l).node.propose(enc.encode(value));
    } catch {
      continue;
    }
    for (let k = 0; k < 3 * E; k++) {
      round();
      if (ids.every((id) => net.get(id).applied.at(-1) === value)) return q + k;
    }
  }
  const roles = ids.map((id) => `${id}:${net.get(id).node.status().role}/${net.get(id).node.status().term}/${net.get(id).node.status().leader ?? '-'}`);
  throw new Error(`${shape.name}, seed ${seed}: no single leader deciding within ${bound} quiet rounds (${roles.join(' ')})`);
}

describe('break-it: a leader emerges within bounded rounds once faults stop', () => {
  for (const shape of SHAPES) {
    it(shape.name, () => {
      let worst = 0;
      for (let seed = 1; seed <= Number(process.env.BREAKIT_SEEDS ?? 20); seed++) worst = Math.max(worst, run(shape, seed));
      expect(worst).toBeLessThanOrEqual(30 * E + 3 * E);
      if (process.env.BREAKIT_VERBOSE) console.log(`${shape.name}: worst quiet rounds ${worst}`);
    });
  }
});
