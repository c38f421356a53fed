import { isConsensusError, NotLeaderError } from '../errors';
import type { AnyProtocolModule, ClusterConfig, LogEntry, NodeId } from '../types';
import { TestCluster, type TestClusterOptions } from './test-cluster';
import type { TestApi } from './test-api';

export interface ProtocolConformanceOptions extends TestClusterOptions {
  module: AnyProtocolModule;
  /** Label of the describe block (default: the module's name). */
  name?: string;
  /** Cluster size for the multi-node cases (default 3). A size of 1 runs only the single-node cases. */
  nodes?: number;
  /** Ticks allowed for an election (default 50 x electionTicks). */
  electionBudget?: number;
  /**
   * Abilities a protocol does not have, whose cases are then not registered: for teaching and test protocols
   * (the simulator's toy has no membership changes or leadership transfer). Raft, Multi-Paxos and ZAB run the
   * whole suite.
   */
  without?: readonly ('membership' | 'transfer')[];
}

const text = (s: string) => new TextEncoder().encode(s);
const commands = (entries: readonly LogEntry[]) =>
  entries.filter((e) => e.type === 'command').map((e) => new TextDecoder().decode(e.data));
/** Entry identity (DESIGN r2): index, type and data; never the term, which is protocol metadata. */
const identity = (entries: readonly LogEntry[]) =>
  entries.map((e) => `${e.index}:${e.type}:${Array.from(e.data, (b) => b.toString(16).padStart(2, '0')).join('')}`).join(',');
const settled = (config: ClusterConfig) => config.outgoing === undefined;

/**
 * What every `ProtocolModule` must do through the contract alone: elect a leader, commit proposals on every
 * replica in the same order, survive restarts from storage, reject proposals on followers with a leader
 * hint, answer read barriers, reject bad input with typed errors, change membership (learners, promotion,
 * removal), transfer leadership, and catch a lagging follower up through a snapshot once the log behind it is
 * compacted. Throughout, the cluster checks after every Ready that no protocol truncates or rewrites an index
 * at or below its commit index. Raft, Multi-Paxos and ZAB each run it, with the caller's test runner:
 *
 * ```ts
 * import { describe, expect, it } from 'vitest';
 * describeProtocolConformance({ describe, it, expect }, { module: raft });
 * ```
 */
export function describeProtocolConformance(api: TestApi, options: ProtocolConformanceOptions): void {
  const { describe, it, expect } = api;
  const { module } = options;
  const name = options.name ?? module.name;
  const n = options.nodes ?? 3;
  const ids = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  const budget = options.electionBudget ?? 50 * (options.electionTicks ?? 10);
  const lacks = (ability: 'membership' | 'transfer') => options.without?.includes(ability) ?? false;
  const make = () => new TestCluster(module, ids, options);
  const elect = (c: TestCluster) => {
    c.tickUntil(() => c.leader() !== undefined, budget);
    return c.leader() as string;
  };
  const live = (c: TestCluster) => [...c.replicas.values()].filter((r) => r.up);
  /** Proposes a config change on whoever leads now (again after a leader change), until every replica is done. */
  const reconfigure = (
    c: TestCluster,
    changes: { op: 'addVoter' | 'addLearner' | 'remove'; node: NodeId }[],
    done: (config: ClusterConfig) => boolean,
    except?: NodeId,
  ) => {
    c.tickUntil(() => {
      // Done once every replica both reports the target and has applied it (a protocol may put a configuration
      // in force before it commits, as Raft's one-step changes do: thesis 4.1).
      if (live(c).every((r) => r.id === except || (done(r.protocol.status().config) && done(r.applier.config)))) return true;
      const leader = c.leader();
      if (leader !== undefined) {
        const config = c.replica(leader).protocol.status().config;
        if (!done(config) && settled(config)) {
          try {
            c.replica(leader).protocol.proposeConfigChange({ changes });
          } catch {
            // a change still in flight: retry on a later tick
          }
        }
      }
      return false;
    }, budget);
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
      const logs = [...c.replicas.values()].map((r) => identity(r.applied));
      expect(new Set(logs).size).toBe(1);
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

      it('never rewrites a committed entry when the network delivers old messages again', () => {
        const c = make();
        elect(c);
        for (let i = 0; i < 5; i++) c.propose(text(`k${i}`));
        c.tick(3);
        // Every append, vote and reply so far arrives a second time: each Ready is checked against the commit index.
        c.redeliverAll();
        c.tick(3);
        c.propose(text('after'));
        c.tick(3);
        for (const r of live(c)) expect(commands(r.applied)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'after']);
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

      it('restarts a follower from storage mid-term: same term, same leader, nothing lost', () => {
        const c = make();
        const leader = elect(c);
        for (let i = 0; i < 3; i++) c.propose(text(`m${i}`));
        c.tick(3);
        const term = c.replica(leader).protocol.status().term;
        const follower = ids.find((id) => id !== leader) as string;
        const before = c.replica(follower).protocol.status();
        c.crash(follower);
        c.propose(text('while-down'));
        c.restart(follower);
        const after = c.replica(follower).protocol.status();
        expect(after.term).toBe(before.term);
        expect(after.lastIndex).toBeGreaterThanOrEqual(before.lastIndex);
        c.tick(5);
        expect(c.leader()).toBe(leader);
        for (const s of c.statuses()) expect(s.term).toBe(term);
        c.propose(text('after'));
        c.tick(3);
        for (const r of live(c)) expect(commands(r.applied)).toEqual(['m0', 'm1', 'm2', 'while-down', 'after']);
      });

      it('truncates only above its commit index when an old leader rejoins with entries that never committed', () => {
        const c = make();
        const first = elect(c);
        c.propose(text('kept'));
        c.tick(3);
        c.isolate(first);
        try {
          c.replica(first).protocol.propose(text('lost'));
        } catch {
          // a leader that already stepped down may refuse: nothing to lose then
        }
        c.deliverAll();
        c.tickUntil(() => live(c).some((r) => r.id !== first && r.protocol.status().role === 'leader'), budget);
        const second = live(c).find((r) => r.id !== first && r.protocol.status().role === 'leader')?.id as string;
        c.propose(text('won'), second);
        c.heal();
        c.tickUntil(() => commands(c.replica(first).applied).includes('won'), budget);
        c.tick(3);
        // Every Ready was checked by the cluster (no truncation or rewrite at or below a commit index).
        for (const r of live(c)) expect(commands(r.applied)).toEqual(['kept', 'won']);
        expect(new Set(live(c).map((r) => identity(r.applied))).size).toBe(1);
      });

      if (!lacks('transfer')) it('transfers leadership to a chosen follower, which then commits', () => {
        const c = make();
        const leader = elect(c);
        c.propose(text('t0'));
        c.tick(3);
        const term = c.replica(leader).protocol.status().term;
        const target = ids.find((id) => id !== leader) as string;
        c.replica(leader).protocol.transferLeadership(target);
        c.deliverAll();
        c.tickUntil(() => c.leader() === target && c.statuses().every((s) => s.leader === target), budget);
        expect(c.replica(target).protocol.status().term).toBeGreaterThan(term);
        c.propose(text('t1'), target);
        c.tick(3);
        for (const r of live(c)) expect(commands(r.applied)).toEqual(['t0', 't1']);
      });

      it('catches a lagging follower up through a snapshot once the log behind it is compacted', () => {
        const c = make();
        const leader = elect(c);
        const follower = ids.find((id) => id !== leader) as string;
        c.crash(follower);
        const expected: string[] = [];
        for (let i = 0; i < 12; i++) {
          c.propose(text(`s${i}`));
          expected.push(`s${i}`);
        }
        c.tick(3);
        for (const r of live(c)) {
          const index = c.snapshot(r.id);
          c.compact(r.id, index);
        }
        c.propose(text('after-compaction'));
        expected.push('after-compaction');
        c.restart(follower);
        c.tickUntil(() => commands(c.replica(follower).applied).length === expected.length, budget);
        const f = c.replica(follower);
        expect(f.installedSnapshots).toBeGreaterThanOrEqual(1);
        expect(f.storage.firstIndex()).toBeGreaterThan(1);
        for (const r of live(c)) expect(commands(r.applied)).toEqual(expected);
        expect(new Set(live(c).map((r) => identity(r.applied))).size).toBe(1);
      });

      if (n >= 3 && !lacks('membership')) {
        it('adds a learner that catches up without voting, then promotes it to a voter', () => {
          const c = make();
          elect(c);
          for (let i = 0; i < 5; i++) c.propose(text(`l${i}`));
          c.tick(2);
          const voters = [...ids].sort();
          c.add('learner');
          reconfigure(c, [{ op: 'addLearner', node: 'learner' }], (cfg) => cfg.learners.includes('learner') && settled(cfg));
          c.tickUntil(() => commands(c.replica('learner').applied).length === 5, budget);
          const asLearner = c.replica('learner').protocol.status();
          expect(asLearner.role).toBe('learner');
          expect([...asLearner.config.voters].sort()).toEqual(voters);
          expect(c.replica('learner').applier.config.learners).toContain('learner');
          reconfigure(c, [{ op: 'addVoter', node: 'learner' }], (cfg) => cfg.voters.includes('learner') && !cfg.learners.includes('learner') && settled(cfg));
          expect(c.replica('learner').protocol.status().role).not.toBe('learner');
          c.propose(text('promoted'));
          c.tick(3);
          for (const r of live(c)) expect(commands(r.applied)).toEqual(['l0', 'l1', 'l2', 'l3', 'l4', 'promoted']);
          expect(new Set(live(c).map((r) => identity(r.applied))).size).toBe(1);
        });

        it('removes a voter, and the rest keep committing without it', () => {
          const c = make();
          const leader = elect(c);
          c.propose(text('r0'));
          c.tick(2);
          const removed = ids.find((id) => id !== leader) as string;
          reconfigure(c, [{ op: 'remove', node: removed }], (cfg) => !cfg.voters.includes(removed) && settled(cfg), removed);
          for (const r of live(c)) {
            if (r.id === removed) continue;
            expect(r.applier.config.voters).not.toContain(removed);
          }
          c.crash(removed);
          c.propose(text('r1'));
          c.tick(3);
          for (const r of live(c)) expect(commands(r.applied)).toEqual(['r0', 'r1']);
        });
      }
    }
  });
}
