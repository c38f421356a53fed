import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseOptions } from './options';
import type { OptionSpecs } from './types';

const specs = {
  preVote: { type: 'boolean', description: 'pre-vote' },
  maxInflight: { type: 'integer', min: 1, max: 1024, description: 'window' },
  ratio: { type: 'number', min: 0, max: 1, description: 'a ratio' },
  mode: { type: 'string', values: ['fast', 'safe'], description: 'a mode' },
} as const satisfies OptionSpecs;

describe('parseOptions', () => {
  it('returns the typed options and drops undefined values', () => {
    const o = parseOptions('raft', specs, { preVote: false, maxInflight: 8, ratio: 0.5, mode: 'safe', extra: undefined });
    expect(o).toEqual({ preVote: false, maxInflight: 8, ratio: 0.5, mode: 'safe' });
    expect(parseOptions('raft', specs, undefined)).toEqual({});
    expect(parseOptions('raft', specs, {})).toEqual({});
  });

  it('refuses a misspelt option, naming it and the closest known one', () => {
    expect(() => parseOptions('raft', specs, { prevote: false })).toThrow(ConfigError);
    expect(() => parseOptions('raft', specs, { prevote: false })).toThrow(/unknown raft option "prevote" \(did you mean "preVote"\?\)/);
    expect(() => parseOptions('raft', specs, { zzzzzzzz: 1 })).toThrow(/takes: preVote, maxInflight, ratio, mode/);
    expect(() => parseOptions('toy', {}, { a: 1 })).toThrow(/toy takes no options/);
  });

  it('refuses a value of the wrong type or out of bounds', () => {
    expect(() => parseOptions('raft', specs, { preVote: 'no' })).toThrow(/preVote must be true or false/);
    expect(() => parseOptions('raft', specs, { maxInflight: 1.5 })).toThrow(/maxInflight must be an integer/);
    expect(() => parseOptions('raft', specs, { maxInflight: 0 })).toThrow(/>= 1/);
    expect(() => parseOptions('raft', specs, { maxInflight: 4096 })).toThrow(/<= 1024/);
    expect(() => parseOptions('raft', specs, { ratio: Number.NaN })).toThrow(/finite number/);
    expect(() => parseOptions('raft', specs, { mode: 'quick' })).toThrow(/one of fast, safe/);
    expect(() => parseOptions('raft', specs, [])).toThrow(/must be an object/);
  });

  it('does not take inherited keys for options', () => {
    expect(() => parseOptions('raft', specs, { toString: 1 })).toThrow(/unknown raft option "toString"/);
  });
});
