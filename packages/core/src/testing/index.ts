export { describeStorageConformance, testEntries, testEntry } from './storage-conformance';
export type { StorageHarness } from './storage-conformance';
export { describeProtocolConformance } from './protocol-conformance';
export type { ProtocolConformanceOptions } from './protocol-conformance';
export { TestCluster } from './test-cluster';
export type { TestClusterOptions, TestReplica } from './test-cluster';
export { SoloProtocol, solo } from './solo-protocol';
export { collector, describeTransportConformance, messageShapes, normalize } from './transport-conformance';
export type { Collector, TransportHarness } from './transport-conformance';
