import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DurableStorage, Role, SaveBatch } from '@consensus-kit/core';
import type { ConsensusNode } from '@consensus-kit/core/host';

/** Core's neutral roles (DESIGN r2): every protocol reports one of these; its own phases live in `details`. */
const ROLES = ['follower', 'candidate', 'leader', 'learner'] as const satisfies readonly Role[];

export interface NodeMetrics {
  registry: Registry;
  proposals: Counter;
  /** `proposals` with outcome "ok", resolved once: the per-request path skips prom-client's label lookup. */
  proposalsOk: { inc(): void };
  /** Wraps storage so every `save` is timed into the fsync latency histogram. */
  instrument(storage: DurableStorage): DurableStorage;
  attach(node: ConsensusNode<never, never, never, never>): void;
}

/** The node's Prometheus metrics; values that live in the node are read at scrape time. */
export function createNodeMetrics(nodeId: string): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry });
  let node: ConsensusNode<never, never, never, never> | undefined;
  const status = () => node?.status();

  new Gauge({ name: 'consensus_term', help: 'Current term (ballot round / epoch)', registers: [registry], collect() { this.set(status()?.term ?? 0); } });
  new Gauge({
    name: 'consensus_role',
    help: '1 for the role this node has, 0 for the others',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const r = status()?.role;
      for (const role of ROLES) this.set({ role }, r === role ? 1 : 0);
    },
  });
  new Gauge({ name: 'consensus_is_leader', help: '1 when this node leads', registers: [registry], collect() { this.set(status()?.role === 'leader' ? 1 : 0); } });
  new Gauge({ name: 'consensus_commit_index', help: 'Highest index known committed', registers: [registry], collect() { this.set(status()?.commitIndex ?? 0); } });
  new Gauge({ name: 'consensus_applied_index', help: 'Highest index applied to the state machine', registers: [registry], collect() { this.set(status()?.appliedIndex ?? 0); } });
  new Gauge({ name: 'consensus_last_index', help: 'Last index in the local log', registers: [registry], collect() { this.set(status()?.lastIndex ?? 0); } });
  // Successful proposals (one per write) are counted in a plain number and handed over at scrape time, like
  // applied entries: prom-client hashes the labels on every inc().
  let okSinceScrape = 0;
  const proposals = new Counter({
    name: 'consensus_proposals_total',
    help: 'Proposals received, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      if (okSinceScrape > 0) this.inc({ outcome: 'ok' }, okSinceScrape);
      okSinceScrape = 0;
    },
  });
  const fsync = new Histogram({
    name: 'consensus_storage_save_seconds',
    help: 'Latency of durable storage saves (write + fsync of one group commit)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  // Counted in a plain number on the apply path (once per entry) and handed to prom-client at scrape time.
  let appliedSinceScrape = 0;
  new Counter({
    name: 'consensus_applied_entries_total',
    help: 'Entries applied to the state machine',
    registers: [registry],
    collect() {
      this.inc(appliedSinceScrape);
      appliedSinceScrape = 0;
    },
  });

  return {
    registry,
    proposals,
    proposalsOk: {
      inc() {
        okSinceScrape++;
      },
    },
    instrument(storage) {
      const save = storage.save.bind(storage);
      storage.save = async (batch: SaveBatch) => {
        const end = fsync.startTimer();
        try {
          await save(batch);
        } finally {
          end();
        }
      };
      return storage;
    },
    attach(n) {
      node = n;
      n.on('apply', () => {
        appliedSinceScrape++;
      });
    },
  };
}
