import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { memberRecordPath } from '../src/node-runner';
import { nodeCommand } from '../src/supervisor';
import { cleanup, cli, freeBase, tempDir, useSourceNodes } from './helpers';

useSourceNodes();

/** Runs `consensus-cli node --config <file>` the way an operator would by hand; it must refuse and exit. */
function runByHand(config: string): { status: number | null; stderr: string } {
  const [cmd, ...args] = nodeCommand();
  const r = spawnSync(cmd as string, [...args, 'node', '--config', config], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: `${r.stderr}${r.stdout}` };
}

/**
 * Node identity (issue #17 finding 1): the data directory records cluster id, node id and an incarnation, and a
 * member record beside it says the node was initialised there. A wiped directory, or another node's, is refused
 * even when the node is started by hand, not only by `consensus-cli start`/`restart`.
 */
describe('a node checks that its data directory is its own', () => {
  let dir: string;
  let cd: ClusterDir;
  beforeAll(async () => {
    dir = tempDir();
    cd = new ClusterDir(dir);
    expect((await cli('start', '--nodes', '1', '--protocol', 'raft', '--dir', dir, '--port', String(await freeBase()), '--detach', '--json')).code).toBe(0);
    expect((await cli('put', 'k', 'v', '--dir', dir)).code).toBe(0);
    expect((await cli('stop', '--dir', dir)).code).toBe(0);
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('the first start records the identity in the directory and the member record beside it', async () => {
    const record = JSON.parse(readFileSync(memberRecordPath(cd.dataDir('n1')), 'utf8')) as { clusterId: string; nodeId: string; incarnation: string };
    const inspected = await cli('inspect', 'n1', '--dir', dir, '--json');
    expect(inspected.code).toBe(0);
    const report = JSON.parse(inspected.out) as { identity: typeof record; durable: { lastIndex: number } };
    expect(report.identity).toEqual(record);
    expect(record).toMatchObject({ clusterId: cd.read().clusterId, nodeId: 'n1' });
    expect(report.durable.lastIndex).toBeGreaterThanOrEqual(2);
  });

  it("another node's config pointed at this directory is refused", async () => {
    const config = JSON.parse(readFileSync(cd.configFile('n1'), 'utf8')) as Record<string, unknown>;
    const other = join(dir, 'n9.json');
    const peers = { ...(config.peers as Record<string, string>), n9: '127.0.0.1:1' };
    writeFileSync(other, JSON.stringify({ ...config, id: 'n9', peers, dataDir: cd.dataDir('n1') }));
    const byRecord = runByHand(other);
    expect(byRecord.status).toBe(1);
    expect(byRecord.stderr).toMatch(/says node n1 of cluster .* was initialised in .*this config is node n9/);
    // Without the member record, the directory's own identity refuses it.
    const record = memberRecordPath(cd.dataDir('n1'));
    const saved = readFileSync(record);
    rmSync(record);
    try {
      const byIdentity = runByHand(other);
      expect(byIdentity.status).toBe(1);
      expect(byIdentity.stderr).toMatch(/belongs to node n1 of cluster .*, not to node n9/);
    } finally {
      writeFileSync(record, saved);
    }
  });

  it('a wiped data directory is refused when started by hand and by start, with how to rejoin', async () => {
    rmSync(cd.dataDir('n1'), { recursive: true, force: true });
    const r = runByHand(cd.configFile('n1'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/holds no state, but node n1 of cluster .* was initialised there/);
    expect(r.stderr).toMatch(/members remove n1.*members add n1/);
    // The only node of its cluster: `start` sees no node with state and would have started it as a new cluster.
    const started = await cli('start', '--dir', dir, '--detach');
    expect(started.code).toBe(1);
    expect(started.err).toMatch(/holds no state/);
    expect(existsSync(join(cd.dataDir('n1'), 'wal-0000000000000001.log'))).toBe(false);
    const inspected = await cli('inspect', 'n1', '--dir', dir);
    expect(inspected.code).toBe(1);
    expect(inspected.out).toMatch(/its state was lost or wiped/);
  });
});
