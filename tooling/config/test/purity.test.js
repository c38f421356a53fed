// The protocol purity rules are part of the contract (DESIGN.md): prove they fire where they must and only there.
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const eslint = new ESLint({ cwd: root, overrideConfigFile: fileURLToPath(new URL('../eslint.config.js', import.meta.url)) });

async function lint(code, filePath) {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${filePath}` });
  return result.messages.map((m) => m.ruleId);
}

const impure = [
  ['Date.now()', 'export const t = Date.now();'],
  ['performance.now()', 'export const t = performance.now();'],
  ['Math.random()', 'export const r = Math.random();'],
  ['setTimeout', 'setTimeout(() => undefined, 1);'],
  ['setInterval', 'setInterval(() => undefined, 1);'],
  ['new Date()', 'export const d = new Date();'],
  ['node:fs import', "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;"],
  ['bare fs import', "import { readFileSync } from 'fs';\nexport const f = readFileSync;"],
  ['await', 'export async function f(p: Promise<number>) { return await p; }'],
];

describe('lint: protocol purity', () => {
  for (const pkg of ['raft', 'paxos', 'zab']) {
    it.each(impure)(`forbids %s in packages/${pkg}/src`, async (_name, code) => {
      const rules = await lint(code, `packages/${pkg}/src/impure.ts`);
      expect(rules.some((r) => r?.startsWith('no-restricted'))).toBe(true);
    });
  }

  it.each(impure)('allows %s in protocol tests', async (_name, code) => {
    const rules = await lint(code, 'packages/raft/src/impure.test.ts');
    expect(rules.filter((r) => r?.startsWith('no-restricted'))).toEqual([]);
  });

  it.each(impure)('allows %s outside protocol packages', async (_name, code) => {
    const rules = await lint(code, 'packages/core/src/host.ts');
    expect(rules.filter((r) => r?.startsWith('no-restricted'))).toEqual([]);
  });

  it('allows pure code in protocol packages', async () => {
    const rules = await lint('export const max = (a: number, b: number) => Math.max(a, b);', 'packages/raft/src/pure.ts');
    expect(rules).toEqual([]);
  });
});

describe('lint: the whole import graph of a protocol is pure (DESIGN r2)', () => {
  const graph = async (code, filePath = 'packages/raft/src/graph.ts') => {
    const [result] = await eslint.lintText(code, { filePath: `${root}/${filePath}` });
    return result.messages.filter((m) => m.ruleId === '@consensus-kit/pure-import-graph').map((m) => m.message);
  };
  const fixtures = '../../../tooling/config/test/fixtures';

  it('fails when a protocol imports core/host, naming the chain down to the Node built-in', async () => {
    const [message] = await graph("import { ConsensusNode } from '@consensus-kit/core/host';\nexport const N = ConsensusNode;");
    expect(message).toMatch(/packages\/raft\/src\/graph\.ts -> packages\/core\/src\/host\/index\.ts -> .* reaches Node built-in 'node:/);
  });

  it('fails when a protocol imports a file that imports a file that imports node:fs', async () => {
    const [message] = await graph(`import { read } from '${fixtures}/middle';\nexport const r = read;`);
    expect(message).toContain('packages/raft/src/graph.ts -> tooling/config/test/fixtures/middle.ts -> tooling/config/test/fixtures/uses-fs.ts');
    expect(message).toContain("reaches Node built-in 'node:fs' (line 2)");
  });

  it('fails on the Buffer global anywhere in the graph, in zab and paxos too', async () => {
    for (const pkg of ['paxos', 'zab']) {
      const [message] = await graph(`export { bytes } from '${fixtures}/uses-buffer';`, `packages/${pkg}/src/graph.ts`);
      expect(message).toMatch(/uses-buffer\.ts reaches the Buffer global \(line 2\)/);
    }
    expect(await graph('export const b = Buffer.alloc(1);')).toEqual([expect.stringMatching(/graph\.ts reaches the Buffer global/)]);
  });

  it('fails on a bare built-in (events, crypto) as well as node:*', async () => {
    for (const m of ['events', 'crypto', 'fs/promises']) {
      expect(await graph(`import '${m}';`)).toEqual([expect.stringContaining(`reaches Node built-in '${m}'`)]);
    }
  });

  it('passes pure code, type-only imports of impure files, and core\'s main entry', async () => {
    expect(await graph(`export * from '${fixtures}/pure';`)).toEqual([]);
    expect(await graph("import type { ConsensusNode } from '@consensus-kit/core/host';\nexport type N = ConsensusNode;")).toEqual([]);
    expect(await graph("import { majority } from '@consensus-kit/core';\nexport const m = majority;")).toEqual([]);
  });

  it('checks core\'s main entry itself, and only there in core', async () => {
    expect(await graph("export { ConsensusNode } from './host/index';", 'packages/core/src/index.ts')).toHaveLength(1);
    expect(await graph("export { ConsensusNode } from './index';", 'packages/core/src/host/other.ts')).toEqual([]);
  });

  it('the real protocol and core entries are pure today', async () => {
    const files = ['packages/core/src/index.ts', 'packages/raft/src/index.ts'];
    const results = await eslint.lintFiles(files.map((f) => `${root}/${f}`));
    const problems = results.flatMap((r) => r.messages.filter((m) => m.ruleId === '@consensus-kit/pure-import-graph').map((m) => m.message));
    expect(problems).toEqual([]);
  });
});
