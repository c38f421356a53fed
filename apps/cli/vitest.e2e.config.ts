import { definePackageConfig } from '@consensus-kit/tooling/vitest';

/**
 * `pnpm test:e2e`: the browser tests (e2e/*.e2e.test.ts), a real cluster driven from the page in headless chromium.
 * Not part of `pnpm test`: they need a browser, and CI runs them as a step of their own.
 */
const reportDir = process.env.CONSENSUS_KIT_TEST_REPORT_DIR;
const config = definePackageConfig({ test: { testTimeout: 180_000, hookTimeout: 120_000, fileParallelism: false } });
// The preset's include lists the unit tests, and vite's mergeConfig joins arrays: set it outright. The JSON report
// goes beside the unit tests' (scripts/test-summary.mjs sums every report in the directory), under its own name.
config.test = { ...config.test, include: ['e2e/**/*.e2e.test.ts'], ...(reportDir ? { outputFile: { json: `${reportDir}/consensus-cli-e2e.json` } } : {}) };
export default config;
