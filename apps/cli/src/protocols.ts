import type { ProtocolModule } from '@consensus-kit/core';
import { CliError } from './errors';

/**
 * Protocol packages by name. The node loads the one its config names, so another protocol plugs in here
 * without touching anything else in the CLI.
 */
const loaders: Record<string, () => Promise<ProtocolModule>> = {
  raft: async () => (await import('@consensus-kit/raft')).raft,
};

export const PROTOCOLS = Object.keys(loaders);

export async function loadProtocol(name: string): Promise<ProtocolModule> {
  const load = loaders[name];
  if (load === undefined) throw new CliError(`unknown protocol ${JSON.stringify(name)} (available: ${PROTOCOLS.join(', ')})`, 2);
  return load();
}
