import { DEFAULT_SNAPSHOT_CHUNK_BYTES, parseOptions, type OptionSpecs, type ProtocolOptions } from '@consensus-kit/core';

/** The largest SNAP chunk: half of transport-tcp's frame limit (32 MiB), room for the message around it. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 16 << 20;

/** ZAB's own options, beyond the protocol contract's (`ProtocolOptions`). Every one is optional. */
export type ZabSpecificOptions = {
  /**
   * The largest zxid counter an epoch may use. ZooKeeper's counter is the low 32 bits of the zxid; when it would
   * roll over the leader gives up leadership so that a new epoch starts (ZOOKEEPER-1277). Default 2^32 - 1;
   * small in tests, to see the rollover happen.
   */
  counterLimit?: number;
  /** Entries per PROPOSAL / INFORM message, and per synchronisation message. Default 512. */
  maxBatch?: number;
  /**
   * Bytes of entry data per PROPOSAL / INFORM / synchronisation message (always at least one entry), and 8 times
   * this per peer in one step. Default 1 MiB (etcd's `MaxSizePerMsg`). Without it a follower catching up on 64 KiB
   * values got 512 of them per message: a 32 MiB message encoded on the leader's event loop in one piece (a Sync of
   * 344 such entries took 193 ms to encode on a loaded 2-core machine), and up to 8 of them per step.
   */
  maxBatchBytes?: number;
  /**
   * Bytes per chunk of a SNAP (synchronisation from a snapshot): the snapshot goes to a follower in chunks of this
   * size, a few in flight, resuming from the follower's offset after a loss (snapshot-chunks.ts). Default 1 MiB; at
   * most 16 MiB, half of transport-tcp's 32 MiB frame limit.
   */
  snapshotChunkBytes?: number;
  /**
   * The largest snapshot this server accepts in a SNAP, in bytes: the follower allocates the declared size when the
   * first chunk arrives, so a leader (or a corrupt message) declaring gigabytes would make it allocate them. A larger
   * SNAP is refused before anything is allocated; the follower keeps what it holds and reports the refusal in
   * `status().details.snapshotRefused`. Default 2 GiB (etcd's default backend quota); at most 2^32 - 1.
   */
  maxSnapshotBytes?: number;
};

/** The largest snapshot a follower accepts by default (`maxSnapshotBytes`): 2 GiB. */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 2 ** 31;

export interface ZabOptions extends ProtocolOptions, ZabSpecificOptions {}

export const zabOptionSpecs = {
  counterLimit: { type: 'integer', min: 1, max: 0xffffffff, description: 'largest zxid counter of an epoch; reaching it forces a new epoch (ZOOKEEPER-1277; default 2^32-1)' },
  maxBatch: { type: 'integer', min: 1, max: 1 << 20, description: 'entries per PROPOSAL or synchronisation message (default 512)' },
  maxBatchBytes: { type: 'integer', min: 1, max: MAX_SNAPSHOT_CHUNK_BYTES, description: 'bytes of entries per PROPOSAL or synchronisation message, at least one entry (default 1 MiB)' },
  snapshotChunkBytes: { type: 'integer', min: 1, max: MAX_SNAPSHOT_CHUNK_BYTES, description: 'bytes per SNAP chunk sent to a follower (default 1 MiB, at most 16 MiB)' },
  maxSnapshotBytes: { type: 'integer', min: 1, max: 0xffffffff, description: 'largest SNAP accepted from a leader; a larger one is refused before anything is allocated (default 2 GiB)' },
} as const satisfies OptionSpecs;

const CONTRACT_KEYS: ReadonlySet<string> = new Set<keyof ProtocolOptions>(['id', 'peers', 'storage', 'applied', 'electionTicks', 'heartbeatTicks', 'random']);

/** Validates untyped ZAB options: an unknown, misspelt or ill-typed key is a `ConfigError` naming it. */
export function parseZabOptions(raw: unknown): ZabSpecificOptions {
  return parseOptions('zab', zabOptionSpecs, raw) as ZabSpecificOptions;
}

export type ResolvedZabOptions = Required<ZabSpecificOptions>;

export function resolveZabOptions(options: ZabOptions): ResolvedZabOptions {
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!CONTRACT_KEYS.has(k)) own[k] = v;
  const o = parseZabOptions(own);
  return { counterLimit: o.counterLimit ?? 0xffffffff, maxBatch: o.maxBatch ?? 512, maxBatchBytes: o.maxBatchBytes ?? 1 << 20, snapshotChunkBytes: o.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES, maxSnapshotBytes: o.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES };
}
