export { collector, describeTransportConformance, messageShapes, normalize } from './transport-conformance';
export type { TransportHarness, Collector } from './transport-conformance';
export { memoryLogger, startTcpCluster } from './tcp-cluster';
export type { MemoryLogger, TcpCluster } from './tcp-cluster';
