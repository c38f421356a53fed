import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NodeId } from '@consensus-kit/core';
import { isZombie } from '@consensus-kit/storage-fs';
import { CliError } from './errors';

/** One node of a local cluster, as recorded in `<dir>/cluster.json`. */
export interface ClusterNode {
  id: NodeId;
  host: string;
  /** Peer and client port. */
  port: number;
  /** /health, /metrics, /status. */
  httpPort: number;
}

/** `<dir>/cluster.json`: how every command finds the cluster started in `<dir>`. */
export interface ClusterFile {
  version: 1;
  clusterId: string;
  protocol: string;
  nodes: ClusterNode[];
}

export const CLUSTER_FILE = 'cluster.json';

/** A node id the CLI accepts: it names the node's directory, so it cannot be `.`, `..` or hidden. */
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class ClusterDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get file(): string {
    return join(this.dir, CLUSTER_FILE);
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  nodeDir(id: NodeId): string {
    return join(this.dir, id);
  }

  configFile(id: NodeId): string {
    return join(this.dir, id, 'node.json');
  }

  pidFile(id: NodeId): string {
    return join(this.dir, id, 'node.pid');
  }

  logFile(id: NodeId): string {
    return join(this.dir, id, 'node.log');
  }

  dataDir(id: NodeId): string {
    return join(this.dir, id, 'data');
  }

  /** The cluster recorded here; a `CliError` when there is none or it is unreadable. */
  read(): ClusterFile {
    if (!this.exists()) throw new CliError(`no cluster in ${this.dir} (run \`consensus-cli start --dir ${this.dir}\` first)`);
    let c: ClusterFile;
    try {
      c = JSON.parse(readFileSync(this.file, 'utf8')) as ClusterFile;
    } catch (e) {
      throw new CliError(`${this.file} is not a readable cluster file: ${(e as Error).message}`);
    }
    if (c?.version !== 1 || !Array.isArray(c.nodes) || typeof c.clusterId !== 'string') throw new CliError(`${this.file} is not a cluster file of this version`);
    const bad = (why: string) => new CliError(`${this.file}: ${why}`);
    if (c.nodes.length === 0) throw bad('it lists no nodes');
    const seen = new Set<string>();
    const ports = new Map<string, string>();
    for (const n of c.nodes) {
      if (typeof n?.id !== 'string' || !NODE_ID.test(n.id)) throw bad(`node id ${JSON.stringify(n?.id)} is not valid`);
      if (seen.has(n.id)) throw bad(`node ${n.id} is listed twice`);
      seen.add(n.id);
      for (const port of [n.port, n.httpPort]) {
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`node ${n.id} has an invalid port ${JSON.stringify(port)}`);
        const at = `${n.host}:${port}`;
        const other = ports.get(at);
        if (other !== undefined) throw bad(`nodes ${other} and ${n.id} both use ${at}`);
        ports.set(at, n.id);
      }
    }
    return c;
  }

  /**
   * Records `id`'s address (or, with `undefined`, forgets it) in the `peers` of each listed node's config
   * file, so a node restarted later still reaches a member added after it was provisioned. Returns the nodes
   * whose config could not be updated, with why.
   */
  setPeerAddress(nodes: readonly NodeId[], id: NodeId, address: string | undefined): string[] {
    const failed: string[] = [];
    for (const node of nodes) {
      const file = this.configFile(node);
      try {
        const config = JSON.parse(readFileSync(file, 'utf8')) as { peers?: Record<string, string>; initialMembers?: string[]; join?: boolean };
        const peers = { ...(config.peers ?? {}) };
        // `peers` is an address book from here on: the voters the node boots with while its log holds no
        // configuration are frozen first, so an address written for a member whose addition has not committed
        // (or whose removal has not) never changes who votes after a restart.
        const initialMembers = config.initialMembers ?? (config.join === true ? undefined : Object.keys(peers));
        if (address === undefined) delete peers[id];
        else peers[id] = address;
        const tmp = `${file}.tmp`;
        writeFileSync(tmp, `${JSON.stringify({ ...config, peers, ...(initialMembers !== undefined ? { initialMembers } : {}) }, null, 2)}\n`);
        renameSync(tmp, file);
      } catch (e) {
        failed.push(`${node} (${file}: ${(e as Error).message})`);
      }
    }
    return failed;
  }

  write(c: ClusterFile): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(c, null, 2)}\n`);
    renameSync(tmp, this.file);
  }

  node(c: ClusterFile, id: string): ClusterNode {
    const n = c.nodes.find((x) => x.id === id);
    if (n === undefined) throw new CliError(`no node ${JSON.stringify(id)} in this cluster (nodes: ${c.nodes.map((x) => x.id).join(', ')})`, 2);
    return n;
  }

  /**
   * The pid recorded for a node, if that process is alive and runs this node's config. A pid file outlives a
   * node that crashed or was killed outside the CLI, and the system then gives its pid to another process:
   * that one must not be reported as the node, nor signalled by `stop`, `kill` or `restart`.
   */
  livePid(id: NodeId): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidFile(id), 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return runsConfig(pid, this.configFile(id)) ? pid : undefined;
  }
}

/** Whether a process with this id exists (signal 0 probes without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A node that was killed but not yet reaped by its parent is gone all the same.
  return !isZombie(pid);
}

/**
 * Whether process `pid` exists and runs `consensus-cli node --config <configFile>`. Its arguments come from
 * /proc on Linux and from `ps` on other Unix systems; where neither can be read (Windows), the pid alone decides.
 */
export function runsConfig(pid: number, configFile: string): boolean {
  if (!alive(pid)) return false;
  if (process.platform === 'win32') return true;
  if (process.platform === 'linux') {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return false; // gone since the probe above
    }
    const at = args.indexOf('--config');
    const given = args[at + 1];
    if (at < 0 || given === undefined) return false;
    if (given === configFile) return true;
    const real = realPath(given);
    return real !== undefined && real === realPath(configFile);
  }
  const ps = spawnSync('ps', ['-ww', '-o', 'command=', '-p', String(pid)], { encoding: 'utf8', timeout: 2000 });
  if (ps.error !== undefined) return true;
  return ps.status === 0 && [configFile, realPath(configFile)].some((f) => f !== undefined && ps.stdout.includes(`--config ${f}`));
}

/** The path with symlinks resolved (the same directory can be named through a link), if it exists. */
function realPath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export function endpointsOf(c: ClusterFile): string[] {
  return c.nodes.map((n) => `${n.host}:${n.port}`);
}
