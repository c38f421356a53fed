import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkgDir = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * A fresh project that has @consensus-kit/core and its real dependencies, and nothing else: no vitest
 * anywhere on its resolution path (the temp dir is outside the repository). The package's sources run through
 * tsx with the `@consensus-kit/source` condition, so this needs no build.
 */
function freshProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ck-core-entry-'));
  const target = join(dir, 'node_modules', '@consensus-kit', 'core');
  mkdirSync(target, { recursive: true });
  cpSync(join(pkgDir, 'package.json'), join(target, 'package.json'));
  cpSync(join(pkgDir, 'src'), join(target, 'src'), { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
  const msgpackr = realpathSync(join(pkgDir, 'node_modules', 'msgpackr'));
  symlinkSync(msgpackr, join(dir, 'node_modules', 'msgpackr'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fresh', type: 'module', private: true }));
  return dir;
}

function run(dir: string, script: string) {
  writeFileSync(join(dir, 'check.mjs'), script);
  const tsx = pathToFileURL(require.resolve('tsx/esm')).href;
  return spawnSync(process.execPath, ['--import', tsx, '--conditions=@consensus-kit/source', 'check.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
}

describe('entries: @consensus-kit/core/testing in a project without vitest', () => {
  it('imports, and the conformance suites run under any runner that passes describe/it/expect', () => {
    const dir = freshProject();
    try {
      const out = run(
        dir,
        `
let vitest = 'unresolvable';
try { await import('vitest'); vitest = 'resolvable'; } catch {}
const testing = await import('@consensus-kit/core/testing');
const core = await import('@consensus-kit/core');
const host = await import('@consensus-kit/core/host');
// A stand-in runner: collect the cases, then run them; its matchers accept anything.
const cases = [];
const anything = new Proxy(function () {}, { get: () => anything, apply: () => undefined });
const api = { describe: (_n, fn) => fn(), it: (n, fn) => cases.push([n, fn]), expect: () => anything };
testing.describeProtocolConformance(api, { module: testing.solo, nodes: 1 });
for (const [, fn] of cases) await fn();
console.log(JSON.stringify({ vitest, cases: cases.length, cluster: typeof testing.TestCluster, storage: typeof core.MemoryStorage, node: typeof host.ConsensusNode }));
`,
      );
      expect(out.stderr).not.toMatch(/Cannot find package/);
      expect(out.status, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout.trim())).toEqual({ vitest: 'unresolvable', cases: 7, cluster: 'function', storage: 'function', node: 'function' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
