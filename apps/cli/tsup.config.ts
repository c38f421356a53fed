import { definePackageBuild } from '@consensus-kit/tooling/tsup';

export default definePackageBuild({ entry: { index: 'src/index.ts', embed: 'src/embed.ts', bin: 'src/bin.ts' } });
