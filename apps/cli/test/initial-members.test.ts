/**
 * `peers` in a node config is an address book; the voters a node boots with while its log holds no
 * configuration are `initialMembers` (etcd's initial cluster), frozen by the CLI the first time it edits `peers`.
 * A `members add` that lost its leader records the new node's address on the others: that must not make it a
 * voter when they restart, or a cluster of one counts a node that never joined and never elects again.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@consensus-kit/core/host';
import { ClusterDir } from '../src/cluster-file';
import { parseNodeConfig, readNodeConfig } from '../src/config';
import { runNode } from '../src/node-runner';
import { cleanup, freeBase, tempDir } from './helpers';

function writeConfig(dir: string, id: string, config: Record<string, unknown>): void {
  mkdirSync(join(dir, id), { recursive: true });
  writeFileSync(join(dir, id, 'node.json'), `${JSON.stringify(config, null, 2)}\n`);
}

describe('initialMembers', () => {
  it('a recorded address of a member whose add never committed does not vote after a restart', async () => {
    const dir = tempDir();
    const base = await freeBase();
    writeConfig(dir, 'n1', {
      clusterId: 'im-test',
      id: 'n1',
      protocol: 'raft',
      dataDir: './data',
      listen: { host: '127.0.0.1', port: base + 1 },
      http: { host: '127.0.0.1', port: base + 101 },
      peers: { n1: `127.0.0.1:${base + 1}` },
      tickMs: 20,
    });
    const cd = new ClusterDir(dir);
    try {
      let running = await runNode(readNodeConfig(cd.configFile('n1')), silentLogger);
      await running.node.waitForLeader({ timeoutMs: 10_000 });
      await running.node.propose({ cmd: { op: 'put', key: 'k', value: 'before' } });
      await running.stop();

      // What `members add n9` records when its leader is gone and the outcome is unknown.
      expect(cd.setPeerAddress(['n1'], 'n9', `127.0.0.1:${base + 2}`)).toEqual([]);
      const config = readNodeConfig(cd.configFile('n1'));
      expect(Object.keys(config.peers).sort()).toEqual(['n1', 'n9']);
      expect(config.initialMembers).toEqual(['n1']);

      running = await runNode(config, silentLogger);
      try {
        // Voters {n1, n9} would need n9, which never ran: no leader ever. Voters {n1}: a leader at once.
        expect(await running.node.waitForLeader({ timeoutMs: 10_000 })).toBe('n1');
        await running.node.propose({ cmd: { op: 'put', key: 'k', value: 'after' } });
        expect(running.machines.kv.range('k').map((kv) => [kv.key, kv.value])).toEqual([['k', 'after']]);
      } finally {
        await running.stop();
      }
    } finally {
      await cleanup(dir);
    }
  });

  it('is checked when given, frozen once, and never set for a joining node', () => {
    const base = {
      clusterId: 'c',
      id: 'n1',
      protocol: 'raft',
      dataDir: './data',
      listen: { host: '127.0.0.1', port: 7001 },
      http: { host: '127.0.0.1', port: 7101 },
      peers: { n1: '127.0.0.1:7001', n2: '127.0.0.1:7002' },
    };
    expect(() => parseNodeConfig(JSON.stringify({ ...base, initialMembers: [] }), 'node.json')).toThrow(/initialMembers must be a non-empty array/);
    expect(() => parseNodeConfig(JSON.stringify({ ...base, initialMembers: 'n1' }), 'node.json')).toThrow(/initialMembers/);
    expect(() => parseNodeConfig(JSON.stringify({ ...base, initialMembers: ['n1', 'bad id!'] }), 'node.json')).toThrow(/initialMembers\[1\]/);
    expect(parseNodeConfig(JSON.stringify({ ...base, initialMembers: ['n1', 'n2', 'n1'] }), 'node.json').initialMembers).toEqual(['n1', 'n2']);
    expect(parseNodeConfig(JSON.stringify(base), 'node.json').initialMembers).toBeUndefined();

    const dir = tempDir();
    try {
      writeConfig(dir, 'n1', base);
      writeConfig(dir, 'n3', { ...base, id: 'n3', peers: { ...base.peers, n3: '127.0.0.1:7003' }, join: true });
      const cd = new ClusterDir(dir);
      cd.setPeerAddress(['n1', 'n3'], 'n4', '127.0.0.1:7004');
      cd.setPeerAddress(['n1', 'n3'], 'n2', undefined);
      const n1 = JSON.parse(readFileSync(cd.configFile('n1'), 'utf8')) as { peers: object; initialMembers?: string[] };
      expect(Object.keys(n1.peers).sort()).toEqual(['n1', 'n4']);
      // Frozen at the first edit: the removal of n2's address (not yet known to be committed) leaves it.
      expect(n1.initialMembers).toEqual(['n1', 'n2']);
      const n3 = JSON.parse(readFileSync(cd.configFile('n3'), 'utf8')) as { initialMembers?: string[] };
      expect(n3.initialMembers).toBeUndefined();
    } finally {
      void cleanup(dir);
    }
  });
});
