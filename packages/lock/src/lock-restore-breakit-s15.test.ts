/**
 * Break-it pass (session 15): a lock snapshot that is malformed past its header (a lock naming a session it
 * does not hold, an entry of the wrong shape) is refused with MalformedMessageError and changes nothing. The
 * restore cleared the table and filled it entry by entry: it stopped part-way, leaving a half-restored table.
 */
import { describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import { MalformedMessageError } from '@consensus-kit/core';
import { LockStateMachine } from './lock-state-machine';

const entry = (index: number) => ({ index, term: 1, type: 'command' as const, data: new Uint8Array() });

function tableWithOneHolder(): LockStateMachine {
  const sm = new LockStateMachine({ minSessionTtlMs: 100 });
  let i = 0;
  sm.apply(entry(++i), { cmd: { op: 'time', term: 1, ms: 0 } });
  const { session } = sm.apply(entry(++i), { cmd: { op: 'open', ttl: 1000 } }) as { session: number };
  sm.apply(entry(++i), { cmd: { op: 'acquire', session, req: 1, name: 'held-before', mode: 'mutex' } });
  return sm;
}

describe('LockStateMachine.restore of a malformed snapshot changes nothing', () => {
  it('a lock naming a session the snapshot does not hold, or entries of the wrong shape', () => {
    const source = tableWithOneHolder();
    const snap = unpack(source.snapshot()) as { sessions: unknown[]; locks: unknown[][] };
    const cases: [string, unknown][] = [
      ['a lock held by a session it does not hold', { ...snap, sessions: [] }],
      ['a session that is not an array', { ...snap, sessions: [...snap.sessions, 7] }],
      ['a lock whose holds are not an array', { ...snap, locks: [...snap.locks, ['x', 'mutex', 1, 0, 5, []]] }],
    ];
    for (const [what, bad] of cases) {
      const target = tableWithOneHolder();
      const before = Buffer.from(target.snapshot());
      expect(() => target.restore(pack(bad)), what).toThrow(MalformedMessageError);
      expect(Buffer.from(target.snapshot()).equals(before), what).toBe(true);
    }
  });
});
