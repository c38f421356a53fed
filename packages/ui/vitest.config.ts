import { definePackageConfig } from '@consensus-kit/tooling/vitest';

export default definePackageConfig();
