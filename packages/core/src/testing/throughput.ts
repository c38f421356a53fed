import { MemoryStorage } from '../memory-storage';
import type { Envelope, NodeId, Protocol } from '../types';

/** How a protocol's pure-core throughput bench makes its replicas and its leader. */
export interface ThroughputSetup {
  /** Replica `id` of `peers`, over `storage`. */
  create(id: NodeId, peers: NodeId[], storage: MemoryStorage): Protocol;
  /** Makes one replica leader (campaign, or tick until one leads), calling `pump` to deliver; returns it. */
  elect(replicas: ReadonlyMap<NodeId, Protocol>, pump: () => void): Protocol;
}

const IDS: NodeId[] = ['a', 'b', 'c'];
export const THROUGHPUT_COMMAND_BYTES = 256;

/**
 * Committed entries per second for 3 in-process replicas exchanging messages directly (no I/O, no
 * serialization), MemoryStorage written synchronously (`saveNow`), 256-byte commands proposed on the leader
 * `batch` at a time between Ready cycles: the protocol's own cost (step, replicate, commit, Ready/advance).
 * One harness for every protocol, so their figures compare in one run. Counts the leader's committed commands.
 */
export function measureThroughput(setup: ThroughputSetup, total: number, batch: number): { seconds: number; applied: number } {
  const storages = new Map(IDS.map((id) => [id, new MemoryStorage()]));
  const replicas = new Map(IDS.map((id) => [id, setup.create(id, IDS, storages.get(id) as MemoryStorage)]));
  let inbox: Envelope[] = [];
  /** Set once elected: the pump counts its committed commands. */
  const counted: { leader?: Protocol } = {};
  let applied = 0;
  const pump = () => {
    for (let guard = 0; guard < 100_000; guard++) {
      let any = false;
      for (const [id, node] of replicas) {
        if (!node.hasReady()) continue;
        any = true;
        const rd = node.ready();
        (storages.get(id) as MemoryStorage).saveNow(rd);
        for (const m of rd.messages) inbox.push(m);
        if (node === counted.leader) for (const e of rd.committed) if (e.type === 'command') applied++;
        node.advance(rd);
      }
      if (inbox.length > 0) {
        any = true;
        const messages = inbox;
        inbox = [];
        for (const env of messages) (replicas.get(env.to) as Protocol).step(env);
      }
      if (!any) return;
    }
  };
  const leader = setup.elect(replicas, pump);
  counted.leader = leader;
  if (leader.status().role !== 'leader') throw new Error('no leader');
  pump();
  applied = 0;
  const payload = new Uint8Array(THROUGHPUT_COMMAND_BYTES).fill(7);
  const start = performance.now();
  let proposed = 0;
  while (proposed < total) {
    const n = Math.min(batch, total - proposed);
    for (let i = 0; i < n; i++) leader.propose(payload);
    proposed += n;
    pump();
  }
  pump();
  return { seconds: (performance.now() - start) / 1000, applied };
}

/** Warms up, then prints `measureThroughput` at batches of 100, 1,000 and 4,096, as `<name> 3 replicas ...`. */
export function runThroughputBench(name: string, setup: ThroughputSetup, total: number): void {
  measureThroughput(setup, 100_000, 1000); // warm-up
  for (const batch of [100, 1000, 4096]) {
    const { seconds, applied } = measureThroughput(setup, total, batch);
    if (applied !== total) throw new Error(`expected ${total} applied, got ${applied}`);
    console.log(
      `${name} 3 replicas, ${THROUGHPUT_COMMAND_BYTES}B commands, batch ${String(batch).padStart(4)}: ${Math.round(applied / seconds).toLocaleString('en-US')} committed entries/s (${applied.toLocaleString('en-US')} in ${seconds.toFixed(2)} s)`,
    );
  }
}
