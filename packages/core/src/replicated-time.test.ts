import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MalformedMessageError } from './errors';
import { ReplicatedTime } from './replicated-time';

describe('ReplicatedTime', () => {
  it('moves by same-term deltas of the leader clock, clamped to [0, maxStep]', () => {
    const t = new ReplicatedTime({ maxStepMs: 1000 });
    expect(t.observe(1, 50_000)).toEqual({ advancedBy: 0, newTerm: true });
    expect(t.observe(1, 50_400)).toEqual({ advancedBy: 400, newTerm: false });
    // A paused leader (or a stalled log) moves time by at most one step per entry.
    expect(t.observe(1, 90_000)).toEqual({ advancedBy: 1000, newTerm: false });
    // A clock set back moves nothing, then time goes on from the new reading.
    expect(t.observe(1, 80_000)).toEqual({ advancedBy: 0, newTerm: false });
    expect(t.observe(1, 80_250)).toEqual({ advancedBy: 250, newTerm: false });
    expect(t.now).toBe(1650);
  });

  it('adds nothing for the first entry of a newer term and ignores an older term', () => {
    const t = new ReplicatedTime();
    t.observe(2, 1_000);
    t.observe(2, 1_300);
    // The new leader's clock is unrelated: a reading far ahead is not a step.
    expect(t.observe(3, 9_999_999)).toEqual({ advancedBy: 0, newTerm: true });
    expect(t.observe(3, 10_000_099)).toEqual({ advancedBy: 100, newTerm: false });
    // The old leader's entry committed late: ignored, and it does not reset the new leader's reading.
    expect(t.observe(2, 1_800)).toEqual({ advancedBy: 0, newTerm: false });
    expect(t.observe(3, 10_000_199)).toEqual({ advancedBy: 100, newTerm: false });
    expect([t.now, t.lastTerm]).toEqual([500, 3]);
  });

  it('round-trips its state, so a restored replica continues where the snapshot left off', () => {
    const a = new ReplicatedTime();
    a.observe(1, 0);
    a.observe(1, 700);
    const b = new ReplicatedTime();
    b.restore(a.state());
    expect(b.observe(1, 900)).toEqual(a.observe(1, 900));
    expect(b.now).toBe(900);
  });

  it('refuses bad input with typed errors', () => {
    expect(() => new ReplicatedTime({ maxStepMs: 0 })).toThrow(InvalidArgumentError);
    const t = new ReplicatedTime();
    expect(() => t.observe(-1, 0)).toThrow(InvalidArgumentError);
    expect(() => t.observe(1, Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => t.restore([1, 2])).toThrow(MalformedMessageError);
    expect(() => t.restore('x')).toThrow(MalformedMessageError);
  });
});
