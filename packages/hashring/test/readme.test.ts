import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');
const example = readFileSync(`${root}examples/quick-start.ts`, 'utf8');

describe('README', () => {
  it('shows examples/quick-start.ts verbatim, in 20 lines or fewer', () => {
    const section = readme.slice(readme.indexOf('## Quick start'));
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBe(example);
    expect(example.trimEnd().split('\n').length).toBeLessThanOrEqual(20);
  });

  // Starts a node process (tsx compiles the example first): allow for a slow, busy machine.
  it('example runs and prints what its comments say', () => {
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const output = execFileSync(process.execPath, [tsx, '--conditions=@consensus-kit/source', 'examples/quick-start.ts'], {
      cwd: root,
      encoding: 'utf8',
    });
    const lines = output.trimEnd().split('\n');
    expect(['cache-a:6379', 'cache-b:6379', 'cache-c:6379']).toContain(lines[0]);
    const [, moved, toD] = /^(\d+) keys moved, (\d+) to cache-d$/.exec(lines[2]!)!;
    expect(moved).toBe(toD);
    expect(Number(moved)).toBeGreaterThan(18_000);
    expect(Number(moved)).toBeLessThan(22_000);
    expect(lines.at(-2)).toMatch(/^4 nodes, 100,000 keys, /);
    expect(lines.at(-1)).toBe('UNKNOWN_NODE');
  }, 60_000);
});
