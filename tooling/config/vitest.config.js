import { definePackageConfig } from './vitest.preset.js';

// The first lint loads ESLint and typescript-eslint (about 6 s when every package's tests run at once on 2 cores):
// give slower, busier machines room.
export default definePackageConfig({ test: { include: ['test/**/*.test.js'], testTimeout: 60_000 } });
