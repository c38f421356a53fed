/**
 * The smallest real run of the ConsensusNode host: one node, the single-voter test protocol, in-memory storage
 * and network, a tiny key-value state machine. It proposes a few writes, reads them back linearizably, and
 * stops. `consensus-cli start` (a real multi-node cluster) will replace this as the main job.
 */
import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';

type Command = { op: 'put'; key: string; value: string } | { op: 'del'; key: string };

class KeyValue implements StateMachine<Command, string | undefined, string, string | undefined> {
  private readonly data = new Map<string, string>();
  apply(_entry: LogEntry, c: Command): string | undefined {
    const previous = this.data.get(c.key);
    if (c.op === 'put') this.data.set(c.key, c.value);
    else this.data.delete(c.key);
    return previous;
  }
  query(key: string): string | undefined {
    return this.data.get(key);
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]));
  }
  restore(bytes: Uint8Array): void {
    this.data.clear();
    for (const [k, v] of JSON.parse(new TextDecoder().decode(bytes)) as [string, string][]) this.data.set(k, v);
  }
}

const node = new ConsensusNode({
  id: 'n1',
  peers: ['n1'],
  protocol: solo,
  storage: new MemoryStorage(),
  transport: new LocalNetwork().transport('n1'),
  stateMachine: new KeyValue(),
  tickMs: 10,
});
node.on('leader', (leader, term) => console.log(`leader is ${leader ?? '(none)'} in term ${term}`));
await node.start();
await node.waitForLeader();

console.log('put greeting=hello ->', await node.propose({ op: 'put', key: 'greeting', value: 'hello' }));
console.log('put greeting=hi    ->', await node.propose({ op: 'put', key: 'greeting', value: 'hi' }));
console.log('read greeting      ->', await node.read('greeting'));
const s = node.status();
console.log(`status: ${s.role}, term ${s.term}, commit ${s.commitIndex}, applied ${s.appliedIndex}`);
await node.stop();
console.log('stopped cleanly');
