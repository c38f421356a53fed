import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { silentLogger } from '@consensus-kit/core/host';
import { openFileStorage } from '@consensus-kit/storage-fs';
import { checkBackupData, checkNodeSnapshot, encodeBackup, readBackup, writeFileDurably, type Backup } from '../backup';
import { ClusterDir, type ClusterFile } from '../cluster-file';
import type { NodeConfig } from '../config';
import { connectAdmin } from '../connect';
import { withDeadline } from '../deadline';
import { CliError } from '../errors';
import { hint } from '../invocation';
import type { CliKit } from '../kit';
import { PROTOCOLS } from '../protocols';
import { checkPortsFree } from '../supervisor';
import type { Target } from '../target';

/** `snapshot save`'s deadline without `--timeout`. */
const SAVE_TIMEOUT_MS = 30_000;
const HOST = '127.0.0.1';

/** Registers the `snapshot` commands: save (from a running cluster), status (of a file), restore (into a new cluster). */
export function registerSnapshotCommands(program: Command, kit: CliKit): void {
  const snapshot = program.command('snapshot').description('back a cluster up to a file, and seed a new cluster from one (as etcdctl/etcdutl snapshot)');

  const save = snapshot
    .command('save <file>')
    .description("write the kv store of a running cluster to <file> (after a read barrier: at least as new as every acknowledged write), with a SHA-256")
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
    .requiredOption('--dir <path>', 'the new cluster directory (must not exist, or be empty)')
    .addOption(new Option('--nodes <n>', 'number of nodes').default(3).argParser(kit.intArg('--nodes', 1, 9)))
    .addOption(new Option('--protocol <name>', 'consensus protocol (default: the one the backup was taken from)').choices(PROTOCOLS))
    .addOption(new Option('--port <port>', 'base port: node i listens on port+i, its http on port+100+i').default(7100).argParser(kit.intArg('--port', 1024, 65000)))
    .addOption(kit.json())
    .action((file: string, o: RestoreOptions) => restoreSnapshot(o, file));
}

/** `consensus-cli snapshot save <file>`: asks the cluster for its state machine's snapshot and writes it atomically. */
export async function saveSnapshot(o: { target: Target; json?: boolean; timeout?: number }, file: string): Promise<void> {
  const timeoutMs = o.timeout ?? SAVE_TIMEOUT_MS;
  const { rpc } = connectAdmin(o.target);
  let answer: unknown;
  try {
    answer = await withDeadline(timeoutMs, { what: 'snapshot save', byDefault: o.timeout === undefined }, (signal) =>
      rpc.request({ t: 'admin.snapshot' }, { timeoutMs, ...(signal ? { signal } : {}) }),
    );
  } finally {
    await rpc.close();
  }
  const s = checkNodeSnapshot(answer);
  const { data, ...rest } = s;
  const bytes = encodeBackup({ stateMachine: 'kv', createdAt: new Date().toISOString(), ...rest }, data);
  writeFileDurably(file, bytes);
  const b = readBackup(file);
  if (o.json) {
    console.log(JSON.stringify({ file, ...describeJson(b) }));
    return;
  }
  console.log(
    `saved ${file}: revision ${s.revision}, ${s.keys} key${s.keys === 1 ? '' : 's'}, applied index ${s.appliedIndex}, ${b.bytes} bytes ` +
      `(from ${s.nodeId} of cluster ${s.clusterId}); sha256 ${b.sha256}`,
  );
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
    ['size', `${b.bytes} bytes (kv snapshot ${m.dataBytes})`],
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
  dir: string;
  nodes: number;
  protocol?: string;
  port: number;
  json?: boolean;
}

/**
 * `consensus-cli snapshot restore <file> --dir <new>`: seeds a NEW cluster from a backup, as `etcdutl snapshot
 * restore` does: a new cluster id and a new membership (n1..nN), the same data. Nothing is written until the
 * file verified (checksum, metadata, and the kv snapshot loads); the directory is laid out as `start` lays out a
 * new cluster, so `start --dir <new>` brings it up with its data, and the cluster file is written last: a restore
 * that fails part-way leaves no cluster behind (what it created is removed).
 */
export async function restoreSnapshot(o: RestoreOptions, file: string): Promise<void> {
  const b = readBackup(file);
  checkBackupData(b, file);
  const protocol = o.protocol ?? (PROTOCOLS.includes(b.meta.protocol) ? b.meta.protocol : 'raft');
  const cd = new ClusterDir(o.dir);
  const dirExisted = existsSync(cd.dir);
  if (dirExisted && (cd.exists() || readdirSync(cd.dir).length > 0)) {
    const what = cd.exists() ? 'holds a cluster' : 'is not empty';
    throw new CliError(`${o.dir} ${what}: restore seeds a new cluster and never overwrites one; give a new --dir`);
  }
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({ id: `n${i + 1}`, host: HOST, port: o.port + i + 1, httpPort: o.port + 100 + i + 1 }));
  if (nodes.some((n) => n.httpPort > 65535)) throw new CliError(`--port ${o.port} leaves no room for ${o.nodes} nodes`, 2);
  await checkPortsFree(HOST, nodes.flatMap((n) => [n.port, n.httpPort]));
  const cluster: ClusterFile = { version: 1, clusterId: `local-${randomBytes(4).toString('hex')}`, protocol, nodes };
  const peers = Object.fromEntries(nodes.map((n) => [n.id, `${n.host}:${n.port}`]));
  const voters = nodes.map((n) => n.id);
  // The snapshot's position in the new log: the index it had (so the kv sessions' log positions stay
  // meaningful), at term 1. Terms are protocol metadata local to a cluster (DESIGN r2: entry identity is index,
  // type and data); no node of the new cluster has voted or promised anything yet, so every protocol's first
  // election starts from nothing and its log continues after the snapshot. etcdutl's restore likewise starts
  // the new raft log at term 1 with the new members.
  const index = Math.max(1, b.meta.appliedIndex);
  try {
    for (const n of nodes) {
      mkdirSync(cd.nodeDir(n.id), { recursive: true });
      // The same node config `start` writes for a new cluster.
      const config: NodeConfig = {
        clusterId: cluster.clusterId,
        id: n.id,
        protocol,
        dataDir: './data',
        listen: { host: n.host, port: n.port },
        http: { host: n.host, port: n.httpPort },
        peers,
        tickMs: 50,
        electionTicks: 10,
        heartbeatTicks: 1,
        admin: true,
      };
      writeFileSync(cd.configFile(n.id), `${JSON.stringify(config, null, 2)}\n`);
      // The data directory records the new cluster's identity (so the node accepts it as its own) and holds the
      // backup as its installed snapshot, with the new membership as the configuration in force.
      const storage = await openFileStorage(cd.dataDir(n.id), { logger: silentLogger, identity: { clusterId: cluster.clusterId, nodeId: n.id } });
      try {
        await storage.installSnapshot({ index, term: 1, config: { voters, learners: [] }, data: b.data });
      } finally {
        await storage.close();
      }
    }
    cd.write(cluster);
  } catch (e) {
    // Ours alone: the directory did not exist or was empty.
    if (dirExisted) for (const name of readdirSync(cd.dir)) rmSync(resolve(cd.dir, name), { recursive: true, force: true });
    else rmSync(cd.dir, { recursive: true, force: true });
    throw e;
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
