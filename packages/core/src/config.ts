import { pack, unpack } from 'msgpackr';
import { ConfigError, MalformedMessageError } from './errors';
import type { ClusterConfig, ConfigChange, NodeId } from './types';
import { assertNodeId } from './validate';

/** Encodes a configuration as the data of a `config` log entry. */
export function encodeClusterConfig(config: ClusterConfig): Uint8Array {
  const wire: { v: NodeId[]; l: NodeId[]; o?: NodeId[] } = { v: config.voters, l: config.learners };
  if (config.outgoing !== undefined) wire.o = config.outgoing;
  return pack(wire);
}

/** Decodes a `config` entry's data. Throws `MalformedMessageError` on anything that is not a configuration. */
export function decodeClusterConfig(data: Uint8Array): ClusterConfig {
  let wire: unknown;
  try {
    wire = unpack(data);
  } catch (cause) {
    throw new MalformedMessageError('config entry is not valid msgpack', { cause });
  }
  if (typeof wire !== 'object' || wire === null) throw new MalformedMessageError('config entry is not a map');
  const w = wire as { v?: unknown; l?: unknown; o?: unknown };
  const voters = idList(w.v, 'voters');
  const learners = w.l === undefined ? [] : idList(w.l, 'learners');
  const config: ClusterConfig = { voters, learners };
  if (w.o !== undefined) config.outgoing = idList(w.o, 'outgoing');
  return config;
}

function idList(value: unknown, what: string): NodeId[] {
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'string' && x.length > 0)) {
    throw new MalformedMessageError(`config entry ${what} is not a list of node ids`);
  }
  return value as NodeId[];
}

export function isJoint(config: ClusterConfig): boolean {
  return config.outgoing !== undefined;
}

/** Every node that receives the log: voters (both halves of a joint config) and learners, sorted. */
export function configMembers(config: ClusterConfig): NodeId[] {
  return [...new Set([...config.voters, ...(config.outgoing ?? []), ...config.learners])].sort();
}

/** Whether `id` votes in `config` (in either half of a joint configuration). */
export function isVoter(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id) || (config.outgoing?.includes(id) ?? false);
}

export function configsEqual(a: ClusterConfig, b: ClusterConfig): boolean {
  const same = (x: readonly NodeId[] | undefined, y: readonly NodeId[] | undefined) => {
    if (x === undefined || y === undefined) return x === y;
    // Compared as sets, both ways: ['a', 'b'] and ['a', 'a'] differ whichever comes first.
    const sx = new Set(x);
    const sy = new Set(y);
    return sx.size === sy.size && [...sy].every((id) => sx.has(id));
  };
  return same(a.voters, b.voters) && same(a.learners, b.learners) && same(a.outgoing, b.outgoing);
}

/**
 * The configuration a change leads to, as a plain target (never joint: whether and how to get there in steps,
 * e.g. Raft's joint consensus, is the protocol's policy, not core's). Throws `ConfigError` for changes that make no sense: removing a
 * non-member, adding an existing voter, listing a node twice, or leaving no voter.
 */
export function applyConfigChange(current: ClusterConfig, change: ConfigChange): ClusterConfig {
  if (isJoint(current)) throw new ConfigError('a membership change is already in progress (joint configuration)');
  if (typeof change !== 'object' || change === null || !Array.isArray(change.changes) || change.changes.length === 0) {
    throw new ConfigError('a config change needs a non-empty `changes` list');
  }
  const voters = new Set(current.voters);
  const learners = new Set(current.learners);
  const touched = new Set<NodeId>();
  for (const c of change.changes) {
    assertNodeId(c?.node, 'config change node');
    if (touched.has(c.node)) throw new ConfigError(`config change lists ${c.node} more than once`);
    touched.add(c.node);
    switch (c.op) {
      case 'addVoter':
        if (voters.has(c.node)) throw new ConfigError(`${c.node} is already a voter`);
        learners.delete(c.node);
        voters.add(c.node);
        break;
      case 'addLearner':
        if (learners.has(c.node)) throw new ConfigError(`${c.node} is already a learner`);
        voters.delete(c.node);
        learners.add(c.node);
        break;
      case 'remove':
        if (!voters.has(c.node) && !learners.has(c.node)) throw new ConfigError(`${c.node} is not a member`);
        voters.delete(c.node);
        learners.delete(c.node);
        break;
      default:
        throw new ConfigError(`unknown config change op ${JSON.stringify((c as { op?: unknown }).op)}`);
    }
  }
  if (voters.size === 0) throw new ConfigError('a configuration needs at least one voter');
  return { voters: [...voters].sort(), learners: [...learners].sort() };
}
