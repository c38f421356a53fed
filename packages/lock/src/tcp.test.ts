import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { raft } from '@consensus-kit/raft';
import { tcpTransport, type TcpTransport } from '@consensus-kit/transport-tcp';
import type { LockQuery, LockResult } from './commands';
import { LockStateMachine, type LockQueryResult, type LockRequest } from './lock-state-machine';
import { createLockService, type LockService } from './service';
import { createLockClient } from './tcp';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Three raft nodes over TCP on 127.0.0.1, each serving the lock protocol. */
async function cluster(clusterId: string) {
  const ids = ['n1', 'n2', 'n3'];
  const members = ids.map((id) => {
    const transport: TcpTransport = tcpTransport({ id, clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
    const stateMachine = new LockStateMachine();
    const node = new ConsensusNode<LockRequest, LockResult, LockQuery, LockQueryResult>({ id, peers: ids, protocol: raft, storage: new MemoryStorage(), transport, stateMachine, tickMs: 10, electionTicks: 10, timeIntervalMs: 20 });
    const service: LockService = createLockService({ node, stateMachine });
    transport.onRequest(service);
    return { id, transport, node, service };
  });
  await Promise.all(members.map((m) => m.node.start()));
  for (const m of members) cleanups.push(() => m.node.stop(), () => m.service.close());
  const peers = Object.fromEntries(members.map((m) => [m.id, m.transport.endpoint()]));
  for (const m of members) m.transport.setPeers(peers);
  await Promise.all(members.map((m) => m.node.waitForLeader()));
  return members;
}

describe('createLockClient', () => {
  it('hears its events from the node its requests go to (the leader), even when a follower is listed first', async () => {
    const members = await cluster('lock-tcp-leader-events');
    const leader = members.find((m) => m.node.status().role === 'leader');
    expect(leader).toBeDefined();
    const followers = members.filter((m) => m !== leader);
    const endpoints = [...followers.map((m) => m.transport.endpoint()), leader!.transport.endpoint()];
    const client = createLockClient({ endpoints, clusterId: 'lock-tcp-leader-events', ttlMs: 5_000 });
    cleanups.push(() => client.close());
    const lock = await client.acquire('a');
    const end = Date.now() + 5_000;
    while (leader!.service.subscriptions === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(leader!.service.subscriptions).toBe(1);
    for (const f of followers) expect(f.service.subscriptions).toBe(0);
    // And the grants it waits for arrive there: a second client queues, the first releases.
    const other = createLockClient({ endpoints, clusterId: 'lock-tcp-leader-events', ttlMs: 5_000 });
    cleanups.push(() => other.close());
    const next = other.acquire('a');
    await new Promise((r) => setTimeout(r, 50));
    await lock.release();
    const held = await next;
    expect(held.token).toBeGreaterThan(lock.token);
    await held.release();
  });

  it('closing the client ends its subscription', async () => {
    const members = await cluster('lock-tcp-close');
    const client = createLockClient({ endpoints: members.map((m) => m.transport.endpoint()), clusterId: 'lock-tcp-close', ttlMs: 5_000 });
    await (await client.acquire('b')).release();
    const total = () => members.reduce((a, m) => a + m.service.subscriptions, 0);
    const end = Date.now() + 5_000;
    while (total() === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(total()).toBe(1);
    await client.close();
    while (total() > 0 && Date.now() < end + 5_000) await new Promise((r) => setTimeout(r, 5));
    expect(total()).toBe(0);
  });
});
