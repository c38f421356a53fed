import { describe, expect, it } from 'vitest';
import type { DurableStorage, Envelope, SaveBatch, Status, Transport, TransportHandler } from '@consensus-kit/core';
import { HealthTracker } from '../src/node-runner';
import { STATUS_EXIT, judgeCluster, type StatusRow } from '../src/render';

/** A transport that hands the test its handler, so the test delivers envelopes itself. */
function fakeTransport(): { transport: Transport; deliverFrom(from: string, to?: string): void } {
  let handler: TransportHandler | undefined;
  return {
    transport: {
      start: async (h) => {
        handler = h;
      },
      send: () => undefined,
      stop: async () => undefined,
    },
    deliverFrom(from, to = 'n1') {
      handler?.deliver({ from, to, msg: {} } as Envelope);
    },
  };
}

function status(s: Partial<Status>): Status {
  return { id: 'n1', role: 'follower', term: 2, leader: 'n2', commitIndex: 5, appliedIndex: 5, lastIndex: 5, config: { voters: ['n1', 'n2', 'n3'], learners: [] }, ...s };
}

async function tracker(): Promise<{ h: HealthTracker; clock: { t: number }; deliverFrom(from: string): void }> {
  const clock = { t: 1_000 };
  // tickMs 50 and electionTicks 10: an election timeout of 500 ms, so a peer is stale after 1000 ms.
  const h = new HealthTracker({ tickMs: 50, electionTicks: 10 }, () => clock.t);
  const fake = fakeTransport();
  await h.watchTransport(fake.transport).start({ deliver: () => undefined });
  h.started();
  return { h, clock, deliverFrom: fake.deliverFrom };
}

describe('HealthTracker: /health from the neutral status and who was heard from when', () => {
  it('a follower is healthy while it hears from its leader, and says since when it has not', async () => {
    const { h, clock, deliverFrom } = await tracker();
    expect(h.staleMs).toBe(1_000);
    expect(h.health(status({})).body).toMatchObject({ status: 'unavailable', reason: 'leader-silent', message: 'leader n2 never heard from (limit 1000 ms)' });
    deliverFrom('n2');
    expect(h.health(status({})).ok).toBe(true);
    clock.t += 1_000;
    expect(h.health(status({})).ok).toBe(true);
    clock.t += 1;
    expect(h.health(status({})).body).toMatchObject({ reason: 'leader-silent', message: 'leader n2 not heard from for 1001 ms (limit 1000 ms)' });
    // Hearing from another peer is not hearing from the leader.
    deliverFrom('n3');
    expect(h.health(status({})).ok).toBe(false);
    expect(h.health(status({ leader: undefined, role: 'candidate' })).body).toMatchObject({ reason: 'no-leader', leader: null, role: 'candidate' });
    // A node that names itself leader without the role (a Paxos proposer before its phase 1 completes, say).
    expect(h.health(status({ leader: 'n1', role: 'candidate' })).body).toMatchObject({ reason: 'no-leader', message: 'not established as leader in term 2' });
  });

  it('a leader is healthy only while it heard from a quorum of the configuration in force, both halves of a joint one', async () => {
    const { h, clock, deliverFrom } = await tracker();
    const lead = (config?: Status['config']) => h.health(status({ role: 'leader', leader: 'n1', ...(config ? { config } : {}) }));
    expect(lead().body).toMatchObject({ reason: 'no-quorum', message: 'leader of term 2 heard from 1 of 3 voters (n1) in the last 1000 ms' });
    deliverFrom('n3');
    expect(lead().ok).toBe(true);
    // A single voter is its own quorum.
    expect(h.health(status({ role: 'leader', leader: 'n1', config: { voters: ['n1'], learners: [] } })).ok).toBe(true);
    // Joint consensus (Raft thesis 4.3): a majority of the old and of the new voter sets.
    const joint = { voters: ['n1', 'n3', 'n4'], outgoing: ['n1', 'n2', 'n5'], learners: [] };
    expect(lead(joint).ok).toBe(false);
    deliverFrom('n2');
    expect(lead(joint).ok).toBe(true);
    // A learner's messages count for nothing.
    clock.t += 1_001;
    deliverFrom('n9');
    expect(lead({ voters: ['n1', 'n2', 'n3'], learners: ['n9'] }).ok).toBe(false);
  });

  it('starting, stopping and failed nodes are unhealthy and unready; /livez fails only on a failure or a hung write', async () => {
    const clock = { t: 0 };
    const h = new HealthTracker({ tickMs: 50, electionTicks: 10 }, () => clock.t);
    expect(h.health(undefined).body.reason).toBe('starting');
    expect((await h.ready(undefined)).body.reason).toBe('starting');
    expect(h.live().ok).toBe(true);
    let finish: () => void = () => undefined;
    // Only save() is watched: a storage whose one write hangs until the test lets it finish.
    const storage = h.watchStorage({ save: () => new Promise<void>((r) => (finish = r)) } as unknown as DurableStorage);
    h.started();
    const write = storage.save({ entries: [] } as unknown as SaveBatch);
    clock.t += h.stuckMs;
    expect(h.live().ok).toBe(true);
    clock.t += 1;
    expect(h.live().body).toMatchObject({ status: 'unavailable', reason: 'stuck' });
    finish();
    await write;
    expect(h.live().ok).toBe(true);
    h.stopping();
    expect(h.health(status({})).body.reason).toBe('stopping');
    expect(h.live().ok).toBe(true);
    h.failed(new Error('disk full'));
    expect(h.health(status({})).body).toMatchObject({ reason: 'failed', message: 'the node failed: Error: disk full' });
    expect(h.live().body).toMatchObject({ reason: 'failed' });
  });
});

function row(node: string, role: string, health: StatusRow['health']): StatusRow {
  return { node, role, term: 1, leader: null, commit: 0, applied: 0, lag: 0, pid: 1, address: '', http: '', details: null, health };
}

describe('judgeCluster: the exit code of `consensus-cli status` and its one line', () => {
  const ok = { ok: true };
  it('0 healthy, 3 degraded, 4 no leader or a leader without its quorum', () => {
    expect(judgeCluster([row('n1', 'leader', ok), row('n2', 'follower', ok)], 'n1')).toEqual({ health: 'healthy', exitCode: 0, reason: 'healthy: all 2 nodes, leader n1' });
    expect(judgeCluster([row('n1', 'leader', ok), row('n2', 'down', null), row('n3', 'unreachable', null)], 'n1')).toEqual({
      health: 'degraded',
      exitCode: STATUS_EXIT.degraded,
      reason: 'degraded: n2 down; n3 unreachable',
    });
    expect(judgeCluster([row('n1', 'leader', ok), row('n2', 'follower', null)], 'n1').reason).toBe('degraded: n2 did not answer /health');
    const silent = { ok: false, reason: 'leader-silent', message: 'leader n1 not heard from for 1200 ms (limit 1000 ms)' };
    expect(judgeCluster([row('n1', 'leader', ok), row('n2', 'follower', silent)], 'n1').reason).toBe(
      'degraded: n2 unhealthy (leader n1 not heard from for 1200 ms (limit 1000 ms))',
    );
    const alone = { ok: false, reason: 'no-quorum', message: 'heard from 1 of 3 voters' };
    expect(judgeCluster([row('n1', 'leader', alone), row('n2', 'follower', ok)], 'n1')).toEqual({
      health: 'no-quorum',
      exitCode: STATUS_EXIT.noQuorum,
      reason: 'no quorum: leader n1 heard from 1 of 3 voters',
    });
    expect(judgeCluster([row('n1', 'candidate', { ok: false, reason: 'no-leader' }), row('n2', 'down', null)], null)).toEqual({
      health: 'no-quorum',
      exitCode: 4,
      reason: 'no quorum: no leader agreed on by a majority: n1 unhealthy (no-leader); n2 down',
    });
    // Codes 1 and 2 stay the command's own failure and usage errors.
    expect(new Set(Object.values(STATUS_EXIT))).toEqual(new Set([0, 3, 4]));
  });
});
