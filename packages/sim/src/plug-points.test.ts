import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConfigError, type LogEntry, type NodeId, type Protocol, type Ready, type Status } from '@consensus-kit/core';
import { moduleOf } from '../testdata/probe-protocol';
import type { HistoryChecker } from './history-checker';
import type { ClientOp } from './history';
import type { SimStateMachine } from './sim-state-machine';
import { simulate } from './simulator';
import { toy, toyInvariants } from './toy/index';
import type { ClientRequest, Workload, WorkloadHost, WorkloadInit } from './workload';

type CounterOp = ClientOp<{ f: 'inc' }, number>;

/** A state machine that counts the commands applied to it. */
function counter(): SimStateMachine {
  let n = 0;
  return {
    apply: () => ++n,
    query: () => n,
    snapshot: () => pack(n),
    restore: (data) => void (n = unpack(data) as number),
  };
}

/** One client that increments, one op at a time, following leader hints. */
class CounterWorkload implements Workload<CounterOp> {
  readonly timeoutTicks = 40;
  readonly stats = { ops: 0, opsOk: 0, opsIndeterminate: 0 };
  private readonly ops: CounterOp[] = [];
  private host!: WorkloadHost;
  private current: CounterOp | undefined;
  private acceptedBy: NodeId | undefined;
  constructor(private readonly init: WorkloadInit) {}
  start(host: WorkloadHost): void {
    this.host = host;
    host.setTimer(host.tickUs, 'next');
  }
  onTimer(timer: unknown): void {
    if (timer === 'next') return this.next();
    if (this.current?.id === timer) this.settle('info');
  }
  live(req: ClientRequest): boolean {
    return this.current?.id === req.token;
  }
  accepted(node: NodeId): void {
    this.acceptedBy = node;
  }
  refused(_node: NodeId, req: ClientRequest, hint: NodeId | undefined): void {
    this.host.request(this.host.now() + this.host.tickUs, hint ?? this.init.rng.pick(this.init.nodes), req);
  }
  applied(node: NodeId, entry: LogEntry, result: unknown) {
    const id = unpack(entry.data) as number;
    const acknowledged = this.current?.id === id && this.acceptedBy === node;
    if (acknowledged) this.settle('ok', result as number);
    return { id: String(id), acknowledged };
  }
  readReleased(): void {}
  crashed(node: NodeId): void {
    if (this.acceptedBy === node) this.settle('info');
  }
  end(): void {
    if (this.current !== undefined) this.settle('info');
  }
  history(): CounterOp[] {
    return this.ops;
  }
  private next(): void {
    if (this.host.now() + this.timeoutTicks * this.host.tickUs > this.host.endTime) return;
    const op: CounterOp = { id: this.ops.length, client: 0, input: { f: 'inc' }, invoke: this.host.now(), status: 'info' };
    this.ops.push(op);
    this.stats.ops++;
    this.current = op;
    this.acceptedBy = undefined;
    this.host.setTimer(this.host.now() + this.timeoutTicks * this.host.tickUs, op.id);
    this.host.request(this.host.now() + 1, this.init.rng.pick(this.init.nodes), { kind: 'propose', data: pack(op.id), token: op.id });
  }
  private settle(status: 'ok' | 'info', output?: number): void {
    const op = this.current as CounterOp;
    op.status = status;
    if (status === 'ok') {
      op.complete = this.host.now();
      op.output = output as number;
      this.stats.opsOk++;
    } else this.stats.opsIndeterminate++;
    this.current = undefined;
    this.host.setTimer(this.host.now() + 1, 'next');
  }
}

/** A single client's increments must return strictly increasing counts (each inc is applied exactly once). */
const increasing: HistoryChecker<CounterOp> = {
  name: 'counter-increasing',
  check(history) {
    const ok = history.filter((op) => op.status === 'ok');
    for (let i = 1; i < ok.length; i++) {
      const [a, b] = [ok[i - 1] as CounterOp, ok[i] as CounterOp];
      if ((b.output as number) <= (a.output as number)) return { result: 'illegal', checkedOps: ok.length, message: `inc #${b.id} returned ${b.output} after ${a.output}`, ops: [a, b] };
    }
    return { result: 'ok', checkedOps: ok.length };
  },
};

describe('pluggable state machine, workload and checker', () => {
  it('runs a custom workload against a custom state machine, judged by a custom checker', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = simulate({ protocol: toy, seed, faults: 'heavy', invariants: toyInvariants, stateMachine: counter, workload: (init) => new CounterWorkload(init), checker: increasing });
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      expect(r.check).toMatchObject({ result: 'ok' });
      expect(r.stats.opsOk).toBeGreaterThan(20);
      expect(r.history.filter((op) => op.status === 'ok').every((op) => typeof op.output === 'number')).toBe(true);
    }
  });

  it("a checker's finding fails the run as a history violation, named after the checker, with its ops", () => {
    const strict: HistoryChecker<CounterOp> = { name: 'never-more-than-5', check: (h) => (h.length > 5 ? { result: 'illegal', checkedOps: h.length, message: 'too many', ops: h.slice(5, 6) } : { result: 'ok', checkedOps: h.length }) };
    const r = simulate({ protocol: toy, seed: 3, stateMachine: counter, workload: (init) => new CounterWorkload(init), checker: strict });
    expect(r.violation).toMatchObject({ kind: 'history', name: 'never-more-than-5', message: 'too many' });
    expect(r.violation!.time).toBe(r.history[5]!.complete ?? r.history[5]!.invoke);
  });
});

describe('agreement by entry identity (DESIGN r2)', () => {
  /** Each replica commits entries 1..n on its own, under a term of its own, with data from `data(id, index)`. */
  const solo = (data: (id: NodeId, index: number) => number) =>
    moduleOf('solo-terms', (o) => {
      const term = Number(o.id.slice(1)) * 7;
      let last = o.storage.lastIndex();
      let pending: LogEntry[] = [];
      return {
        tick() {
          if (last >= 20) return;
          last++;
          pending.push({ index: last, term, type: 'command', data: Uint8Array.of(data(o.id, last)) });
        },
        step() {},
        propose() {},
        readIndex() {},
        proposeConfigChange() {},
        transferLeadership() {},
        hasReady: () => pending.length > 0,
        ready(): Ready {
          const rd: Ready = { entries: pending, committed: pending, messages: [], reads: [] };
          pending = [];
          return rd;
        },
        advance() {},
        status: (): Status => ({ id: o.id, role: 'follower', term, commitIndex: last, appliedIndex: last, lastIndex: last, config: { voters: [o.id], learners: [] } }),
      } satisfies Protocol;
    });

  it('the same (index, type, data) under different terms is the same committed entry', () => {
    const r = simulate({ protocol: solo((_, i) => i), seed: 1, ticks: 40, workload: { clients: 0 } });
    expect(r.violation).toBeUndefined();
    expect(r.stats.committedIndex).toBe(20);
  });

  it('different data at one index is a log-agreement violation', () => {
    const r = simulate({ protocol: solo((id, i) => (id === 'n2' && i === 9 ? 99 : i)), seed: 1, ticks: 40, workload: { clients: 0 } });
    expect(r.violation).toMatchObject({ kind: 'invariant', name: 'log-agreement' });
    expect(r.violation!.message).toMatch(/index 9/);
  });
});

describe('typed protocol options', () => {
  it('are validated by the module before anything runs: an unknown one is its ConfigError, with a suggestion', () => {
    let err: unknown;
    try {
      simulate({ protocol: toy, seed: 1, protocolOptions: { maxbatch: 4 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/unknown toy option "maxbatch" \(did you mean "maxBatch"\?\)/);
    expect(() => simulate({ protocol: toy, seed: 1, protocolOptions: { maxBatch: 0 } })).toThrow(/maxBatch/);
    expect(() => simulate({ protocol: toy, seed: 1, protocolOptions: { maxBatch: 'x' } })).toThrow(ConfigError);
  });

  it('reach the protocol: a batch limit of one entry changes the messages, and the toy stays correct', () => {
    const base = { protocol: toy, seed: 4, faults: 'heavy' as const, invariants: toyInvariants, trace: true };
    const one = simulate({ ...base, protocolOptions: { maxBatch: 1 } });
    const dflt = simulate(base);
    expect(one.ok).toBe(true);
    const maxEntries = (trace: string[]) => Math.max(...trace.filter((l) => l.includes('"ev":"send"') && l.includes('Append')).map((l) => (l.match(/\d+\/\d+/g) ?? []).length));
    expect(maxEntries(one.trace!)).toBeLessThanOrEqual(1);
    expect(maxEntries(dflt.trace!)).toBeGreaterThan(1);
  });
});
