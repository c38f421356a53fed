import { afterAll, describe, expect, it } from 'vitest';
import { nodeCommand } from '../src/supervisor';
import { cleanup, cli, freeBase, statusOf, tempDir, useSourceNodes } from './helpers';

useSourceNodes();

/**
 * ZAB elects a leader a tick after two servers talk, so `start` used to return while a slow third node was still
 * starting, and the next command found it down. Here n3 is slowed by a wrapper around the node command: `start`
 * must still return with all three answering.
 */
describe('start returns once every node it started answers, not only a majority', () => {
  const dir = tempDir();
  const saved = process.env.CONSENSUS_CLI_NODE_CMD;
  afterAll(async () => {
    process.env.CONSENSUS_CLI_NODE_CMD = saved;
    await cleanup(dir);
  });

  it('a node 3 s slower to start than the others is up when `start --detach` returns (zab)', async () => {
    const [cmd, ...args] = nodeCommand();
    // `sh -c <script> sh <node command...> node --config <file>`: n3's config path makes the wrapper wait first.
    const script = 'for a in "$@"; do case "$a" in */n3/node.json) sleep 3;; esac; done; exec "$@"';
    process.env.CONSENSUS_CLI_NODE_CMD = JSON.stringify(['sh', '-c', script, 'sh', cmd, ...args]);
    const started = await cli('start', '--dir', dir, '--port', String(await freeBase()), '--protocol', 'zab', '--detach', '--json');
    expect(started.err).toBe('');
    expect(started.code).toBe(0);
    const s = await statusOf(dir);
    // Each answers with a role of its own (a node not up yet shows as 'unreachable' or 'down').
    expect(s.nodes.map((n) => [n.node, ['leader', 'follower'].includes(n.role)])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', true],
    ]);
  }, 60_000);
});
