// The README example, kept runnable: `pnpm --filter @consensus-kit/raft demo`
import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import { raft } from '@consensus-kit/raft';

class Counter implements StateMachine<{ add: number }, number, null, number> {
  total = 0;
  apply(_entry: LogEntry, c: { add: number }) { return (this.total += c.add); }
  query() { return this.total; }
  snapshot() { return new TextEncoder().encode(String(this.total)); }
  restore(d: Uint8Array) { this.total = Number(new TextDecoder().decode(d)); }
}

const ids = ['n1', 'n2', 'n3'];
const network = new LocalNetwork();
const nodes = ids.map(
  (id) =>
    new ConsensusNode({
      id, peers: ids, protocol: raft, tickMs: 10,
      protocolOptions: { preVote: true, checkQuorum: true, readOnly: 'safe' },
      storage: new MemoryStorage(), transport: network.transport(id), stateMachine: new Counter(),
    }),
);
await Promise.all(nodes.map((n) => n.start()));
const leaderId = await (nodes[0] as ConsensusNode).waitForLeader();
const leader = nodes[ids.indexOf(leaderId)] as (typeof nodes)[number];
const follower = nodes[(ids.indexOf(leaderId) + 1) % 3] as (typeof nodes)[number];
console.log(await leader.propose({ add: 2 }), await leader.propose({ add: 3 })); // 2 5
console.log(await follower.read(null)); // 5: a follower read, through the leader's read index
console.log(leader.status().details?.progress); // per-follower match/next/state (probe, replicate, snapshot)
await Promise.all(nodes.map((n) => n.stop()));
