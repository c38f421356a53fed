import { definePackageConfig } from '@consensus-kit/tooling/vitest';

// Integration tests start real processes: give them room, and run files one at a time.
export default definePackageConfig({ test: { testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false } });
