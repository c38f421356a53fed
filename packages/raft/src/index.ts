import type { ProtocolModule, ProtocolOptions } from '@consensus-kit/core';
import { parseRaftOptions, raftOptionSpecs, type RaftSpecificOptions } from './options';
import { RaftNode } from './rawnode';

/**
 * The `raft` protocol module. `raft.parseOptions(raw)` validates untyped Raft options (a config file, CLI
 * flags); `raft.create(options)` returns a `RaftNode` and refuses unknown option keys the same way.
 */
export const raft: ProtocolModule<RaftSpecificOptions> & { create(options: ProtocolOptions & RaftSpecificOptions): RaftNode } = {
  name: 'raft',
  options: raftOptionSpecs,
  parseOptions: parseRaftOptions,
  create(options: ProtocolOptions & RaftSpecificOptions): RaftNode {
    return new RaftNode(options);
  },
};

export { RaftNode } from './rawnode';
export { parseRaftOptions, raftOptionSpecs } from './options';
export type { RaftOptions, RaftSpecificOptions } from './options';
export type { PeerProgress, ProgressState, RaftPhase, RaftStatusDetails } from './status-details';
export { leaveJoint, needsJointConsensus, nextConfigEntry } from './confchange';
export { decodeHardState, encodeHardState, hardStatesEqual } from './hard-state';
export type { HardState } from './hard-state';
export { parseMessage } from './messages';
export type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  PreVote,
  PreVoteResponse,
  RaftMessage,
  RaftMessageType,
  ReadIndexRequest,
  ReadIndexResponse,
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from './messages';
export { RaftInvariants, checkLogMatching, raftInvariants } from './invariants';
export type { InvariantViolation, RaftReplicaView, SimInvariant, SimViewLike } from './invariants';
/** The simulator looks up a protocol package's `invariants` export next to its module (a factory per run). */
export { raftInvariants as invariants } from './invariants';
