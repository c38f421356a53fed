import type { Protocol, ProtocolModule, ProtocolOptions } from '@consensus-kit/core';
import { RaftNode, type RaftOptions } from './raft';

/** The `raft` protocol module: `raft.create(options)` returns a `RaftNode` with default Raft options. */
export const raft: ProtocolModule & { create(options: ProtocolOptions | RaftOptions): RaftNode & Protocol } = {
  name: 'raft',
  create(options: ProtocolOptions | RaftOptions): RaftNode {
    return new RaftNode(options);
  },
};

export { RaftNode } from './raft';
export type { RaftOptions } from './raft';
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
export { RaftInvariants, checkLogMatching } from './invariants';
export type { InvariantViolation, RaftReplicaView } from './invariants';
