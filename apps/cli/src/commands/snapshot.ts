import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { silentLogger } from '@consensus-kit/core/host';
import { openFileStorage } from '@consensus-kit/storage-fs';
import type { RpcClient } from '@consensus-kit/transport-tcp';
import { checkBackupData, checkedSeedOf, readBackup, type Backup } from '../backup';
import { ClusterDir } from '../cluster-file';
import { readNodeConfig } from '../config';
import { connectAdmin, connectNode } from '../connect';
import { withDeadline } from '../deadline';
import { CliError } from '../errors';
import { hint } from '../invocation';
import { memberRecordPath } from '../node-runner';
import type { CliKit } from '../kit';
import { PROTOCOLS } from '../protocols';
import { fetchSnapshotToFile, type SnapshotSource } from '../snapshot-fetch';
import { planCluster } from './cluster';
import type { Target } from '../target';

/** `snapshot save`'s deadline without `--timeout`. */
const SAVE_TIMEOUT_MS = 30_000;

/** Registers the `snapshot` commands: save (from a running cluster), status (of a file), restore (into a new cluster). */
export function registerSnapshotCommands(program: Command, kit: CliKit): void {
  const snapshot = program.command('snapshot').description('back a cluster up to a file, and seed a new cluster from one (as etcdctl/etcdutl snapshot)');

  const save = snapshot
    .command('save <file>')
    .description(
      'write the kv store of a running cluster to <file> (after a read barrier: at least as new as every acknowledged write), with a SHA-256; ' +
        'any size: it arrives in pieces, written to <file>.part (made anew: one already there is refused) and renamed once verified (--timeout bounds each request)',
    )
    .addOption(kit.timeout(SAVE_TIMEOUT_MS))
    .addOption(kit.json())
    .action((file: string, o: { json?: boolean; timeout?: number }, cmd: Command) => saveSnapshot({ ...o, target: kit.targetOf(cmd) }, file));
  kit.target(save);

  snapshot
    .command('status <file>')
    .description('verify a backup file and print what it holds: revision, keys, applied index, source cluster, SHA-256')
    .addOption(kit.json())
    .action((file: string, o: { json?: boolean }) => snapshotStatus(o, file));

  snapshot
    .command('restore <file>')
    .description('create a NEW cluster directory (new cluster id, new members) whose nodes start from the backup; then `start --dir` it')
    .option('--dir <path>', 'the new cluster directory (must not exist, or be empty)')
    .option('--config <file>', "instead of --dir, for nodes deployed by hand: seed the data directory of the node this config describes (run it for every member's config, with the same backup)")
    .addOption(new Option('--nodes <n>', 'number of nodes (--dir; default 3)').argParser(kit.intArg('--nodes', 1, 9)))
    .addOption(new Option('--protocol <name>', 'consensus protocol (--dir; default: the one the backup was taken from)').choices(PROTOCOLS))
    .addOption(new Option('--port <port>', 'base port (--dir; default 7100): node i listens on port+i, its http on port+100+i').argParser(kit.intArg('--port', 1024, 65000)))
    .addOption(kit.json())
    .action((file: string, o: RestoreOptions & { config?: string }) => {
      if ((o.dir === undefined) === (o.config === undefined)) throw new CliError('snapshot restore needs --dir <new cluster directory> or --config <node config>, one of them', 2);
      if (o.config !== undefined) {
        const given = (['nodes', 'protocol', 'port'] as const).filter((k) => o[k] !== undefined);
        if (given.length > 0) throw new CliError(`${given.map((k) => `--${k}`).join(', ')} apply to --dir; with --config the node config says it`, 2);
        return restoreNodeConfig({ config: o.config, ...(o.json ? { json: true } : {}) }, file);
      }
      return restoreSnapshot({ ...o, dir: o.dir as string }, file);
    });
}

/**
 * `consensus-cli snapshot save <file>`: asks the cluster for its state machine's snapshot and writes it as it
 * arrives, in pieces (snapshot-fetch.ts), to `<file>.part`, renamed to `<file>` once complete and verified.
 * `--timeout` bounds each request: the first (read barrier, taking and hashing the snapshot) and each piece.
 */
export async function saveSnapshot(o: { target: Target; json?: boolean; timeout?: number }, file: string): Promise<void> {
  const timeoutMs = o.timeout ?? SAVE_TIMEOUT_MS;
  const byDefault = o.timeout === undefined;
  const { rpc } = connectAdmin(o.target);
  // The pieces come from the node that took the snapshot (it holds them): a channel to it alone, no redirects.
  let pinned: RpcClient | undefined;
  const ask = (what: string, channel: RpcClient, body: unknown): Promise<unknown> =>
    withDeadline(timeoutMs, { what, byDefault }, (signal) => channel.request(body, { timeoutMs, ...(signal ? { signal } : {}) }));
  const source: SnapshotSource = {
    begin: async () => {
      const first = await ask('snapshot save', rpc, { t: 'admin.snapshot', pieces: true });
      pinned = connectNode(o.target, rpc.preferred).rpc;
      return first;
    },
    read: (id, offset) => ask(`snapshot save (the piece at byte ${offset})`, pinned ?? rpc, { t: 'admin.snapshot.read', id, offset }),
    cancel: (id) => (pinned ?? rpc).request({ t: 'admin.snapshot.cancel', id }, { timeoutMs: 1000 }),
  };
  const progress = !o.json && process.stderr.isTTY === true ? ttyProgress(file) : undefined;
  let saved;
  try {
    saved = await fetchSnapshotToFile(source, file, progress !== undefined ? { onProgress: progress.update } : {});
  } finally {
    progress?.end();
    await Promise.all([rpc.close(), pinned?.close()]);
  }
  const m = saved.meta;
  if (o.json) {
    console.log(JSON.stringify({ file, ...m, bytes: saved.bytes, sha256: saved.sha256 }));
    return;
  }
  console.log(
    `saved ${file}: revision ${m.revision}, ${m.keys} key${m.keys === 1 ? '' : 's'}, applied index ${m.appliedIndex}, ${saved.bytes} bytes ` +
      `(from ${m.nodeId} of cluster ${m.clusterId}); sha256 ${saved.sha256}`,
  );
}

/** `bytes / total` on one terminal line of stderr, redrawn at most every 100 ms, erased at the end. */
function ttyProgress(file: string): { update(received: number, total: number): void; end(): void } {
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  let last = 0;
  // The first piece comes after the read barrier and the node's taking (and hashing) the whole snapshot.
  process.stderr.write(`saving ${file}: the node is taking the snapshot`);
  return {
    update: (received, total) => {
      const now = Date.now();
      if (received < total && now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2Ksaving ${file}: ${mib(received)} / ${mib(total)} MiB`);
    },
    end: () => {
      process.stderr.write('\r\x1b[2K');
    },
  };
}

function describeJson(b: Backup): Record<string, unknown> {
  const { dataBytes, ...meta } = b.meta;
  return { ...meta, dataBytes, bytes: b.bytes, sha256: b.sha256 };
}

/** `consensus-cli snapshot status <file>`: verifies the file and prints its metadata (as `etcdutl snapshot status`). */
export function snapshotStatus(o: { json?: boolean }, file: string): void {
  const b = readBackup(file);
  checkBackupData(b, file);
  if (o.json) {
    console.log(JSON.stringify({ file, ...describeJson(b) }));
    return;
  }
  const m = b.meta;
  const rows: [string, string][] = [
    ['file', file],
    ['format', String(m.format)],
    ['sha256', `${b.sha256} (verified)`],
    ['state machine', m.stateMachine === 'kv' ? 'kv (from nodes that ran kv alone)' : `${m.stateMachine} (the { kv, lock } envelope)`],
    ['size', `${b.bytes} bytes (state-machine snapshot ${m.dataBytes})`],
    ['revision', String(m.revision)],
    ['compacted', String(m.compactRevision)],
    ['keys', String(m.keys)],
    ['applied index', String(m.appliedIndex)],
    ['taken from', `${m.nodeId} of cluster ${m.clusterId} (${m.protocol}, term ${m.term})`],
    ['created', m.createdAt],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

interface RestoreOptions {
  dir?: string;
  nodes?: number;
  protocol?: string;
  port?: number;
  json?: boolean;
}

/**
 * `consensus-cli snapshot restore <file> --dir <new>`: seeds a NEW cluster from a backup, as `etcdutl snapshot
 * restore` does: a new cluster id and a new membership (n1..nN), the same data. Nothing is written until the
 * file verified (checksum, metadata, and the kv snapshot loads); the directory is laid out as `start` lays out a
 * new cluster, so `start --dir <new>` brings it up with its data, and the cluster file is written last: a restore
 * that fails part-way leaves no cluster behind (what it created is removed).
 */
export async function restoreSnapshot(o: RestoreOptions & { dir: string }, file: string): Promise<void> {
  const b = readBackup(file);
  const seed = checkedSeedOf(b, file);
  const protocol = o.protocol ?? (PROTOCOLS.includes(b.meta.protocol) ? b.meta.protocol : 'raft');
  const count = o.nodes ?? 3;
  const base = o.port ?? 7100;
  const cd = new ClusterDir(o.dir);
  const dirExisted = existsSync(cd.dir);
  refuseNonDirectory(cd.dir, '--dir', o.dir);
  if (dirExisted && (cd.exists() || readdirSync(cd.dir).length > 0)) {
    const what = cd.exists() ? 'holds a cluster' : 'is not empty';
    throw new CliError(`${o.dir} ${what}: restore seeds a new cluster and never overwrites one; give a new --dir`);
  }
  const { cluster, configs } = await planCluster({ nodes: count, port: base, protocol });
  const nodes = cluster.nodes;
  const voters = nodes.map((n) => n.id);
  const index = seedIndex(b);
  try {
    for (const config of configs) {
      mkdirSync(cd.nodeDir(config.id), { recursive: true });
      // The same node config `start` writes for a new cluster.
      writeFileSync(cd.configFile(config.id), `${JSON.stringify(config, null, 2)}\n`);
      await seedDataDir(cd.dataDir(config.id), { clusterId: cluster.clusterId, nodeId: config.id }, voters, b, seed);
    }
    cd.write(cluster);
  } catch (e) {
    // Ours alone: the directory did not exist or was empty.
    removeQuietly(() => {
      if (dirExisted) for (const name of readdirSync(cd.dir)) rmSync(resolve(cd.dir, name), { recursive: true, force: true });
      else rmSync(cd.dir, { recursive: true, force: true });
    });
    throw writeFailure(e, o.dir);
  }
  if (o.json) {
    console.log(JSON.stringify({ dir: cd.dir, clusterId: cluster.clusterId, protocol, nodes: voters, index, revision: b.meta.revision, keys: b.meta.keys }));
    return;
  }
  console.log(
    `restored ${file} into ${o.dir}: a new ${nodes.length}-node ${protocol} cluster ${cluster.clusterId}, revision ${b.meta.revision}, ` +
      `${b.meta.keys} key${b.meta.keys === 1 ? '' : 's'}. Start it with: ${hint(`start --dir ${o.dir}`)}`,
  );
}

/**
 * The snapshot's position in the new cluster's log: the index it had (so the kv sessions' log positions stay
 * meaningful), at term 1. Terms are protocol metadata local to a cluster (DESIGN r2: entry identity is index,
 * type and data); no node of the new cluster has voted or promised anything yet, so every protocol's first
 * election starts from nothing and its log continues after the snapshot. etcdutl's restore likewise starts the
 * new raft log at term 1 with the new members. Every member is seeded alike, so their logs agree from the start.
 */
function seedIndex(b: Backup): number {
  return Math.max(1, b.meta.appliedIndex);
}

/**
 * Seeds one node's data directory: it records the new cluster's identity (so the node accepts it as its own)
 * and holds the backup as its installed snapshot, with the new membership as the configuration in force.
 */
async function seedDataDir(dataDir: string, identity: { clusterId: string; nodeId: string }, voters: string[], b: Backup, seed: Uint8Array): Promise<void> {
  const storage = await openFileStorage(dataDir, { logger: silentLogger, identity });
  try {
    // `seed`: the backup as `checkedSeedOf` made it. The new cluster's terms start again at 1: the store's
    // replicated time must not wait for them to pass the term its time was last moved in (no lease would
    // expire until then).
    await storage.installSnapshot({ index: seedIndex(b), term: 1, config: { voters, learners: [] }, data: seed });
  } finally {
    await storage.close();
  }
}

/**
 * `consensus-cli snapshot restore <file> --config <node.json>`: for a cluster deployed by hand (`consensus-cli
 * node --config` on each machine), as `etcdutl snapshot restore --name --initial-cluster --data-dir` is run once
 * per member: seeds the data directory of the node the config describes, with the config's `peers` as the new
 * membership. Run on every member's config with the same backup, then start the nodes. The config must name a
 * cluster id other than the backup's (a restored node that kept the old id could talk to the old cluster's
 * nodes with a log that is not theirs), must not join (a joining node gets its state from the cluster), and its
 * data directory must be new: no stored state and no member record beside it.
 */
export async function restoreNodeConfig(o: { config: string; json?: boolean }, file: string): Promise<void> {
  const b = readBackup(file);
  const seed = checkedSeedOf(b, file);
  const config = readNodeConfig(o.config);
  if (config.clusterId === b.meta.clusterId) {
    throw new CliError(
      `${o.config}: clusterId ${config.clusterId} is the backup's own cluster: a restore seeds a NEW cluster; give every member's config a new clusterId`,
    );
  }
  if (config.join === true) throw new CliError(`${o.config}: a node with "join": true gets its state from the cluster it joins; restore the members the cluster starts with`);
  const dataDir = config.dataDir;
  refuseNonDirectory(dataDir, `the dataDir of ${o.config}`, dataDir);
  if (existsSync(memberRecordPath(dataDir)) || (existsSync(dataDir) && readdirSync(dataDir).length > 0)) {
    throw new CliError(`${dataDir} (the dataDir of ${o.config}) is not new: restore never writes over a node's data; give the node a new data directory`);
  }
  const voters = Object.keys(config.peers).sort();
  const existed = existsSync(dataDir);
  try {
    await seedDataDir(dataDir, { clusterId: config.clusterId, nodeId: config.id }, voters, b, seed);
  } catch (e) {
    removeQuietly(() => {
      if (existed) for (const name of readdirSync(dataDir)) rmSync(resolve(dataDir, name), { recursive: true, force: true });
      else rmSync(dataDir, { recursive: true, force: true });
    });
    throw writeFailure(e, dataDir);
  }
  if (o.json) {
    console.log(JSON.stringify({ dataDir, clusterId: config.clusterId, node: config.id, members: voters, index: seedIndex(b), revision: b.meta.revision, keys: b.meta.keys }));
    return;
  }
  console.log(
    `restored ${file} into ${dataDir}: node ${config.id} of the new cluster ${config.clusterId} (members ${voters.join(', ')}), revision ${b.meta.revision}, ` +
      `${b.meta.keys} key${b.meta.keys === 1 ? '' : 's'}. Restore every member the same way, then start them`,
  );
}

/** A restore target that exists and is not a directory (a file given by mistake): refused before anything is written. */
function refuseNonDirectory(path: string, what: string, shown: string): void {
  let isFile = false;
  try {
    isFile = !statSync(path).isDirectory();
  } catch {
    // absent (or under a file: creating it says so)
  }
  if (isFile) throw new CliError(`${shown} (${what}) is a file, not a directory: restore writes a new directory there; give a new path`);
}

/** Removes what a failed restore made; what cannot be removed stays, and never hides why the restore failed. */
function removeQuietly(remove: () => void): void {
  try {
    remove();
  } catch {
    // e.g. the path runs under a file (ENOTDIR): nothing was made there
  }
}

/** A failed write of a restore (ENOTDIR, EACCES, ENOSPC...) as one line naming the path; other errors as they are. */
function writeFailure(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof CliError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  return new CliError(`cannot write the restored data under ${path} (${code}: ${(e as Error).message})`);
}
