// One tsup preset: ESM-only output with bundled .d.ts, targeting the oldest supported Node.
import { defineConfig } from 'tsup';

/** @param {import('tsup').Options} options */
export function definePackageBuild(options) {
  return defineConfig({
    format: ['esm'],
    target: 'node20.19',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
    treeshake: true,
    ...options,
  });
}
