// The README example, kept runnable: `pnpm --filter @consensus-kit/core exec tsx --conditions=@consensus-kit/source examples/readme.ts`
import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';

class Counter implements StateMachine<{ add: number }, number, null, number> {
  total = 0;
  apply(_entry: LogEntry, c: { add: number }) { return (this.total += c.add); }
  query() { return this.total; }
  snapshot() { return new TextEncoder().encode(String(this.total)); }
  restore(d: Uint8Array) { this.total = Number(new TextDecoder().decode(d)); }
}

const node = new ConsensusNode({
  id: 'n1', peers: ['n1'], protocol: solo, tickMs: 10,
  storage: new MemoryStorage(), transport: new LocalNetwork().transport('n1'), stateMachine: new Counter(),
});
await node.start();
await node.waitForLeader();
console.log(await node.propose({ add: 2 }), await node.propose({ add: 3 })); // 2 5
console.log(await node.read(null)); // 5
await node.stop();
