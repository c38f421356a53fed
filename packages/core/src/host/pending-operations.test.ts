import { describe, expect, it } from 'vitest';
import { AbortedError, InvalidArgumentError, StoppedError, TimeoutError } from '../errors';
import { ManualClock } from './clock';
import { PendingOperations, type PendingOperation } from './pending-operations';

/** An operation that records how it ended (and how many times: it must be exactly once). */
function op(deadline = 100, timeoutMs = 100): PendingOperation & { outcomes: unknown[] } {
  const outcomes: unknown[] = [];
  return { deadline, timeoutMs, outcomes, resolve: (v) => outcomes.push({ ok: v }), reject: (e) => outcomes.push(e) };
}

describe('PendingOperations: one registry, every operation ends exactly once', () => {
  it('take removes the operation and detaches its abort listener: an abort afterwards changes nothing', () => {
    const reg = new PendingOperations(new ManualClock(), 1000);
    const ac = new AbortController();
    const a = op();
    reg.addProposal(1, a, ac.signal);
    const taken = reg.take(reg.proposals, 1);
    expect(taken).toBe(a);
    expect(reg.proposals.size).toBe(0);
    expect(reg.take(reg.proposals, 1)).toBeUndefined(); // a second settle finds nothing
    taken?.resolve('done');
    ac.abort();
    expect(a.outcomes).toEqual([{ ok: 'done' }]);
  });

  it('an abort rejects with AbortedError and removes the operation, so its outcome cannot settle it again', () => {
    const reg = new PendingOperations(new ManualClock(), 1000);
    const ac = new AbortController();
    const a = op();
    reg.addRead('ctx', { ...a, query: 'q' }, ac.signal);
    ac.abort(new Error('gave up'));
    expect(reg.reads.size).toBe(0);
    expect(a.outcomes).toHaveLength(1);
    expect(AbortedError.is(a.outcomes[0])).toBe(true);
    expect(reg.take(reg.reads, 'ctx')).toBeUndefined();
  });

  it('expire rejects what reached its deadline with a TimeoutError naming the kind, and keeps the rest', () => {
    const clock = new ManualClock();
    const reg = new PendingOperations(clock, 1000);
    const early = op(50, 50);
    const late = op(500, 500);
    const config = op(50, 50);
    const transfer = op(50, 50);
    reg.addProposal(1, early, undefined);
    reg.addProposal(2, late, undefined);
    reg.addConfig({ ...config, target: { voters: ['a'], learners: [] } }, undefined);
    reg.addTransfer({ ...transfer, to: 'b' }, undefined);
    reg.expire(49);
    expect(early.outcomes).toEqual([]);
    reg.expire(50);
    expect(TimeoutError.is(early.outcomes[0])).toBe(true);
    expect(String((early.outcomes[0] as Error).message)).toMatch(/proposal/);
    expect(String((config.outcomes[0] as Error).message)).toMatch(/membership change/);
    expect(String((transfer.outcomes[0] as Error).message)).toMatch(/leadership transfer/);
    expect(late.outcomes).toEqual([]);
    expect([...reg.proposals.keys()]).toEqual([2]);
    expect(reg.configs.size + reg.transfers.size).toBe(0);
  });

  it('rejectWhere rejects only what the predicate selects', () => {
    const reg = new PendingOperations(new ManualClock(), 1000);
    const confirmed = op();
    const unconfirmed = op();
    reg.addRead('a', { ...confirmed, query: 1, index: 3 }, undefined);
    reg.addRead('b', { ...unconfirmed, query: 2 }, undefined);
    reg.rejectWhere(reg.reads, () => new StoppedError(), (r) => r.index === undefined);
    expect(confirmed.outcomes).toEqual([]);
    expect(unconfirmed.outcomes).toHaveLength(1);
    expect([...reg.reads.keys()]).toEqual(['a']);
  });

  it('rejectAll ends every kind of operation, each once', () => {
    const reg = new PendingOperations(new ManualClock(), 1000);
    const ops = [op(), op(), op(), op()];
    const ac = new AbortController();
    reg.addProposal(1, ops[0]!, ac.signal);
    reg.addRead('r', { ...ops[1]!, query: 0 }, ac.signal);
    reg.addConfig({ ...ops[2]!, target: { voters: ['a'], learners: [] } }, ac.signal);
    reg.addTransfer({ ...ops[3]!, to: 'b' }, ac.signal);
    reg.rejectAll(() => new StoppedError());
    ac.abort(); // listeners were detached: no second outcome
    reg.expire(Number.MAX_SAFE_INTEGER);
    for (const o of ops) {
      expect(o.outcomes).toHaveLength(1);
      expect(StoppedError.is(o.outcomes[0])).toBe(true);
    }
  });

  it('due: the default or the given timeout from now; zero, negative, NaN or non-numbers are InvalidArgumentError', () => {
    const clock = new ManualClock();
    clock.advance(10);
    const reg = new PendingOperations(clock, 1000);
    expect(reg.due({})).toEqual({ deadline: 1010, timeoutMs: 1000 });
    expect(reg.due({ timeoutMs: 5 })).toEqual({ deadline: 15, timeoutMs: 5 });
    for (const bad of [0, -1, Number.NaN, '5' as unknown as number]) expect(() => reg.due({ timeoutMs: bad })).toThrow(InvalidArgumentError);
  });
});
