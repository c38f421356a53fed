import { readFileSync } from 'node:fs';
import type { TlsOptions } from '@consensus-kit/transport-tcp';
import { readNodeConfig } from './config';
import { ClusterDir, endpointsOf, type ClusterFile } from './cluster-file';
import { CliError } from './errors';

/** The directory client commands use when no cluster is named (as `start`'s default). */
export const DEFAULT_DIR = '.consensus';

/** The environment variables client commands read, each the same as its flag (a flag wins over it). */
export const TARGET_ENV = {
  dir: 'CONSENSUS_DIR',
  endpoints: 'CONSENSUS_ENDPOINTS',
  clusterId: 'CONSENSUS_CLUSTER_ID',
  secret: 'CONSENSUS_SECRET',
  cacert: 'CONSENSUS_CACERT',
  cert: 'CONSENSUS_CERT',
  key: 'CONSENSUS_KEY',
} as const;

/** Where a value came from, as commander reports it: a flag, the environment, or the default. */
export type ValueSource = 'cli' | 'env' | 'default' | undefined;

/** What the user said about the cluster to reach: flags and `CONSENSUS_*` values with their sources. */
export interface TargetOptions {
  dir?: string | undefined;
  endpoints?: string | undefined;
  clusterId?: string | undefined;
  secret?: string | undefined;
  secretFile?: string | undefined;
  /** TLS: the CA file that signed the nodes' certificates (turns TLS on). */
  cacert?: string | undefined;
  /** TLS: this client's certificate and key files, for nodes that require mutual TLS (turns TLS on). */
  cert?: string | undefined;
  key?: string | undefined;
  /** TLS: the name to check the nodes' certificates against, when it is not the endpoint's host. */
  tlsServername?: string | undefined;
}

export type TargetSources = Partial<Record<keyof TargetOptions, ValueSource>>;

/**
 * The cluster a client command talks to: one the CLI started (`dir`: its cluster file names the nodes and the
 * processes), or any cluster reachable at `endpoints` under `clusterId` (remote: nodes started with
 * `consensus-cli node --config` on other machines).
 */
export type Target =
  | { kind: 'dir'; dir: string; clusterId: string; endpoints: string[]; secret?: string; tls?: TlsOptions }
  | { kind: 'remote'; clusterId: string; endpoints: string[]; secret?: string; tls?: TlsOptions };

/** A cluster-id as the config accepts it: any non-empty string without whitespace. */
const CLUSTER_ID = /^\S{1,256}$/;

/** `host:port` or `[v6]:port`, port 1-65535. */
function parseEndpoints(text: string, from: string): string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new CliError(`${from} names no endpoint: give host:port[,host:port...]`, 2);
  for (const e of list) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(e);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || !(port >= 1 && port <= 65535)) throw new CliError(`${from}: ${JSON.stringify(e)} is not host:port`, 2);
  }
  return [...new Set(list)];
}

const named = (key: keyof typeof TARGET_ENV | 'secretFile', source: ValueSource): string => {
  const flag = {
    dir: '--dir',
    endpoints: '--endpoints',
    clusterId: '--cluster-id',
    secret: '--secret',
    secretFile: '--secret-file',
    cacert: '--cacert',
    cert: '--cert',
    key: '--key',
  }[key];
  return source === 'env' && key !== 'secretFile' ? TARGET_ENV[key] : flag;
};

/** The secret given by `--secret`, `--secret-file` or `CONSENSUS_SECRET` (a flag wins), if any. */
function secretOf(o: TargetOptions, src: TargetSources): string | undefined {
  const fromFlag = src.secret === 'cli' ? o.secret : undefined;
  if (fromFlag !== undefined && o.secretFile !== undefined) throw new CliError('give the secret once: --secret or --secret-file, not both', 2);
  let secret: string | undefined;
  if (o.secretFile !== undefined) {
    try {
      // A file written by `echo` ends with a newline that is not part of the secret.
      secret = readFileSync(o.secretFile, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new CliError(`cannot read --secret-file ${o.secretFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
    }
  } else secret = o.secret;
  if (secret === undefined) return undefined;
  // The node config requires 8 characters: a shorter one cannot be any node's secret.
  if (secret.length < 8) {
    const from = o.secretFile !== undefined ? `--secret-file ${o.secretFile}` : named('secret', src.secret);
    throw new CliError(`the secret from ${from} is shorter than 8 characters, so no node can have it (a node's "secret" is at least 8)`, 2);
  }
  return secret;
}

/** The secret in the node configs of a cluster the CLI started, when they have one. */
function configSecret(cd: ClusterDir, cluster: ClusterFile): string | undefined {
  for (const n of cluster.nodes) {
    try {
      const s = readNodeConfig(cd.configFile(n.id)).secret;
      if (s !== undefined) return s;
    } catch {
      // an unreadable config is `start`'s and `node`'s to report
    }
  }
  return undefined;
}

/**
 * TLS for the client connections, from `--cacert`, `--cert`/`--key` and `--tls-servername` (PEM files read here):
 * on when a CA or a client certificate is given, off otherwise (the nodes' listeners speak TLS only when their
 * transport was given TLS material).
 */
function tlsOf(o: TargetOptions, src: TargetSources): TlsOptions | undefined {
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw new CliError(`${named(o.cert === undefined ? 'key' : 'cert', o.cert === undefined ? src.key : src.cert)} needs ${o.cert === undefined ? '--cert' : '--key'} too (a client certificate and its key)`, 2);
  }
  if (o.cacert === undefined && o.cert === undefined) {
    if (o.tlsServername !== undefined) throw new CliError('--tls-servername applies to TLS: give --cacert (or --cert and --key) too', 2);
    return undefined;
  }
  const read = (file: string, key: 'cacert' | 'cert' | 'key') => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${named(key, src[key])} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
    }
  };
  return {
    ...(o.cacert !== undefined ? { ca: read(o.cacert, 'cacert') } : {}),
    ...(o.cert !== undefined && o.key !== undefined ? { cert: read(o.cert, 'cert'), key: read(o.key, 'key') } : {}),
    ...(o.tlsServername !== undefined ? { servername: o.tlsServername } : {}),
  };
}

const rank = (s: ValueSource): number => (s === 'cli' ? 2 : s === 'env' ? 1 : 0);

/**
 * Resolves flags and environment into the cluster to reach. Each value: its flag, else its `CONSENSUS_*`
 * variable, else (the directory only) `.consensus`. Endpoints and a directory given at the same level (both
 * flags, or both variables) must agree (the directory's cluster file has that cluster id and lists every
 * endpoint); given at different levels, the flag wins and the variable is ignored. A cluster id given with a
 * directory must be the directory's.
 */
export function resolveTarget(o: TargetOptions, src: TargetSources): Target {
  const secret = secretOf(o, src);
  const tls = tlsOf(o, src);
  const withTls = tls !== undefined ? { tls } : {};
  const endpointsGiven = o.endpoints !== undefined && rank(src.endpoints) > 0;
  const dirLevel = o.dir !== undefined ? rank(src.dir) : 0;
  const useEndpoints = endpointsGiven && rank(src.endpoints) >= dirLevel;
  const clusterId = o.clusterId !== undefined && rank(src.clusterId) > 0 ? o.clusterId : undefined;
  if (clusterId !== undefined && !CLUSTER_ID.test(clusterId)) throw new CliError(`${named('clusterId', src.clusterId)} must be a cluster id without spaces`, 2);

  if (useEndpoints) {
    const from = named('endpoints', src.endpoints);
    const endpoints = parseEndpoints(o.endpoints as string, from);
    if (clusterId === undefined) {
      throw new CliError(`${from} needs the cluster's id too: --cluster-id <id> or ${TARGET_ENV.clusterId} (the "clusterId" of the nodes' configs)`, 2);
    }
    if (dirLevel === rank(src.endpoints)) {
      // Both at the same level: they must name the same cluster.
      const cd = new ClusterDir(o.dir as string);
      const cluster = readForAgreement(cd, named('dir', src.dir), from);
      const known = endpointsOf(cluster);
      const foreign = endpoints.filter((e) => !known.includes(e));
      if (cluster.clusterId !== clusterId || foreign.length > 0) {
        const why =
          cluster.clusterId !== clusterId
            ? `${named('dir', src.dir)} ${o.dir} holds cluster ${cluster.clusterId}, not ${clusterId}`
            : `${foreign.join(', ')} ${foreign.length === 1 ? 'is' : 'are'} not a node of the cluster in ${o.dir} (${known.join(', ')})`;
        throw new CliError(`${named('dir', src.dir)} and ${from} disagree: ${why}. Give one of them`, 2);
      }
    }
    return { kind: 'remote', clusterId, endpoints, ...(secret !== undefined ? { secret } : {}), ...withTls };
  }

  const dir = o.dir ?? DEFAULT_DIR;
  const cd = new ClusterDir(dir);
  if (!cd.exists()) {
    const how = `--endpoints host:port,... with --cluster-id <id> (or ${TARGET_ENV.endpoints} and ${TARGET_ENV.clusterId})`;
    if (dirLevel === 0) throw new CliError(`no cluster given: no cluster was started in ${DEFAULT_DIR} (the default --dir); pass --dir <path> of a cluster started with \`consensus-cli start\`, or ${how}`, 2);
    throw new CliError(`no cluster in ${cd.dir} (run \`consensus-cli start --dir ${dir}\` first, or reach a running cluster with ${how})`);
  }
  const cluster = cd.read();
  if (clusterId !== undefined && rank(src.clusterId) >= dirLevel && clusterId !== cluster.clusterId) {
    throw new CliError(`${named('dir', src.dir)} and ${named('clusterId', src.clusterId)} disagree: ${cd.dir} holds cluster ${cluster.clusterId}, not ${clusterId}`, 2);
  }
  // The nodes' configs say whether they have a secret: a CONSENSUS_SECRET or CONSENSUS_CACERT exported for a
  // remote cluster must not break the local one (a dialer with a secret is refused by a node without one). A
  // flag still applies.
  const s = configSecret(cd, cluster) ?? (src.secret === 'cli' || o.secretFile !== undefined ? secret : undefined);
  const tlsFlag = tls !== undefined && (['cacert', 'cert', 'key'] as const).some((k) => src[k] === 'cli');
  return {
    kind: 'dir',
    dir,
    clusterId: cluster.clusterId,
    endpoints: endpointsOf(cluster),
    ...(s !== undefined ? { secret: s } : {}),
    ...(tlsFlag ? { tls } : {}),
  };
}

function readForAgreement(cd: ClusterDir, dirFrom: string, endpointsFrom: string): ClusterFile {
  if (!cd.exists()) throw new CliError(`${dirFrom} and ${endpointsFrom} both name a cluster, and there is no cluster in ${cd.dir}: give one of them`, 2);
  return cd.read();
}

/** The directory of a command that manages processes the CLI started (start, stop, members add...). */
export function requireDir(t: Target, what: string): string {
  if (t.kind === 'dir') return t.dir;
  throw new CliError(`${what} manages the node processes of a cluster the CLI started: it needs --dir (or ${TARGET_ENV.dir}), not --endpoints`, 2);
}

/** The target of a command that manages a cluster the CLI started in `dir` (the secret from its configs). */
export function dirTarget(dir: string): Target {
  return resolveTarget({ dir }, { dir: 'cli' });
}
