import { ConfigError } from '../errors';
import type { AnyProtocolModule, Clock, DurableStorage, Logger, NodeId, ProtocolOptions, StateMachine, Transport } from '../types';
import { assertNodeId, assertPositiveInteger, preview } from '../validate';
import type { CommandCodec } from './command-framing';

export interface ConsensusNodeOptions<Cmd, Res, Q, R> {
  id: NodeId;
  /**
   * Voters, including `id`, on first boot. Empty for a node that joins an existing cluster: it starts with no
   * configuration and learns it from the leader once a membership change adds it.
   */
  peers: NodeId[];
  protocol: AnyProtocolModule;
  storage: DurableStorage;
  transport: Transport;
  stateMachine: StateMachine<Cmd, Res, Q, R>;
  /** Wall-clock length of one protocol tick. Default 100 ms. */
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Randomness for the protocol (election jitter). Default: seeded from the OS. */
  random?: () => number;
  /**
   * Protocol-specific options (e.g. raft's `preVote`), validated by `protocol.parseOptions` when the node is
   * constructed: an unknown, misspelt or ill-typed option is a `ConfigError`.
   */
  protocolOptions?: Record<string, unknown>;
  /** Default timeout of `propose`, `read`, `changeMembership` and `transferLeadership`. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Take a state-machine snapshot after this many applied entries (0: never). Default 10,000. After a snapshot
   * whose own work took W (50 ms or more: a large store), the next one by entry count waits until 4W has passed
   * since it was stored, so snapshots take at most about a third of a loaded node's time.
   */
  snapshotEvery?: number;
  /**
   * Also take one after this many bytes of applied entries' data (0: never), whichever of `snapshotEvery` and
   * `snapshotBytes` comes first: a log of large values is compacted before it holds 10,000 of them. Default
   * 64 MiB (`DEFAULT_SNAPSHOT_BYTES`). After a snapshot whose own work took 50 ms or more, the next one by bytes
   * waits for at least as many bytes as that snapshot held: one is never taken to let go of less log than it costs.
   */
  snapshotBytes?: number;
  /** Entries kept in the log behind a snapshot, for slow followers. Default 1,000. */
  snapshotKeep?: number;
  /**
   * For a state machine with `timeCommand` (r2): how often the leader proposes a time entry. Default 500 ms.
   * Lease expiry is as fine-grained as this.
   */
  timeIntervalMs?: number;
  codec?: CommandCodec<Cmd>;
  clock?: Clock;
  logger?: Logger;
}

/** How often a leader proposes a time entry by default (`timeIntervalMs`). */
export const DEFAULT_TIME_INTERVAL_MS = 500;

/** The keys of the protocol contract's `ProtocolOptions`: set by the host, never by `protocolOptions`. */
const CONTRACT_KEYS = ['id', 'peers', 'storage', 'applied', 'electionTicks', 'heartbeatTicks', 'random'] as const satisfies readonly (keyof ProtocolOptions)[];
/** Those of them a caller sets as a ConsensusNode option of the same name. */
const HOST_KEYS: ReadonlySet<string> = new Set(['id', 'peers', 'storage', 'electionTicks', 'heartbeatTicks', 'random']);

/** Checks what a caller passes to `new ConsensusNode`: wrong input is a `ConfigError` naming the option. */
export function validateNodeOptions<Cmd, Res, Q, R>(o: ConsensusNodeOptions<Cmd, Res, Q, R>): void {
  if (typeof o !== 'object' || o === null) throw new ConfigError('ConsensusNode options must be an object');
  assertNodeId(o.id, 'options.id');
  if (!Array.isArray(o.peers) || (o.peers.length > 0 && !o.peers.includes(o.id))) {
    throw new ConfigError('options.peers must include options.id (or be empty for a node joining an existing cluster)');
  }
  for (const p of o.peers) assertNodeId(p, 'options.peers[]');
  if (typeof o.protocol?.create !== 'function' || typeof o.protocol.parseOptions !== 'function') throw new ConfigError('options.protocol must be a ProtocolModule');
  if (typeof o.storage?.save !== 'function') throw new ConfigError('options.storage must be a DurableStorage');
  if (typeof o.transport?.send !== 'function') throw new ConfigError('options.transport must be a Transport');
  const sm = o.stateMachine;
  if (typeof sm?.apply !== 'function' || typeof sm.query !== 'function' || typeof sm.snapshot !== 'function' || typeof sm.restore !== 'function') {
    throw new ConfigError('options.stateMachine must implement apply, query, snapshot and restore');
  }
  if (o.tickMs !== undefined) assertPositiveInteger(o.tickMs, 'options.tickMs');
  if (o.timeoutMs !== undefined) assertPositiveInteger(o.timeoutMs, 'options.timeoutMs');
  if (o.timeIntervalMs !== undefined) assertPositiveInteger(o.timeIntervalMs, 'options.timeIntervalMs');
  if (o.snapshotEvery !== undefined && (!Number.isSafeInteger(o.snapshotEvery) || o.snapshotEvery < 0)) {
    throw new ConfigError(`options.snapshotEvery must be a non-negative integer, got ${preview(o.snapshotEvery)}`);
  }
  if (o.snapshotBytes !== undefined && (!Number.isSafeInteger(o.snapshotBytes) || o.snapshotBytes < 0)) {
    throw new ConfigError(`options.snapshotBytes must be a non-negative integer, got ${preview(o.snapshotBytes)}`);
  }
  if (o.snapshotKeep !== undefined && (!Number.isSafeInteger(o.snapshotKeep) || o.snapshotKeep < 0)) {
    throw new ConfigError(`options.snapshotKeep must be a non-negative integer, got ${preview(o.snapshotKeep)}`);
  }
  if (o.protocolOptions !== undefined) {
    if (typeof o.protocolOptions !== 'object' || o.protocolOptions === null || Array.isArray(o.protocolOptions)) {
      throw new ConfigError(`options.protocolOptions must be an object, got ${preview(o.protocolOptions)}`);
    }
    // The contract's options are the host's to set (and check): a protocol whose parseOptions lets them
    // through must not get a second, unchecked way in (electionTicks <= heartbeatTicks, another id or storage).
    for (const key of CONTRACT_KEYS) {
      if (Object.hasOwn(o.protocolOptions, key)) {
        throw new ConfigError(`options.protocolOptions.${key} is not a protocol option: ${key} is the node's own${HOST_KEYS.has(key) ? ` (options.${key})` : ''}`);
      }
    }
  }
  const e = o.electionTicks ?? 10;
  const h = o.heartbeatTicks ?? 1;
  if (e <= h) throw new ConfigError(`electionTicks (${e}) must be greater than heartbeatTicks (${h})`);
}
