import { ConfigError, MemoryStorage } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { raft } from './index';
import { parseRaftOptions, raftOptionSpecs, resolveRaftOptions } from './options';

describe('raft options', () => {
  it('every Raft-specific option has a spec', () => {
    const defaults = resolveRaftOptions({ id: 'a', peers: ['a'], storage: new MemoryStorage() });
    expect(Object.keys(raftOptionSpecs).sort()).toEqual(Object.keys(defaults).sort());
    expect(raft.options).toBe(raftOptionSpecs);
  });

  it('parses untyped options; {} gives the defaults', () => {
    expect(raft.parseOptions({})).toEqual({});
    expect(raft.parseOptions({ preVote: false, maxInflightMsgs: 8, readOnly: 'lease' })).toEqual({ preVote: false, maxInflightMsgs: 8, readOnly: 'lease' });
  });

  it('a misspelt option is a ConfigError naming it and the option meant', () => {
    const e = (() => {
      try {
        raft.parseOptions({ prevote: false });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/"prevote"/);
    expect((e as Error).message).toMatch(/did you mean "preVote"/);
  });

  it('a value of the wrong type or out of bounds is a ConfigError naming the option', () => {
    expect(() => parseRaftOptions({ checkQuorum: 'yes' })).toThrow(/checkQuorum/);
    expect(() => parseRaftOptions({ maxInflightMsgs: 0 })).toThrow(ConfigError);
    expect(() => parseRaftOptions({ readOnly: 'fast' })).toThrow(/readOnly/);
  });

  it("readOnly 'lease' without checkQuorum is refused", () => {
    expect(() => parseRaftOptions({ readOnly: 'lease', checkQuorum: false })).toThrow(/needs checkQuorum/);
    expect(() => parseRaftOptions({ leaseDriftBound: 1 })).toThrow(ConfigError);
    expect(() => parseRaftOptions({ leaseDriftBound: -0.1 })).toThrow(ConfigError);
    expect(parseRaftOptions({ leaseDriftBound: 0.1 })).toEqual({ leaseDriftBound: 0.1 });
  });

  it('create refuses an unknown key passed directly, as parseOptions does', () => {
    const storage = new MemoryStorage();
    expect(() => raft.create({ id: 'a', peers: ['a'], storage, ...({ checkQuorom: true } as object) })).toThrow(/checkQuorom.*did you mean "checkQuorum"/);
    expect(() => raft.create({ id: 'a', peers: ['a'], storage, preVote: false })).not.toThrow();
  });
});
