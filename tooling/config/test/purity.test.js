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
