import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../src/config';

/** deploy/node-config-from-env.mjs, the container entry point's config writer, checked by the node's own parser. */
const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy', 'node-config-from-env.mjs');
const dir = mkdtempSync(join(tmpdir(), 'consensus-deploy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function generate(env: Record<string, string>): { code: number | null; err: string; config?: ReturnType<typeof parseNodeConfig> } {
  const out = join(dir, `node-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, [script, out], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  if (r.status !== 0) return { code: r.status, err: r.stderr };
  return { code: r.status, err: r.stderr, config: parseNodeConfig(readFileSync(out, 'utf8'), out) };
}

const PEERS = 'consensus-0=consensus-0.consensus:7101,consensus-1=consensus-1.consensus:7101,consensus-2=consensus-2.consensus:7101';

describe('deploy/node-config-from-env.mjs', () => {
  it('writes a config the node accepts: id from CK_NODE_ID, peers by DNS name, listen on all addresses', () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 'a long shared cluster secret\n');
    const r = generate({ CK_CLUSTER_ID: 'k8s-kv', CK_PEERS: PEERS, CK_NODE_ID: 'consensus-1', CK_SECRET_FILE: secretFile, CK_PROTOCOL: 'zab', CK_TICK_MS: '100' });
    expect(r.err).toBe('');
    expect(r.config).toMatchObject({
      clusterId: 'k8s-kv',
      id: 'consensus-1',
      protocol: 'zab',
      dataDir: '/data',
      listen: { host: '0.0.0.0', port: 7101 },
      http: { host: '0.0.0.0', port: 7201 },
      peers: { 'consensus-0': 'consensus-0.consensus:7101', 'consensus-2': 'consensus-2.consensus:7101' },
      secret: 'a long shared cluster secret',
      tickMs: 100,
    });
    expect(r.config?.admin).toBeUndefined();
  });

  it('refuses a node that is not among its peers, and malformed variables, naming them (exit 2)', () => {
    expect(generate({ CK_CLUSTER_ID: 'x', CK_PEERS: PEERS, CK_NODE_ID: 'consensus-7' })).toMatchObject({ code: 2, err: /"consensus-7" is not in CK_PEERS/ });
    expect(generate({ CK_PEERS: PEERS, CK_NODE_ID: 'consensus-0' })).toMatchObject({ code: 2, err: /CK_CLUSTER_ID is required/ });
    expect(generate({ CK_CLUSTER_ID: 'x', CK_PEERS: 'a=host-without-port', CK_NODE_ID: 'a' })).toMatchObject({ code: 2, err: /must be "host:port"/ });
    expect(generate({ CK_CLUSTER_ID: 'x', CK_PEERS: 'a=h:1', CK_NODE_ID: 'a', CK_TICK_MS: 'fast' })).toMatchObject({ code: 2, err: /CK_TICK_MS must be a whole number/ });
  });
});
