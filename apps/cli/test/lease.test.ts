import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { leaseKeepAlive } from '../src/commands/lease';
import { dirTarget } from '../src/target';
import { cli, useSourceNodes, useStartedCluster, waitFor } from './helpers';

useSourceNodes();

// Leases are the kv state machine's, the same under every protocol: one raft cluster (real processes, the
// default 500 ms time entries, the default 1.5 s minimum TTL).
describe('consensus-cli lease: grant, put --lease, keepalive, ttl, list, revoke on a running cluster', () => {
  const cluster = useStartedCluster();
  let dir: string;
  beforeAll(() => {
    dir = cluster();
  });
  const get = async (key: string) => (await cli('get', key, '--dir', dir)).out;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a key on a lease nobody keeps alive vanishes after its TTL', async () => {
    const g = await cli('lease', 'grant', '2s', '--dir', dir);
    expect(g.code).toBe(0);
    const id = /^lease (\d+) granted with TTL 2s\n$/.exec(g.out)?.[1];
    expect(id).toBeDefined();
    expect((await cli('put', 'svc/idle', 'up', '--lease', id as string, '--dir', dir)).code).toBe(0);
    expect(await get('svc/idle')).toBe('up\n');
    const ttl = await cli('lease', 'ttl', id as string, '--keys', '--dir', dir, '--json');
    expect(JSON.parse(ttl.out)).toMatchObject({ id: Number(id), ttl: 2000, keys: ['svc/idle'] });
    await waitFor('the key to vanish', async () => ((await get('svc/idle')) === '' ? true : undefined), 15_000);
    const gone = await cli('lease', 'ttl', id as string, '--dir', dir);
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/lease \d+ not found/);
  });

  it('`lease keepalive` keeps the key for many TTLs; once it stops, the key vanishes', async () => {
    const g = JSON.parse((await cli('lease', 'grant', '2s', '--dir', dir, '--json')).out) as { id: number; ttl: number };
    expect(g.ttl).toBe(2000);
    expect((await cli('put', 'svc/kept', 'up', '--lease', String(g.id), '--dir', dir)).code).toBe(0);
    const stop = new AbortController();
    const lines: string[] = [];
    const running = leaseKeepAlive({ target: dirTarget(dir), signal: stop.signal, print: (l) => lines.push(l) }, g.id);
    await sleep(5000); // two and a half TTLs: renewed again and again, not once
    expect(await get('svc/kept')).toBe('up\n');
    expect(lines).toEqual([`lease ${g.id} kept alive (TTL 2s); Ctrl-C to stop`]);
    const list = JSON.parse((await cli('lease', 'list', '--dir', dir, '--json')).out) as { id: number }[];
    expect(list.map((l) => l.id)).toContain(g.id);
    stop.abort();
    await running; // Ctrl-C: exit 0
    await waitFor('the key to vanish', async () => ((await get('svc/kept')) === '' ? true : undefined), 15_000);
  });

  it('`consensus-cli lease keepalive` as its own process: the key outlives its TTL, Ctrl-C (SIGINT) exits 0, then the key vanishes', async () => {
    const id = /lease (\d+)/.exec((await cli('lease', 'grant', '2s', '--dir', dir)).out)?.[1] as string;
    await cli('put', 'svc/proc', 'up', '--lease', id, '--dir', dir);
    // The same command line a user types, run from sources (useSourceNodes sets it for the node processes).
    const [cmd, ...args] = JSON.parse(process.env.CONSENSUS_CLI_NODE_CMD as string) as string[];
    const child = spawn(cmd as string, [...args, 'lease', 'keepalive', id, '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('keepalive to start', async () => (out.includes('kept alive') ? true : undefined), 20_000);
      await sleep(4000); // two TTLs
      expect(await get('svc/proc')).toBe('up\n');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toBe(`lease ${id} kept alive (TTL 2s); Ctrl-C to stop\n`);
    await waitFor('the key to vanish', async () => ((await get('svc/proc')) === '' ? true : undefined), 15_000);
  });

  it('`lease keepalive` ends non-zero when the lease is revoked under it; revoke deletes the keys', async () => {
    const id = /lease (\d+)/.exec((await cli('lease', 'grant', '6s', '--dir', dir)).out)?.[1] as string;
    await cli('put', 'svc/a', '1', '--lease', id, '--dir', dir);
    await cli('put', 'svc/b', '2', '--lease', id, '--dir', dir);
    const running = leaseKeepAlive({ target: dirTarget(dir), print: () => {} }, Number(id));
    await sleep(500);
    const r = await cli('lease', 'revoke', id, '--dir', dir);
    expect(r.out).toMatch(new RegExp(`^lease ${id} revoked \\(2 keys deleted, revision \\d+\\)\\n$`));
    await expect(running).rejects.toThrow(/lease lost \(expired or revoked\)/);
    expect(await get('svc/a')).toBe('');
    const missing = await cli('lease', 'keepalive', id, '--dir', dir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/not found/);
    const put = await cli('put', 'svc/c', '1', '--lease', id, '--dir', dir);
    expect(put.code).toBe(1);
    expect(put.err).toMatch(/lease \d+ not found/);
    expect((await cli('put', 'k', 'v', '--lease', 'x', '--dir', dir)).code).toBe(2);
  });
});
