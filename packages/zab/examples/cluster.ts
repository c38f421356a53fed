// Three ZAB replicas in one process: elect, propose, see every replica apply the same commands.
import { MemoryStorage, type Envelope } from '@consensus-kit/core';
import { ZabNode } from '@consensus-kit/zab';

const ids = ['a', 'b', 'c'];
const storage = new Map(ids.map((id) => [id, new MemoryStorage()]));
const nodes = new Map(ids.map((id) => [id, new ZabNode({ id, peers: ids, storage: storage.get(id)! })]));
const applied = new Map(ids.map((id) => [id, [] as string[]]));

function pump(): void {
  for (let busy = true; busy; ) {
    busy = false;
    const inbox: Envelope[] = [];
    for (const [id, node] of nodes) {
      if (!node.hasReady()) continue;
      busy = true;
      const rd = node.ready();
      storage.get(id)!.saveNow(rd); // 1. persist (hard state: acceptedEpoch, currentEpoch; entries: the history)
      inbox.push(...rd.messages); // 2. send
      for (const e of rd.committed) if (e.type === 'command') applied.get(id)!.push(new TextDecoder().decode(e.data)); // 3. apply
      node.advance(rd); // 4. advance
    }
    for (const env of inbox) nodes.get(env.to)!.step(env);
  }
}

// Tick until Fast Leader Election, discovery and synchronisation are done: a leader is established.
while (![...nodes.values()].some((n) => n.status().role === 'leader')) {
  for (const n of nodes.values()) n.tick();
  pump();
}
const leader = [...nodes.values()].find((n) => n.status().role === 'leader')!;
for (const cmd of ['set x 1', 'set y 2']) leader.propose(new TextEncoder().encode(cmd));
pump();
for (const n of nodes.values()) n.tick(); // the PING carries the commit point to the followers
pump();
console.log(`leader ${leader.id} in epoch ${leader.status().term}, last zxid ${leader.status().details.lastZxid}`);
for (const [id, cmds] of applied) console.log(`${id}: ${cmds.join(', ')}`);
