import { definePackageConfig } from '@consensus-kit/tooling/vitest';

// Integration tests start real processes: give them room, and run files one at a time. The processes run a bundle
// of the sources made once per run (test/global-setup.ts), not tsx.
export default definePackageConfig({ test: { testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false, globalSetup: ['test/global-setup.ts'] } });
