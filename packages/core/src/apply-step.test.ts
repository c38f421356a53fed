import { describe, expect, it } from 'vitest';
import { ApplyStep } from './apply-step';
import { encodeClusterConfig } from './config';
import { InvariantError } from './errors';
import type { ClusterConfig, LogEntry, Snapshot } from './types';

const cfg: ClusterConfig = { voters: ['a', 'b', 'c'], learners: [] };
const cmd = (index: number, term = 1): LogEntry => ({ index, term, type: 'command', data: new Uint8Array([index]) });

function make(start = { index: 0, term: 0, config: cfg }) {
  const log: string[] = [];
  const step = new ApplyStep(
    {
      restore: (s: Snapshot) => log.push(`restore ${s.index}`),
      apply: (e: LogEntry) => log.push(`${e.type} ${e.index}`),
      configError: (e: LogEntry) => log.push(`bad config ${e.index}`),
    },
    start,
  );
  return { step, log };
}

describe('ApplyStep', () => {
  it('applies committed entries in index order and follows config entries', () => {
    const { step, log } = make();
    const next: ClusterConfig = { voters: ['a', 'b'], learners: ['d'] };
    step.applyReady({ committed: [cmd(1), { index: 2, term: 1, type: 'config', data: encodeClusterConfig(next) }, { index: 3, term: 2, type: 'noop', data: new Uint8Array(0) }], reads: [] });
    expect(log).toEqual(['command 1', 'config 2', 'noop 3']);
    expect(step.index).toBe(3);
    expect(step.term).toBe(2);
    expect(step.config).toEqual(next);
  });

  it('refuses a gap and a repeat with an InvariantError', () => {
    const { step } = make();
    step.applyReady({ committed: [cmd(1)], reads: [] });
    expect(() => step.applyReady({ committed: [cmd(3)], reads: [] })).toThrow(InvariantError);
    expect(() => step.applyReady({ committed: [cmd(1)], reads: [] })).toThrow(/applied already/);
  });

  it('skips entries a restored snapshot covers, and never restores an older snapshot', () => {
    const { step, log } = make();
    step.applyReady({ committed: [cmd(1)], reads: [] });
    const snap: Snapshot = { index: 5, term: 2, config: cfg, data: new Uint8Array() };
    step.applyReady({ snapshot: snap, committed: [cmd(4), cmd(5), cmd(6, 2)], reads: [] });
    expect(log).toEqual(['command 1', 'restore 5', 'command 6']);
    expect(step.restore({ ...snap, index: 3 })).toBe(false);
    expect(step.index).toBe(6);
  });

  it('starts from a restored snapshot: entries up to it are skipped', () => {
    const { step, log } = make({ index: 10, term: 3, config: cfg });
    step.applyReady({ committed: [cmd(9), cmd(10), cmd(11, 3)], reads: [] });
    expect(log).toEqual(['command 11']);
  });

  it('keeps a config entry that does not decode as the configuration in force, and says so', () => {
    const { step, log } = make();
    step.applyReady({ committed: [{ index: 1, term: 1, type: 'config', data: new Uint8Array([0xc1]) }], reads: [] });
    expect(step.config).toEqual(cfg);
    expect(log).toEqual(['bad config 1', 'config 1']);
  });

  it('holds reads until their index is applied, then releases them oldest first', () => {
    const { step } = make();
    const ctx = (n: number) => new Uint8Array([n]);
    expect(step.applyReady({ committed: [], reads: [{ ctx: ctx(1), index: 2 }, { ctx: ctx(2), index: 0 }] })).toEqual([{ ctx: ctx(2), index: 0 }]);
    expect(step.pendingReads).toHaveLength(1);
    expect(step.applyReady({ committed: [cmd(1)], reads: [{ ctx: ctx(3), index: 1 }] })).toEqual([{ ctx: ctx(3), index: 1 }]);
    expect(step.applyReady({ committed: [cmd(2)], reads: [] })).toEqual([{ ctx: ctx(1), index: 2 }]);
    step.applyReady({ committed: [], reads: [{ ctx: ctx(4), index: 9 }] });
    step.dropReads();
    expect(step.pendingReads).toHaveLength(0);
  });
});
