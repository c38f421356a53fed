export { createProgram, run } from './cli';
export { parseNodeConfig, readNodeConfig } from './config';
export type { NodeConfig } from './config';
export { ClusterDir } from './cluster-file';
export type { ClusterFile, ClusterNode } from './cluster-file';
export { runNode } from './node-runner';
export type { AdminRequest, NodeReport, RunningNode } from './node-runner';
export { bench } from './commands/bench';
export type { BenchOptions, BenchResult } from './commands/bench';
