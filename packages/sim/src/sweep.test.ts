import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from './cli';
import { UnknownProtocolError } from './errors';
import { renderTimeline, writeReport } from './report';
import { resolveProtocol } from './resolve-protocol';
import { simulate } from './simulator';
import { parseProtocolOption, replayCommand, runSweep } from './sweep';
import { createToyModule, toyInvariants } from './toy/index';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sim-test-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

describe('runSweep', () => {
  it('runs every seed of a correct protocol and sums up', async () => {
    const lines: string[] = [];
    const s = await runSweep({ protocol: await resolveProtocol('toy'), seeds: 4, reportDir: dir, log: (l) => lines.push(l), progress: () => {} });
    expect(s.seedsRun).toBe(4);
    expect(s.violations).toEqual([]);
    expect(s.opsChecked).toBeGreaterThan(400);
    expect(lines.at(-1)).toMatch(/^toy: 4 seeds run, 0 violations, \d+ ops checked/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports a failing seed with its replay command, trace and timeline', async () => {
    const lines: string[] = [];
    const protocol = await resolveProtocol('toy-local-reads');
    const s = await runSweep({ protocol, seeds: 10, failFast: true, reportDir: dir, nodes: 5, log: (l) => lines.push(l), progress: () => {} });
    expect(s.violations.length).toBe(1);
    const f = s.violations[0]!;
    expect(f.replay).toBe(`pnpm sim --protocol toy-local-reads --seed ${f.seed} --nodes 5`);
    expect(lines.join('\n')).toContain(`replay: ${f.replay}`);
    const trace = (await readFile(f.report!.trace, 'utf8')).trim().split('\n');
    const parsed = trace.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ ev: 'start', seed: f.seed, protocol: 'toy-local-reads' });
    expect(parsed.some((e) => e.ev === 'violation')).toBe(true);
    const html = await readFile(f.report!.timeline, 'utf8');
    expect(html).toContain('class="bad"');
    expect(html).toContain(f.replay);
    // Self-contained: nothing fetched from elsewhere.
    expect(html).not.toMatch(/(src|href)=["']?https?:/);
  });
});

describe('reports', () => {
  it('one lane per client, every op a bar, the violation marked', async () => {
    const r = simulate({ protocol: createToyModule({ localReads: true }), seed: 2, workload: { clients: 4 }, invariants: toyInvariants, trace: true });
    const html = renderTimeline(r, 'pnpm sim --protocol x --seed 2');
    for (let c = 0; c < 4; c++) expect(html).toContain(`>c${c}</text>`);
    expect(html.match(/<rect /g)?.length).toBe(r.history.length);
    if (!r.ok) expect(html).toContain('class="violation"');
    const files = await writeReport(r, { dir });
    expect(files.dir).toBe(resolve(dir, 'toy-seed-2'));
  });
});

describe('resolveProtocol', () => {
  it('knows the built-ins and refuses unknown names with a typed error', async () => {
    expect((await resolveProtocol('toy')).module.name).toBe('toy');
    await expect(resolveProtocol('no-such-protocol')).rejects.toBeInstanceOf(UnknownProtocolError);
    await expect(resolveProtocol('../etc')).rejects.toThrow(/lower-case/);
    await expect(resolveProtocol(undefined)).rejects.toBeInstanceOf(UnknownProtocolError);
  });

  it("loads a user's module with --module, with its invariants", async () => {
    const p = await resolveProtocol(undefined, { module: 'testdata/user-module.ts', cwd: resolve(import.meta.dirname, '..') });
    expect(p.module.name).toBe('user-toy');
    expect(typeof p.invariants).toBe('function');
    await expect(resolveProtocol(undefined, { module: 'testdata/missing.ts', cwd: resolve(import.meta.dirname, '..') })).rejects.toBeInstanceOf(UnknownProtocolError);
  });

  it('finds @consensus-kit/<name> from the working directory, with its named export and invariants', async () => {
    const pkg = join(dir, 'node_modules', '@consensus-kit', 'fakeproto');
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: '@consensus-kit/fakeproto', type: 'module', exports: { '.': './index.js' } }));
    await writeFile(
      join(pkg, 'index.js'),
      [
        'const idle = (id) => ({ tick() {}, step() {}, propose() {}, readIndex() {}, proposeConfigChange() {}, transferLeadership() {},',
        '  hasReady: () => false, ready: () => ({ entries: [], messages: [], committed: [], reads: [] }), advance() {},',
        "  status: () => ({ id, role: 'follower', term: 0, commitIndex: 0, appliedIndex: 0, lastIndex: 0, config: { voters: [id], learners: [] } }) });",
        "export const fakeproto = { name: 'fakeproto', options: {}, parseOptions: () => ({}), create: (o) => idle(o.id) };",
        "export const invariants = () => [{ name: 'never', check: () => 'fake invariant fired' }];",
      ].join('\n'),
    );
    const p = await resolveProtocol('fakeproto', { cwd: dir });
    expect(p.module.name).toBe('fakeproto');
    const r = simulate({ protocol: p.module, seed: 1, ticks: 5, invariants: p.invariants! });
    expect(r.violation).toMatchObject({ name: 'never', message: 'fake invariant fired' });
    const pkg2 = join(dir, 'node_modules', '@consensus-kit', 'fakeproto-two');
    await mkdir(pkg2, { recursive: true });
    await writeFile(join(pkg2, 'package.json'), JSON.stringify({ name: '@consensus-kit/fakeproto-two', type: 'module', exports: { '.': './index.js' } }));
    await writeFile(join(pkg2, 'index.js'), 'export const other = 1;');
    await expect(resolveProtocol('fakeproto-two', { cwd: dir })).rejects.toThrow(/no named export "fakeprotoTwo"/);
  });

  it('replay commands spell out only what differs from the defaults', async () => {
    const protocol = await resolveProtocol('toy');
    expect(replayCommand({ protocol }, 9)).toBe('pnpm sim --protocol toy --seed 9');
    expect(replayCommand({ protocol, faults: 'heavy', nodes: 5, ticks: 800 }, 9)).toBe('pnpm sim --protocol toy --seed 9 --nodes 5 --ticks 800 --faults heavy');
    expect(replayCommand({ protocol, crashMidSave: false }, 9)).toBe('pnpm sim --protocol toy --seed 9 --no-crash-mid-save');
  });

  it('replay commands carry protocol options so that parsing them back gives the same values', async () => {
    const protocol = await resolveProtocol('toy');
    const options = { maxBatch: 8, mode: 'fast', quoted: '5', flag: true, spaced: 'a b' };
    const cmd = replayCommand({ protocol, protocolOptions: options }, 9);
    expect(cmd).toBe(`pnpm sim --protocol toy --seed 9 --protocol-option maxBatch=8 --protocol-option mode=fast --protocol-option 'quoted="5"' --protocol-option flag=true --protocol-option 'spaced=a b'`);
    const back: Record<string, unknown> = {};
    for (const arg of ['maxBatch=8', 'mode=fast', 'quoted="5"', 'flag=true', 'spaced=a b']) parseProtocolOption(arg, back);
    expect(back).toEqual(options);
    expect(() => parseProtocolOption('novalue')).toThrow(/key=value/);
    expect(() => parseProtocolOption('=5')).toThrow(/key=value/);
    // -0 survives the round trip (JSON alone would write it as 0).
    const negZero = parseProtocolOption(replayCommand({ protocol, protocolOptions: { z: -0 } }, 9).split('--protocol-option ')[1] as string);
    expect(Object.is(negZero.z, -0)).toBe(true);
  });

  it('a --protocol-option named __proto__ is an option the protocol refuses, not a prototype set in silence', async () => {
    const parsed = parseProtocolOption('__proto__={"preVote":false}');
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(await main(['--protocol', 'toy', '--seed', '1', '--ticks', '5', '--protocol-option', '__proto__={"x":1}', '--report-dir', dir])).toBe(2);
    expect(err.mock.calls.flat().join(' ')).toMatch(/unknown toy option "__proto__"/);
  });
});

describe('cli', () => {
  it('sweeps, and exits 0 when every seed passes', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['--protocol', 'toy', '--seeds', '3', '--report-dir', dir])).toBe(0);
    expect(out.join('')).toMatch(/toy: 3 seeds run, 0 violations/);
  });

  it('replays one failing seed, exits 1 and prints the replay command', async () => {
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
    const protocol = await resolveProtocol('toy-local-reads');
    const s = await runSweep({ protocol, seeds: 10, failFast: true, reportDir: dir, log: () => {}, progress: () => {} });
    const seed = s.violations[0]!.seed;
    expect(await main(['--protocol', 'toy-local-reads', '--seed', String(seed), '--report-dir', dir])).toBe(1);
    const text = out.join('\n');
    expect(text).toContain(`replay: pnpm sim --protocol toy-local-reads --seed ${seed}`);
    expect(text).toContain('timeline.html');
  });

  it('bad input: exit 2 with a clear message, before anything runs', async () => {
    const err: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: unknown) => void err.push(String(s)));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    expect(await main(['--protocol', 'nonexistent', '--seeds', '2', '--report-dir', dir])).toBe(2);
    expect(err.join('')).toMatch(/unknown protocol "nonexistent"/);
    expect(await main(['--protocol', 'toy', '--seeds', 'many'])).toBe(2);
    expect(await main(['--protocol', 'toy', '--faults', 'apocalyptic'])).toBe(2);
    expect(await readdir(dir)).toEqual([]);
  });

  it('--protocol-option reaches the module: a valid one runs and is in the replay command, a misspelt one exits 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
    vi.spyOn(console, 'error').mockImplementation((s: unknown) => void err.push(String(s)));
    expect(await main(['--protocol', 'toy', '--seed', '3', '--protocol-option', 'maxBatch=2', '--report', '--report-dir', dir])).toBe(0);
    expect(out.join('\n')).toContain('replay: pnpm sim --protocol toy --seed 3 --protocol-option maxBatch=2');
    expect(await main(['--protocol', 'toy', '--seeds', '1', '--protocol-option', 'maxbatch=2', '--report-dir', dir])).toBe(2);
    expect(err.join('\n')).toMatch(/unknown toy option "maxbatch" \(did you mean "maxBatch"\?\)/);
  });
});
