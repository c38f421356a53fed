import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UiFrame, UiHello } from '@consensus-kit/ui';
import { captureOutput } from '../test/capture-output';
import { main } from './cli';
import { resolveProtocol } from './resolve-protocol';
import { simulate } from './simulator';
import { replayUiCommand, runSweep, simulateOptions } from './sweep';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sim-replay-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});


async function firstFailingSeed(name: string): Promise<number> {
  const protocol = await resolveProtocol(name);
  for (let seed = 1; seed <= 40; seed++) if (!simulate(simulateOptions({ protocol, faults: 'heavy' }, seed, false)).ok) return seed;
  throw new Error(`no failing seed of ${name} in 1..40`);
}

const get = (url: string, path: string, init: RequestInit = {}) => fetch(new URL(path, url), { ...init, signal: AbortSignal.timeout(5000) });

describe('sim replay <seed>', () => {
  it('without --ui does what --seed does', async () => {
    const { out } = captureOutput();
    expect(await main(['replay', '3', '--protocol', 'toy', '--ticks', '120', '--report-dir', dir])).toBe(0);
    const replayed = out.splice(0);
    expect(await main(['--protocol', 'toy', '--seed', '3', '--ticks', '120', '--report-dir', dir])).toBe(0);
    expect(replayed).toEqual(out);
    expect(replayed[0]).toMatch(/^toy seed 3: ok · \d+ steps/);
  });

  it('--ui records the run and serves it on 127.0.0.1 (hello in replay mode, every frame as history) until stopped', async () => {
    const seed = await firstFailingSeed('toy-commit-one-ack');
    const { out } = captureOutput();
    const stop = new AbortController();
    let serving!: (url: string) => void;
    const url = new Promise<string>((resolve) => (serving = resolve));
    const run = main(['replay', String(seed), '--protocol', 'toy-commit-one-ack', '--faults', 'heavy', '--ui', '--report-dir', dir], { stop: stop.signal, onServing: serving });
    try {
      const base = await Promise.race([url, run.then((code) => Promise.reject(new Error(`main returned ${code} before serving`)))]);
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(out).toContain(`ui: ${base} (Ctrl-C to stop)`);
      expect(out.join('\n')).toMatch(/^invariant violation \(log-agreement\)/m);

      const helloRes = await get(base, '/api/hello');
      expect(helloRes.status).toBe(200);
      const hello = (await helloRes.json()) as UiHello;
      expect(hello).toMatchObject({ mode: 'replay', protocol: 'toy-commit-one-ack', timeUnit: 'tick', actions: [], electionTimeout: 10 });
      expect(hello.replayCommand).toBe(`pnpm sim replay ${seed} --protocol toy-commit-one-ack --faults heavy --ui`);
      expect(hello.title).toMatch(new RegExp(`^toy-commit-one-ack seed ${seed} · 3 nodes · 400 ticks · invariant violation \\(log-agreement\\)$`));

      const history = (await (await get(base, '/api/history')).json()) as UiFrame[];
      expect(history.length).toBeGreaterThan(100);
      const steps = /· (\d+) steps ·/.exec(out[0]!)![1];
      expect(out).toContain(`${history.length} frames of ${steps} steps`);
      expect(history.map((f) => f.seq)).toEqual(history.map((_, i) => i));
      expect(history.at(-1)!.events.at(-1)).toMatchObject({ kind: 'violation', text: expect.stringMatching(/^invariant violation \(log-agreement\): /) });

      // Replay mode takes no action.
      const act = await get(base, '/api/action', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'heal' }) });
      expect(act.status).toBe(404);
    } finally {
      stop.abort();
    }
    expect(await run).toBe(1);
  });

  it('the command serves until Ctrl-C (SIGINT), then stops and exits with the run\'s verdict', async () => {
    const cli = resolve(import.meta.dirname, 'cli.ts');
    const child = spawn(process.execPath, ['--conditions=@consensus-kit/source', '--import', 'tsx', cli, 'replay', '1', '--protocol', 'toy', '--ticks', '60', '--ui', '--report-dir', dir], {
      cwd: resolve(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      let stdout = '';
      const base = await new Promise<string>((done, fail) => {
        const timer = setTimeout(() => fail(new Error(`no URL within 30 s: ${stdout}`)), 30_000);
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const m = /ui: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            done(m[1]!);
          }
        });
        void exited.then((code) => fail(new Error(`exited ${code} before serving: ${stdout}`)));
      });
      expect(((await (await get(base, '/api/hello')).json()) as UiHello).mode).toBe('replay');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      await expect(get(base, '/api/hello')).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('bad seed or options: exit 2 with a clear message, before anything runs', async () => {
    const { err } = captureOutput();
    expect(await main(['replay', 'seven', '--protocol', 'toy', '--ui'])).toBe(2);
    expect(err.join('')).toMatch(/seed must be an integer >= 0/);
    expect(await main(['replay', '--protocol', 'toy'])).toBe(2);
    expect(err.join('')).toMatch(/missing required argument 'seed'/);
    expect(await main(['replay', '4', '--protocol', 'nonexistent', '--ui', '--report-dir', dir])).toBe(2);
    expect(err.join('')).toMatch(/unknown protocol "nonexistent"/);
    expect(await main(['replay', '4', '--protocol', 'toy', '--port', '8080', '--report-dir', dir])).toBe(2);
    expect(err.join('')).toMatch(/--port needs --ui/);
    expect(await main(['replay', '4', '--protocol', 'toy', '--ui', '--port', 'x'])).toBe(2);
    expect(await main(['replay', '4', '--protocol', 'toy', '--seeds', '3'])).toBe(2);
    expect(err.join('')).toMatch(/unknown option '--seeds'/);
    expect(await main(['replay', '4', '--protocol', 'toy', '--protocol-option', 'maxbatch=2', '--ui'])).toBe(2);
    expect(err.join('')).toMatch(/unknown toy option "maxbatch"/);
  });

  it("a failing seed's message names the --ui form, with the run's settings", async () => {
    const protocol = await resolveProtocol('toy-local-reads');
    expect(replayUiCommand({ protocol, nodes: 5, snapshotEvery: 0, protocolOptions: { maxBatch: 2 } }, 9)).toBe(
      'pnpm sim replay 9 --protocol toy-local-reads --nodes 5 --snapshot-every 0 --protocol-option maxBatch=2 --ui',
    );
    const lines: string[] = [];
    const s = await runSweep({ protocol, seeds: 10, failFast: true, reportDir: dir, log: (l) => lines.push(l), progress: () => {} });
    const f = s.violations[0]!;
    expect(f.replayUi).toBe(`pnpm sim replay ${f.seed} --protocol toy-local-reads --ui`);
    expect(lines).toContain(`  step through it in the browser: ${f.replayUi}`);
    // And the one-seed run says it too.
    const { out } = captureOutput();
    expect(await main(['--protocol', 'toy-local-reads', '--seed', String(f.seed), '--report-dir', dir])).toBe(1);
    expect(out).toContain(`step through it in the browser: ${f.replayUi}`);
  });
});
