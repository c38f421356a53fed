export { describeStorageConformance, testEntries, testEntry } from './storage-conformance';
export type { StorageHarness } from './storage-conformance';
