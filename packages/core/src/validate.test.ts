import { describe, expect, it } from 'vitest';
import { ConfigError, InvalidArgumentError } from './errors';
import { MemoryStorage } from './memory-storage';
import { assertBytes, assertNodeId, resolveProtocolOptions, seededRandom } from './validate';

describe('argument validation', () => {
  it('node ids: non-empty, at most 128 characters, no whitespace', () => {
    expect(() => assertNodeId('node-1')).not.toThrow();
    for (const bad of ['', 'a b', 'x'.repeat(129), 7, null]) expect(() => assertNodeId(bad)).toThrow(InvalidArgumentError);
  });

  it('proposal bytes must be a Uint8Array, and the message says what was given', () => {
    expect(() => assertBytes('text', 'proposal')).toThrow(/proposal must be a Uint8Array, got "text"/);
  });

  it('protocol options: defaults, and ConfigError naming what is wrong', () => {
    const storage = new MemoryStorage();
    const o = resolveProtocolOptions({ id: 'a', peers: ['a', 'b', 'c'], storage });
    expect([o.electionTicks, o.heartbeatTicks, o.applied]).toEqual([10, 1, 0]);
    expect(() => resolveProtocolOptions({ id: 'a', peers: ['a'], storage, electionTicks: 3, heartbeatTicks: 3 })).toThrow(
      /electionTicks \(3\) must be greater than heartbeatTicks \(3\)/,
    );
    expect(() => resolveProtocolOptions({ id: 'a', peers: ['b', 'c'], storage })).toThrow(ConfigError);
    expect(() => resolveProtocolOptions({ id: 'a', peers: ['a', 'a'], storage })).toThrow(/twice/);
    expect(() => resolveProtocolOptions({ id: 'a', peers: ['a'], storage, applied: -1 })).toThrow(ConfigError);
  });

  it('seededRandom is deterministic per seed and within [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(xs[0]);
  });
});
