import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { paxos } from '@consensus-kit/paxos';
import { raft } from '@consensus-kit/raft';
import { simulate, type ClientOp, type SimResult } from '@consensus-kit/sim';
import type { LockCommand, LockResult } from '../src/commands';
import type { LockStateMachineOptions } from '../src/lock-state-machine';
import { LockReplica, lockServiceSimulation, type LockServiceWorkloadOptions } from './lock-service-workload';

const SEEDS = Number(process.env.LOCK_SIM_SEEDS ?? 100);
const FROM = Number(process.env.LOCK_SIM_FROM ?? 1);
const TICKS = 800;

type Protocol = typeof raft | typeof paxos;

function run(protocol: Protocol, seed: number, options: Parameters<typeof lockServiceSimulation>[0] = {}, faults: 'none' | 'heavy' = 'heavy') {
  const sim = lockServiceSimulation(options);
  const result = simulate<ClientOp>({ protocol, seed, faults, nodes: 3, ticks: TICKS, snapshotEvery: 40, ...sim });
  return { result, workload: sim.last() };
}

function firstFailure(options: LockServiceWorkloadOptions & { replica?: (o: LockStateMachineOptions) => LockReplica }, seeds: number) {
  for (let seed = 1; seed <= seeds; seed++) {
    const { result } = run(raft, seed, options);
    if (!result.ok) return { seed, violation: result.violation };
  }
  return undefined;
}

function describeFailure(r: SimResult<ClientOp>, protocol: string): string {
  return `${protocol} seed ${r.seed}: ${r.violation?.kind} ${r.violation?.name}: ${r.violation?.message}\n  replay: LOCK_SIM_SEEDS=1 LOCK_SIM_FROM=${r.seed} npx vitest run test/lock-service`;
}

/** Replicated time that runs twice as fast as the leader's clock: sessions expire on a clock of their own. */
class FastClock extends LockReplica {
  override timeEntry(term: number, clockMs: number): Uint8Array {
    return super.timeEntry(term, clockMs * 2);
  }
}

/** Tokens that go down from one grant to the next (a per-replica counter would be no better). */
class FallingTokens extends LockReplica {
  protected override run(entry: LogEntry, cmd: LockCommand): { ok: LockResult } | { error: string } {
    const out = super.run(entry, cmd);
    if ('error' in out) return out;
    const flip = (t: number) => 1_000_000 - t;
    const r = { ...out.ok, events: out.ok.events.map((e) => ('token' in e ? { ...e, token: flip(e.token) } : e)) } as LockResult;
    if (r.op === 'acquire' && r.status === 'granted') r.token = flip(r.token);
    return { ok: r };
  }
}

describe('lock service under the simulator: mutual exclusion with fencing', () => {
  it('without faults: clients take turns, write through the fenced resource, and nothing is refused', () => {
    const { result, workload } = run(raft, 1, {}, 'none');
    expect(result.ok, result.violation?.message).toBe(true);
    const s = workload!.summary();
    expect(s.grants).toBeGreaterThan(10);
    expect(s.accepted).toBeGreaterThan(10);
  });

  it('under heavy faults the runs exercise kills, pauses, isolated holders, aborts, expiries and refused stale writes', () => {
    const total = { grants: 0, kills: 0, pauses: 0, aborts: 0, expiries: 0, refused: 0, isolations: 0 };
    for (let seed = 1; seed <= 10; seed++) {
      const { result, workload } = run(raft, seed);
      expect(result.ok, result.violation?.message).toBe(true);
      const s = workload!.summary();
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += s[k];
    }
    for (const v of Object.values(total)) expect(v).toBeGreaterThan(0);
  });

  it('catches sessions that expire on a clock running ahead of the leader', () => {
    const f = firstFailure({ replica: (o) => new FastClock(o) }, 30);
    expect(f?.violation?.message).toMatch(/session \d+ \(ttl 500 ms\) expired .* after an acknowledged keepalive|holders overlapping in time/);
  });

  it('catches fencing tokens that are not monotone', () => {
    const f = firstFailure({ replica: (o) => new FallingTokens(o) }, 5);
    expect(f?.violation?.message).toMatch(/fencing token not increasing/);
  });

  it('catches a lock service without lock-delay: a holder that has not yet noticed its expiry overlaps the next', () => {
    // The replicas grant at once after an expiry; the checker still expects no overlap of holders in time.
    const f = firstFailure({ lockDelayMs: 0 }, 20);
    expect(f?.violation?.message).toMatch(/holders overlapping in time/);
  });

  it('catches a resource that does not fence', () => {
    const f = firstFailure({ resource: () => ({ highest: 0, write: () => true }) }, 30);
    expect(f?.violation?.message).toMatch(/stale-token write accepted|overlapping fenced writes/);
  });

  for (const [name, protocol] of [['raft', raft], ['paxos', paxos]] as const) {
    it(`${name}: ${SEEDS} heavy seeds: 0 overlapping fenced writes, 0 stale writes accepted, FIFO, lock-delay`, () => {
      const failures: string[] = [];
      for (let seed = FROM; seed < FROM + SEEDS; seed++) {
        const { result } = run(protocol, seed);
        if (!result.ok) failures.push(describeFailure(result, name));
      }
      expect(failures).toEqual([]);
    }, Math.max(60_000, SEEDS * 1_000));
  }
});
