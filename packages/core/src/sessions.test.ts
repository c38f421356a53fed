import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, SessionExpiredError } from './errors';
import { SessionTable, validateSession } from './sessions';

describe('SessionTable (Raft thesis 6.3)', () => {
  it('runs a (session, seq) once and answers a retry from the table', () => {
    const t = new SessionTable<number>();
    let runs = 0;
    expect(t.run({ id: 'c', seq: 1 }, 1, () => ++runs)).toEqual({ ok: 1 });
    expect(t.run({ id: 'c', seq: 1 }, 2, () => ++runs)).toEqual({ ok: 1 });
    expect(runs).toBe(1);
  });

  it('keeps an error through storeError, the same answer on every retry; an acknowledged seq is SessionExpiredError', () => {
    const t = new SessionTable<number, { kind: string }>({ storeError: (e) => ({ kind: (e as Error).message }) });
    const fail = () => {
      throw new Error('boom');
    };
    expect(t.run({ id: 'c', seq: 1 }, 1, fail)).toEqual({ error: { kind: 'boom' } });
    expect(t.run({ id: 'c', seq: 1 }, 2, () => 7)).toEqual({ error: { kind: 'boom' } });
    expect(t.run({ id: 'c', seq: 2, ack: 1 }, 3, () => 7)).toEqual({ ok: 7 });
    expect(() => t.run({ id: 'c', seq: 1 }, 4, () => 7)).toThrow(SessionExpiredError);
  });

  it('the default storeError keeps code and message', () => {
    const t = new SessionTable<number>();
    expect(t.run({ id: 'c', seq: 1 }, 1, () => {
      throw new InvalidArgumentError('bad');
    })).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'bad' } });
  });

  it('sessions expire by log index only, and a snapshot round-trips the table', () => {
    const t = new SessionTable<number>({ expireAfterEntries: 16 });
    t.run({ id: 'old', seq: 1 }, 1, () => 1);
    t.run({ id: 'new', seq: 1 }, 30, () => 2);
    expect(t.size).toBe(1);
    const copy = new SessionTable<number>({ expireAfterEntries: 16 });
    copy.restore(t.toSnapshot(), t.sweepIndex);
    expect(copy.toSnapshot()).toEqual(t.toSnapshot());
    expect(copy.run({ id: 'new', seq: 1 }, 31, () => 99)).toEqual({ ok: 2 });
  });

  it('validateSession refuses malformed stamps with InvalidArgumentError', () => {
    expect(() => validateSession({ id: '', seq: 1 })).toThrow(InvalidArgumentError);
    expect(() => validateSession({ id: 'a', seq: 0 })).toThrow(InvalidArgumentError);
    expect(() => validateSession({ id: 'a', seq: 2, ack: 2 })).toThrow(InvalidArgumentError);
    expect(() => validateSession({ id: 'a', seq: 2, ack: 1 })).not.toThrow();
  });
});
