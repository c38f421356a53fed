import { writeFileSync } from 'node:fs';
import { isConsensusError, seededRandom, type Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { TestNetwork } from './network';

/**
 * Randomized fault runs over the test network: message drops, duplicates and reordering, partitions,
 * crash-restart from storage, snapshots with log compaction, and membership changes, with Raft's invariants
 * checked after every Ready. At the end the network heals and the cluster must make progress and agree.
 *
 * RAFT_SEEDS=<n> runs more seeds (default 200 per cluster size); RAFT_SEED=<s> RAFT_SIZE=<n> replays one seed.
 */
const SEEDS = Number(process.env.RAFT_SEEDS ?? 200);
/** RAFT_FAULTS=heavy: three times the message loss, more duplicates. */
const HEAVY = process.env.RAFT_FAULTS === 'heavy';
const enc = new TextEncoder();

function runSeed(seed: number, size: number): { committed: number; leaders: number } {
  try {
    return runSeedInner(seed, size);
  } finally {
    if (process.env.RAFT_TRACE === '1') writeFileSync('/tmp/raft-trace.txt', lastTrace.join('\n'));
  }
}
let lastTrace: string[] = [];

function runSeedInner(seed: number, size: number): { committed: number; leaders: number } {
  const ids = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + i));
  const net = new TestNetwork(ids, { maxSizePerMsg: 256, snapshotChunkBytes: 64, maxInflightMsgs: 8 }, seed);
  const rnd = seededRandom(seed * 2654435761);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const proposed = new Set<string>();
  let next = 0;
  let leaders = 0;
  let lastLeader: string | undefined;

  const trace: string[] = [];
  lastTrace = trace;
  const log = (msg: string) => {
    if (process.env.RAFT_TRACE === '1') trace.push(msg);
  };
  const origProcess = net.process.bind(net);
  if (process.env.RAFT_TRACE === '1') {
    net.process = (id: string) => {
      const before = net.get(id).node.status();
      const r = origProcess(id);
      const after = net.get(id).node.status();
      if (before.role !== after.role || before.term !== after.term || before.commitIndex !== after.commitIndex || before.lastIndex !== after.lastIndex) {
        log(`${id}: ${before.role}/${before.term} c=${before.commitIndex} l=${before.lastIndex} -> ${after.role}/${after.term} c=${after.commitIndex} l=${after.lastIndex} cfg=${JSON.stringify(after.config)}`);
      }
      return r;
    };
  }
  const deliverSome = (dropRate: number, dupRate: number) => {
    const n = net.queue.length;
    for (let k = 0; k < n && net.queue.length > 0; k++) {
      // Reorder: take a random message rather than the oldest.
      const i = Math.floor(rnd() * net.queue.length);
      const env = net.queue.splice(i, 1)[0] as Envelope;
      if (rnd() < dropRate) continue;
      if (rnd() < dupRate) net.queue.push(env);
      const target = net.replicas.get(env.to);
      if (target === undefined || !target.up || net.isBlocked(env.from, env.to)) continue;
      target.node.step(env);
      net.processAll();
    }
  };

  const prevLine = new Map<string, string>();
  const snap = () => {
    for (const x of net.replicas.values()) {
      const st = x.node.status();
      const line = `${x.id}${x.up ? '' : '(down)'} ${st.role}/${st.term} lead=${st.leader ?? '-'} c=${st.commitIndex} l=${st.lastIndex} f=${x.node.firstIndex()} vote=${x.node.votedFor ?? '-'} cfg=${JSON.stringify(st.config)}`;
      if (prevLine.get(x.id) !== line) log(line);
      prevLine.set(x.id, line);
    }
  };
  for (let round = 0; round < 300; round++) {
    if (process.env.RAFT_TRACE === '1') snap();
    log(`-- round ${round}`);
    const r = rnd();
    if (r < 0.03) {
      net.heal();
      const group = ids.filter(() => rnd() < 0.4);
      if (group.length > 0 && group.length < ids.length) net.partition(group);
      log(`partition ${group.join(',')}`);
    } else if (r < 0.06) {
      net.heal();
      log('heal');
    } else if (r < 0.08) {
      const id = pick(ids);
      if (net.get(id).up && ids.filter((x) => net.get(x).up).length > 1) {
        net.crash(id);
        log(`crash ${id}`);
      }
    } else if (r < 0.12) {
      for (const id of ids) if (!net.get(id).up) {
        log(`restart ${id}`);
        net.restart(id);
      }
    } else if (r < 0.14) {
      const id = pick(ids);
      if (net.get(id).up && net.get(id).appliedIndex > 0) log(`snapshot ${id} at ${net.snapshot(id)}`);
    } else if (r < 0.16) {
      const l = net.leader();
      if (l !== undefined) {
        const s = l.node.status();
        const target = pick(ids);
        const op =
          s.config.voters.includes(target) && s.config.voters.length > 1
            ? rnd() < 0.5
              ? 'addLearner'
              : 'remove'
            : 'addVoter';
        try {
          l.node.proposeConfigChange({ changes: [{ op, node: target }] });
          log(`config ${l.id}: ${op} ${target}`);
        } catch (e) {
          if (!isConsensusError(e)) throw e;
        }
      }
    } else if (r < 0.17) {
      const l = net.leader();
      if (l !== undefined) {
        try {
          const to = pick(ids);
          l.node.transferLeadership(to);
          log(`transfer ${l.id} -> ${to}`);
        } catch (e) {
          if (!isConsensusError(e)) throw e;
        }
      }
    }
    // Clients propose to whoever they believe leads.
    const l = net.leader();
    if (l !== undefined && rnd() < 0.7) {
      if (l.id !== lastLeader) {
        leaders++;
        lastLeader = l.id;
      }
      const count = 1 + Math.floor(rnd() * 3);
      for (let i = 0; i < count; i++) {
        const cmd = `c${next++}`;
        try {
          l.node.propose(enc.encode(cmd));
          proposed.add(cmd);
        } catch (e) {
          if (!isConsensusError(e)) throw e;
        }
      }
    }
    for (const id of ids) if (net.get(id).up) net.tick(id);
    deliverSome(HEAVY ? 0.3 : 0.1, HEAVY ? 0.15 : 0.05);
  }

  // Heal everything and let the cluster settle: it must elect a leader and commit a final command.
  net.heal();
  for (const id of ids) if (!net.get(id).up) net.restart(id);
  let done = false;
  for (let round = 0; round < 400 && !done; round++) {
    for (const id of ids) net.tick(id);
    net.deliver();
    const leader = net.leader();
    if (leader !== undefined && round % 20 === 10) {
      try {
        leader.node.propose(enc.encode('final'));
        proposed.add('final');
      } catch (e) {
        if (!isConsensusError(e)) throw e;
      }
    }
    if (leader !== undefined) {
      const voters = leader.node.status().config.voters;
      done = voters.every((v) => net.get(v).applied.includes('final'));
    }
  }
  if (!done) {
    const dump = [...net.replicas.values()].map((x) => {
      const st = x.node.status();
      return `${x.id} ${x.up ? '' : 'DOWN '}${st.role} t=${st.term} lead=${st.leader ?? '-'} commit=${st.commitIndex} last=${st.lastIndex} first=${x.node.firstIndex()} applied=${x.appliedIndex} cfg=${JSON.stringify(st.config)} prog=${JSON.stringify(st.details.progress ?? {})}`;
    });
    expect.fail(`seed ${seed} (${size} nodes): no progress after healing\n${dump.join('\n')}`);
  }

  // State machine safety: every replica applied a prefix of one sequence, each command once, all proposed.
  const longest = [...net.replicas.values()].map((x) => x.applied).sort((a, b) => b.length - a.length)[0] as string[];
  expect(new Set(longest).size, `seed ${seed}: a command was applied twice`).toBe(longest.length);
  for (const cmd of longest) expect(proposed.has(cmd), `seed ${seed}: ${cmd} was never proposed`).toBe(true);
  for (const x of net.replicas.values()) {
    expect(longest.slice(0, x.applied.length), `seed ${seed}: ${x.id} diverged`).toEqual(x.applied);
  }
  expect(net.violations).toEqual([]);
  return { committed: longest.length, leaders };
}

describe('randomized faults (drops, duplicates, reordering, partitions, crash-restart, snapshots, membership)', () => {
  for (const size of [3, 5]) {
    it(`${SEEDS} seeds, ${size} nodes: invariants hold and the cluster recovers`, () => {
      let committed = 0;
      const only = process.env.RAFT_SEED === undefined ? undefined : Number(process.env.RAFT_SEED);
      if (only !== undefined && process.env.RAFT_SIZE !== undefined && Number(process.env.RAFT_SIZE) !== size) return;
      if (only !== undefined) {
        runSeed(only, size);
        return;
      }
      for (let seed = 1; seed <= SEEDS; seed++) {
        try {
          committed += runSeed(seed, size).committed;
        } catch (e) {
          throw new Error(`seed ${seed} (${size} nodes; replay with RAFT_SEED=${seed} RAFT_SIZE=${size}): ${(e as Error).message}`, { cause: e });
        }
      }
      if (process.env.RAFT_STATS === '1') console.log(`${size} nodes: ${(committed / SEEDS).toFixed(1)} commands committed per seed`);
      // The runs did real work (not vacuous): on average dozens of commands committed per seed.
      expect(committed / SEEDS).toBeGreaterThan(20);
    }, 600_000);
  }
});
