/**
 * `@consensus-kit/core`: the Node-free contract (DESIGN r2). Protocol packages import this entry, so nothing
 * reachable from here may use a Node built-in or the `Buffer` global (the purity lint follows the whole import
 * graph). The host lives in `@consensus-kit/core/host`, test kit in `@consensus-kit/core/testing`.
 */
export type {
  ClusterConfig,
  Clock,
  ConfigChange,
  ConfigChangeOp,
  DurableStorage,
  EntryType,
  Envelope,
  InitialState,
  LogEntry,
  Logger,
  NodeId,
  ObservesCompaction,
  AnyProtocolModule,
  OptionSpec,
  OptionSpecs,
  Protocol,
  ProtocolModule,
  ProtocolOptions,
  Ready,
  ReadState,
  ReportsUnreachable,
  Role,
  SaveBatch,
  Snapshot,
  SnapshotMeta,
  StateMachine,
  SnapshotJob,
  RestoreJob,
  Status,
  Storage,
  Transport,
  TransportHandler,
} from './types';
export { canObserveCompaction, canReportUnreachable } from './types';
export { parseOptions } from './options';
export type { OptionsOf } from './options';
export { ApplyStep } from './apply-step';
export type { ApplyHandler, AppliedPosition } from './apply-step';
export {
  AbortedError,
  CompactedError,
  ConfigError,
  ConsensusError,
  CorruptLogError,
  ErrorCode,
  InvalidArgumentError,
  InvariantError,
  LeadershipLostError,
  MalformedMessageError,
  NotLeaderError,
  ProposalDroppedError,
  SessionExpiredError,
  StoppedError,
  StorageError,
  TimeoutError,
  TransportError,
  UnknownNodeError,
  isConsensusError,
} from './errors';
export type { ConsensusErrorOptions, CorruptLogDetails, DropReason } from './errors';
export { MAX_WIRE_TEXT, errorFromWire, errorToWire, type ErrorFromWireOptions, type WireError } from './wire-error';
export {
  assertBytes,
  assertNodeId,
  isNodeId,
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertSnapshot,
  hashString,
  preview,
  resolveProtocolOptions,
  seededRandom,
} from './validate';
export type { ResolvedProtocolOptions } from './validate';
export {
  applyConfigChange,
  configMembers,
  configsEqual,
  decodeClusterConfig,
  encodeClusterConfig,
  isJoint,
  isVoter,
} from './config';
export { committedIndex, hasQuorum, jointCommittedIndex, jointVoteResult, majority, voteResult } from './quorum';
export type { VoteResult } from './quorum';
export {
  describeConfig,
  describeEntries,
  describeEntry,
  describeEnvelope,
  describeMessage,
  describeReady,
  describeSnapshot,
  describeStatus,
  describeValue,
} from './describe';
export { MemoryStorage, emptyMemoryStorageState, entrySize } from './memory-storage';
export type { MemoryStorageState } from './memory-storage';
export { combineStateMachines } from './combine';
export { DEFAULT_MAX_TIME_STEP_MS, ReplicatedTime } from './replicated-time';
export type { ReplicatedTimeState, TimeStep } from './replicated-time';
export type { CombinedCommand, CombinedQuery, CombinedRead, CombinedResult } from './combine';
export { SessionTable, storeSessionError, validateSession } from './sessions';
export type { SessionSnapshot, SessionStamp, SessionTableOptions, StoredAnswer, StoredSessionError } from './sessions';
export { DEFAULT_SNAPSHOT_CHUNK_BYTES, SnapshotReceiver, SnapshotSender } from './snapshot-transfer';
export type {
  SnapshotChunk,
  SnapshotChunkAck,
  SnapshotReceiveResult,
  SnapshotReceiverOptions,
  SnapshotSenderOptions,
  SnapshotTransferId,
} from './snapshot-transfer';
