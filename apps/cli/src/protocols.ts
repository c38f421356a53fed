import { ConfigError, isConsensusError, type AnyProtocolModule } from '@consensus-kit/core';
import { CliError } from './errors';

/**
 * Protocol packages by name: `start --protocol`, `bench --protocol` and a node config's `protocol` pick from
 * these, and nothing else in the CLI knows one protocol from another. Registering a protocol is one line:
 *
 *   paxos: () => import('@consensus-kit/paxos').then((m) => m.paxos),
 *
 * (plus the package in this app's dependencies). A module is loaded only when a node or a check needs it.
 */
const loaders = {
  raft: () => import('@consensus-kit/raft').then((m) => m.raft),
  paxos: () => import('@consensus-kit/paxos').then((m) => m.paxos),
  zab: () => import('@consensus-kit/zab').then((m) => m.zab),
} satisfies Record<string, () => Promise<AnyProtocolModule>>;

export const PROTOCOLS: readonly string[] = Object.keys(loaders);

export async function loadProtocol(name: string): Promise<AnyProtocolModule> {
  const load = Object.hasOwn(loaders, name) ? loaders[name as keyof typeof loaders] : undefined;
  if (load === undefined) throw new CliError(`unknown protocol ${JSON.stringify(name)} (available: ${PROTOCOLS.join(', ')})`, 2);
  return load();
}

/**
 * Checks protocol options (a node config's `protocolOptions`, `--protocol-option` flags) with the protocol's
 * own `parseOptions`, before anything starts: an unknown or misspelt option is refused with a message naming
 * it (and the closest known name), never ignored. Returns the options as the protocol typed them.
 * `where` says where they came from; a problem is a `ConfigError` saying `<where>: <what is wrong>`.
 */
export async function checkProtocolOptions(name: string, raw: unknown, where: string): Promise<Record<string, unknown>> {
  const module = await loadProtocol(name);
  try {
    return module.parseOptions(raw ?? {}) as Record<string, unknown>;
  } catch (e) {
    if (isConsensusError(e)) throw new ConfigError(`${where}: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * Parses one `--protocol-option key=value` flag into `into`: the value is JSON when it parses as JSON
 * (`preVote=false`, `maxInflightMsgs=64`), else the text itself (`readOnly=lease`). Repeatable; a later flag
 * for the same key wins.
 */
export function parseProtocolOptionFlag(flag: string, into: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = flag.indexOf('=');
  const key = eq < 0 ? '' : flag.slice(0, eq).trim();
  if (key === '') throw new CliError(`--protocol-option takes key=value (a JSON value, or text), got ${JSON.stringify(flag)}`, 2);
  const text = flag.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  return { ...into, [key]: value };
}

/** `--protocol-option` flags checked like `checkProtocolOptions`, refused as a usage error (exit code 2). */
export async function checkProtocolOptionFlags(name: string, options: Record<string, unknown> | undefined): Promise<void> {
  if (options === undefined) return;
  try {
    await checkProtocolOptions(name, options, '--protocol-option');
  } catch (e) {
    if (ConfigError.is(e)) throw new CliError(e.message, 2);
    throw e;
  }
}
