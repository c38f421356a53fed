import type { ProtocolModule, ProtocolOptions } from '@consensus-kit/core';
import { parseZabOptions, zabOptionSpecs, type ZabSpecificOptions } from './options';
import { ZabNode } from './zab';

/**
 * The `zab` protocol module. `zab.parseOptions(raw)` validates untyped ZAB options (a config file, CLI flags);
 * `zab.create(options)` returns a `ZabNode` and refuses unknown option keys the same way.
 */
export const zab: ProtocolModule<ZabSpecificOptions> & { create(options: ProtocolOptions & ZabSpecificOptions): ZabNode } = {
  name: 'zab',
  options: zabOptionSpecs,
  parseOptions: parseZabOptions,
  create(options: ProtocolOptions & ZabSpecificOptions): ZabNode {
    return new ZabNode(options);
  },
};

export { ZabNode } from './zab';
export type { FollowerStage, LeaderStage, ZabPhase } from './zab';
export { parseZabOptions, zabOptionSpecs } from './options';
export type { ZabOptions, ZabSpecificOptions } from './options';
export type { ZabPeerDetails, ZabStatusDetails } from './status-details';
export { compareVotes } from './vote';
export type { Vote } from './vote';
export { compareSummaries, comparePositions, describeZxid, zxidFromBigInt, zxidToBigInt } from './zxid';
export type { LogPosition, StateSummary, Zxid } from './zxid';
export { ZabLog } from './zab-log';
export { decodeHardState, encodeHardState } from './hard-state';
export type { HardState } from './hard-state';
export { parseMessage } from './messages';
export type {
  Ack,
  AckEpoch,
  AckNewLeader,
  Commit,
  FollowerInfo,
  Handoff,
  LeaderInfo,
  Notification,
  Ping,
  Pong,
  Proposal,
  Resync,
  Segment,
  SnapAck,
  SnapChunk,
  Sync,
  UpToDate,
  ZabMessage,
  ZabMessageType,
} from './messages';
export { zabInvariants } from './invariants';
/** The simulator looks up a protocol package's `invariants` export next to its module (a factory per run). */
export { zabInvariants as invariants } from './invariants';
