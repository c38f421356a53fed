import { definePackageConfig } from '@consensus-kit/tooling/vitest';

// The crash sweeps reopen thousands of crash images: CPU-bound, 1-2 s each alone but several times that when
// every package's tests run at once on 2 cores. Give busier machines room; a real hang still fails.
export default definePackageConfig({ test: { testTimeout: 120_000 } });
