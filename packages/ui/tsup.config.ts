import { copyFile, mkdir } from 'node:fs/promises';
import { definePackageBuild } from '@consensus-kit/tooling/tsup';
import { STATIC_FILES, bundleOptions, loadEsbuild } from './src/page-build';

/** The browser page, bundled at build time into dist/page/, where the server finds it next to its module. */
async function writePage(srcDir: string, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await loadEsbuild().build({ ...bundleOptions(`${srcDir}/main.ts`), outfile: `${outDir}/app.js` });
  for (const [name] of STATIC_FILES) await copyFile(`${srcDir}/${name}`, `${outDir}/${name}`);
}

export default definePackageBuild({
  entry: { index: 'src/index.ts' },
  onSuccess: () => writePage('src/page', 'dist/page'),
});
