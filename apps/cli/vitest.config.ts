import { definePackageConfig } from '@consensus-kit/tooling/vitest';

// Integration tests start real processes: give them room. Two files run at once (most of a file's time is spent
// waiting on its clusters, not computing): each worker takes node ports from a band of its own (helpers.ts,
// freeBase) and every cluster lives in a directory of its own. The processes run a bundle of the sources made
// once per run (test/global-setup.ts), not tsx.
export default definePackageConfig({
  test: { testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: true, maxWorkers: 2, globalSetup: ['test/global-setup.ts'] },
});
