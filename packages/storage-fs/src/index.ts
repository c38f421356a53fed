export { FileStorage, openFileStorage, parseSegmentFileName, segmentFileName } from './file-storage';
export type { FileStorageOptions, FileStorageStats } from './file-storage';
export { DirectoryLockedError } from './errors';
export { nodeFileSystem } from './file-system';
export type { FileSystem, FsFile } from './file-system';
export { MemoryFileSystem } from './memory-file-system';
export type { CrashMode } from './memory-file-system';
export { describeInspectReport, inspect } from './inspect';
export type { InspectOptions, InspectReport, InspectSegment, InspectSnapshot } from './inspect';
