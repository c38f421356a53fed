export { createProgram, run } from './cli';
export { parseNodeConfig, readNodeConfig } from './config';
export type { NodeConfig } from './config';
export { ClusterDir } from './cluster-file';
export type { ClusterFile, ClusterNode } from './cluster-file';
export { runNode } from './node-runner';
export type { AdminRequest, HealthAnswer, KitNode, NodeMachines, NodeReport, RunningNode } from './node-runner';
export { LeaderRedirectError, startNode } from './embed';
export type {
  Address,
  CustomModeOptions,
  EmbeddedHandlers,
  EmbeddedKvNode,
  EmbeddedNode,
  EmbeddedNodeBase,
  KvModeOptions,
  ProtocolChoice,
  ProtocolName,
  ProtocolOptionsByName,
  RouteName,
  StartCustomNodeOptions,
  StartKvNodeOptions,
  StartNodeBaseOptions,
  StartNodeOptions,
  StateMachineClient,
  StateMachineReadOptions,
} from './embed';
export { bench } from './commands/bench';
export type { BenchOptions, BenchResult } from './commands/bench';
