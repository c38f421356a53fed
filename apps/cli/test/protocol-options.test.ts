import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../src/config';
import { PROTOCOLS, checkProtocolOptions, parseProtocolOptionFlag } from '../src/protocols';
import { cleanup, cli, tempDir } from './helpers';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await cleanup(d);
});

function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

/** A node config as `start` writes it, with `extra` fields. */
function nodeConfig(d: string, extra: Record<string, unknown>): string {
  const file = join(d, 'n1', 'node.json');
  mkdirSync(join(d, 'n1'), { recursive: true });
  const config = {
    clusterId: 'local-test',
    id: 'n1',
    protocol: 'raft',
    dataDir: './data',
    listen: { host: '127.0.0.1', port: 1 },
    http: { host: '127.0.0.1', port: 1 },
    peers: { n1: '127.0.0.1:1' },
    ...extra,
  };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

describe('protocol options through the CLI (typed, checked by the protocol before anything starts)', () => {
  it('every registered protocol loads and checks its options', async () => {
    expect(PROTOCOLS).toContain('raft');
    for (const name of PROTOCOLS) expect(await checkProtocolOptions(name, {}, 'test')).toEqual({});
    expect(await checkProtocolOptions('raft', { preVote: false }, 'test')).toEqual({ preVote: false });
  });

  it('--protocol-option takes key=value, the value as JSON when it parses, else as text', () => {
    let o = parseProtocolOptionFlag('preVote=false');
    o = parseProtocolOptionFlag('maxInflightMsgs=64', o);
    o = parseProtocolOptionFlag('readOnly=lease', o);
    o = parseProtocolOptionFlag('preVote=true', o);
    expect(o).toEqual({ preVote: true, maxInflightMsgs: 64, readOnly: 'lease' });
    expect(() => parseProtocolOptionFlag('preVote')).toThrow(/key=value/);
    expect(() => parseProtocolOptionFlag('=1')).toThrow(/key=value/);
  });

  it('start with a misspelt --protocol-option is a usage error naming it, and writes nothing', async () => {
    const d = dir();
    const r = await cli('start', '--dir', d, '--detach', '--protocol-option', 'prevote=false');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/unknown raft option "prevote" \(did you mean "preVote"\?\)/);
    expect(existsSync(join(d, 'cluster.json'))).toBe(false);
    expect(existsSync(join(d, 'n1'))).toBe(false);

    const typed = await cli('start', '--dir', d, '--detach', '--protocol-option', 'preVote=maybe');
    expect(typed.code).toBe(2);
    expect(typed.err).toMatch(/preVote must be true or false/);

    const shape = await cli('start', '--dir', d, '--detach', '--protocol-option', 'preVote');
    expect(shape.code).toBe(2);
    expect(existsSync(join(d, 'cluster.json'))).toBe(false);
  });

  it('bench with a misspelt --protocol-option fails before a temporary cluster starts', async () => {
    const r = await cli('bench', '--temp', '--duration', '1s', '--protocol-option', 'checkQuorom=true');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown raft option "checkQuorom" \(did you mean "checkQuorum"\?\)/);
  });

  it('a node.json with a misspelt protocol option is refused, naming the file and the option, before the node starts', async () => {
    const d = dir();
    const file = nodeConfig(d, { protocolOptions: { preVot: true } });
    const r = await cli('node', '--config', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(file);
    expect(r.err).toMatch(/unknown raft option "preVot" \(did you mean "preVote"\?\)/);
    // Nothing started: no data directory was created.
    expect(existsSync(join(d, 'n1', 'data'))).toBe(false);
  });

  it('node.json takes protocolOptions as an object', () => {
    const ok = parseNodeConfig(readFileSync(nodeConfig(dir(), { protocolOptions: { preVote: false } }), 'utf8'), 'node.json');
    expect(ok.protocolOptions).toEqual({ preVote: false });
    expect(() => parseNodeConfig(readFileSync(nodeConfig(dir(), { protocolOptions: [1] }), 'utf8'), 'node.json')).toThrow(/protocolOptions must be an object/);
  });
});
