import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README's tour runs `pnpm start` and `pnpm cli ...` in a fresh clone, with nothing built: both scripts run
 * the CLI from its sources. This runs each script's command line as the root package spells it.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const cliVersion = (JSON.parse(readFileSync(join(root, 'apps', 'cli', 'package.json'), 'utf8')) as { version: string }).version;

function runScript(name: string, args: string): { status: number | null; stdout: string; stderr: string } {
  const command = scripts[name];
  if (command === undefined) throw new Error(`the root package has no "${name}" script`);
  return spawnSync(`${command} ${args}`, { cwd: root, shell: true, encoding: 'utf8', timeout: 60_000 });
}

describe("the root package's start and cli scripts", () => {
  it('do not build first: they run the CLI from apps/cli/src', () => {
    expect(scripts.start).toMatch(/apps\/cli\/src\/bin\.ts start$/);
    expect(scripts.cli).toMatch(/apps\/cli\/src\/bin\.ts$/);
  });

  it('`cli` answers --version and `start` its --help, from the sources', () => {
    const version = runScript('cli', '--version');
    expect(version.stderr).toBe('');
    expect(version).toMatchObject({ status: 0, stdout: `${cliVersion}\n` });
    const help = runScript('start', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: consensus-cli start/);
  });
});
