import { describe, expect, it } from 'vitest';
import { parseOptions } from '../options';
import type { AnyProtocolModule, Ready } from '../types';
import { SoloProtocol, solo } from './solo-protocol';
import { TestCluster } from './test-cluster';

/** The solo protocol, made to break DESIGN r2's rule once its first entry is committed. */
function breaking(how: 'rewrite' | 'truncate'): AnyProtocolModule {
  class Breaking extends SoloProtocol {
    override ready(): Ready {
      const rd = super.ready();
      if (rd.entries.length > 0 && this.status().commitIndex >= 1) {
        if (how === 'rewrite') rd.entries = [{ index: 1, term: 1, type: 'noop', data: new Uint8Array(0) }, ...rd.entries];
        else rd.truncateAfter = 0;
      }
      return rd;
    }
  }
  return { name: `solo-${how}`, options: {}, parseOptions: (raw) => parseOptions('solo', {}, raw), create: (o) => new Breaking(o) };
}

describe('TestCluster: the shared Ready loop with the commit-index check', () => {
  it('throws when a protocol rewrites an index at or below its commit index', () => {
    const c = new TestCluster(breaking('rewrite'), ['a'], { electionTicks: 2 });
    c.tickUntil(() => c.leader() === 'a', 10);
    expect(() => c.propose(new Uint8Array([1]))).toThrow(/a: Ready rewrites index 1, at or below its commit index 1/);
  });

  it('throws when a protocol truncates below its commit index', () => {
    const c = new TestCluster(breaking('truncate'), ['a'], { electionTicks: 2 });
    c.tickUntil(() => c.leader() === 'a', 10);
    expect(() => c.propose(new Uint8Array([1]))).toThrow(/a: Ready truncates after 0, below its commit index 1/);
  });

  it('refuses unknown protocol options through the module\'s parseOptions', () => {
    expect(() => new TestCluster(breaking('rewrite'), ['a'], { protocolOptions: { prevote: true } })).toThrow(/unknown solo option "prevote"/);
  });

  it('a host-taken snapshot and compaction survive a restart: the state machine is restored from storage', () => {
    const c = new TestCluster(solo, ['a'], { electionTicks: 2 });
    c.tickUntil(() => c.leader() === 'a', 10);
    for (let i = 0; i < 3; i++) c.propose(new TextEncoder().encode(`c${i}`));
    const index = c.snapshot('a');
    c.compact('a', index);
    expect(c.replica('a').storage.firstIndex()).toBe(index + 1);
    c.crash('a');
    c.restart('a');
    const applied = c.replica('a').applied.filter((e) => e.type === 'command').map((e) => new TextDecoder().decode(e.data));
    expect(applied).toEqual(['c0', 'c1', 'c2']);
    expect(c.replica('a').applier.index).toBe(index);
  });
});
