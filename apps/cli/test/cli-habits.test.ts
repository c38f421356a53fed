import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_VALUE_BYTES } from '@consensus-kit/kv';
import { beforeAll, describe, expect, it } from 'vitest';
import { createProgram } from '../src/cli';
import { ClusterDir } from '../src/cluster-file';
import { commandSpecs, completionScript } from '../src/completion';
import { putValue } from '../src/commands/kv';
import { hint, invocation, localizeHints } from '../src/invocation';
import { LIVE_VIEW_COLUMNS, renderLiveView, type StatusRow } from '../src/render';
import { cli, cliCommand, tempDir, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

/** The CLI as a process of its own, from sources (stdin, exit code and elapsed time as a user sees them). */
function runBin(args: string[], input?: string | Buffer, env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string; ms: number } {
  const t0 = Date.now();
  const [cmd, ...pre] = cliCommand();
  const r = spawnSync(cmd as string, [...pre, ...args], { input: input ?? '', encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}

describe('usage errors and hints', () => {
  it('shows commander\'s "Did you mean" suggestion whole, on the one error line', async () => {
    const r = await cli('stauts');
    expect(r.code).toBe(2);
    expect(r.err).toBe("error: unknown command 'stauts' (Did you mean status?)\n");
    const o = await cli('status', '--jsn');
    expect(o.code).toBe(2);
    expect(o.err).toBe("error: unknown option '--jsn' (Did you mean --json?)\n");
  });

  it('a bad --timeout is a usage error naming the flag', async () => {
    for (const bad of ['soon', '0', '-1s', '5x']) {
      const r = await cli('put', 'k', 'v', '--timeout', bad, '--dir', tempDir());
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^error: option '--timeout <duration>' argument .* is invalid/);
    }
    expect((await cli('status', '--timeout', 'x')).code).toBe(2);
    expect((await cli('members', 'remove', 'n1', '--timeout', 'x')).code).toBe(2);
  });

  it('every client command takes --timeout', () => {
    const specs = commandSpecs(createProgram());
    const client = ['put', 'get', 'del', 'range', 'txn', 'compact', 'status', 'leader transfer', 'members list', 'members add', 'members remove', 'partition', 'heal'];
    for (const path of client) expect(specs.find((s) => s.path === path)?.options.map((o) => o.long), path).toContain('--timeout');
  });

  it('hints name the command as the user runs it: installed, pnpm cli, or pnpm through npx', () => {
    expect(invocation({})).toBe('consensus-cli');
    expect(invocation({ npm_lifecycle_event: 'test', npm_execpath: '/usr/lib/node_modules/pnpm/bin/pnpm.cjs' })).toBe('consensus-cli');
    expect(invocation({ npm_lifecycle_event: 'cli', npm_execpath: '/usr/lib/node_modules/pnpm/bin/pnpm.cjs' })).toBe('pnpm cli');
    expect(invocation({ npm_lifecycle_event: 'start', npm_execpath: '/root/.npm/_npx/a1a3/node_modules/pnpm/bin/pnpm.cjs' })).toBe('npx --yes pnpm@10 cli');
    expect(invocation({ npm_lifecycle_event: 'cli', npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' })).toBe('npm run cli --');
    expect(hint('status', { npm_lifecycle_event: 'cli', npm_execpath: '/x/pnpm.cjs' })).toBe('pnpm cli status');
    expect(localizeHints('run `consensus-cli start --dir d` first', { npm_lifecycle_event: 'cli', npm_execpath: '/x/pnpm.cjs' })).toBe('run `pnpm cli start --dir d` first');
  });

  it('an error printed under `pnpm cli` names `pnpm cli` in its hint', () => {
    const d = tempDir();
    const r = runBin(['get', 'k', '--dir', d], '', { npm_lifecycle_event: 'cli', npm_execpath: '/root/.npm/_npx/a1a3/node_modules/pnpm/bin/pnpm.cjs' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('(run `npx --yes pnpm@10 cli start --dir');
    expect(r.err).not.toContain('`consensus-cli start');
  });
});

describe('put values from a file or stdin', () => {
  it('reads the value from --file, or from stdin for -, byte for byte; text stays text, other bytes are bytes', () => {
    const d = tempDir();
    const file = join(d, 'v.txt');
    writeFileSync(file, 'héllo\n');
    expect(putValue(undefined, file)).toBe('héllo\n');
    expect(putValue('-', undefined, () => Buffer.from('from stdin\n'))).toBe('from stdin\n');
    const bin = join(d, 'v.bin');
    writeFileSync(bin, Buffer.from([0xff, 0x00, 0xfe]));
    expect(putValue(undefined, bin)).toEqual(new Uint8Array([0xff, 0x00, 0xfe]));
    expect(putValue('plain', undefined)).toBe('plain');
  });

  it('refuses no value, two values, an unreadable file and a value over the limit, each with one clear line', () => {
    const d = tempDir();
    expect(() => putValue(undefined, undefined)).toThrow(/put needs a value/);
    expect(() => putValue('x', join(d, 'f'))).toThrow(/takes its value once/);
    expect(() => putValue(undefined, join(d, 'missing'))).toThrow(/cannot read the value from .*missing/);
    const big = join(d, 'big');
    writeFileSync(big, '');
    truncateSync(big, MAX_VALUE_BYTES + 1);
    expect(() => putValue(undefined, big)).toThrow(`is ${MAX_VALUE_BYTES + 1} bytes, larger than the largest value a key can hold (${MAX_VALUE_BYTES} bytes)`);
    expect(() => putValue('-', undefined, () => Buffer.alloc(MAX_VALUE_BYTES + 1))).toThrow(/the value in stdin is/);
  });
});

describe('shell completion', () => {
  const program = createProgram();
  const bash = completionScript(program, 'bash');
  /** What bash completes for the words typed so far (the last one is being completed). */
  const complete = (script: string, ...typed: string[]): string[] => {
    const words = ['consensus-cli', ...typed].map((w) => `'${w}'`).join(' ');
    const r = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _consensus_cli; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  it('bash completes commands, subcommands, options and option values from the program itself', () => {
    expect(complete(bash, 'st')).toEqual(['start', 'status', 'stop']);
    expect(complete(bash, 'members', '')).toEqual(['list', 'add', 'remove']);
    expect(complete(bash, 'put', 'k', '--')).toEqual(expect.arrayContaining(['--file', '--timeout', '--dir', '--json', '--help']));
    expect(complete(bash, '--dir', 'x', 'members', 'add', 'n4', '--le')).toEqual(['--learner']);
    expect(complete(bash, 'start', '--protocol', '')).toEqual(['raft', 'paxos', 'zab']);
    expect(complete(bash, 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
    // A value being typed is not completed as a command.
    expect(complete(bash, 'put', 'k', '--timeout', '')).toEqual([]);
  });

  it('every command and option of the program is in every script', () => {
    const fish = completionScript(program, 'fish');
    const zsh = completionScript(program, 'zsh');
    expect(zsh).toContain('bashcompinit');
    for (const s of commandSpecs(program)) {
      const last = s.path.split(' ').at(-1) as string;
      if (s.path !== '') {
        expect(complete(bash, ...s.path.split(' ').slice(0, -1), last), s.path).toContain(last);
        expect(fish).toContain(`-a '${last}'`);
      }
      for (const o of s.options) {
        expect(bash).toContain(o.long);
        expect(zsh).toContain(o.long);
        expect(fish).toContain(`-l ${o.long.slice(2)}`);
      }
    }
  });

  it('`completion bash` prints the script; an unknown shell is a usage error', async () => {
    const r = await cli('completion', 'bash');
    expect(r.code).toBe(0);
    expect(r.out).toContain('complete -F _consensus_cli consensus-cli');
    expect(complete(r.out, 'ge')).toEqual(['get']);
    const bad = await cli('completion', 'tcsh');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/Allowed choices are bash, zsh, fish/);
  });
});

describe('the live view', () => {
  it('fits 80 columns with 9 nodes, large indexes and pids, and a long directory', () => {
    const rows: StatusRow[] = Array.from({ length: 9 }, (_, i) => ({
      node: `n${i + 1}`,
      role: i === 0 ? 'unreachable' : 'candidate',
      term: 12_345,
      leader: 'n1',
      commit: 98_765_432,
      applied: 98_765_432,
      lag: 12_345_678,
      pid: 4_194_303,
      address: `127.0.0.1:${7101 + i}`,
      http: `127.0.0.1:${7201 + i}`,
      details: null,
    }));
    const events = ['17:08:01 leader is n1 (term 12345)', '17:08:03 no leader (election in progress)'];
    const title = `consensus-kit raft cluster  ${'/very/long/path/'.repeat(8)}  (Ctrl-C stops it)`;
    for (const color of [false, true]) {
      const screen = renderLiveView(title, rows, events, { json: false, color });
      const lines = screen.split('\n');
      for (const l of lines) expect([...l.replace(/\x1b\[[0-9;]*m/g, '')].length, l).toBeLessThanOrEqual(LIVE_VIEW_COLUMNS);
      expect(screen).toContain('98765432');
      expect(screen).toContain('no leader (election in progress)');
      // Every row whole: none cut at the edge, the last column (pid) there.
      const nodeRows = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')).filter((l) => /^n\d /.test(l));
      expect(nodeRows).toHaveLength(9);
      for (const r of nodeRows) expect(r).toMatch(/ 4194303$/);
    }
  });
});

describe('on a running cluster', () => {
  const cluster = useStartedCluster();
  let dir: string;
  beforeAll(() => {
    dir = cluster();
  });

  it('get of a missing key prints nothing and exits 0, in text and JSON; an empty value prints an empty line', async () => {
    expect(await cli('get', 'nope', '--dir', dir)).toEqual({ code: 0, out: '', err: '' });
    expect(await cli('get', 'nope', '--dir', dir, '--json')).toEqual({ code: 0, out: '', err: '' });
    expect((await cli('put', 'empty', '', '--dir', dir)).code).toBe(0);
    expect(await cli('get', 'empty', '--dir', dir)).toEqual({ code: 0, out: '\n', err: '' });
    expect(JSON.parse((await cli('get', 'empty', '--dir', dir, '--json')).out)).toMatchObject({ key: 'empty', value: '' });
  });

  it('puts a 200 KB value from a file and from stdin, and reads it back whole', async () => {
    const value = randomBytes(100 * 1024).toString('hex'); // 200 KB of text
    const file = join(dir, 'value.txt');
    writeFileSync(file, value);
    expect((await cli('put', 'big/file', '--file', file, '--dir', dir)).code).toBe(0);
    expect((await cli('get', 'big/file', '--dir', dir)).out).toBe(`${value}\n`);
    const piped = runBin(['put', 'big/stdin', '-', '--dir', dir], value);
    expect(piped.err).toBe('');
    expect(piped.code).toBe(0);
    expect((await cli('get', 'big/stdin', '--dir', dir)).out).toBe(`${value}\n`);
    // Over the limit: refused before anything is sent.
    const tooBig = join(dir, 'too-big');
    writeFileSync(tooBig, '');
    truncateSync(tooBig, MAX_VALUE_BYTES + 1);
    const r = await cli('put', 'big/too', '--file', tooBig, '--dir', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/larger than the largest value a key can hold/);
    expect((await cli('get', 'big/too', '--dir', dir)).out).toBe('');
  });

  it('--timeout on members add: it gives up, and the node it was adding is not left running or on record', async () => {
    const cd = new ClusterDir(dir);
    // n4 takes 2 s to start (a wrapper around the node command sleeps first for its config), so the 400 ms
    // deadline falls while the add waits for it to come up, however fast a node starts on this machine.
    const saved = process.env.CONSENSUS_CLI_NODE_CMD;
    const script = 'for a in "$@"; do case "$a" in */n4/node.json) sleep 2;; esac; done; exec "$@"';
    process.env.CONSENSUS_CLI_NODE_CMD = JSON.stringify(['sh', '-c', script, 'sh', ...cliCommand()]);
    try {
      for (const t of ['1ms', '400ms']) {
        const r = await cli('members', 'add', 'n4', '--timeout', t, '--dir', dir);
        expect(r.code).toBe(1);
        expect(r.err).toContain(`members add n4: gave up after ${t} (--timeout)`);
        expect(r.err).toMatch(/timed out: n4 was not added, and its process is stopped/);
        expect(cd.livePid('n4')).toBeUndefined();
        expect(cd.read().nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
      }
    } finally {
      process.env.CONSENSUS_CLI_NODE_CMD = saved;
    }
    // What either add was doing when it gave up goes no further: no n4 starts later.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(cd.livePid('n4')).toBeUndefined();
    expect(cd.read().nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
  });

  it('--timeout: a put without a quorum gives up after it with a clear message and exit code 1', async () => {
    expect((await cli('kill', 'n2', '--dir', dir)).code).toBe(0);
    expect((await cli('kill', 'n3', '--dir', dir)).code).toBe(0);
    const r = runBin(['put', 'k', 'v', '--timeout', '1s', '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^consensus-cli: put k: gave up after 1s \(--timeout\); the write may still take effect/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    // 1 s, plus starting a process from sources on a busy machine; without the flag it waits 15 s.
    expect(r.ms).toBeLessThan(10_000);
    const g = runBin(['get', 'k', '--timeout', '500ms', '--dir', dir]);
    expect(g.code).toBe(1);
    expect(g.err).toMatch(/get k: gave up after 500ms \(--timeout\)/);
  });
});

describe('withDeadline', () => {
  it('gives up at the deadline even when the work ignores its signal, and says whether the deadline was the default', async () => {
    const { withDeadline, DeadlineError } = await import('../src/deadline');
    const never = () => new Promise<never>(() => undefined);
    const t0 = Date.now();
    await expect(withDeadline(50, { what: 'put k', note: 'maybe written' }, never)).rejects.toThrow('put k: gave up after 50ms (--timeout); maybe written');
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(withDeadline(30, { what: 'get k', byDefault: true }, never)).rejects.toSatisfy((e) => e instanceof DeadlineError && /\(the default --timeout\)/.test(e.message));
    // An abort error from the work after the deadline does not replace the deadline's message.
    const aborted = withDeadline(30, { what: 'del k' }, (signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')))));
    await expect(aborted).rejects.toThrow(/del k: gave up after 30ms/);
    // In time: the work's own answer or error.
    expect(await withDeadline(1000, { what: 'x' }, async () => 7)).toBe(7);
    await expect(withDeadline(1000, { what: 'x' }, async () => Promise.reject(new Error('own')))).rejects.toThrow('own');
    let ran = false;
    await expect(withDeadline(20, { what: 'members add n4', onTimeout: () => void (ran = true) }, never)).rejects.toThrow(/members add n4/);
    expect(ran).toBe(true);
  });
});
