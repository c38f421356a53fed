import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../src/cli';
import { completionScript } from '../src/completion';

describe('shell completion knows the lock commands', () => {
  const bash = completionScript(createProgram(), 'bash');
  const complete = (...typed: string[]): string[] => {
    const words = ['consensus-cli', ...typed].map((w) => `'${w}'`).join(' ');
    const r = spawnSync('bash', ['-c', `${bash}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _consensus_cli; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  it('completes lock and semaphore subcommands, their options and the lock modes', () => {
    expect(complete('lock', '')).toEqual(['acquire', 'release', 'list', 'watch']);
    expect(complete('semaphore', '')).toEqual(['acquire', 'list']);
    expect(complete('lock', 'acquire', 'm', '--mode', '')).toEqual(['read', 'write']);
    expect(complete('lock', 'acquire', 'm', '--')).toEqual(expect.arrayContaining(['--ttl', '--timeout', '--hold', '--exec', '--owner', '--mode', '--json', '--dir', '--endpoints']));
    expect(complete('semaphore', 'acquire', 'p', '--p')).toEqual(['--permits']);
  });
});
