import { describe, expect, it } from 'vitest';
import { isConsensusError, NotLeaderError } from '../errors';
import type { LogEntry, ProtocolModule } from '../types';
import { TestCluster, type TestClusterOptions } from './test-cluster';

export interface ProtocolConformanceOptions extends TestClusterOptions {
  /** Cluster size for the multi-node cases (default 3). A size of 1 runs only the single-node cases. */
  nodes?: number;
  /** Ticks allowed for an election (default 50 x electionTicks). */
  electionBudget?: number;
}

const text = (s: string) => new TextEncoder().encode(s);
const commands = (entries: readonly LogEntry[]) =>
  entries.filter((e) => e.type === 'command').map((e) => new TextDecoder().decode(e.data));

/**
 * What every `ProtocolModule` must do through the contract alone: elect a leader, commit proposals on every
 * replica in the same order, survive a restart from storage, reject proposals on followers with a leader
 * hint, answer read barriers, and reject bad input with typed errors. Raft, Multi-Paxos and ZAB each run it.
 */
export function describeProtocolConformance(name: string, module: ProtocolModule, options: ProtocolConformanceOptions = {}): void {
  const n = options.nodes ?? 3;
  const ids = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  const budget = options.electionBudget ?? 50 * (options.electionTicks ?? 10);
  const make = () => new TestCluster(module, ids, options);
  const elect = (c: TestCluster) => {
    c.tickUntil(() => c.leader() !== undefined, budget);
    return c.leader() as string;
  };

  describe(`protocol conformance: ${name} (${n} node${n === 1 ? '' : 's'})`, () => {
    it('elects exactly one leader, and every live node agrees on it', () => {
      const c = make();
      const leader = elect(c);
      c.tick(3 * (options.electionTicks ?? 10));
      const leaders = c.statuses().filter((s) => s.role === 'leader');
      expect(leaders.map((s) => s.id)).toEqual([leader]);
      for (const s of c.statuses()) expect(s.leader).toBe(leader);
    });

    it('commits proposals and applies them on every replica in the same order', () => {
      const c = make();
      elect(c);
      for (let i = 0; i < 20; i++) c.propose(text(`cmd-${i}`));
      c.tick(5);
      const expected = Array.from({ length: 20 }, (_, i) => `cmd-${i}`);
      for (const r of c.replicas.values()) expect(commands(r.applied)).toEqual(expected);
      const indexes = [...c.replicas.values()].map((r) => r.applied.map((e) => `${e.index}/${e.term}`).join(','));
      expect(new Set(indexes).size).toBe(1);
    });

    it('applies committed entries exactly once, in strictly increasing index order', () => {
      const c = make();
      elect(c);
      for (let i = 0; i < 10; i++) {
        c.propose(text(`x${i}`));
        c.tick(1);
      }
      for (const r of c.replicas.values()) {
        const idx = r.applied.map((e) => e.index);
        for (let i = 1; i < idx.length; i++) expect(idx[i]).toBe((idx[i - 1] as number) + 1);
      }
    });

    it('survives a restart of every node from storage and re-applies the committed log', () => {
      const c = make();
      elect(c);
      for (let i = 0; i < 5; i++) c.propose(text(`before-${i}`));
      c.tick(5);
      for (const id of ids) c.crash(id);
      for (const id of ids) c.restart(id);
      elect(c);
      c.propose(text('after'));
      c.tick(5);
      for (const r of c.replicas.values()) {
        expect(commands(r.applied)).toEqual(['before-0', 'before-1', 'before-2', 'before-3', 'before-4', 'after']);
      }
    });

    it('answers a read barrier on the leader at an index covering every committed write', () => {
      const c = make();
      const leader = elect(c);
      c.propose(text('w'));
      c.tick(2);
      const committed = c.replica(leader).protocol.status().commitIndex;
      c.replica(leader).protocol.readIndex(text('read-1'));
      c.deliverAll();
      c.tick(3);
      const reads = c.replica(leader).reads;
      expect(reads).toHaveLength(1);
      expect(new TextDecoder().decode(reads[0]?.ctx)).toBe('read-1');
      expect(reads[0]?.index).toBeGreaterThanOrEqual(committed);
    });

    it('rejects a proposal that is not a Uint8Array with a typed error', () => {
      const c = make();
      const leader = elect(c);
      let caught: unknown;
      try {
        c.replica(leader).protocol.propose('not bytes' as unknown as Uint8Array);
      } catch (e) {
        caught = e;
      }
      expect(isConsensusError(caught)).toBe(true);
    });

    it('ignores a malformed message without throwing or changing its status', () => {
      const c = make();
      const leader = elect(c);
      const p = c.replica(leader).protocol;
      const before = JSON.stringify(p.status());
      for (const msg of [null, 42, 'junk', {}, { type: 'NoSuchMessage' }, { type: 42, term: 'x' }]) {
        expect(() => p.step({ from: ids[ids.length - 1] as string, to: leader, msg })).not.toThrow();
      }
      expect(() => p.step({ from: 'stranger', to: leader, msg: { type: 'NoSuchMessage', term: 1e9 } })).not.toThrow();
      expect(JSON.stringify(p.status())).toBe(before);
    });

    if (n > 1) {
      it('rejects proposals on a follower with NotLeaderError carrying the leader hint', () => {
        const c = make();
        const leader = elect(c);
        c.tick(2);
        const follower = ids.find((id) => id !== leader) as string;
        let caught: unknown;
        try {
          c.replica(follower).protocol.propose(text('on follower'));
        } catch (e) {
          caught = e;
        }
        expect(NotLeaderError.is(caught)).toBe(true);
        expect((caught as NotLeaderError).leaderHint).toBe(leader);
      });

      it('elects a new leader after the leader crashes, keeping every committed entry', () => {
        const c = make();
        const first = elect(c);
        for (let i = 0; i < 5; i++) c.propose(text(`k${i}`));
        c.tick(3);
        c.crash(first);
        c.tickUntil(() => {
          const l = c.leader();
          return l !== undefined && l !== first;
        }, budget);
        c.propose(text('new-term'));
        c.tick(3);
        for (const r of c.replicas.values()) {
          if (!r.up) continue;
          expect(commands(r.applied)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'new-term']);
        }
      });

      it('makes no progress without a quorum and recovers when it heals', () => {
        const c = make();
        const leader = elect(c);
        c.tick(2);
        const before = c.replica(leader).protocol.status().commitIndex;
        for (const id of ids) c.isolate(id);
        try {
          c.replica(leader).protocol.propose(text('no quorum'));
        } catch {
          // stepping down already is fine too
        }
        c.tick(5);
        for (const s of c.statuses()) expect(s.commitIndex).toBeLessThanOrEqual(before);
        c.heal();
        const l2 = elect(c);
        c.propose(text('healed'), l2);
        c.tick(5);
        for (const r of c.replicas.values()) expect(commands(r.applied).at(-1)).toBe('healed');
      });
    }
  });
}
