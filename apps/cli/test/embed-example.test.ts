import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPortsFree } from '../src/supervisor';
import { freeBase } from './helpers';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

describe('examples/embed.ts (the README Embedding section)', () => {
  it('runs: three embedded nodes elect, write, answer readyz and metrics, and stop with their ports freed', async () => {
    const base = await freeBase();
    const tsx = new URL(`file://${require.resolve('tsx')}`).href;
    const child = spawn(process.execPath, ['--import', tsx, '--conditions=@consensus-kit/source', join(here, '..', 'examples', 'embed.ts')], {
      cwd: join(here, '..'),
      env: { ...process.env, EMBED_PORT: String(base) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^leader n[123] greeting hello$/m);
    expect(out).toMatch(/^readyz 200 consensus_server_has_leader\{node="n1"\} 1$/m);
    await checkPortsFree('127.0.0.1', [base + 1, base + 2, base + 3, base + 101]);
  });
});
