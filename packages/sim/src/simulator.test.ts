import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isConsensusError, type ConfigError, type LogEntry, type Protocol, type ProtocolModule, type Ready, type Status } from '@consensus-kit/core';
import { ProbeNode, moduleOf, probe } from '../testdata/probe-protocol';
import { FaultScheduleError } from './errors';
import type { FaultEvent } from './faults';
import type { Invariant } from './invariant';
import { simulate, type SimulateOptions } from './simulator';
import { toy, toyInvariants } from './toy/index';

const digest = (lines: readonly string[] | undefined) => createHash('sha256').update((lines ?? []).join('\n')).digest('hex');

/** An invariant that records what a probe replica did, through the view's downcast. */
function recorder(ids: string[]) {
  const ticks = new Map<string, number>();
  const boots = new Map<string, number[]>();
  const inv: Invariant = {
    name: 'record',
    check(view) {
      for (const id of ids) {
        const p = view.protocolAs<ProbeNode>(id);
        if (p === undefined) continue;
        ticks.set(id, p.ticks);
        const list = boots.get(id) ?? [];
        if (list[view.replica(id).incarnation - 1] === undefined) list[view.replica(id).incarnation - 1] = p.bootLastIndex;
        boots.set(id, list);
      }
      return undefined;
    },
  };
  return { inv, ticks, boots };
}

describe('determinism', () => {
  const opts = (seed: number): SimulateOptions => ({ protocol: toy, seed, faults: 'heavy', nodes: 5, ticks: 300, trace: true, invariants: toyInvariants });

  it('the same seed gives a byte-identical trace and the same history', () => {
    const a = simulate(opts(42));
    const b = simulate(opts(42));
    expect(a.trace!.length).toBeGreaterThan(1000);
    expect(digest(a.trace)).toBe(digest(b.trace));
    expect(JSON.stringify(a.history)).toBe(JSON.stringify(b.history));
    expect(a.schedule).toEqual(b.schedule);
  });

  it('different seeds give different runs', () => {
    expect(digest(simulate(opts(1)).trace)).not.toBe(digest(simulate(opts(2)).trace));
  });

  it('tracing does not change the run', () => {
    const traced = simulate(opts(7));
    const plain = simulate({ ...opts(7), trace: false });
    expect(plain.trace).toBeUndefined();
    expect(JSON.stringify(plain.history)).toBe(JSON.stringify(traced.history));
    expect(plain.stats).toEqual(traced.stats);
  });
});

describe('the correct toy protocol', () => {
  for (const [faults, nodes] of [
    ['none', 3],
    ['light', 3],
    ['heavy', 3],
    ['heavy', 5],
  ] as const) {
    it(`passes 25 seeds with ${faults} faults on ${nodes} nodes, making progress`, () => {
      let ok = 0;
      for (let seed = 1; seed <= 25; seed++) {
        const r = simulate({ protocol: toy, seed, faults, nodes, invariants: toyInvariants });
        expect(r.violation, `seed ${seed}`).toBeUndefined();
        expect(r.check?.result).toBe('ok');
        ok += r.stats.opsOk;
        expect(r.stats.committedIndex).toBeGreaterThan(10);
      }
      expect(ok).toBeGreaterThan(25 * 50);
    });
  }

  it('records operations that timed out or lost their leader as indeterminate, never as failed', () => {
    let indeterminate = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = simulate({ protocol: toy, seed, faults: 'heavy', invariants: toyInvariants });
      for (const op of r.history) {
        expect(['ok', 'info']).toContain(op.status);
        if (op.status === 'ok') {
          expect(op.complete).toBeGreaterThanOrEqual(op.invoke);
          expect(op.output).toBeDefined();
        } else {
          expect(op.complete).toBeUndefined();
          expect(op.note).toMatch(/^(timeout|leader-crashed:n\d|run-ended|client-cut-off)$/);
          indeterminate++;
        }
      }
    }
    expect(indeterminate).toBeGreaterThan(0);
  });
});

describe('nodes: crash, restart, pause, clocks', () => {
  const crashAt20: FaultEvent[] = [
    { at: 20, action: { type: 'crash', node: 'n1' } },
    { at: 21, action: { type: 'restart', node: 'n1' } },
  ];
  type TraceLine = { t: number; ev: string; entries?: string[]; lostBatch?: string[]; save?: { steps: number; survived: number } };

  it('with crash mid-save off, a crash loses the whole batch still in its fsync; restart recovers exactly what was durable', () => {
    const { inv, boots } = recorder(['n1']);
    const events = crashAt20;
    // fsync takes 2.5 ticks: batches are always in flight, and group commit gathers the ticks in between.
    const r = simulate({ protocol: probe, seed: 1, nodes: 1, ticks: 30, fsyncMs: { min: 25, max: 25 }, faults: { kind: 'scripted', events }, invariants: [inv], workload: { clients: 0 }, trace: true, crashMidSave: false });
    expect(r.ok).toBe(true);
    const lines = r.trace!.map((l) => JSON.parse(l) as { t: number; ev: string; entries?: string[]; lostBatch?: string[] });
    const crash = lines.find((l) => l.ev === 'crash')!;
    const persistedBefore = lines.filter((l) => l.ev === 'persist' && l.t <= crash.t).flatMap((l) => l.entries ?? []);
    const lastDurable = Number(persistedBefore[persistedBefore.length - 1]!.split('/')[0]);
    expect(crash.lostBatch!.length).toBeGreaterThan(0);
    expect(Number(crash.lostBatch![0]!.split('/')[0])).toBe(lastDurable + 1);
    // ticks 1..19 appended 19 entries (plus the one at tick 20 if it ran first): more than reached the disk.
    expect(lastDurable).toBeLessThan(19);
    expect(boots.get('n1')).toEqual([0, lastDurable]);
  });

  it('a crash in the middle of a save keeps a prefix of its entries, drawn from the seed, and restart recovers it', () => {
    let torn = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { inv, boots } = recorder(['n1']);
      const r = simulate({ protocol: probe, seed, nodes: 1, ticks: 30, fsyncMs: { min: 25, max: 25 }, faults: { kind: 'scripted', events: crashAt20 }, invariants: [inv], workload: { clients: 0 }, trace: true });
      expect(r.ok).toBe(true);
      const lines = r.trace!.map((l) => JSON.parse(l) as TraceLine);
      const crash = lines.find((l) => l.ev === 'crash')!;
      const persistedBefore = lines.filter((l) => l.ev === 'persist' && l.t <= crash.t).flatMap((l) => l.entries ?? []);
      const lastDurable = Number(persistedBefore[persistedBefore.length - 1]!.split('/')[0]);
      const save = crash.save!;
      // The probe's saves are entries only: one save step per entry.
      expect(save.survived).toBeGreaterThanOrEqual(0);
      expect(save.survived).toBeLessThanOrEqual(save.steps);
      expect(crash.lostBatch!.length).toBe(save.steps - save.survived);
      expect(boots.get('n1')).toEqual([0, lastDurable + save.survived]);
      if (save.survived > 0 && save.survived < save.steps) torn++;
      expect(r.stats.tornSaves).toBe(save.survived > 0 && save.survived < save.steps ? 1 : 0);
    }
    expect(torn).toBeGreaterThan(0);
  });

  it('crashes of a random fault schedule land in the middle of saves, not only between them', () => {
    // Saves take a few percent of the time: crashes at random instants would almost never find one at the
    // disk, and crash mid-save would go untested. A crash waits up to a tick for the node's next save.
    let crashes = 0;
    let midSave = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const r = simulate({ protocol: toy, seed, faults: 'heavy', invariants: toyInvariants });
      expect(r.ok, `seed ${seed}`).toBe(true);
      crashes += r.stats.crashes;
      midSave += r.stats.crashesMidSave;
    }
    expect(crashes).toBeGreaterThan(100);
    expect(midSave / crashes).toBeGreaterThan(0.05);
    // Off, no crash finds a save on purpose: the stat counts only what happened.
    const off = simulate({ protocol: toy, seed: 1, faults: 'heavy', invariants: toyInvariants, crashMidSave: false });
    expect(off.stats.crashes).toBeGreaterThan(0);
  });

  it('a crash mid-save keeps the pinned order: hard state is never durable without the entries saved with it', () => {
    // Each Ready saves its entries and, last, a hard state naming its last entry (DESIGN r2 order).
    const seen: { hardState: number; lastIndex: number }[] = [];
    const stamp = moduleOf('stamp', (o) => {
      const node = new ProbeNode(o);
      const hs = o.storage.initialState().hardState;
      seen.push({ hardState: hs === undefined ? 0 : new DataView(hs.buffer, hs.byteOffset).getUint32(0), lastIndex: o.storage.lastIndex() });
      const ready = node.ready.bind(node);
      return Object.assign(node, {
        ready: (): Ready => {
          const rd = ready();
          const last = rd.entries[rd.entries.length - 1];
          if (last !== undefined) {
            const hardState = new Uint8Array(4);
            new DataView(hardState.buffer).setUint32(0, last.index);
            rd.hardState = hardState;
          }
          return rd;
        },
      });
    });
    for (let seed = 1; seed <= 20; seed++) {
      simulate({ protocol: stamp, seed, nodes: 1, ticks: 30, fsyncMs: { min: 25, max: 25 }, faults: { kind: 'scripted', events: crashAt20 }, workload: { clients: 0 } });
    }
    const restarts = seen.filter((_, i) => i % 2 === 1);
    expect(restarts).toHaveLength(20);
    for (const b of restarts) expect(b.hardState).toBeLessThanOrEqual(b.lastIndex);
    // Some crashes kept entries but not the hard state written after them.
    expect(restarts.some((b) => b.lastIndex > b.hardState)).toBe(true);
  });

  it('a paused node stands still while the others go on; on resume its clock jumps (the missed ticks at once, before its inbox)', () => {
    const { inv, ticks } = recorder(['n1', 'n2']);
    let duringPause: number | undefined;
    const spy: Invariant = {
      name: 'spy',
      check(view) {
        if (view.tick === 39) duringPause = view.protocolAs<ProbeNode>('n1')?.ticks;
        return undefined;
      },
    };
    const events: FaultEvent[] = [
      { at: 10, action: { type: 'pause', node: 'n1' } },
      { at: 40, action: { type: 'resume', node: 'n1' } },
    ];
    const run = simulate({ protocol: probe, seed: 3, nodes: 2, ticks: 60, faults: { kind: 'scripted', events }, invariants: [inv, spy], workload: { clients: 0 }, trace: true });
    expect(ticks.get('n2')).toBeGreaterThanOrEqual(59);
    expect(duringPause).toBeLessThanOrEqual(11);
    expect(ticks.get('n1')).toBeGreaterThanOrEqual(58);
    const resume = (run.trace ?? []).map((l) => JSON.parse(l) as { ev: string; missedTicks?: number }).find((e) => e.ev === 'resume');
    expect(resume?.missedTicks).toBeGreaterThanOrEqual(29);
  });

  it('clock rates make nodes tick faster or slower than the reference', () => {
    const { inv, ticks } = recorder(['n1', 'n2', 'n3']);
    const events: FaultEvent[] = [
      { at: 0, action: { type: 'clock', node: 'n1', rate: 2 } },
      { at: 0, action: { type: 'clock', node: 'n3', rate: 0.5 } },
    ];
    simulate({ protocol: probe, seed: 3, nodes: 3, ticks: 100, faults: { kind: 'scripted', events }, invariants: [inv], workload: { clients: 0 } });
    expect(ticks.get('n1')).toBeGreaterThanOrEqual(195);
    expect(ticks.get('n2')).toBeGreaterThanOrEqual(98);
    expect(ticks.get('n2')).toBeLessThanOrEqual(100);
    expect(ticks.get('n3')).toBeLessThanOrEqual(50);
  });
});

describe('network', () => {
  it('drop 1 delivers nothing, and no leader is ever elected', () => {
    const r = simulate({ protocol: toy, seed: 5, network: { drop: 1 }, ticks: 100, invariants: toyInvariants });
    expect(r.stats.messagesSent).toBeGreaterThan(0);
    expect(r.stats.messagesDelivered).toBe(0);
    expect(r.stats.opsOk).toBe(0);
    expect(r.ok).toBe(true);
  });

  it('duplicates deliver more messages than were sent, and the protocol copes', () => {
    const r = simulate({ protocol: toy, seed: 5, network: { duplicate: 0.5 }, ticks: 200, invariants: toyInvariants });
    expect(r.stats.messagesDuplicated).toBeGreaterThan(0);
    expect(r.stats.messagesDelivered).toBeGreaterThan(r.stats.messagesSent - r.stats.messagesDropped);
    expect(r.ok).toBe(true);
  });

  it('a scripted partition isolating the leader moves leadership and heals', () => {
    const leaders = new Set<string>();
    const watch: Invariant = {
      name: 'watch',
      check(view) {
        for (const rep of view.replicas) if (rep.status()?.role === 'leader') leaders.add(rep.id);
        return undefined;
      },
    };
    // Each node in turn is cut off from the others, so whoever leads at some point loses its quorum.
    const events: FaultEvent[] = [
      { at: 80, action: { type: 'partition', groups: [['n1'], ['n2', 'n3']] } },
      { at: 140, action: { type: 'isolate', node: 'n2' } },
      { at: 200, action: { type: 'partition', groups: [['n3']] } },
      { at: 260, action: { type: 'heal' } },
    ];
    const r = simulate({ protocol: toy, seed: 11, faults: { kind: 'scripted', events }, invariants: [...toyInvariants(), watch] });
    expect(r.ok).toBe(true);
    expect(leaders.size).toBeGreaterThanOrEqual(2);
    const afterHeal = r.history.filter((op) => op.status === 'ok' && op.invoke > 280 * r.tickUs);
    expect(afterHeal.length).toBeGreaterThan(20);
  });
});

describe('invariants', () => {
  it('runs protocol invariants through the hook, with status, storage and downcast in the view', () => {
    let sawStorage = false;
    const inv: Invariant = {
      name: 'no-commit-past-20',
      check(view) {
        for (const rep of view.replicas) {
          if (rep.storage.lastIndex() > 0) sawStorage = true;
          const s = rep.status();
          if (s !== undefined && s.commitIndex > 20) return `${rep.id} committed past 20`;
        }
        return undefined;
      },
    };
    const r = simulate({ protocol: toy, seed: 1, invariants: () => [inv] });
    expect(r.ok).toBe(false);
    expect(r.violation).toMatchObject({ kind: 'invariant', name: 'no-commit-past-20' });
    expect(sawStorage).toBe(true);
  });

  it('catches a commit index that goes backwards', () => {
    const liar: ProtocolModule = moduleOf('liar', (o) => {
        let n = 0;
        const node = new ProbeNode(o);
        const base = node.status.bind(node);
        return Object.assign(node, { status: (): Status => ({ ...base(), commitIndex: ++n === 30 ? 0 : Math.min(n, 5), appliedIndex: 0 }) }) as Protocol;
    });
    const r = simulate({ protocol: liar, seed: 1, nodes: 1, ticks: 50, workload: { clients: 0 } });
    expect(r.violation).toMatchObject({ kind: 'invariant', name: 'commit-monotonic' });
  });

  it('catches an acknowledged write that is no longer durable anywhere', () => {
    // A one-node "protocol" that commits on propose and wipes its log when it restarts.
    const amnesiac: ProtocolModule = moduleOf('amnesiac', (o) => {
        let last = o.storage.lastIndex();
        let wipe = last > 0;
        let entries: LogEntry[] = [];
        let committed: LogEntry[] = [];
        if (wipe) last = 0;
        const node: Protocol = {
          tick() {},
          step() {},
          proposeConfigChange() {},
          transferLeadership() {},
          propose(data: Uint8Array) {
            const e: LogEntry = { index: ++last, term: 1, type: 'command', data };
            entries.push(e);
            committed.push(e);
          },
          readIndex() {},
          hasReady: () => wipe || entries.length > 0,
          ready(): Ready {
            const rd: Ready = { entries, committed, messages: [], reads: [] };
            if (wipe) rd.truncateAfter = 0;
            wipe = false;
            entries = [];
            committed = [];
            return rd;
          },
          advance() {},
          status: (): Status => ({ id: o.id, role: 'leader', leader: o.id, term: 1, commitIndex: 0, appliedIndex: 0, lastIndex: last, config: { voters: [o.id], learners: [] } }),
        };
        return node;
    });
    const events: FaultEvent[] = [
      { at: 30, action: { type: 'crash', node: 'n1' } },
      { at: 31, action: { type: 'restart', node: 'n1' } },
    ];
    const r = simulate({ protocol: amnesiac, seed: 1, nodes: 1, ticks: 100, faults: { kind: 'scripted', events }, workload: { clients: 1, mix: { put: 1 } } });
    expect(r.history.some((op) => op.status === 'ok')).toBe(true);
    expect(r.violation).toMatchObject({ kind: 'invariant', name: 'acknowledged-not-lost' });
  });

  it('catches a replica that drops a committed entry it held, though another replica still holds it', () => {
    // Two replicas apply the entries the first one appends itself (no client: nothing is acknowledged, so
    // acknowledged-not-lost has nothing to say); at tick 50 n2 truncates its durable log below them.
    const forgetful: ProtocolModule = moduleOf('forgetful', (o) => {
      let last = o.storage.lastIndex();
      let ticks = 0;
      let entries: LogEntry[] = [];
      let truncate: number | undefined;
      let commit = 0;
      const node: Protocol = {
        tick() {
          ticks++;
          if (ticks <= 5) {
            commit = ticks;
            const e: LogEntry = { index: ++last, term: 1, type: 'command', data: new Uint8Array([ticks]) };
            entries.push(e);
          }
          if (o.id === 'n2' && ticks === 50) {
            truncate = 2;
            last = 2;
          }
        },
        step() {},
        proposeConfigChange() {},
        transferLeadership() {},
        propose() {},
        readIndex() {},
        hasReady: () => entries.length > 0 || truncate !== undefined,
        ready(): Ready {
          const rd: Ready = { entries, committed: entries, messages: [], reads: [] };
          if (truncate !== undefined) rd.truncateAfter = truncate;
          truncate = undefined;
          entries = [];
          return rd;
        },
        advance() {},
        status: (): Status => ({ id: o.id, role: 'follower', term: 1, commitIndex: commit, appliedIndex: commit, lastIndex: last, config: { voters: ['n1', 'n2'], learners: [] } }),
      };
      return node;
    });
    const r = simulate({ protocol: forgetful, seed: 1, nodes: 2, ticks: 100, workload: { clients: 0 } });
    expect(r.violation).toMatchObject({ kind: 'invariant', name: 'committed-kept' });
    expect(r.violation?.message).toMatch(/^n2 held committed 5\/1 command .* durably and now has no entry there/);
  });

  /**
   * n1 commits entries 1-5 and a no-op of term 2 at 6; n2 holds 1-5 and, at 6, a no-op of term `n2NoopTerm`
   * that it never commits, and at tick 50 truncates back to 5 (as a follower replacing a conflicting entry
   * does when a crash keeps the truncation but not the rewrite).
   */
  function noopSwap(n2NoopTerm: number): ProtocolModule {
    return moduleOf('noop-swap', (o) => {
      let last = o.storage.lastIndex();
      let ticks = 0;
      let entries: LogEntry[] = [];
      let committed: LogEntry[] = [];
      let truncate: number | undefined;
      let commit = 0;
      const node: Protocol = {
        tick() {
          ticks++;
          if (ticks <= 5) {
            const e: LogEntry = { index: ++last, term: 1, type: 'command', data: new Uint8Array([ticks]) };
            entries.push(e);
            committed.push(e);
            commit = ticks;
          } else if (ticks === 6) {
            const noop: LogEntry = { index: ++last, term: o.id === 'n1' ? 2 : n2NoopTerm, type: 'noop', data: new Uint8Array() };
            entries.push(noop);
            if (o.id === 'n1') {
              committed.push(noop);
              commit = 6;
            }
          }
          if (o.id === 'n2' && ticks === 50) {
            truncate = 5;
            last = 5;
          }
        },
        step() {},
        proposeConfigChange() {},
        transferLeadership() {},
        propose() {},
        readIndex() {},
        hasReady: () => entries.length > 0 || committed.length > 0 || truncate !== undefined,
        ready(): Ready {
          const rd: Ready = { entries, committed, messages: [], reads: [] };
          if (truncate !== undefined) rd.truncateAfter = truncate;
          truncate = undefined;
          entries = [];
          committed = [];
          return rd;
        },
        advance() {},
        status: (): Status => ({ id: o.id, role: 'follower', term: 2, commitIndex: commit, appliedIndex: commit, lastIndex: last, config: { voters: ['n1', 'n2'], learners: [] } }),
      };
      return node;
    });
  }

  it('lets a replica drop a no-op of another term that has the committed no-op\'s identity (it held a conflicting entry, not the committed one)', () => {
    const r = simulate({ protocol: noopSwap(1), seed: 1, nodes: 2, ticks: 100, workload: { clients: 0 } });
    expect(r.violation).toBeUndefined();
    // The same loss of the committed no-op itself (same term) is still caught.
    const same = simulate({ protocol: noopSwap(2), seed: 1, nodes: 2, ticks: 100, workload: { clients: 0 } });
    expect(same.violation).toMatchObject({ kind: 'invariant', name: 'committed-kept' });
    expect(same.violation?.message).toMatch(/^n2 held committed 6\/2 noop durably and now has no entry there/);
  });

  it('fails, rather than hangs on, a protocol whose hasReady() never turns false', () => {
    const stuck: ProtocolModule = moduleOf('stuck', (o) => Object.assign(new ProbeNode(o), { hasReady: () => true }));
    const r = simulate({ protocol: stuck, seed: 1, nodes: 1, ticks: 10, workload: { clients: 0 } });
    expect(r.violation).toMatchObject({ kind: 'protocol-error', name: 'hasReady' });
  });

  it('reports a protocol that throws as a protocol error, with the method', () => {
    const thrower: ProtocolModule = moduleOf('thrower', (o) => {
        const node = new ProbeNode(o);
        let n = 0;
        return Object.assign(node, {
          tick: () => {
            if (++n === 5) throw new TypeError('boom');
          },
        }) as Protocol;
    });
    const r = simulate({ protocol: thrower, seed: 1, nodes: 1, ticks: 20, workload: { clients: 0 } });
    expect(r.violation).toMatchObject({ kind: 'protocol-error', name: 'tick' });
    expect(r.violation!.message).toContain('boom');
  });
});

describe('bad input is refused before anything runs', () => {
  let created = 0;
  const counting: ProtocolModule = moduleOf('counting', (o) => (created++, toy.create(o)));
  const refuse = (o: Partial<SimulateOptions>) => {
    created = 0;
    let err: unknown;
    try {
      simulate({ protocol: counting, seed: 1, ...o });
    } catch (e) {
      err = e;
    }
    expect(created).toBe(0);
    expect(isConsensusError(err, 'CONFIG')).toBe(true);
    return err as ConfigError;
  };

  it('a partition naming a node that does not exist', () => {
    const e = refuse({ faults: { kind: 'scripted', events: [{ at: 5, action: { type: 'partition', groups: [['n1'], ['n2', 'n9']] } }] } });
    expect(e).toBeInstanceOf(FaultScheduleError);
    expect(e.message).toMatch(/event #0.*n9.*does not exist/);
  });

  it('malformed scripted schedules', () => {
    expect(refuse({ faults: { kind: 'scripted', events: 'soon' as never } })).toBeInstanceOf(FaultScheduleError);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: -1, action: { type: 'heal' } }] } }).message).toMatch(/non-negative/);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: 1, action: { type: 'explode' } as never }] } }).message).toMatch(/unknown action type "explode"/);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: 9999, action: { type: 'heal' } }] } }).message).toMatch(/after the end/);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: 1, action: { type: 'crash' } as never }] } }).message).toMatch(/crash/);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: 1, action: { type: 'bridge', bridge: 'n1', left: ['n1'], right: ['n2'] } }] } }).message).toMatch(/two groups/);
    expect(refuse({ faults: { kind: 'scripted', events: [{ at: 1, action: { type: 'clock', node: 'n1', rate: 0 } }] } }).message).toMatch(/rate/);
  });

  it('impossible fault and network settings', () => {
    expect(refuse({ faults: 'apocalyptic' as never })).toBeInstanceOf(FaultScheduleError);
    expect(refuse({ faults: { kind: 'random', crash: -1 } })).toBeInstanceOf(FaultScheduleError);
    expect(refuse({ faults: { kind: 'random', drop: 2 } })).toBeInstanceOf(FaultScheduleError);
    expect(refuse({ network: { drop: 1.5 } }).message).toMatch(/drop/);
    expect(refuse({ network: { links: { 'n1->n7': { drop: 0.5 } } } }).message).toMatch(/n1->n7/);
    expect(refuse({ network: { delay: { min: 5, max: 1 } } }).message).toMatch(/delay/);
  });

  it('bad cluster, run and workload options', () => {
    expect(refuse({ nodes: 0 }).message).toMatch(/nodes/);
    expect(refuse({ nodes: ['a', 'a'] }).message).toMatch(/twice/);
    expect(refuse({ ticks: 1.5 }).message).toMatch(/ticks/);
    expect(refuse({ seed: Number.NaN }).message).toMatch(/seed/);
    expect(refuse({ workload: { clients: -1 } }).message).toMatch(/clients/);
    expect(refuse({ workload: { keys: 0, listKeys: 0 } }).message).toMatch(/no operation/);
  });
});
