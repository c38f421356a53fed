/**
 * Break-it pass (session 15): a combined snapshot whose parts are not all good restores nothing. Before the fix a
 * good part of the large store and a malformed part of a small machine (kv beside the lock service) left the store
 * restored and the small machine as it was, behind the MalformedMessageError: a half-applied state.
 */
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { COMBINED_SNAPSHOT_VERSION, combineStateMachines } from './combine';
import { MalformedMessageError } from './errors';
import type { LogEntry, RestoreJob, StateMachine } from './types';

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** A machine holding one string; a part not starting with "ok:" is malformed (refused before anything changes). */
class Strict implements StateMachine<string, string, 'get', string> {
  constructor(public value = 'ok:initial') {}
  apply(_e: LogEntry, cmd: string) {
    this.value = cmd;
    return cmd;
  }
  query() {
    return this.value;
  }
  snapshot() {
    return encode(this.value);
  }
  restore(d: Uint8Array) {
    const v = decode(d);
    if (!v.startsWith('ok:')) throw new MalformedMessageError(`not a snapshot: ${v}`);
    this.value = v;
  }
}

/** The same, restoring incrementally (one step per character; the new value switched in at the last step). */
class StrictIncremental extends Strict {
  beginRestore(d: Uint8Array): RestoreJob {
    const v = decode(d);
    let left = v.length;
    return {
      step: () => {
        if (--left > 0) return false;
        if (!v.startsWith('ok:')) throw new MalformedMessageError(`not a snapshot: ${v}`);
        this.value = v;
        return true;
      },
      cancel: () => undefined,
    };
  }
}

/** A machine whose restore is not all or nothing by itself: it takes the new value, then refuses a malformed one. */
class Careless extends Strict {
  override restore(d: Uint8Array) {
    this.value = decode(d);
    if (!this.value.startsWith('ok:')) throw new MalformedMessageError(`not a snapshot: ${this.value}`);
  }
}

const envelope = (parts: Record<string, string>) =>
  pack({ combined: COMBINED_SNAPSHOT_VERSION, parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, encode(v)])) });

describe('combineStateMachines: a restore is all or nothing across the machines', () => {
  const cases: [string, Record<string, string>][] = [
    ['the store good, the small machine malformed', { kv: 'ok:store', lock: 'bad' }],
    ['the small machine good, the store malformed', { kv: 'bad', lock: 'ok:locks' }],
  ];
  for (const [what, parts] of cases) {
    it(`restore(): ${what} changes neither`, () => {
      const kv = new Strict('ok:old-store');
      const lock = new Strict('ok:old-locks');
      const sm = combineStateMachines({ kv, lock }, { primary: 'kv' });
      expect(() => sm.restore(envelope(parts))).toThrow(MalformedMessageError);
      expect([kv.value, lock.value]).toEqual(['ok:old-store', 'ok:old-locks']);
    });

    it(`beginRestore(): ${what} changes neither`, () => {
      const kv = new StrictIncremental('ok:old-store');
      const lock = new Strict('ok:old-locks');
      const sm = combineStateMachines({ kv, lock }, { primary: 'kv' });
      expect(() => {
        const job = (sm.beginRestore as (d: Uint8Array) => RestoreJob)(envelope(parts));
        while (!job.step(1));
      }).toThrow(MalformedMessageError);
      expect([kv.value, lock.value]).toEqual(['ok:old-store', 'ok:old-locks']);
    });
  }

  it('a machine whose own restore changes part-way before refusing is put back, whole or in steps, with or without a primary', () => {
    for (const primary of ['kv', undefined] as const) {
      const kv = new StrictIncremental('ok:old-store');
      const lock = new Careless('ok:old-locks');
      const sm = combineStateMachines({ kv, lock }, primary === undefined ? {} : { primary });
      expect(() => sm.restore(envelope({ kv: 'ok:store', lock: 'bad' }))).toThrow(MalformedMessageError);
      expect([kv.value, lock.value]).toEqual(['ok:old-store', 'ok:old-locks']);
      expect(() => (sm.beginRestore as (d: Uint8Array) => RestoreJob)(envelope({ kv: 'ok:store', lock: 'bad' }))).toThrow(MalformedMessageError);
      expect([kv.value, lock.value]).toEqual(['ok:old-store', 'ok:old-locks']);
    }
  });

  it('good parts restore, whole or in steps; the small machine keeps its state until the last step', () => {
    const kv = new StrictIncremental('ok:old-store');
    const lock = new Strict('ok:old-locks');
    const sm = combineStateMachines({ kv, lock }, { primary: 'kv' });
    const job = (sm.beginRestore as (d: Uint8Array) => RestoreJob)(envelope({ kv: 'ok:store', lock: 'ok:locks' }));
    expect(job.step(1)).toBe(false);
    expect([kv.value, lock.value]).toEqual(['ok:old-store', 'ok:old-locks']);
    while (!job.step(1));
    expect([kv.value, lock.value]).toEqual(['ok:store', 'ok:locks']);
    sm.restore(envelope({ kv: 'ok:again', lock: 'ok:again-locks' }));
    expect([kv.value, lock.value]).toEqual(['ok:again', 'ok:again-locks']);
  });
});
