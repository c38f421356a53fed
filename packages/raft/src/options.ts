import { ConfigError, parseOptions, type OptionSpecs, type ProtocolOptions } from '@consensus-kit/core';

/** Raft's own options, beyond the protocol contract's (`ProtocolOptions`). Every one is optional. */
export type RaftSpecificOptions = {
  /** Thesis 9.6 PreVote: a node only bumps its term once a quorum says it could win. Default true. */
  preVote?: boolean;
  /**
   * Thesis 6.2 CheckQuorum: a leader steps down when it has not heard from a quorum for an election timeout,
   * and followers that heard from a leader within the election timeout ignore vote requests (thesis 4.2.3).
   * Default true.
   */
  checkQuorum?: boolean;
  /**
   * 'safe' (default): ReadIndex confirms leadership with a heartbeat round (thesis 6.4).
   * 'lease': serve reads at the commit index while the leader's lease holds (thesis 6.4.1); needs checkQuorum
   * and bounded clock drift; falls back to a heartbeat round when the lease is not known to hold.
   */
  readOnly?: 'safe' | 'lease';
  /**
   * With `readOnly: 'lease'`: the clock-rate drift between any two nodes the lease tolerates, as a fraction
   * (0.3: a clock may run 30% fast or slow). Followers ignore vote requests for an election timeout of their own
   * clock after hearing from the leader (thesis 4.2.3), so the leader counts its lease as that timeout shortened
   * by the drift: floor(electionTicks * (1 - d) / (1 + d)) - 1 of its own ticks from when its heartbeat round
   * left (thesis 6.4.1). Default 0.3. A lease shorter than one tick means every read takes a heartbeat round.
   */
  leaseDriftBound?: number;
  /** Appends in flight per follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes in flight per follower (0: unlimited). Default 32 MiB. */
  maxInflightBytes?: number;
  /** Approximate byte limit of one AppendEntries (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Proposals are refused while this many bytes are uncommitted (0: unlimited). Default 64 MiB. */
  maxUncommittedBytes?: number;
  /** Bytes per InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /**
   * The largest snapshot this node accepts from a leader, in bytes: a follower allocates a snapshot's declared
   * size when its first InstallSnapshot chunk arrives, so a leader (or a corrupt message) declaring gigabytes
   * would make it allocate them. A larger transfer is refused before anything is allocated; the follower keeps
   * what it holds and reports the refusal in `status().details.snapshotRefused`. Default 2 GiB (etcd's default
   * backend quota); at most 2^32 - 1.
   */
  maxSnapshotBytes?: number;
  /** Approximate byte limit of `Ready.committed`. Default 64 MiB. */
  maxCommittedBytesPerReady?: number;
  /**
   * How followers learn that the commit index moved. 'next-message' (default): it rides on the next
   * AppendEntries, or goes out with the next tick at the latest (hashicorp/raft makes the same call), which
   * saves an AppendEntries and its reply per follower per commit. 'immediate': an empty AppendEntries carries
   * it at once (etcd's choice), so followers apply sooner. Either way the leader commits and answers its
   * clients at the same moment; only followers' applied index differs (by at most one tick).
   */
  commitNotify?: 'next-message' | 'immediate';
};

/** Options of `RaftNode`: the protocol contract's options plus Raft's own knobs. */
export interface RaftOptions extends ProtocolOptions, RaftSpecificOptions {}

const MAX_BYTES = 2 ** 40;

/** The largest snapshot a follower accepts by default (`maxSnapshotBytes`): 2 GiB. */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 2 ** 31;

/** Raft's options as `OptionSpecs`: what `raft.parseOptions` checks untyped input against (and help texts print). */
export const raftOptionSpecs = {
  preVote: { type: 'boolean', description: 'PreVote (thesis 9.6): campaign only once a quorum says it could win (default true)' },
  checkQuorum: { type: 'boolean', description: 'CheckQuorum (thesis 6.2): a leader cut off from a quorum steps down (default true)' },
  readOnly: { type: 'string', values: ['safe', 'lease'], description: "linearizable reads: 'safe' ReadIndex round (thesis 6.4) or 'lease' (thesis 6.4.1; needs checkQuorum)" },
  leaseDriftBound: { type: 'number', min: 0, max: 0.9, description: "clock-rate drift a 'lease' read tolerates, as a fraction (default 0.3)" },
  maxInflightMsgs: { type: 'integer', min: 1, max: 1 << 20, description: 'appends in flight per follower (default 256)' },
  maxInflightBytes: { type: 'integer', min: 0, max: MAX_BYTES, description: 'bytes in flight per follower, 0 = unlimited (default 32 MiB)' },
  maxSizePerMsg: { type: 'integer', min: 1, max: MAX_BYTES, description: 'approximate byte limit of one AppendEntries (default 1 MiB)' },
  maxUncommittedBytes: { type: 'integer', min: 0, max: MAX_BYTES, description: 'refuse proposals while this many bytes are uncommitted, 0 = unlimited (default 64 MiB)' },
  snapshotChunkBytes: { type: 'integer', min: 1, max: MAX_BYTES, description: 'bytes per InstallSnapshot chunk (default 1 MiB)' },
  maxSnapshotBytes: { type: 'integer', min: 1, max: 0xffffffff, description: 'largest snapshot accepted from a leader; a larger one is refused before anything is allocated (default 2 GiB)' },
  maxCommittedBytesPerReady: { type: 'integer', min: 1, max: MAX_BYTES, description: 'approximate byte limit of Ready.committed (default 64 MiB)' },
  commitNotify: { type: 'string', values: ['next-message', 'immediate'], description: "how followers learn the commit index: 'next-message' (default) or 'immediate'" },
} as const satisfies OptionSpecs;

/** The keys of `ProtocolOptions`: the contract's, validated by core, not by Raft's specs. */
const CONTRACT_KEYS: ReadonlySet<string> = new Set<keyof ProtocolOptions>(['id', 'peers', 'storage', 'applied', 'electionTicks', 'heartbeatTicks', 'random']);

/**
 * Validates untyped Raft options (a node config file, CLI flags, the simulator): an unknown or misspelt key,
 * a value of the wrong type or out of bounds is a `ConfigError` naming it. Also checks combinations.
 */
export function parseRaftOptions(raw: unknown): RaftSpecificOptions {
  const o = parseOptions('raft', raftOptionSpecs, raw) as RaftSpecificOptions;
  if (o.readOnly === 'lease' && o.checkQuorum === false) {
    throw new ConfigError("raft option readOnly 'lease' needs checkQuorum: without it a deposed leader could serve stale reads");
  }
  return o;
}

/** Raft's options with every default filled in. */
export type ResolvedRaftOptions = Required<RaftSpecificOptions>;

/**
 * Fills in defaults for the Raft-specific part of `options` after validating it like `parseRaftOptions`:
 * the contract's keys are left to core's `resolveProtocolOptions`; anything else unknown is refused, so a
 * typo passed straight to `raft.create` fails as loudly as one in a config file.
 */
export function resolveRaftOptions(options: RaftOptions): ResolvedRaftOptions {
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!CONTRACT_KEYS.has(k)) own[k] = v;
  const o = parseRaftOptions(own);
  return {
    preVote: o.preVote ?? true,
    checkQuorum: o.checkQuorum ?? true,
    readOnly: o.readOnly ?? 'safe',
    leaseDriftBound: o.leaseDriftBound ?? 0.3,
    maxInflightMsgs: o.maxInflightMsgs ?? 256,
    maxInflightBytes: o.maxInflightBytes ?? 32 << 20,
    maxSizePerMsg: o.maxSizePerMsg ?? 1 << 20,
    maxUncommittedBytes: o.maxUncommittedBytes ?? 64 << 20,
    snapshotChunkBytes: o.snapshotChunkBytes ?? 1 << 20,
    maxSnapshotBytes: o.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES,
    maxCommittedBytesPerReady: o.maxCommittedBytesPerReady ?? 64 << 20,
    commitNotify: o.commitNotify ?? 'next-message',
  };
}
