import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import type { SimStateMachine } from './sim-state-machine';
import { TIME_EVERY_TICKS, simulate } from './simulator';
import { toy } from './toy/index';

/** Records every time entry it applies: [term, clock ms]. */
function clockKeeper(seen: [number, number][][]): () => SimStateMachine {
  return () => {
    const mine: [number, number][] = [];
    seen.push(mine);
    return {
      apply(entry: LogEntry) {
        let v: unknown;
        try {
          v = unpack(entry.data);
        } catch {
          return undefined;
        }
        if (Array.isArray(v) && v[0] === 'time') mine.push([v[1] as number, v[2] as number]);
        return undefined;
      },
      query: () => mine.length,
      snapshot: () => new Uint8Array(),
      restore: () => {},
      timeEntry: (term, clockMs) => pack(['time', term, clockMs]),
    };
  };
}

describe('time entries (DESIGN r2)', () => {
  it('a leader proposes its clock every few ticks of its own (skewed) clock, and readings never go back within a term', () => {
    const seen: [number, number][][] = [];
    const r = simulate({
      protocol: toy,
      seed: 7,
      ticks: 300,
      workload: { clients: 0 },
      checkLinearizability: false,
      stateMachine: clockKeeper(seen),
      faults: { kind: 'scripted', events: [{ at: 0, action: { type: 'clock', node: 'n1', rate: 1.3 } }, { at: 0, action: { type: 'clock', node: 'n2', rate: 0.7 } }, { at: 0, action: { type: 'clock', node: 'n3', rate: 0.7 } }] },
    });
    expect(r.ok, r.violation?.message).toBe(true);
    const longest = seen.reduce((a, b) => (b.length > a.length ? b : a), []);
    // About one per TIME_EVERY_TICKS ticks once a leader is elected.
    expect(longest.length).toBeGreaterThan(300 / TIME_EVERY_TICKS / 2);
    for (let i = 1; i < longest.length; i++) {
      const [t0, ms0] = longest[i - 1] as [number, number];
      const [t1, ms1] = longest[i] as [number, number];
      if (t1 === t0) {
        expect(ms1).toBeGreaterThan(ms0);
        // At 10 ms per tick, one interval of a clock that runs at most 1.3x fast is 50 ms of its own time.
        expect(ms1 - ms0).toBeLessThanOrEqual(TIME_EVERY_TICKS * 10 * 2);
      } else expect(t1).toBeGreaterThan(t0);
    }
  });

});
