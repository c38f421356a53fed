import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLinearizability, describeOp, type History, type HistoryOp, type KvInput, type KvOutput } from '@consensus-kit/sim';
import { connectKv } from '../src/connect';
import { sleep } from '../src/supervisor';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, leaderOf, statusOf, tempDir, useSourceNodes, waitFor, type StatusJson } from './helpers';

useSourceNodes();

/** Rounds of faults; 1 in `pnpm test`. More for a deeper run: `CK_NEMESIS_ROUNDS=20 npx vitest run test/linearizability.test.ts`. */
const ROUNDS = Math.max(1, Number.parseInt(process.env.CK_NEMESIS_ROUNDS ?? '1', 10) || 1);
/** Operations the clients complete in each state the nemesis sets up before it moves on (5 clients: 4 each). */
const TRAFFIC = 20;

/**
 * The simulator checks the protocols' histories; this checks the whole stack the CLI runs (ConsensusNode,
 * storage-fs, transport-tcp, kv sessions and the client's retries) the same way, Jepsen-style: concurrent
 * clients on a few keys while the nemesis below crashes, restarts, partitions and freezes nodes and changes
 * membership and leadership; then the history must be linearizable. Writes whose outcome the client could not learn count as indeterminate
 * (they may or may not have taken effect); reads that failed are left out.
 */
describe.each(PROTOCOLS_UNDER_TEST)('consensus-cli on %s: a real cluster under faults stays linearizable', (protocol) => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const started = await cli('start', '--protocol', protocol, '--dir', dir, '--port', String(await freeBase()), '--detach', '--json');
    expect(started.code, started.err).toBe(0);
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('concurrent puts, cas and linearizable gets through kills, restarts, a partition, a paused leader, membership changes and leader transfers', async () => {
    const keys = ['x', 'y', 'z'];
    const history: History = [];
    const t0 = performance.now();
    const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
    let running = true;
    let completed = 0; // operations acknowledged ok so far
    let nextProcess = 0;
    const channels: { close(): Promise<void> }[] = [];
    const lastSeen = new Map<string, string | null>();

    // A client runs one operation at a time. After an indeterminate one it continues as a new process
    // (Jepsen's rule: that operation may still take effect while the next one runs).
    const client = async (c: number) => {
      const { kv } = connectKv(dir, { timeoutMs: 800, attemptTimeoutMs: 400 });
      channels.push(kv);
      let proc = nextProcess++;
      let n = 0;
      while (running) {
        const key = keys[(c + n) % keys.length] as string;
        const roll = (c * 7 + n * 13) % 10;
        const value = `c${c}-${n}`;
        n++;
        let input: KvInput;
        if (roll < 4) input = { f: 'get', key };
        else if (roll < 7) input = { f: 'put', key, value };
        else {
          // cas from the value last read or written there (by any client), so that some swaps succeed
          input = { f: 'cas', key, from: lastSeen.get(key) ?? null, to: value };
        }
        const op: HistoryOp = { id: history.length, client: proc, input, invoke: now(), status: 'info' };
        history.push(op);
        try {
          let output: KvOutput;
          if (input.f === 'get') {
            const kvPair = await kv.get(input.key);
            output = { value: kvPair === undefined ? null : String(kvPair.value) };
          } else if (input.f === 'put') {
            await kv.put(input.key, input.value);
            output = { ok: true };
          } else if (input.f === 'cas') {
            const r = await kv.cas(input.key, input.from === null ? { exists: false } : { value: input.from }, input.to);
            output = { swapped: r.succeeded };
          } else {
            throw new Error('unexpected op');
          }
          op.complete = now();
          op.status = 'ok';
          op.output = output;
          completed++;
          if ('value' in output) lastSeen.set(input.key, output.value);
          else if (input.f !== 'get' && ('ok' in output || output.swapped)) lastSeen.set(input.key, input.f === 'put' ? input.value : input.to);
        } catch (e) {
          op.note = (e as Error).name;
          proc = nextProcess++;
          await sleep(20);
        }
      }
    };

    const faults: string[] = [];
    const act = async (what: string, ...args: string[]) => {
      faults.push(`${now()} ${[what, ...args].join(' ')}`);
      let r = await cli(what, ...args, '--dir', dir);
      // partition and heal are idempotent and say "run heal again" when a busy node did not answer in time.
      for (let again = 0; r.code !== 0 && (what === 'partition' || what === 'heal') && again < 5; again++) {
        await sleep(200);
        r = await cli(what, ...args, '--dir', dir);
      }
      expect(r.code, `${what} ${args.join(' ')}: ${r.err}`).toBe(0);
    };
    // Each state the nemesis sets up lasts until the clients have completed operations in it (instead of a fixed
    // time, which a busy machine can fill with nothing): the history then holds operations from every state.
    const traffic = async (state: string, n = TRAFFIC) => {
      const from = completed;
      await waitFor(`${n} operations ${state}`, async () => (completed - from >= n ? true : undefined), 30_000);
    };
    const termOf = (s: StatusJson) => Math.max(...s.nodes.map((n) => n.term ?? 0));
    /** A leader other than `not`, of a term newer than `term`, that a majority agrees on. */
    const newLeader = (what: string, not: string, term: number) =>
      waitFor(what, async () => {
        const s = await statusOf(dir);
        return s.leader !== null && s.leader !== not && termOf(s) > term ? s.leader : undefined;
      });
    /** Every node of the cluster's file answering as leader or follower (one that came back has rejoined). */
    const allUp = () =>
      waitFor('every node to answer as leader or follower', async () => ((await statusOf(dir)).nodes.every((n) => n.role === 'leader' || n.role === 'follower') ? true : undefined));
    const follower = () => waitFor('a follower', async () => (await statusOf(dir)).nodes.find((s) => s.role === 'follower')?.node);
    const nemesis = async () => {
      await traffic('before the first fault');
      for (let round = 0; round < ROUNDS; round++) {
        // The leader crashes (the others elect a new one) and comes back from its disk.
        const first = await leaderOf(dir);
        const term = termOf(await statusOf(dir));
        await act('kill', first);
        await newLeader('a leader after the crash', first, term);
        await traffic('without the crashed leader');
        await act('restart', first);
        await allUp();
        await traffic('with the old leader back');
        // The leader is cut off from its peers (clients still reach it) until the others elect a leader of their
        // own, then the network heals.
        const cut = await leaderOf(dir);
        const cutTerm = termOf(await statusOf(dir));
        await act('partition', cut);
        await newLeader('a leader beside the cut-off one', cut, cutTerm);
        await traffic('beside the cut-off leader');
        await act('heal');
        await allUp();
        await traffic('after the heal');
        if (round % 2 === 0) {
          // Membership changes through the log: a new voter joins, catches up, and is removed again.
          const joiner = `n${4 + round}`;
          await act('members', 'add', joiner);
          await waitFor(`${joiner} to catch up`, async () => {
            const n = (await statusOf(dir)).nodes.find((x) => x.node === joiner);
            return n?.role === 'follower' && (n.applied ?? 0) > 0 ? true : undefined;
          });
          await traffic(`with ${joiner} a voter`);
          await act('members', 'remove', joiner);
          await traffic(`after ${joiner} left`);
        }
        // A follower crashes and comes back.
        const f = await follower();
        await act('kill', f);
        await traffic('without the crashed follower');
        await act('restart', f);
        await allUp();
        await traffic('with the follower back');
        // The leader freezes (SIGSTOP: a long GC pause or a stalled VM) until the others have elected a leader
        // of a newer term, then resumes believing it still leads.
        const frozen = await leaderOf(dir);
        const before = await statusOf(dir);
        const pid = before.nodes.find((s) => s.node === frozen)?.pid;
        expect(typeof pid).toBe('number');
        faults.push(`${now()} pause ${frozen}`);
        process.kill(pid as number, 'SIGSTOP');
        try {
          await newLeader('the others to elect a leader', frozen, termOf(before));
          // Not a number of operations here: a client whose request went to the frozen leader waits for its
          // timeout, and the clients' operations mostly fail until the old leader resumes.
          await sleep(500);
        } finally {
          faults.push(`${now()} resume ${frozen}`);
          process.kill(pid as number, 'SIGCONT');
        }
        await allUp();
        await traffic('after the frozen leader resumed');
        if (round % 2 === 1) {
          // A majority crashes (nothing can commit for a while), then both come back from their disks.
          const leader = await leaderOf(dir);
          const other = await follower();
          await act('kill', leader);
          await act('kill', other);
          await sleep(1000);
          await act('restart', leader);
          await act('restart', other);
          await allUp();
          await traffic('after the majority came back');
          // A voter is removed and added back: it rejoins with the data it had, behind the others.
          const leaving = await follower();
          await act('members', 'remove', leaving);
          await traffic(`without ${leaving}`);
          await act('members', 'add', leaving);
          await waitFor(`${leaving} to rejoin`, async () => {
            const s = await statusOf(dir);
            const n = s.nodes.find((x) => x.node === leaving);
            const leaderApplied = s.nodes.find((x) => x.node === s.leader)?.applied ?? 0;
            return n?.role === 'follower' && (n.applied ?? 0) > 0 && leaderApplied > 0 ? true : undefined;
          });
          await traffic(`with ${leaving} back`);
          // The whole cluster crashes at once and `start` brings it back from its disks.
          for (const n of (await statusOf(dir)).nodes) await act('kill', n.node);
          await sleep(500);
          await act('start', '--detach');
          await traffic('after the whole cluster restarted');
        }
        // Leadership moves to a follower that has caught up (thesis 3.10), with proposals arriving meanwhile.
        const target = await waitFor('a caught-up follower', async () => {
          const s = await statusOf(dir);
          const leaderApplied = s.nodes.find((x) => x.node === s.leader)?.applied ?? -1;
          return s.nodes.find((x) => x.role === 'follower' && x.applied === leaderApplied)?.node;
        });
        await act('leader', 'transfer', target);
        await traffic('after the leader transfer');
      }
    };

    const clients = [0, 1, 2, 3, 4].map((c) => client(c));
    try {
      await nemesis();
    } finally {
      running = false;
      await Promise.all(clients);
      for (const ch of channels) await ch.close();
    }
    const lastFault = Number.parseFloat(faults.at(-1) as string);

    const ok = history.filter((o) => o.status === 'ok');
    const result = checkLinearizability(history);
    if (result.result !== 'ok') {
      const detail = result.result === 'illegal' ? result.counterexample.map(describeOp).join('\n') : result.reason;
      const counts = `${history.length} ops, ${ok.length} ok, ${history.length - ok.length} indeterminate`;
      throw new Error(`history (${counts}) is ${result.result} on key ${result.key}:\n${detail}\nfaults:\n${faults.join('\n')}`);
    }
    expect(result.checkedOps).toBeGreaterThan(100);
    // Every kind of operation succeeded, and the cluster served writes again after the last fault.
    for (const f of ['get', 'put', 'cas'] as const) expect(ok.some((o) => o.input.f === f)).toBe(true);
    expect(ok.some((o) => o.input.f === 'cas' && o.output !== undefined && 'swapped' in o.output && o.output.swapped)).toBe(true);
    expect(ok.some((o) => o.input.f !== 'get' && o.invoke > lastFault)).toBe(true);
    await waitFor('all three nodes back', async () => ((await statusOf(dir)).nodes.every((s) => s.role === 'leader' || s.role === 'follower') ? true : undefined));
  }, 60_000 + ROUNDS * 40_000);
});
