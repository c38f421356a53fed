import { definePackageConfig } from './vitest.preset.js';

export default definePackageConfig({ test: { include: ['test/**/*.test.js'] } });
