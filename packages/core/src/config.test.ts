import { describe, expect, it } from 'vitest';
import { applyConfigChange, configMembers, configsEqual, decodeClusterConfig, encodeClusterConfig, isVoter } from './config';
import { ConfigError, MalformedMessageError } from './errors';
import type { ClusterConfig } from './types';

const abc: ClusterConfig = { voters: ['a', 'b', 'c'], learners: [] };

describe('cluster configuration', () => {
  it('round-trips through the config entry encoding, joint or not', () => {
    const joint: ClusterConfig = { voters: ['c', 'd'], outgoing: ['a', 'b'], learners: ['z'] };
    expect(decodeClusterConfig(encodeClusterConfig(abc))).toEqual(abc);
    expect(decodeClusterConfig(encodeClusterConfig(joint))).toEqual(joint);
  });

  it('rejects bytes that are not a configuration with MalformedMessageError', () => {
    expect(() => decodeClusterConfig(Uint8Array.of(0xc1))).toThrow(MalformedMessageError);
    expect(() => decodeClusterConfig(encodeClusterConfig({ voters: [1 as unknown as string], learners: [] }))).toThrow(MalformedMessageError);
  });

  it.each<[string, ClusterConfig['voters'], ClusterConfig['learners']]>([
    ['addVoter d', ['a', 'b', 'c', 'd'], []],
    ['addLearner l', ['a', 'b', 'c'], ['l']],
    ['remove b', ['a', 'c'], []],
  ])('applies %s', (what, voters, learners) => {
    const [op, node] = what.split(' ') as ['addVoter' | 'addLearner' | 'remove', string];
    expect(applyConfigChange(abc, { changes: [{ op, node }] })).toEqual({ voters, learners });
  });

  it('promotes a learner and demotes a voter', () => {
    const withLearner = applyConfigChange(abc, { changes: [{ op: 'addLearner', node: 'l' }] });
    expect(applyConfigChange(withLearner, { changes: [{ op: 'addVoter', node: 'l' }] })).toEqual({ voters: ['a', 'b', 'c', 'l'], learners: [] });
    expect(applyConfigChange(abc, { changes: [{ op: 'addLearner', node: 'a' }] })).toEqual({ voters: ['b', 'c'], learners: ['a'] });
  });

  it('refuses changes that make no sense with ConfigError', () => {
    expect(() => applyConfigChange(abc, { changes: [] })).toThrow(ConfigError);
    expect(() => applyConfigChange(abc, { changes: [{ op: 'addVoter', node: 'a' }] })).toThrow(/already a voter/);
    expect(() => applyConfigChange(abc, { changes: [{ op: 'remove', node: 'x' }] })).toThrow(/not a member/);
    expect(() => applyConfigChange({ voters: ['a'], learners: [] }, { changes: [{ op: 'remove', node: 'a' }] })).toThrow(/at least one voter/);
    expect(() => applyConfigChange(abc, { changes: [{ op: 'remove', node: 'a' }, { op: 'addVoter', node: 'a' }] })).toThrow(/more than once/);
    expect(() => applyConfigChange({ ...abc, outgoing: ['a'] }, { changes: [{ op: 'addVoter', node: 'd' }] })).toThrow(/in progress/);
    expect(() => applyConfigChange(abc, { changes: [{ op: 'explode' as 'remove', node: 'a' }] })).toThrow(/unknown config change op/);
  });

  it('answers membership questions', () => {
    const joint: ClusterConfig = { voters: ['c', 'd'], outgoing: ['a', 'c'], learners: ['z'] };
    expect(configMembers(joint)).toEqual(['a', 'c', 'd', 'z']);
    expect(isVoter(joint, 'a')).toBe(true);
    expect(isVoter(joint, 'z')).toBe(false);
    expect(configsEqual(abc, { voters: ['c', 'b', 'a'], learners: [] })).toBe(true);
    expect(configsEqual(abc, joint)).toBe(false);
    // Symmetric even for lists with a repeated id (compared as sets).
    expect(configsEqual({ voters: ['a', 'b'], learners: [] }, { voters: ['a', 'a'], learners: [] })).toBe(false);
    expect(configsEqual({ voters: ['a', 'a'], learners: [] }, { voters: ['a', 'b'], learners: [] })).toBe(false);
  });
});
