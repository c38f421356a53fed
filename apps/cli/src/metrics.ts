import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DurableStorage, LogEntry, NodeId, Role, SaveBatch, Snapshot, StateMachine } from '@consensus-kit/core';
import type { ConsensusNode } from '@consensus-kit/core/host';
import type { WalWriteTiming } from '@consensus-kit/storage-fs';
import type { PeerStats } from '@consensus-kit/transport-tcp';
import { FastHistogram, scrapedMetric, type HistogramChild } from './fast-histogram';

/** Core's neutral roles (DESIGN r2): every protocol reports one of these; its own phases live in `details`. */
const ROLES = ['follower', 'candidate', 'leader', 'learner'] as const satisfies readonly Role[];

export interface NodeMetrics {
  registry: Registry;
  proposals: Counter;
  /** `proposals` with outcome "ok", resolved once: the per-request path skips prom-client's label lookup. */
  proposalsOk: { inc(): void };
  /** Wraps storage so every `save` is timed into the fsync latency histogram, and every snapshot write too. */
  instrument<S extends DurableStorage>(storage: S): S;
  /** For storage-fs's `onWalWrite`: the WAL's durable-write (fsync) time apart from the group's write time. */
  onWalWrite(timing: WalWriteTiming): void;
  /** Wraps the state machine so each entry's apply and each snapshot capture is timed. */
  instrumentStateMachine<C, R, Q, A>(sm: StateMachine<C, R, Q, A>): StateMachine<C, R, Q, A>;
  /** Reads the transport's per-peer counters (bytes, send failures) at scrape time. */
  watchPeers(peerStats: () => Record<NodeId, PeerStats>): void;
  /** For transport-tcp's `onRoundTrip`: one probe's round trip to a peer, in ms. */
  peerRoundTrip(peer: NodeId, ms: number): void;
  /**
   * The latency series of one client operation (kv op name: put, delete, txn, get, range, ...), resolved when the
   * metrics are created: a lookup in a small map, no label hashing per request. Unknown names share "other".
   */
  clientRequest(op: string): HistogramChild;
  /** Client writes (proposals) in flight: +1 when one arrives, -1 when it is answered. */
  proposalsPending: { inc(): void; dec(): void };
  /** A client write failed, with its error code in lower case (`not_leader`, a redirect, is no failed proposal). */
  proposalFailed(outcome: string): void;
  attach(node: ConsensusNode<never, never, never, never>): void;
}

/** Client operations with a latency series of their own (kv's ops; `consensus_server_client_request_duration_seconds`). */
export const CLIENT_OPS = [
  'put',
  'delete',
  'cas',
  'txn',
  'compact',
  'leaseGrant',
  'leaseRevoke',
  'leaseKeepAlive',
  'get',
  'range',
  'revision',
  'status',
  'leaseTimeToLive',
  'leases',
  'other',
] as const;

/** Latency buckets in seconds, 100 us to 8 s (etcd's disk histograms go from 1 ms to 8 s; a local disk is faster). */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8];
/** Per-entry apply time is usually microseconds. */
const APPLY_BUCKETS = [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1];

/** This package's version, for `consensus_server_version` (package.json sits one level above src/ and dist/). */
export const CLI_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** The node's Prometheus metrics; values that live in the node are read at scrape time. */
export function createNodeMetrics(nodeId: string, about: { protocol?: string } = {}): NodeMetrics {
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
  // etcd's server and disk series (etcd_server_*, etcd_disk_*, etcd_network_*; the README maps them).
  new Gauge({
    name: 'consensus_server_version',
    help: 'Which version is running: 1 for the labelled version',
    labelNames: ['server_version', 'protocol', 'node_version'],
    registers: [registry],
  }).set({ server_version: CLI_VERSION, protocol: about.protocol ?? 'unknown', node_version: process.version }, 1);
  new Gauge({ name: 'consensus_server_has_leader', help: 'Whether a leader exists: 1 when this node knows one, 0 otherwise', registers: [registry], collect() { this.set(status()?.leader === undefined ? 0 : 1); } });
  let leaderChanges = 0;
  new Counter({
    name: 'consensus_server_leader_changes_seen_total',
    help: 'Leader changes seen by this node (to a known leader other than the previous one)',
    registers: [registry],
    collect() {
      if (leaderChanges > 0) this.inc(leaderChanges);
      leaderChanges = 0;
    },
  });
  new Gauge({ name: 'consensus_server_proposals_committed_total', help: 'Proposals committed: the commit index (a gauge, as in etcd)', registers: [registry], collect() { this.set(status()?.commitIndex ?? 0); } });
  new Gauge({ name: 'consensus_server_proposals_applied_total', help: 'Proposals applied: the applied index (a gauge, as in etcd)', registers: [registry], collect() { this.set(status()?.appliedIndex ?? 0); } });
  let pending = 0;
  new Gauge({ name: 'consensus_server_proposals_pending', help: 'Client writes (proposals) received and not yet answered', registers: [registry], collect() { this.set(pending); } });
  const failed = new Counter({ name: 'consensus_server_proposals_failed_total', help: 'Client writes (proposals) that failed', registers: [registry] });
  const walFsync = new FastHistogram(
    'consensus_disk_wal_fsync_duration_seconds',
    'WAL flush to stable storage per group commit (the O_DSYNC write of its records; etcd: the fdatasync)',
    LATENCY_BUCKETS,
    registry,
  ).child();
  const walWrite = new FastHistogram(
    'consensus_disk_wal_write_duration_seconds',
    'WAL group commit as a whole: encoding, the durable write, the durable point and the hard state (queueing excluded)',
    LATENCY_BUCKETS,
    registry,
  ).child();
  let walBytes = 0;
  scrapedMetric(registry, 'consensus_disk_wal_write_bytes_total', 'Bytes written to the WAL', 'counter', () => [{ value: walBytes }]);
  const snapSave = new FastHistogram('consensus_snap_save_total_duration_seconds', 'Writing a snapshot to storage, made durable', LATENCY_BUCKETS, registry).child();
  const snapCapture = new FastHistogram('consensus_snap_capture_duration_seconds', 'Capturing the state machine for a snapshot (on the event loop)', LATENCY_BUCKETS, registry).child();
  const apply = new FastHistogram('consensus_server_apply_duration_seconds', 'Applying one entry to the state machine', APPLY_BUCKETS, registry).child();
  const requests = new FastHistogram('consensus_server_client_request_duration_seconds', 'Client request latency on this node, by operation, from arrival to answer', LATENCY_BUCKETS, registry);
  const requestChildren = new Map<string, HistogramChild>(CLIENT_OPS.map((op) => [op, requests.child({ op })]));
  const otherRequest = requestChildren.get('other') as HistogramChild;
  const rtt = new FastHistogram(
    'consensus_network_peer_round_trip_time_seconds',
    'Round trip of a probe (Ping/Pong, every 2 s) to each peer on its connection, behind what is queued there',
    [0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048, 0.4096, 0.8192, 1.6384],
    registry,
  );
  // One series per peer, made when its first probe comes back (a few per minute: not a hot path).
  const rttByPeer = new Map<NodeId, HistogramChild>();
  let peers: (() => Record<NodeId, PeerStats>) | undefined;
  const perPeer = (label: 'To' | 'From', pick: (s: PeerStats) => number) => () =>
    Object.entries(peers?.() ?? {})
      .filter(([id]) => id !== nodeId)
      .map(([id, s]) => ({ labels: { [label]: id }, value: pick(s) }));
  scrapedMetric(registry, 'consensus_network_peer_sent_bytes_total', 'Message bytes sent to each peer', 'counter', perPeer('To', (s) => s.bytesSent));
  scrapedMetric(registry, 'consensus_network_peer_received_bytes_total', 'Message bytes received from each peer', 'counter', perPeer('From', (s) => s.bytesReceived));
  scrapedMetric(registry, 'consensus_network_peer_sent_failures_total', 'Messages to each peer that could not be sent (peer down, queue full, too large)', 'counter', perPeer('To', (s) => s.sendFailures));

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
      const saveSnapshot = storage.saveSnapshot.bind(storage);
      storage.saveSnapshot = async (snapshot: Snapshot) => {
        const t = performance.now();
        await saveSnapshot(snapshot);
        snapSave.observe((performance.now() - t) / 1000);
      };
      return storage;
    },
    onWalWrite(timing) {
      walFsync.observe(timing.syncMs / 1000);
      walWrite.observe(timing.totalMs / 1000);
      walBytes += timing.bytes;
    },
    instrumentStateMachine(sm) {
      const applyEntry = sm.apply.bind(sm);
      sm.apply = (entry: LogEntry, command) => {
        const t = performance.now();
        try {
          return applyEntry(entry, command);
        } finally {
          apply.observe((performance.now() - t) / 1000);
        }
      };
      const snapshot = sm.snapshot.bind(sm);
      sm.snapshot = () => {
        const t = performance.now();
        try {
          return snapshot();
        } finally {
          snapCapture.observe((performance.now() - t) / 1000);
        }
      };
      // An incremental snapshot (core's beginSnapshot) is captured a slice per step between batches: its capture
      // time is the event-loop time its steps took together, observed once the job hands over the bytes.
      const beginSnapshot = sm.beginSnapshot?.bind(sm);
      if (beginSnapshot !== undefined) {
        sm.beginSnapshot = () => {
          let onLoop = 0;
          const t0 = performance.now();
          const job = beginSnapshot();
          onLoop += performance.now() - t0;
          return {
            step(budget: number) {
              const t = performance.now();
              let bytes: Uint8Array | undefined;
              try {
                bytes = job.step(budget);
              } finally {
                onLoop += performance.now() - t;
              }
              if (bytes !== undefined) snapCapture.observe(onLoop / 1000);
              return bytes;
            },
            cancel: () => job.cancel(),
          };
        };
      }
      return sm;
    },
    watchPeers(read) {
      peers = read;
    },
    peerRoundTrip(peer, ms) {
      let child = rttByPeer.get(peer);
      if (child === undefined) rttByPeer.set(peer, (child = rtt.child({ To: peer })));
      child.observe(ms / 1000);
    },
    clientRequest(op) {
      return requestChildren.get(op) ?? otherRequest;
    },
    proposalsPending: {
      inc() {
        pending++;
      },
      dec() {
        pending--;
      },
    },
    proposalFailed(outcome) {
      // A write sent to a follower is answered with a redirect, never proposed: not a failed proposal (etcd
      // forwards it to the leader instead).
      if (outcome !== 'not_leader') failed.inc();
      proposals.inc({ outcome });
    },
    attach(n) {
      node = n;
      n.on('apply', () => {
        appliedSinceScrape++;
      });
      // etcd counts a change when a leader other than the last one seen (none included) becomes known: the
      // first leader a node learns of after it starts is one.
      let last: NodeId | undefined;
      n.on('leader', (leader) => {
        if (leader !== undefined && leader !== last) leaderChanges++;
        last = leader;
      });
    },
  };
}
