/**
 * Host overhead per proposal: the full ConsensusNode pipeline (frame -> propose -> Ready -> save -> apply ->
 * resolve) over the single-node solo protocol and MemoryStorage, so what is measured is the host itself.
 */
import { Bench } from 'tinybench';
import { MemoryStorage, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork, ManualClock } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';

class Noop implements StateMachine<Uint8Array, number, null, number> {
  n = 0;
  apply(_e: LogEntry, _c: Uint8Array): number {
    return ++this.n;
  }
  query(): number {
    return this.n;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(): void {}
}

async function leaderNode() {
  const clock = new ManualClock();
  const node = new ConsensusNode<Uint8Array, number, null, number>({
    id: 'n1',
    peers: ['n1'],
    protocol: solo,
    storage: new MemoryStorage(),
    transport: new LocalNetwork().transport('n1'),
    stateMachine: new Noop(),
    clock,
    electionTicks: 2,
    snapshotEvery: 0,
    codec: { encode: (c) => c, decode: (d) => d },
  });
  await node.start();
  for (let i = 0; i < 5 && !node.isLeader; i++) {
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
  }
  if (!node.isLeader) throw new Error('solo node did not become leader');
  return node;
}

const node = await leaderNode();
const payload = new Uint8Array(256);
const BATCH = 1000;

const bench = new Bench({ time: 2000, warmupTime: 300 });
bench
  .add('propose, one at a time (256 B)', async () => {
    await node.propose(payload);
  })
  .add(`propose, ${BATCH} in flight (256 B)`, async () => {
    const all: Promise<number>[] = [];
    for (let i = 0; i < BATCH; i++) all.push(node.propose(payload));
    await Promise.all(all);
  })
  .add('linearizable read', async () => {
    await node.read(null);
  });

await bench.run();
console.table(bench.table());

const rows = bench.tasks.map((t) => {
  const r = t.result as { throughput?: { mean: number }; hz?: number } | undefined;
  const hz = r?.throughput?.mean ?? r?.hz ?? 0;
  const perOp = t.name.includes('in flight') ? hz * BATCH : hz;
  return { task: t.name, 'operations/s': Math.round(perOp).toLocaleString('en-US') };
});
console.log('\nHost overhead (solo protocol, MemoryStorage, no I/O):');
console.table(rows);
await node.stop();
