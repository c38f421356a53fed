// One vitest preset for every package: tests run on TypeScript sources (no build needed) by resolving
// workspace packages through their "@consensus-kit/source" export condition.
import { defineConfig, mergeConfig } from 'vitest/config';

export const SOURCE_CONDITION = '@consensus-kit/source';

const reportDir = process.env.CONSENSUS_KIT_TEST_REPORT_DIR;

/** @param {import('vitest/config').ViteUserConfig} [overrides] */
export function definePackageConfig(overrides = {}) {
  const name = process.env.npm_package_name?.replace(/[^a-z0-9]+/gi, '-') ?? 'package';
  return mergeConfig(
    defineConfig({
      resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'] },
      ssr: { resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'] } },
      test: {
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
        environment: 'node',
        testTimeout: 30_000,
        hookTimeout: 30_000,
        // CI collects one JSON report per package and prints a single pass/fail summary line.
        reporters: reportDir ? ['default', 'json'] : ['default'],
        outputFile: reportDir ? { json: `${reportDir}/${name}.json` } : undefined,
      },
    }),
    overrides,
  );
}
