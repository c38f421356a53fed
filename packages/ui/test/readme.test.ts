import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');
const example = readFileSync(`${root}examples/fixed-frames.ts`, 'utf8');

describe('README', () => {
  it('shows examples/fixed-frames.ts verbatim', () => {
    const section = readme.slice(readme.indexOf('## Quick start'));
    expect(/```ts\n([\s\S]*?)```/.exec(section)?.[1]).toBe(example);
  });

  it('example serves the frames and stops', () => {
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const output = execFileSync(process.execPath, [tsx, '--conditions=@consensus-kit/source', 'examples/fixed-frames.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const lines = output.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^open http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(lines[1]).toBe('3 frames, last leader n3');
  }, 60_000);
});
