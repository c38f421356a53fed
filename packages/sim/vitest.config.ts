import { definePackageConfig } from '@consensus-kit/tooling/vitest';

// Tests here run seeded simulations: CPU-bound, and several take 5-12 s when every package's tests run at once
// on 2 cores (`pnpm test`). Give slower, busier machines room; a real hang still fails.
export default definePackageConfig({ test: { testTimeout: 120_000 } });
