import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import { afterEach, describe, expect, it } from 'vitest';
import { raft } from './index';

class Counter implements StateMachine<{ add: number }, number, null, number> {
  total = 0;
  apply(_entry: LogEntry, c: { add: number }): number {
    return (this.total += c.add);
  }
  query(): number {
    return this.total;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.total));
  }
  restore(d: Uint8Array): void {
    this.total = Number(new TextDecoder().decode(d));
  }
}

type Node = ConsensusNode<{ add: number }, number, null, number>;
let running: Node[] = [];
const storages = new Map<string, MemoryStorage>();

afterEach(async () => {
  await Promise.all(running.map((n) => n.stop()));
  running = [];
});

function cluster(ids: string[], network: LocalNetwork, peers = ids, extra: Record<string, unknown> = {}): Node[] {
  return ids.map(
    (id) =>
      new ConsensusNode({
        id,
        peers,
        protocol: raft,
        tickMs: 5,
        protocolOptions: extra,
        snapshotEvery: 20,
        snapshotKeep: 2,
        storage: storages.set(id, new MemoryStorage()).get(id) as MemoryStorage,
        transport: network.transport(id),
        stateMachine: new Counter(),
      }),
  );
}

describe('raft under core ConsensusNode (real host, in-memory network)', () => {
  it('replicates, serves follower reads, transfers leadership and adds a member that catches up by snapshot', async () => {
    const network = new LocalNetwork();
    const ids = ['n1', 'n2', 'n3'];
    const nodes = cluster(ids, network);
    running.push(...nodes);
    await Promise.all(nodes.map((n) => n.start()));
    const leaderId = await (nodes[0] as Node).waitForLeader();
    const leader = nodes[ids.indexOf(leaderId)] as Node;
    let last = 0;
    for (let i = 1; i <= 50; i++) last = await leader.propose({ add: 1 });
    expect(last).toBe(50);
    const follower = nodes[(ids.indexOf(leaderId) + 1) % 3] as Node;
    expect(await follower.read(null)).toBe(50);

    // The leader's log no longer starts at 1, so a newcomer can only be brought up by a snapshot.
    expect(storages.get(leaderId)?.firstIndex()).toBeGreaterThan(2);
    // A fourth node joins as a learner; the log was compacted (snapshotEvery 20), so it gets a snapshot.
    // (The host requires `peers` to include the node itself; the joining node's boot configuration is
    // replaced by the leader's as soon as it receives the snapshot.)
    const [n4] = cluster(['n4'], network, [...ids, 'n4']);
    running.push(n4 as Node);
    await (n4 as Node).start();
    await leader.changeMembership({ changes: [{ op: 'addLearner', node: 'n4' }] });
    await leader.changeMembership({ changes: [{ op: 'addVoter', node: 'n4' }] });
    expect(await (n4 as Node).read(null)).toBe(50);

    await leader.transferLeadership('n4');
    expect(await (n4 as Node).waitForLeader()).toBe('n4');
    expect(await (n4 as Node).propose({ add: 1 })).toBe(51);
  });
});
