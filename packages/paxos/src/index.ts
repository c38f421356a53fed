import type { ProtocolModule, ProtocolOptions } from '@consensus-kit/core';
import { parsePaxosOptions, paxosOptionSpecs, type PaxosSpecificOptions } from './options';
import { PaxosNode } from './paxos';

/**
 * The `paxos` protocol module. `paxos.parseOptions(raw)` validates untyped Multi-Paxos options (a config file,
 * CLI flags); `paxos.create(options)` returns a `PaxosNode` and refuses unknown option keys the same way.
 */
export const paxos: ProtocolModule<PaxosSpecificOptions> & { create(options: ProtocolOptions & PaxosSpecificOptions): PaxosNode } = {
  name: 'paxos',
  options: paxosOptionSpecs,
  parseOptions: parsePaxosOptions,
  create(options: ProtocolOptions & PaxosSpecificOptions): PaxosNode {
    return new PaxosNode(options);
  },
};

export { PaxosNode } from './paxos';
export { parsePaxosOptions, paxosOptionSpecs } from './options';
export type { PaxosOptions, PaxosSpecificOptions } from './options';
export type { PaxosPeerDetails, PaxosStatusDetails } from './status-details';
export { RANK_SPACE, ballotOf, describeBallot, nextBallot, rankOf, roundOf } from './ballot';
export { Membership } from './membership';
export type { ConfigRecord, RankRecord } from './membership';
export { decodeHardState, encodeHardState } from './hard-state';
export type { HardState } from './hard-state';
export { parseMessage } from './messages';
export type {
  Accept,
  Accepted,
  CatchupRequest,
  Heartbeat,
  HeartbeatReply,
  Learn,
  Learned,
  Nack,
  PaxosMessage,
  PaxosMessageType,
  Prepare,
  Promise,
  SnapshotAck,
  SnapshotMessage,
  TimeoutNow,
} from './messages';
export { paxosInvariants } from './invariants';
/** The simulator looks up a protocol package's `invariants` export next to its module (a factory per run). */
export { paxosInvariants as invariants } from './invariants';
