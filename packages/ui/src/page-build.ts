/**
 * Finds the page (index.html, app.css, app.js) the server sends. Published and built packages carry it in
 * `dist/page/` (written by tsup.config.ts with `bundleOptions`); run from sources (vitest, tsx with the
 * `@consensus-kit/source` condition) the script is bundled on the fly, in memory, by the esbuild that tsup
 * brings, and the static files are read from `src/page/`. Either way the files sit in `./page/` next to the
 * module that runs.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface PageFile {
  type: string;
  body: Buffer;
}

/** Path (as requested, e.g. `/app.js`) to its bytes and content type. */
export type PageFiles = ReadonlyMap<string, PageFile>;

export const STATIC_FILES: ReadonlyArray<readonly [string, string]> = [
  ['index.html', 'text/html; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
];
const SCRIPT_TYPE = 'text/javascript; charset=utf-8';

/** The part of esbuild's API used here (esbuild is reached through tsup, not a dependency of this package). */
interface EsbuildLike {
  build(options: Record<string, unknown>): Promise<{ outputFiles?: Array<{ path: string; contents: Uint8Array }> }>;
}

export function loadEsbuild(): EsbuildLike {
  const require = createRequire(import.meta.url);
  try {
    return require('esbuild') as EsbuildLike;
  } catch {
    const viaTsup = createRequire(require.resolve('tsup'));
    return viaTsup('esbuild') as EsbuildLike;
  }
}

export function bundleOptions(entry: string): Record<string, unknown> {
  return {
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'silent',
  };
}

let fromSources: Promise<PageFiles> | undefined;

async function readStatic(dir: URL, files: Map<string, PageFile>): Promise<void> {
  for (const [name, type] of STATIC_FILES) files.set(`/${name}`, { type, body: await readFile(new URL(name, dir)) });
}

async function loadFromSources(dir: URL): Promise<PageFiles> {
  const files = new Map<string, PageFile>();
  await readStatic(dir, files);
  const result = await loadEsbuild().build({ ...bundleOptions(fileURLToPath(new URL('main.ts', dir))), write: false, outfile: 'app.js' });
  const out = result.outputFiles?.[0];
  if (!out) throw new Error('esbuild produced no page script');
  files.set('/app.js', { type: SCRIPT_TYPE, body: Buffer.from(out.contents) });
  return files;
}

async function loadBuilt(dir: URL): Promise<PageFiles> {
  const files = new Map<string, PageFile>();
  await readStatic(dir, files);
  files.set('/app.js', { type: SCRIPT_TYPE, body: await readFile(new URL('app.js', dir)) });
  return files;
}

/** The page's files: built ones next to this module (`dist/page/`), or, run from sources, bundled now. */
export function loadPage(): Promise<PageFiles> {
  const dir = new URL('./page/', import.meta.url);
  if (import.meta.url.endsWith('.ts')) {
    fromSources ??= loadFromSources(dir).catch((error: unknown) => {
      fromSources = undefined;
      throw error;
    });
    return fromSources;
  }
  return loadBuilt(dir);
}
