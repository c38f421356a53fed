import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, InvalidArgumentError } from '@consensus-kit/core';
import { silentLogger } from '@consensus-kit/core/host';
import { createRequestServer } from '@consensus-kit/transport-tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterDir } from '../src/cluster-file';
import { parseNodeConfig, type NodeConfig } from '../src/config';
import { refuseAdmin } from '../src/node-runner';
import { nodeCommand, stopNode } from '../src/supervisor';
import { DEFAULT_DIR, resolveTarget, TARGET_ENV } from '../src/target';
import { cli, freeBase, killPids, useSourceNodes, waitFor } from './helpers';

useSourceNodes();

const CLUSTER_ID = 'remote-test';

/** Writes `config` to `<dir>/node.json` and runs `consensus-cli node --config` on it (log in `<dir>/node.log`); its pid. */
function runNodeConfig(dir: string, config: object): number {
  const [cmd, ...args] = nodeCommand();
  const file = join(dir, 'node.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const log = openSync(join(dir, 'node.log'), 'a');
  const child = spawn(cmd as string, [...args, 'node', '--config', file], { stdio: ['ignore', log, log] });
  closeSync(log);
  return child.pid as number;
}

/** Kills the nodes of `pids`, waits until they are gone, and removes `root`. */
async function killNodes(pids: readonly number[], root: string): Promise<void> {
  await killPids(pids);
  rmSync(root, { recursive: true, force: true });
}
const SECRET = 'a long shared cluster secret';

/**
 * Three nodes as the README's "real machines" section deploys them: one hand-written config each (a secret, no
 * `admin`), each run with `consensus-cli node --config <file>`; no cluster directory, no cluster.json.
 */
describe('a cluster of three node configs, driven through --endpoints and --cluster-id (no --dir)', () => {
  let root: string;
  let endpoints: string;
  const pids: number[] = [];
  const remote = () => ['--endpoints', endpoints, '--cluster-id', CLUSTER_ID, '--secret', SECRET];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'consensus-remote-test-'));
    const base = await freeBase();
    const ids = ['n1', 'n2', 'n3'];
    const peers = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${base + i + 1}`]));
    endpoints = Object.values(peers).join(',');
    for (const [i, id] of ids.entries()) {
      mkdirSync(join(root, id));
      const config: Omit<NodeConfig, 'dataDir'> & { dataDir: string } = {
        clusterId: CLUSTER_ID,
        id,
        protocol: 'raft',
        dataDir: './data',
        listen: { host: '127.0.0.1', port: base + i + 1 },
        http: { host: '127.0.0.1', port: base + 100 + i + 1 },
        peers,
        secret: SECRET,
        tickMs: 50,
        electionTicks: 10,
      };
      pids.push(runNodeConfig(join(root, id), config));
    }
    await waitFor('a leader, seen through --endpoints', async () => {
      const r = await cli('status', ...remote(), '--json');
      return r.code === 0 ? ((JSON.parse(r.out) as { leader: string | null }).leader ?? undefined) : undefined;
    });
  });

  afterAll(async () => {
    await killNodes(pids, root);
  });

  it('put, get, range, del, status and members list work with the flags alone', async () => {
    const put = await cli('put', 'remote/a', 'one', ...remote());
    expect(put.err).toBe('');
    expect(put.code).toBe(0);
    expect(put.out).toMatch(/^OK \(revision \d+\)\n$/);
    expect(await cli('get', 'remote/a', ...remote())).toMatchObject({ code: 0, out: 'one\n' });
    expect(await cli('range', 'remote/', ...remote())).toMatchObject({ code: 0, out: 'remote/a\tone\n' });
    const status = await cli('status', ...remote(), '--json');
    expect(status.code).toBe(0);
    const s = JSON.parse(status.out) as { clusterId: string; leader: string; nodes: { node: string; role: string; address: string }[] };
    expect(s.clusterId).toBe(CLUSTER_ID);
    expect(s.nodes.map((n) => n.node)).toEqual(['n1', 'n2', 'n3']);
    expect(s.nodes.map((n) => n.address).join(',')).toBe(endpoints);
    expect(s.nodes.filter((n) => n.role === 'leader').map((n) => n.node)).toEqual([s.leader]);
    const members = await cli('members', 'list', ...remote(), '--json');
    expect(members.code).toBe(0);
    expect((JSON.parse(members.out) as { voters: string[] }).voters.sort()).toEqual(['n1', 'n2', 'n3']);
    expect(await cli('del', 'remote/a', ...remote())).toMatchObject({ code: 0, out: /^deleted 1 key / });
  });

  it('the CONSENSUS_* variables name the cluster as well, and a flag wins over its variable', async () => {
    const saved = { ...process.env };
    try {
      process.env[TARGET_ENV.endpoints] = endpoints;
      process.env[TARGET_ENV.clusterId] = CLUSTER_ID;
      process.env[TARGET_ENV.secret] = SECRET;
      expect(await cli('put', 'env/a', 'from-env')).toMatchObject({ code: 0, out: /^OK / });
      expect(await cli('get', 'env/a')).toMatchObject({ code: 0, out: 'from-env\n' });
      expect((await cli('status', '--json')).code).toBe(0);
      // A wrong id in the environment, the right one as a flag: the flag is used.
      process.env[TARGET_ENV.clusterId] = 'someone-else';
      expect(await cli('get', 'env/a', '--cluster-id', CLUSTER_ID)).toMatchObject({ code: 0, out: 'from-env\n' });
      // A directory flag wins over endpoints from the environment: that directory holds no cluster.
      const empty = mkdtempSync(join(tmpdir(), 'consensus-remote-empty-'));
      const r = await cli('get', 'env/a', '--dir', empty);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/no cluster in /);
      rmSync(empty, { recursive: true, force: true });
    } finally {
      for (const k of Object.values(TARGET_ENV)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('--secret-file reads the secret (without its trailing newline)', async () => {
    const file = join(root, 'secret.txt');
    writeFileSync(file, `${SECRET}\n`);
    await cli('put', 'file/a', 'x', ...remote());
    const r = await cli('get', 'file/a', '--endpoints', endpoints, '--cluster-id', CLUSTER_ID, '--secret-file', file);
    expect(r).toMatchObject({ code: 0, out: 'x\n' });
  });

  it('without the secret the nodes refuse the client, and the error says why', async () => {
    const r = await cli('get', 'remote/a', '--endpoints', endpoints, '--cluster-id', CLUSTER_ID, '--timeout', '3s');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/secret-required/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('a wrong cluster id is refused with a message naming the mismatch', async () => {
    const get = await cli('get', 'remote/a', '--endpoints', endpoints, '--cluster-id', 'not-this-one', '--secret', SECRET, '--timeout', '3s');
    expect(get.code).toBe(1);
    expect(get.err).toMatch(/cluster-mismatch/);
    const status = await cli('status', '--endpoints', endpoints, '--cluster-id', 'not-this-one', '--secret', SECRET);
    expect(status.code).toBe(1);
    expect(status.err).toMatch(/^consensus-cli: no node of cluster not-this-one let the CLI in \(.*cluster-mismatch.*check --cluster-id and the secret\n$/);
  });

  it('partition, heal and leader transfer are refused by nodes without "admin": true, naming the flag', async () => {
    const partition = await cli('partition', 'n1', ...remote());
    expect(partition.code).toBe(1);
    expect(partition.err).toMatch(/admin requests are off on node n1: admin\.partition needs "admin": true in its node config .*\[CONFIG\]/);
    const heal = await cli('heal', ...remote());
    expect(heal.code).toBe(1);
    expect(heal.err).toMatch(/admin\.heal needs "admin": true/);
    const transfer = await cli('leader', 'transfer', 'n2', ...remote());
    expect(transfer.code).toBe(1);
    expect(transfer.err).toMatch(/admin requests are off on node n\d: admin\.transfer needs "admin": true/);
    // Nothing was cut: every node still answers and agrees on the leader.
    const status = await cli('status', ...remote(), '--json');
    expect(status.code).toBe(0);
  });
});

describe('choosing the cluster: flags, variables and their conflicts', () => {
  it('endpoints without a cluster id, or a malformed endpoint, are usage errors', async () => {
    const noId = await cli('get', 'k', '--endpoints', '127.0.0.1:1');
    expect(noId).toMatchObject({ code: 2, err: /--endpoints needs the cluster's id too: --cluster-id <id> or CONSENSUS_CLUSTER_ID/ });
    const bad = await cli('get', 'k', '--endpoints', '127.0.0.1', '--cluster-id', 'x');
    expect(bad).toMatchObject({ code: 2, err: /--endpoints: "127.0.0.1" is not host:port/ });
    const twice = await cli('get', 'k', '--endpoints', '127.0.0.1:1', '--cluster-id', 'x', '--secret', SECRET, '--secret-file', '/nonexistent');
    expect(twice).toMatchObject({ code: 2, err: /--secret or --secret-file, not both/ });
    const short = await cli('get', 'k', '--endpoints', '127.0.0.1:1', '--cluster-id', 'x', '--secret', 'short');
    expect(short).toMatchObject({ code: 2, err: /shorter than 8 characters/ });
  });

  it('a directory and endpoints given together must name the same cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'consensus-remote-dir-'));
    try {
      new ClusterDir(dir).write({ version: 1, clusterId: 'local-abc', protocol: 'raft', nodes: [{ id: 'n1', host: '127.0.0.1', port: 7101, httpPort: 7201 }] });
      const other = await cli('get', 'k', '--dir', dir, '--endpoints', '127.0.0.1:7101', '--cluster-id', 'prod');
      expect(other).toMatchObject({ code: 2, err: /--dir and --endpoints disagree: --dir .* holds cluster local-abc, not prod/ });
      const foreign = await cli('get', 'k', '--dir', dir, '--endpoints', '10.0.0.9:7101', '--cluster-id', 'local-abc');
      expect(foreign).toMatchObject({ code: 2, err: /disagree: 10\.0\.0\.9:7101 is not a node of the cluster in / });
      const idOnly = await cli('get', 'k', '--dir', dir, '--cluster-id', 'prod');
      expect(idOnly).toMatchObject({ code: 2, err: /--dir and --cluster-id disagree/ });
      // Agreeing: the endpoints are used.
      expect(resolveTarget({ dir, endpoints: '127.0.0.1:7101', clusterId: 'local-abc' }, { dir: 'cli', endpoints: 'cli', clusterId: 'cli' })).toEqual({
        kind: 'remote',
        clusterId: 'local-abc',
        endpoints: ['127.0.0.1:7101'],
      });
      // Variables for both: the same check.
      expect(() => resolveTarget({ dir, endpoints: '127.0.0.1:7101', clusterId: 'prod' }, { dir: 'env', endpoints: 'env', clusterId: 'env' })).toThrow(
        /CONSENSUS_DIR and CONSENSUS_ENDPOINTS disagree/,
      );
      // The directory from its variable, endpoints from a flag: the flag wins.
      expect(resolveTarget({ dir, endpoints: '10.0.0.9:7101', clusterId: 'prod' }, { dir: 'env', endpoints: 'cli', clusterId: 'cli' })).toMatchObject({ kind: 'remote' });
      // A cluster the CLI started: its cluster file gives the endpoints and the id.
      expect(resolveTarget({ dir }, { dir: 'env' })).toEqual({ kind: 'dir', dir, clusterId: 'local-abc', endpoints: ['127.0.0.1:7101'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('neither a cluster directory nor endpoints: a usage error that says what to give', async () => {
    const cwd = process.cwd();
    const empty = mkdtempSync(join(tmpdir(), 'consensus-remote-cwd-'));
    process.chdir(empty);
    try {
      const r = await cli('get', 'k');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`no cluster given: no cluster was started in ${DEFAULT_DIR} .*--endpoints host:port,\\.\\.\\. with --cluster-id <id> \\(or CONSENSUS_ENDPOINTS and CONSENSUS_CLUSTER_ID\\)`));
    } finally {
      process.chdir(cwd);
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('the admin gate', () => {
  it('refuses requests that change the network, leadership or membership without "admin": true, with a ConfigError naming it', () => {
    for (const t of ['admin.partition', 'admin.heal', 'admin.transfer', 'admin.members', 'admin.peers']) {
      let thrown: unknown;
      try {
        refuseAdmin({ id: 'n1' }, { t });
      } catch (e) {
        thrown = e;
      }
      expect(ConfigError.is(thrown), t).toBe(true);
      expect((thrown as Error).message).toContain(`${t} needs "admin": true`);
      expect(() => refuseAdmin({ id: 'n1', admin: true }, { t })).not.toThrow();
    }
    // Status is a read: always served.
    expect(() => refuseAdmin({ id: 'n1' }, { t: 'admin.status' })).not.toThrow();
  });

  it('"admin" in a node config is true or false', () => {
    const base = {
      clusterId: 'c',
      id: 'n1',
      protocol: 'raft',
      dataDir: './d',
      listen: { host: '127.0.0.1', port: 1 },
      http: { host: '127.0.0.1', port: 2 },
      peers: { n1: '127.0.0.1:1' },
    };
    expect(parseNodeConfig(JSON.stringify({ ...base, admin: true }), 'f.json').admin).toBe(true);
    expect(parseNodeConfig(JSON.stringify(base), 'f.json').admin).toBeUndefined();
    expect(() => parseNodeConfig(JSON.stringify({ ...base, admin: 'yes' }), 'f.json')).toThrow(/admin must be true or false/);
  });
});

/** transport-tcp's test-only TLS material: ca.crt signs node.crt (127.0.0.1, localhost); rogue.crt is outside it. */
const tlsFile = (name: string) => fileURLToPath(new URL(`../../../packages/transport-tcp/testdata/tls/${name}`, import.meta.url));

describe('TLS to the client port', () => {
  it('--cacert reaches an endpoint that speaks TLS; without it, or with another CA, the command fails', async () => {
    // A node's client channel with TLS material (as a transport-tcp listener given `tls` serves it), answering
    // the report `members list` asks for. Nodes run by `consensus-cli node` take no TLS settings yet.
    const server = createRequestServer({
      clusterId: 'tls-test',
      id: 'n1',
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: readFileSync(tlsFile('node.crt'), 'utf8'), key: readFileSync(tlsFile('node.key'), 'utf8') },
      logger: silentLogger,
    });
    server.onRequest((body) => {
      if ((body as { t?: unknown }).t !== 'admin.status') throw new InvalidArgumentError('only admin.status here');
      const status = { id: 'n1', role: 'leader', term: 1, leader: 'n1', commitIndex: 0, appliedIndex: 0, lastIndex: 0, config: { voters: ['n1'], learners: [] } };
      return { id: 'n1', pid: process.pid, address: server.endpoint(), http: '127.0.0.1:0', status };
    });
    await server.start();
    try {
      const flags = ['members', 'list', '--endpoints', server.endpoint(), '--cluster-id', 'tls-test', '--json'];
      const ok = await cli(...flags, '--cacert', tlsFile('ca.crt'));
      expect(ok.err).toBe('');
      expect(JSON.parse(ok.out)).toMatchObject({ voters: ['n1'], leader: 'n1' });
      expect(await cli(...flags)).toMatchObject({ code: 1, err: /no node answered/ });
      expect(await cli(...flags, '--cacert', tlsFile('rogue.crt'))).toMatchObject({ code: 1, err: /no node answered/ });
      expect(await cli(...flags, '--cert', tlsFile('client.crt'))).toMatchObject({ code: 2, err: /--cert needs --key too/ });
    } finally {
      await server.stop();
    }
  });
});

describe('a node run by consensus-cli node with "tls" in its config', () => {
  it('three nodes talk to each other and serve their clients over TLS (mutual): --cacert with a client certificate reaches them, nothing else does', async () => {
    const root = mkdtempSync(join(tmpdir(), 'consensus-tls-node-'));
    const base = await freeBase();
    const ids = ['n1', 'n2', 'n3'];
    const peers = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${base + i + 1}`]));
    const pids: number[] = [];
    try {
      for (const [i, id] of ids.entries()) {
        mkdirSync(join(root, id));
        const config = {
          clusterId: 'tls-node',
          id,
          protocol: 'raft',
          dataDir: './data',
          listen: { host: '127.0.0.1', port: base + i + 1 },
          http: { host: '127.0.0.1', port: base + 101 + i },
          peers,
          tickMs: 50,
          tls: { cert: tlsFile('node.crt'), key: tlsFile('node.key'), ca: tlsFile('ca.crt'), mutual: true },
        };
        pids.push(runNodeConfig(join(root, id), config));
      }
      // A write needs a quorum: the nodes reach each other over mutual TLS.
      const remote = ['--endpoints', Object.values(peers).join(','), '--cluster-id', 'tls-node'];
      const mtls = [...remote, '--cacert', tlsFile('ca.crt'), '--cert', tlsFile('client.crt'), '--key', tlsFile('client.key')];
      await waitFor('the TLS node takes a put', async () => ((await cli('put', 'k', 'v', ...mtls)).code === 0 ? true : undefined));
      expect(await cli('get', 'k', ...mtls)).toMatchObject({ code: 0, out: 'v\n' });
      // Plain TCP, a CA that did not sign the node, or no client certificate under mutual TLS: refused.
      expect((await cli('get', 'k', ...remote, '--timeout', '3s')).code).not.toBe(0);
      expect((await cli('get', 'k', ...remote, '--cacert', tlsFile('rogue.crt'), '--timeout', '3s')).code).not.toBe(0);
      expect((await cli('get', 'k', ...remote, '--cacert', tlsFile('ca.crt'), '--timeout', '3s')).code).not.toBe(0);
    } finally {
      await killNodes(pids, root);
    }
  });

  it('a tls section is checked with the rest of the config, and its files when the node starts', () => {
    const base = { clusterId: 'c', id: 'n1', protocol: 'raft', dataDir: 'd', listen: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 2 }, peers: { n1: '127.0.0.1:1' } };
    const parse = (tls: unknown) => parseNodeConfig(JSON.stringify({ ...base, tls }), '/etc/consensus/node.json');
    expect(parse({ cert: 'n.crt', key: 'n.key', ca: 'ca.crt' }).tls).toEqual({ cert: '/etc/consensus/n.crt', key: '/etc/consensus/n.key', ca: '/etc/consensus/ca.crt' });
    expect(() => parse({ cert: 'n.crt', key: 'n.key' })).toThrow(/tls\.ca must be the path of a PEM file/);
    expect(() => parse({ cert: 'n.crt', key: 'n.key', ca: 'ca.crt', mutal: true })).toThrow(/tls has unknown field "mutal"/);
    expect(() => parse('yes')).toThrow(ConfigError);
  });
});

describe('a cluster the CLI started, with CONSENSUS_* exported for another cluster', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'consensus-remote-local-'));
    const base = await freeBase();
    const started = await cli('start', '--dir', dir, '--port', String(base), '--detach', '--nodes', '2');
    expect(started.code, started.err).toBe(0);
  });
  afterAll(async () => {
    const cd = new ClusterDir(dir);
    if (cd.exists()) await Promise.all(cd.read().nodes.map((n) => stopNode(cd, n.id, 'SIGKILL', 5000)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('--dir uses its nodes\' configs (no secret, no TLS) over a secret or CA from the environment', async () => {
    const saved = { ...process.env };
    try {
      process.env[TARGET_ENV.secret] = SECRET;
      process.env[TARGET_ENV.cacert] = tlsFile('ca.crt');
      expect(await cli('put', 'local/a', 'x', '--dir', dir)).toMatchObject({ code: 0, out: /^OK / });
      expect(await cli('get', 'local/a', '--dir', dir)).toMatchObject({ code: 0, out: 'x\n' });
    } finally {
      for (const k of Object.values(TARGET_ENV)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('a secret in its configs is used without a flag, and partition works there ("admin": true from start)', async () => {
    const cd = new ClusterDir(dir);
    for (const id of ['n1', 'n2']) {
      const file = cd.configFile(id);
      const config = JSON.parse(readFileSync(file, 'utf8')) as NodeConfig;
      expect(config.admin).toBe(true);
      writeFileSync(file, JSON.stringify({ ...config, secret: SECRET }, null, 2));
    }
    expect((await cli('stop', '--dir', dir)).code).toBe(0);
    const again = await cli('start', '--dir', dir, '--detach');
    expect(again.code, again.err).toBe(0);
    expect(await cli('put', 'local/b', 'y', '--dir', dir)).toMatchObject({ code: 0, out: /^OK / });
    expect(await cli('get', 'local/b', '--dir', dir)).toMatchObject({ code: 0, out: 'y\n' });
    // Without the secret the node refuses, so the CLI did send the configs' secret above.
    const bare = await cli('get', 'local/b', '--endpoints', cd.read().nodes.map((n) => `${n.host}:${n.port}`).join(','), '--cluster-id', cd.read().clusterId, '--timeout', '2s');
    expect(bare).toMatchObject({ code: 1, err: /secret-required/ });
    expect(await cli('partition', 'n1', '--dir', dir)).toMatchObject({ code: 0, out: 'cut n1 off from n2\n' });
    expect(await cli('heal', '--dir', dir)).toMatchObject({ code: 0 });
  });
});
