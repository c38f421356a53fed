/**
 * Once per `vitest run`: bundles the CLI from its sources (and the workspace packages' sources, through the
 * `@consensus-kit/source` condition) into one ES module that the node and CLI processes the tests start run with
 * plain `node`. Starting a process under tsx costs its loader resolving and transforming some 150 modules, about
 * 1.5 s of CPU each time on a 2-core machine; the suite starts hundreds of node processes. The bundle is made by
 * esbuild, as tsup makes dist/ (so a source change is in the next run, no build step), but leaves every
 * third-party package outside it, imported from where node_modules holds it, and keeps each module's own
 * `import.meta.url` (the CLI reads its package.json beside its sources; the ui package bundles its page when it
 * runs from sources). Tests reach its path with `inject('cliBundle')` (helpers.ts); without this setup (another
 * config) they fall back to tsx.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The CLI bundled from sources (global-setup.ts); run it as `node --enable-source-maps <path> ...`. */
    cliBundle: string;
  }
}

/** The part of esbuild's API used here (esbuild is reached through tsx, a dev dependency; not one of ours). */
interface OnResolveArgs {
  path: string;
  kind: string;
  resolveDir: string;
  pluginData?: unknown;
}
interface PluginBuild {
  onResolve(o: { filter: RegExp }, f: (a: OnResolveArgs) => Promise<object | undefined>): void;
  onLoad(o: { filter: RegExp }, f: (a: { path: string }) => { contents: string; loader: string }): void;
  resolve(path: string, o: { kind: string; resolveDir: string; pluginData: unknown }): Promise<{ path: string; errors: object[] }>;
}
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ errors: object[] }>;
}

const here = dirname(fileURLToPath(import.meta.url));
const SKIP = Symbol('resolve as esbuild would');

let outDir = '';

export async function setup(project: TestProject): Promise<void> {
  const require = createRequire(import.meta.url);
  const esbuild = createRequire(require.resolve('tsx'))('esbuild') as Esbuild;
  outDir = mkdtempSync(join(tmpdir(), 'consensus-cli-bundle-'));
  const outfile = join(outDir, 'bin.mjs');
  await esbuild.build({
    entryPoints: [join(here, '..', 'src', 'bin.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@consensus-kit/source'],
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [
      {
        name: 'consensus-cli-test-bundle',
        setup(build: PluginBuild) {
          // Third-party packages stay outside, imported by the absolute path esbuild resolves them to (pnpm
          // keeps each package's own dependencies beside it, where a bundle in a temporary directory cannot look).
          build.onResolve({ filter: /^[^./]/ }, async (a) => {
            if (a.pluginData === SKIP || a.path.startsWith('@consensus-kit/')) return undefined;
            if (a.path.startsWith('node:')) return { path: a.path, external: true };
            const r = await build.resolve(a.path, { kind: a.kind, resolveDir: a.resolveDir, pluginData: SKIP });
            if (r.errors.length > 0) return { errors: r.errors };
            return { path: r.path, external: true };
          });
          // Each source module keeps its own import.meta.url (esbuild would give them all the bundle's).
          build.onLoad({ filter: /\.ts$/ }, (a) => ({
            contents: readFileSync(a.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)),
            loader: 'ts',
          }));
        },
      },
    ],
  });
  project.provide('cliBundle', outfile);
}

export function teardown(): void {
  if (outDir !== '') rmSync(outDir, { recursive: true, force: true });
}
