import { ConfigError, type ClusterConfig } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { leaveJoint, needsJointConsensus, nextConfigEntry } from './confchange';

const abc: ClusterConfig = { voters: ['a', 'b', 'c'], learners: [] };

describe('membership change policy (thesis 4.1, 4.3)', () => {
  it('single-server changes need no joint configuration; anything larger does', () => {
    expect(needsJointConsensus(abc, { voters: ['a', 'b', 'c', 'd'], learners: [] })).toBe(false);
    expect(needsJointConsensus(abc, { voters: ['a', 'b'], learners: [] })).toBe(false);
    expect(needsJointConsensus(abc, { voters: ['a', 'b', 'c'], learners: ['l'] })).toBe(false);
    expect(needsJointConsensus(abc, { voters: ['a', 'b', 'd'], learners: [] })).toBe(true);
    expect(needsJointConsensus(abc, { voters: ['a', 'b', 'c', 'd', 'e'], learners: [] })).toBe(true);
  });

  it('a single-server change is written as its target configuration', () => {
    expect(nextConfigEntry(abc, { changes: [{ op: 'addVoter', node: 'd' }] })).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
  });

  it('a larger change is written as the joint configuration C_old,new', () => {
    const entry = nextConfigEntry(abc, { changes: [{ op: 'addVoter', node: 'd' }, { op: 'remove', node: 'a' }] });
    expect(entry).toEqual({ voters: ['b', 'c', 'd'], outgoing: ['a', 'b', 'c'], learners: [] });
  });

  it('refuses a change while a joint configuration is in force, with ConfigError', () => {
    expect(() => nextConfigEntry({ ...abc, outgoing: ['a'] }, { changes: [{ op: 'addVoter', node: 'd' }] })).toThrow(ConfigError);
  });

  it('leaving a joint configuration drops its outgoing half; a plain one has nothing to leave', () => {
    expect(leaveJoint({ voters: ['b', 'c', 'd'], outgoing: ['a', 'b', 'c'], learners: ['l'] })).toEqual({ voters: ['b', 'c', 'd'], learners: ['l'] });
    expect(leaveJoint(abc)).toBeUndefined();
  });
});
