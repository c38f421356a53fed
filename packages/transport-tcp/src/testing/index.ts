export { collector, describeTransportConformance, messageShapes, normalize } from '@consensus-kit/core/testing';
export type { TransportHarness, Collector } from '@consensus-kit/core/testing';
export { memoryLogger, startTcpCluster } from './tcp-cluster';
export type { MemoryLogger, TcpCluster } from './tcp-cluster';
