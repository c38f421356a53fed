/**
 * `@consensus-kit/core/host`: what runs a protocol for real, in Node: `ConsensusNode`, clocks, loggers and the
 * in-process `LocalNetwork` transport. Protocol packages never import this entry (DESIGN r2).
 */
export { ConsensusNode } from './consensus-node';
export type { ApplyEvent, ConsensusNodeEvents, ConsensusNodeOptions, OperationOptions } from './consensus-node';
export type { CommandCodec } from './command-framing';
export { LocalNetwork } from './local-network';
export type { LocalNetworkOptions } from './local-network';
export { ManualClock, systemClock } from './clock';
export { consoleLogger, silentLogger } from './logger';
export { DEFAULT_SNAPSHOT_BYTES } from './snapshotter';
