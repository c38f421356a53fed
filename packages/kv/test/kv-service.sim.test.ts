import { describe, expect, it } from 'vitest';
import { paxos } from '@consensus-kit/paxos';
import { raft } from '@consensus-kit/raft';
import { simulate, type SimResult } from '@consensus-kit/sim';
import { KvReplica, kvServiceSimulation } from './kv-service-workload';

/** A store whose replicated time runs twice as fast as its leader's clock (a broken clamp or unit). */
class FastTime extends KvReplica {
  override timeEntry(term: number, clockMs: number): Uint8Array {
    return super.timeEntry(term, clockMs * 2);
  }
}

/** A store whose snapshot restore forgets its history (as if the snapshot format left it out). */
class ForgetsHistory extends KvReplica {
  override restore(data: Uint8Array): void {
    super.restore(data);
    const revision = this.kv.currentRevision;
    if (revision > 0) this.kv.apply({ index: 0, term: 0, type: 'command', data: new Uint8Array() }, { cmd: { op: 'compact', revision } });
  }
}

/** The first of `seeds` seeds whose run fails, with its violation. */
function firstFailure(make: () => KvReplica, seeds: number) {
  for (let seed = 1; seed <= seeds; seed++) {
    const sim = kvServiceSimulation();
    const r = simulate({ protocol: raft, seed, faults: 'heavy', nodes: 3, ticks: 600, snapshotEvery: 40, ...sim, stateMachine: make });
    if (!r.ok) return r.violation;
  }
  return undefined;
}

const SEEDS = Number(process.env.KV_SIM_SEEDS ?? 50);

function run(protocol: typeof raft | typeof paxos, seed: number, faults: 'none' | 'heavy' = 'heavy') {
  const sim = kvServiceSimulation();
  const result = simulate({ protocol, seed, faults, nodes: 3, ticks: 600, snapshotEvery: 40, ...sim });
  return { result, workload: sim.last() };
}

function describeFailure(r: SimResult, protocol: string): string {
  return `${protocol} seed ${r.seed}: ${r.violation?.kind} ${r.violation?.name}: ${r.violation?.message}\n  replay: KV_SIM_SEEDS=1 KV_SIM_FROM=${r.seed} npx vitest run test/kv-service`;
}

describe('kv store under the simulator: registers, leases, watchers', () => {
  it('without faults: leases kept alive survive, abandoned ones expire, watchers see every event', () => {
    const { result, workload } = run(raft, 1, 'none');
    expect(result.ok, result.violation?.message).toBe(true);
    const s = workload!.summary();
    expect(s.leases).toBeGreaterThan(4);
    expect(s.expired).toBeGreaterThan(0);
    expect(Math.min(...s.watcherEvents)).toBeGreaterThan(10);
  }, 60_000);

  it('catches replicated time that runs ahead of the leader clock: a lease expires too soon after an acknowledged keepalive', () => {
    const v = firstFailure(() => new FastTime(), 10);
    expect(v?.message).toMatch(/lease \d+ \(ttl 1000 ms\) expired .* after an acknowledged keepalive/);
  }, 120_000);

  it('catches a snapshot restore that loses history: a watcher resuming there cannot replay', () => {
    const v = firstFailure(() => new ForgetsHistory(), 20);
    expect(v?.message).toMatch(/watcher w\d .* could not go on at n\d, resuming from revision \d+: .*compacted/);
  }, 120_000);

  for (const [name, protocol] of [['raft', raft], ['paxos', paxos]] as const) {
    it(`${name}: ${SEEDS} heavy seeds, every check after every step and at the end`, () => {
      const from = Number(process.env.KV_SIM_FROM ?? 1);
      const failures: string[] = [];
      for (let seed = from; seed < from + SEEDS; seed++) {
        const { result } = run(protocol, seed);
        if (!result.ok) failures.push(describeFailure(result, name));
      }
      expect(failures).toEqual([]);
    }, 300_000);
  }
});
