import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

describe('README', () => {
  it('shows examples/sweep.ts verbatim (the example that `pnpm run example` runs), in at most 20 lines', async () => {
    const readme = await readFile(resolve(root, 'README.md'), 'utf8');
    const example = await readFile(resolve(root, 'examples/sweep.ts'), 'utf8');
    const block = /## Example[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(example);
    expect(example.trimEnd().split('\n').length).toBeLessThanOrEqual(20);
  });
});
