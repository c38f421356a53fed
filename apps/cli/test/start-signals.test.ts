import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { cleanup, freeBase, tempDir, useSourceNodes, waitFor } from './helpers';

useSourceNodes();

/** The CLI as its own process (from sources, as the nodes run), so it can be sent a signal. */
function startCli(dir: string, port: number, extra: string[] = []) {
  const [exe, ...pre] = JSON.parse(process.env.CONSENSUS_CLI_NODE_CMD as string) as string[];
  const child = spawn(exe as string, [...pre, 'start', '--dir', dir, '--port', String(port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await cleanup(d);
});

describe('consensus-cli start: a signal stops every node it started', () => {
  it.each([
    ['SIGINT', 'as soon as the nodes are spawned, before a leader is elected', 'early'],
    ['SIGHUP', 'as soon as the nodes are spawned (the terminal closed)', 'early'],
    ['SIGINT', 'in the foreground view, with --json printing one leader event per line', 'leader'],
  ] as const)('%s %s', async (signal, _when, at) => {
    const dir = tempDir();
    dirs.push(dir);
    const port = await freeBase();
    const cli = startCli(dir, port, at === 'leader' ? ['--json'] : []);
    const cd = new ClusterDir(dir);
    await waitFor('the cluster file and every node spawned', async () => {
      if (!cd.exists()) return undefined;
      return cd.read().nodes.every((n) => existsSync(cd.pidFile(n.id))) ? true : undefined;
    });
    if (at === 'leader') await waitFor('a leader event', async () => (cli.output().includes('"leader":"n') ? true : undefined));
    const pids = cd.read().nodes.map((n) => cd.livePid(n.id));
    cli.child.kill(signal);
    await cli.exited;
    for (const n of cd.read().nodes) expect(cd.livePid(n.id), `${n.id} after ${signal}`).toBeUndefined();
    expect(pids.filter((p) => p !== undefined).length).toBeGreaterThan(0);
    if (at === 'leader') {
      const events = cli
        .output()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { time: string; leader: string | null; term: number });
      expect(events[0]?.leader).toMatch(/^n[1-3]$/);
      expect(events[0]?.term).toBeGreaterThan(0);
    }
  }, 90_000);
});
