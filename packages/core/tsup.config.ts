import { definePackageBuild } from '@consensus-kit/tooling/tsup';

export default definePackageBuild({
  entry: { index: 'src/index.ts', 'host/index': 'src/host/index.ts', 'testing/index': 'src/testing/index.ts' },
});
