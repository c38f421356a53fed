import { ConfigError, DEFAULT_SNAPSHOT_CHUNK_BYTES, parseOptions, type OptionSpecs, type ProtocolOptions } from '@consensus-kit/core';

/** Multi-Paxos' own options, beyond the protocol contract's (`ProtocolOptions`). Every one is optional. */
export type PaxosSpecificOptions = {
  /**
   * PMMC's WINDOW (van Renesse & Altinbuken, "Paxos Made Moderately Complex", section 3/4): the leader proposes
   * slot s only once every slot <= s - window is decided, and a configuration decided in slot s governs slots
   * from s + window on. Also the bound on undecided slots in flight. Must be the same on every replica.
   * Default 256 (see `DEFAULT_WINDOW`).
   */
  window?: number;
  /** Slots per Accept message (phase 2 batching), and decided values per Learn message. Default 512. */
  maxBatch?: number;
  /**
   * Bytes of decided values per Learn message (the catch-up stream of a lagging replica), always at least one value.
   * Default 1 MiB (etcd's `MaxSizePerMsg`): 512 values of 64 KiB made one 32 MiB message, read and encoded on the
   * leader's event loop in one piece.
   */
  maxLearnBytes?: number;
  /**
   * Bytes of values per Accept message (phase 2 batching), always at least one slot: a batch ends at `maxBatch`
   * slots or at this many bytes, whichever comes first, and a single larger value goes alone. Default 1 MiB (etcd's
   * `MaxSizePerMsg`): 512 values of 64 KiB made one 32 MiB message, encoded on the leader's event loop in one piece.
   */
  maxAcceptBytes?: number;
  /** Accept messages in flight per acceptor (flow control). Default 64. */
  maxInflight?: number;
  /**
   * Flexible Paxos (Howard et al. 2016, section 3): the phase-1 quorum size (0 = a majority). With
   * `phase2Quorum`, |Q1| + |Q2| must exceed the number of voters; checked at construction.
   */
  phase1Quorum?: number;
  /** Flexible Paxos: the phase-2 quorum size (0 = a majority). */
  phase2Quorum?: number;
  /**
   * Leader leases for local reads (Paxos Made Live, section 5.2; Chubby's master lease). Off by default: they
   * rest on bounded clock drift (see `leaseDriftBound`) and on processes that are not paused mid-lease.
   */
  leaseReads?: boolean;
  /** The clock-rate drift the lease tolerates, as a fraction (0.3: rates in [0.7, 1.3]). Default 0.3. */
  leaseDriftBound?: number;
  /**
   * Slots per chunk of the in-memory log, as a power of two (12: 4,096). Decided, applied and durable slots leave
   * memory a whole chunk at a time and are read back from the storage when a lagging peer needs them; smaller
   * chunks hold less in memory, larger ones cost fewer storage reads. Default 12.
   */
  logChunkBits?: number;
  /**
   * Bytes per snapshot chunk sent to a peer behind the leader's compacted log (core's `SnapshotSender`, Raft thesis
   * 5.3): a snapshot travels as many messages, 4 chunks in flight, resumed from the receiver's offset after a loss.
   * Must stay well under the transport's message limit (32 MiB for transport-tcp). Default 1 MiB.
   */
  snapshotChunkBytes?: number;
  /**
   * The largest snapshot this replica accepts from a peer, in bytes: the receiver allocates a snapshot's declared
   * size when its first chunk arrives, so a peer (or a corrupt message) declaring gigabytes would make it allocate
   * them. A larger transfer is refused before anything is allocated; the replica keeps what it holds and reports
   * the refusal in `status().details.snapshotRefused`. Default 2 GiB (etcd's default backend quota); at most 2^32 - 1.
   */
  maxSnapshotBytes?: number;
};

/** Options of `PaxosNode`: the protocol contract's options plus Multi-Paxos' own. */
export interface PaxosOptions extends ProtocolOptions, PaxosSpecificOptions {}

/**
 * PMMC's WINDOW (van Renesse & Altinbuken, "Paxos Made Moderately Complex", sections 3 and 4) does two jobs: it
 * bounds the undecided slots a leader has in flight (pipelining), and it is the distance after which a decided
 * configuration takes effect. The first wants it large, the second small: until slot s + WINDOW is reached a
 * reconfiguration is not in force, and an idle leader fills the gap with no-ops (1,023 of them at the former
 * default of 1024). Measured with bench/throughput.bench.ts (3 replicas in process, bursts of 100, 1,000 and
 * 4,096 proposals): throughput is flat from a window of 128 up (within the run-to-run noise) and drops only at
 * 64 for the largest bursts; the CLI bench keeps 64 clients in flight, which group commit turns into batches of
 * at most 64 slots. 256 keeps four such batches pipelined and costs a reconfiguration at most 255 no-ops; and
 * `fill` now gives the slots up to the activation point to waiting proposals first and adds no-ops only while
 * none is waiting, where the change used to queue WINDOW - 1 no-ops ahead of every later proposal.
 */
export const DEFAULT_WINDOW = 256;

/** The largest snapshot a replica accepts from a peer by default (`maxSnapshotBytes`): 2 GiB. */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 2 ** 31;

/** Multi-Paxos' options as `OptionSpecs`: what `paxos.parseOptions` checks untyped input against. */
export const paxosOptionSpecs = {
  window: { type: 'integer', min: 1, max: 1 << 20, description: `PMMC WINDOW: undecided slots in flight, and the config activation distance (default ${DEFAULT_WINDOW})` },
  maxBatch: { type: 'integer', min: 1, max: 1 << 20, description: 'slots per Accept message (default 512)' },
  maxLearnBytes: { type: 'integer', min: 1, max: 16 * 1024 * 1024, description: 'bytes of decided values per Learn message, at least one value (default 1 MiB)' },
  maxAcceptBytes: { type: 'integer', min: 1, max: 16 * 1024 * 1024, description: 'bytes of values per Accept message, at least one value (default 1 MiB)' },
  maxInflight: { type: 'integer', min: 1, max: 1 << 20, description: 'Accept messages in flight per acceptor (default 64)' },
  phase1Quorum: { type: 'integer', min: 0, max: 4095, description: 'Flexible Paxos phase-1 quorum size, 0 = majority (default 0)' },
  phase2Quorum: { type: 'integer', min: 0, max: 4095, description: 'Flexible Paxos phase-2 quorum size, 0 = majority (default 0)' },
  leaseReads: { type: 'boolean', description: 'leader leases for local reads (Paxos Made Live 5.2; default false)' },
  leaseDriftBound: { type: 'number', min: 0, max: 0.9, description: 'clock-rate drift the lease tolerates, as a fraction (default 0.3)' },
  logChunkBits: { type: 'integer', min: 1, max: 20, description: 'in-memory log chunk size as a power of two; decided slots leave memory a chunk at a time (default 12)' },
  snapshotChunkBytes: { type: 'integer', min: 1, max: 16 * 1024 * 1024, description: 'bytes per snapshot chunk sent to a lagging peer (default 1 MiB, at most 16 MiB)' },
  maxSnapshotBytes: { type: 'integer', min: 1, max: 0xffffffff, description: 'largest snapshot accepted from a peer; a larger one is refused before anything is allocated (default 2 GiB)' },
} as const satisfies OptionSpecs;

const CONTRACT_KEYS: ReadonlySet<string> = new Set<keyof ProtocolOptions>(['id', 'peers', 'storage', 'applied', 'electionTicks', 'heartbeatTicks', 'random']);

/** Validates untyped Multi-Paxos options: an unknown, misspelt or ill-typed key is a `ConfigError` naming it. */
export function parsePaxosOptions(raw: unknown): PaxosSpecificOptions {
  return parseOptions('paxos', paxosOptionSpecs, raw) as PaxosSpecificOptions;
}

export type ResolvedPaxosOptions = Required<PaxosSpecificOptions>;

/** The Paxos-specific part of `options`, validated like `parsePaxosOptions`, with defaults filled in. */
export function resolvePaxosOptions(options: PaxosOptions): ResolvedPaxosOptions {
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!CONTRACT_KEYS.has(k)) own[k] = v;
  const o = parsePaxosOptions(own);
  return {
    window: o.window ?? DEFAULT_WINDOW,
    maxBatch: o.maxBatch ?? 512,
    maxLearnBytes: o.maxLearnBytes ?? 1 << 20,
    maxAcceptBytes: o.maxAcceptBytes ?? 1 << 20,
    maxInflight: o.maxInflight ?? 64,
    phase1Quorum: o.phase1Quorum ?? 0,
    phase2Quorum: o.phase2Quorum ?? 0,
    leaseReads: o.leaseReads ?? false,
    leaseDriftBound: o.leaseDriftBound ?? 0.3,
    logChunkBits: o.logChunkBits ?? 12,
    snapshotChunkBytes: o.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES,
    maxSnapshotBytes: o.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES,
  };
}

/**
 * Flexible Paxos (Howard et al. 2016, section 3): phase-1 and phase-2 quorums need only intersect each other,
 * |Q1| + |Q2| > N. Refuses sizes that do not, for the voters the node starts with.
 */
export function checkFlexibleQuorums(o: ResolvedPaxosOptions, voters: number): void {
  if (o.phase1Quorum === 0 && o.phase2Quorum === 0) return;
  if (voters === 0) return;
  const q1 = o.phase1Quorum === 0 ? voters - (o.phase2Quorum || 0) + 1 : o.phase1Quorum;
  const q2 = o.phase2Quorum === 0 ? voters - q1 + 1 : o.phase2Quorum;
  if (q1 > voters || q2 > voters) {
    throw new ConfigError(`paxos quorums larger than the ${voters} voters: phase1Quorum ${q1}, phase2Quorum ${q2}`);
  }
  if (q1 + q2 <= voters) {
    throw new ConfigError(`paxos phase1Quorum (${q1}) + phase2Quorum (${q2}) must exceed the ${voters} voters (Flexible Paxos: every Q1 meets every Q2)`);
  }
}
