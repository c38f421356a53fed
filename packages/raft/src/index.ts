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
export { RaftInvariants, checkLogMatching, raftInvariants } from './invariants';
export type { InvariantViolation, RaftReplicaView, SimInvariant, SimViewLike } from './invariants';
/** The simulator looks up a protocol package's `invariants` export next to its module (a factory per run). */
export { raftInvariants as invariants } from './invariants';
