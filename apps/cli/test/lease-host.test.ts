// Leases on a real ConsensusNode cluster, in process: three raft nodes on a LocalNetwork, each with its own
// ManualClock, driven in 10 ms steps of "real" time. One leader's clock runs at 1.5x, then that leader is
// paused (its clock and its links frozen) for 3 s, long enough for the others to elect a new one. The claim
// (issue 20): expiry is decided only by replicated time, so a lease whose keepalives are being acknowledged
// is never expired, and a lease nobody keeps alive does expire.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage, NotLeaderError, TimeoutError, isConsensusError, type NodeId } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork, ManualClock } from '@consensus-kit/core/host';
import { KvClient, KvStateMachine, createKvService, type KvChannel, type KvQuery, type KvQueryResult, type KvRequest, type KvResult } from '@consensus-kit/kv';
import { paxos } from '@consensus-kit/paxos';
import { raft } from '@consensus-kit/raft';

type KvNode = ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>;

interface Member {
  id: NodeId;
  node: KvNode;
  sm: KvStateMachine;
  clock: ManualClock;
  service: (body: unknown) => Promise<unknown>;
  /** How fast this node's clock runs against the test's time. */
  rate: number;
  paused: boolean;
  /** Fractional ms carried between steps (a 1.5x clock advances 15 ms per 10 ms step). */
  carry: number;
}

const nodes: KvNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop().catch(() => undefined);
});

const settle = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

async function startCluster(protocol: typeof raft | typeof paxos) {
  const net = new LocalNetwork();
  const ids = ['n1', 'n2', 'n3'];
  const members: Member[] = [];
  for (const id of ids) {
    const clock = new ManualClock();
    // Unrelated clocks, as on real machines: n1 reads a minute ahead of n2, n3 an hour (with these seeds n2 leads
    // first; whoever leads next reads a later clock than it, so a time step across terms would jump).
    clock.advance([60_000, 0, 3_600_000][ids.indexOf(id)] as number);
    const sm = new KvStateMachine();
    const node: KvNode = new ConsensusNode({
      id,
      peers: ids,
      protocol,
      storage: new MemoryStorage(),
      transport: net.transport(id),
      stateMachine: sm,
      clock,
      tickMs: 100,
      electionTicks: 10,
      timeIntervalMs: 500,
      random: seeded(ids.indexOf(id) + 1),
    });
    nodes.push(node);
    members.push({ id, node, sm, clock, service: createKvService({ node, stateMachine: sm, timeoutMs: 1000 }), rate: 1, paused: false, carry: 0 });
  }
  for (const m of members) await m.node.start();
  return { net, members };
}

function seeded(seed: number): () => number {
  let s = seed * 2654435761;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

/**
 * A channel that follows the leader as the TCP client does: NotLeaderError with a hint goes to the hint; a
 * node that does not answer within the attempt's timeout (on the client's clock) is left for the next one.
 */
function routingChannel(members: Member[], clock: ManualClock): KvChannel {
  let at = 0;
  /** When each node last failed to answer: a hint naming one that just timed out is not followed (it is stale). */
  const timedOut = new Map<NodeId, number>();
  const next = () => {
    for (let k = 1; k <= members.length; k++) {
      const i = (at + k) % members.length;
      if (clock.now() - (timedOut.get((members[i] as Member).id) ?? -Infinity) > 1000) return i;
    }
    return (at + 1) % members.length;
  };
  return {
    async request<T>(body: unknown, options?: { timeoutMs?: number }): Promise<T> {
      const m = members[at] as Member;
      const ms = options?.timeoutMs ?? 300;
      let timer: unknown;
      const timeout = new Promise<never>((_, reject) => {
        timer = clock.setTimeout(() => reject(new TimeoutError(ms, 'test channel')), ms);
      });
      try {
        return (await Promise.race([m.service(structuredClone(body)), timeout])) as T;
      } catch (e) {
        if (isConsensusError(e) && NotLeaderError.is(e) && (e as NotLeaderError).leaderHint !== undefined) {
          const hint = (e as NotLeaderError).leaderHint as NodeId;
          const hinted = members.findIndex((x) => x.id === hint);
          at = hinted >= 0 && clock.now() - (timedOut.get(hint) ?? -Infinity) > 1000 ? hinted : next();
        } else {
          if (TimeoutError.is(e)) timedOut.set(m.id, clock.now());
          at = next();
        }
        throw e;
      } finally {
        clock.clearTimeout(timer);
      }
    },
    async close() {},
  };
}

describe.each([
  ['raft', raft],
  ['paxos', paxos],
] as const)('leases on a ConsensusNode cluster (%s, LocalNetwork, a ManualClock per node)', (_name, protocol) => {
  it('a paused leader and a 1.5x leader clock never expire a lease whose keepalives are acknowledged; a lease not kept alive expires', async () => {
    const { net, members } = await startCluster(protocol);
    const clientClock = new ManualClock();
    const kv = new KvClient({ channel: routingChannel(members, clientClock), clock: clientClock, timeoutMs: Number.POSITIVE_INFINITY, attemptTimeoutMs: 300 });
    let now = 0;
    const step = async () => {
      now += 10;
      for (const m of members) {
        if (m.paused) continue;
        const ms = 10 * m.rate + m.carry;
        m.carry = ms - Math.floor(ms);
        m.clock.advance(Math.floor(ms));
      }
      clientClock.advance(10);
      await settle();
    };
    /** Runs steps until `p` settles, at most `ms` of test time. */
    const drive = async <T>(p: Promise<T>, ms = 20_000): Promise<T> => {
      let done = false;
      let value: T | undefined;
      let error: unknown;
      p.then((v) => ((done = true), (value = v)), (e: unknown) => ((done = true), (error = e)));
      for (let t = 0; t < ms && !done; t += 10) await step();
      if (!done) throw new Error('operation did not settle in test time');
      if (error !== undefined) throw error;
      return value as T;
    };
    const leader = (): Member | undefined => members.find((m) => !m.paused && m.node.status().role === 'leader');
    const everyLive = (f: (m: Member) => void) => {
      for (const m of members) if (!m.paused) f(m);
    };

    await drive(kv.status());
    const first = leader() as Member;
    first.rate = 1.5; // the leader's clock runs fast: replicated time runs 1.5x the client's time

    const t0 = now;
    // The kept lease outlives a failover: an election takes 1 to 2 s here (10 ticks of 100 ms, randomized up to
    // twice that), and the client gives a lease up after a whole TTL without an acknowledged keepalive.
    const kept = await drive(kv.leases.grant(3000));
    const idle = await drive(kv.leases.grant(1500));
    expect(kept.ttl).toBe(3000);
    await drive(kv.put('svc/kept', 'up', { lease: kept.id }));
    await drive(kv.put('svc/idle', 'up', { lease: idle.id }));
    const keeper = kv.leases.keepAlive(kept.id);
    let lost = false;
    void keeper.lost.then(() => (lost = true));

    let idleGoneAt: number | undefined;
    let keptSeenEverywhere = true;
    const watch = () => {
      everyLive((m) => {
        if (m.sm.currentRevision >= 4 && m.sm.query({ op: 'get', key: 'svc/kept' }) === undefined) keptSeenEverywhere = false;
      });
      const l = leader();
      if (idleGoneAt === undefined && l !== undefined && l.sm.query({ op: 'get', key: 'svc/idle' }) === undefined) idleGoneAt = now;
    };
    // 4 s with the fast leader.
    for (let t = 0; t < 4000; t += 10) {
      await step();
      watch();
    }
    expect(idleGoneAt).toBeDefined();
    // The idle lease went after its TTL of replicated time: on the fast leader's clock that is 1,000 ms of test
    // time, less up to one time interval (500 ms of that clock) by which the grant's `now` lagged the leader's.
    expect((idleGoneAt as number) - t0).toBeGreaterThanOrEqual(1000 - 500);

    // Pause the leader: its clock stops and its links are cut, for 3 s (past the longest election timeout, 2 s).
    const paused = leader() as Member;
    paused.paused = true;
    net.isolate(paused.id);
    for (let t = 0; t < 3000; t += 10) {
      await step();
      watch();
    }
    const next = leader();
    expect(next).toBeDefined();
    expect(next?.id).not.toBe(paused.id);
    // Resume it: its clock jumps by the pause, it rejoins and learns the new term.
    paused.clock.advance(3000);
    paused.paused = false;
    net.heal();
    for (let t = 0; t < 4000; t += 10) {
      await step();
      watch();
    }

    expect(keptSeenEverywhere).toBe(true);
    expect(lost).toBe(false);
    everyLive((m) => {
      expect(m.sm.query({ op: 'get', key: 'svc/kept' })).toMatchObject({ lease: kept.id });
      expect(m.sm.query({ op: 'get', key: 'svc/idle' })).toBeUndefined();
    });
    const info = await drive(kv.leases.timeToLive(kept.id, { keys: true }));
    expect(info.keys).toEqual(['svc/kept']);

    // Stop keeping it: it expires too, within a TTL and a few time entries.
    keeper.stop();
    for (let t = 0; t < 3000; t += 10) await step();
    everyLive((m) => expect(m.sm.query({ op: 'get', key: 'svc/kept' })).toBeUndefined());
    await kv.close();
  });
});
