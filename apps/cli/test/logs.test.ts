import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '@consensus-kit/core';
import { consoleLogger } from '@consensus-kit/core/host';
import { ClusterDir } from '../src/cluster-file';
import { createNodeLogger, resolveLogOptions } from '../src/logger';
import { readableLogLine } from '../src/supervisor';
import { cleanup, cli, freeBase, leaderOf, tempDir, useSourceNodes } from './helpers';

useSourceNodes();

const ENV = ['CONSENSUS_LOG_FORMAT', 'CONSENSUS_LOG_LEVEL'] as const;
const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
function restoreEnv(): void {
  for (const k of ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
}

/** What `fn` writes to stderr. */
function stderrOf(fn: () => void): string {
  let err = '';
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    fn();
  } finally {
    write.mockRestore();
  }
  return err;
}

describe('text logs', () => {
  afterEach(restoreEnv);

  it('quote values logfmt-style: with a space, a quote, an = or nothing; plain words stay bare', () => {
    for (const k of ENV) delete process.env[k];
    const line = stderrOf(() =>
      consoleLogger('n1').warn('connection to peer lost', { peer: 'n2', reason: 'read ECONNRESET', said: 'a "quoted" word', pair: 'k=v', empty: '', n: 3, o: { a: 1 } }),
    );
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn \[n1\] connection to peer lost /);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(line.indexOf(' lost ') + 6)).toBe(`peer=n2 reason="read ECONNRESET" said="a \\"quoted\\" word" pair="k=v" empty="" n=3 o="{\\"a\\":1}"\n`);
  });

  it('take their level from CONSENSUS_LOG_LEVEL over the argument', () => {
    process.env.CONSENSUS_LOG_LEVEL = 'warn';
    const out = stderrOf(() => {
      const log = consoleLogger('n1', 'debug');
      log.info('hidden');
      log.error('shown');
    });
    expect(out).not.toContain('hidden');
    expect(out).toContain('error [n1] shown');
  });
});

describe('the node logger: format and level', () => {
  afterEach(restoreEnv);

  it('environment over config, defaults text and info, a bad value a ConfigError naming the variable', () => {
    for (const k of ENV) delete process.env[k];
    expect(resolveLogOptions({})).toEqual({ format: 'text', level: 'info' });
    expect(resolveLogOptions({ logFormat: 'json', logLevel: 'debug' })).toEqual({ format: 'json', level: 'debug' });
    expect(resolveLogOptions({ logFormat: 'json' }, { CONSENSUS_LOG_FORMAT: 'text', CONSENSUS_LOG_LEVEL: 'error' })).toEqual({ format: 'text', level: 'error' });
    expect(() => resolveLogOptions({}, { CONSENSUS_LOG_FORMAT: 'yaml' })).toThrow(ConfigError);
    expect(() => resolveLogOptions({}, { CONSENSUS_LOG_LEVEL: 'loud' })).toThrow(/CONSENSUS_LOG_LEVEL must be one of debug, info, warn, error/);
  });

  it('the CLI refuses a log format or level it does not know, from a flag or the environment (usage error, exit 2)', async () => {
    for (const k of ENV) delete process.env[k];
    const flag = await cli('--log-format', 'yaml', 'status', '--dir', '/nonexistent/consensus-cli-logs-test');
    expect(flag.code).toBe(2);
    expect(flag.err).toContain("'yaml'");
    process.env.CONSENSUS_LOG_LEVEL = 'loud';
    const env = await cli('status', '--dir', '/nonexistent/consensus-cli-logs-test');
    expect(env.code).toBe(2);
    expect(env.err).toContain('CONSENSUS_LOG_LEVEL');
  });

  it('JSON: one object per line with level, time, node, msg and the fields (pino)', async () => {
    for (const k of ENV) delete process.env[k];
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (c: Buffer) => (text += c.toString()));
    const log = createNodeLogger({ id: 'n7', logFormat: 'json', logLevel: 'info' }, sink);
    log.debug('not at info');
    log.info('leader is n2', { term: 4, reason: 'a b "c"' });
    log.error('node failed');
    await new Promise((r) => setImmediate(r));
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatchObject({ level: 'info', node: 'n7', msg: 'leader is n2', term: 4, reason: 'a b "c"' });
    expect(new Date(lines[0]!.time as string).toISOString()).toBe(lines[0]!.time);
    expect(lines[1]).toMatchObject({ level: 'error', node: 'n7', msg: 'node failed' });
  });
});

describe('why a node exited, read off its last log line', () => {
  it('a JSON record reads as its message and fields; a text line or broken JSON stays as it is', () => {
    expect(readableLogLine('{"level":"error","time":"2026-12-04T20:00:00.000Z","node":"n1","error":"disk full","msg":"node failed"}')).toBe('node failed error=disk full');
    expect(readableLogLine('consensus-cli: port 2379 is in use')).toBe('consensus-cli: port 2379 is in use');
    expect(readableLogLine('{"broken')).toBe('{"broken');
  });
});

describe('a cluster started with --log-format json', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    expect((await cli('start', '--protocol', 'raft', '--dir', dir, '--port', String(await freeBase()), '--detach', '--json', '--log-format', 'json')).code).toBe(0);
    await leaderOf(dir);
  });
  afterAll(async () => {
    restoreEnv();
    await cleanup(dir);
  });

  it('writes node logs that parse line by line, each with level, time, node and msg', async () => {
    expect((await cli('put', 'k', 'v', '--dir', dir)).code).toBe(0);
    // A restart logs a stop and a start on top of the election.
    expect((await cli('restart', 'n1', '--dir', dir)).code).toBe(0);
    await leaderOf(dir);
    const cd = new ClusterDir(dir);
    for (const id of ['n1', 'n2', 'n3']) {
      const lines = readFileSync(cd.logFile(id), 'utf8').split('\n').filter((l) => l !== '');
      expect(lines.length).toBeGreaterThan(1);
      const records = lines.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`node ${id} logged a line that is not JSON: ${l}`);
        }
      });
      for (const r of records) {
        expect(typeof r.level === 'string' && ['debug', 'info', 'warn', 'error'].includes(r.level)).toBe(true);
        expect(typeof r.time === 'string' && !Number.isNaN(Date.parse(r.time))).toBe(true);
        expect(r.node).toBe(id);
        expect(typeof r.msg).toBe('string');
      }
      const msgs = records.map((r) => r.msg);
      expect(msgs).toContain('node started');
      expect(msgs.some((m) => typeof m === 'string' && m.startsWith('leader is '))).toBe(true);
      if (id === 'n1') expect(msgs).toEqual(expect.arrayContaining(['stopping', 'stopped']));
    }
  });
});
