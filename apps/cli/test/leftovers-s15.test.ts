/**
 * Leftovers of the ui break-it pass and of embedding (session 15): integer flags in decimal digits only, startNode
 * on a data directory that cannot be made, a Restart clicked while one runs, the foreground table following the
 * cluster file, and an add-member whose outcome is unknown.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@consensus-kit/core';
import { describe, expect, it, vi } from 'vitest';
import { parseIntOption } from '../src/duration';
import { createServer, type Server } from 'node:net';
import { ClusterDir } from '../src/cluster-file';
import { start } from '../src/commands/cluster';
import { startNode } from '../src/embed';
import { createUiActions } from '../src/ui-actions';
import { liveSource } from '../src/ui-live';
import { pendingAddOf, setPendingAdd } from '../src/pending-add';
import { CliError } from '../src/errors';
import { cleanup, cli, freeBase, tempDir, useSourceNodes } from './helpers';

useSourceNodes();

describe('integer flags take plain decimal digits', () => {
  it('parseIntOption refuses exponents, hex, blanks and fractions with a CliError naming the flag', () => {
    for (const bad of ['1e3', '0x10', ' 80', '80 ', '80.0', '', '+80', '0b11', '1_000', '８０']) {
      let error: unknown;
      try {
        parseIntOption(bad, '--port', 0, 65535);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(2);
      expect((error as CliError).message).toBe(`--port must be an integer from 0 to 65535 in decimal digits, got ${JSON.stringify(bad)}`);
    }
    expect(parseIntOption('1000', '--port', 0, 65535)).toBe(1000);
    expect(parseIntOption('0', '--port', 0, 65535)).toBe(0);
    expect(parseIntOption('007', '--port', 0, 65535)).toBe(7);
    expect(() => parseIntOption('-1', '--port', 0, 65535)).toThrow(CliError);
    expect(parseIntOption('-1', '--delta', -5, 5)).toBe(-1);
  });

  it('every port flag refuses 1e3 and 0x10 as a usage error naming the flag, before doing anything', async () => {
    const dir = tempDir();
    const runs: [string[], string][] = [
      [['start', '--dir', dir, '--port', '1e3'], '--port'],
      [['start', '--dir', dir, '--port', '0x1000'], '--port'],
      [['start', '--dir', dir, '--ui', '0x10'], '--ui'],
      [['ui', '--dir', dir, '--port', '80.0'], '--port'],
      [['snapshot', 'restore', 'x.snap', '--dir', dir, '--port', '7e3'], '--port'],
    ];
    for (const [args, flag] of runs) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toContain(`${flag} must be an integer from`);
    }
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('startNode on a data directory that cannot be made', () => {
  const silent = { debug() {}, info() {}, warn() {}, error() {} };

  it('a dir under /proc fails at once with a ConfigError naming dir (recursive mkdir there never settled)', { timeout: 15_000 }, async () => {
    const error = await startNode({ id: 'n1', dir: '/proc/consensus-kit-s15/n1', logger: silent }).then(
      (n) => n.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(ConfigError.is(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/^startNode: dir "\/proc\/consensus-kit-s15\/n1" cannot be created: mkdir \/proc\/consensus-kit-s15 failed \(E[A-Z]+\)$/);
  });

  it('a dir whose parent is a file, or one that cannot be written in, is a ConfigError naming dir; a new nested dir is made', { timeout: 30_000 }, async () => {
    const d = mkdtempSync(join(tmpdir(), 'ck-s15-dir-'));
    try {
      writeFileSync(join(d, 'file'), 'x');
      const underFile = await startNode({ id: 'n1', dir: join(d, 'file', 'n1'), logger: silent }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(ConfigError.is(underFile), String(underFile)).toBe(true);
      expect((underFile as Error).message).toContain(`${join(d, 'file')} is not a directory`);
      const unwritable = await startNode({ id: 'n1', dir: '/proc/self', logger: silent }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(ConfigError.is(unwritable), String(unwritable)).toBe(true);
      expect((unwritable as Error).message).toMatch(/^startNode: dir "\/proc\/self" cannot be written/);
      // Levels that do not exist yet are made, and the write check leaves nothing behind.
      const n = await startNode({ id: 'n1', dir: join(d, 'a', 'b', 'n1'), logger: silent });
      await n.stop();
      expect(existsSync(join(d, 'a', 'b', 'n1'))).toBe(true);
      expect(readdirSync(join(d, 'a', 'b', 'n1')).filter((f) => f.includes('write-check'))).toEqual([]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('Restart clicked while a restart of the node runs', () => {
  it('the extra clicks join the running restart (one answer for all, at once) instead of queueing restarts of their own', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const base = await freeBase();
    new ClusterDir(dir).write({ version: 1, clusterId: 'local-s15', protocol: 'raft', nodes: [{ id: 'n1', host: '127.0.0.1', port: base + 1, httpPort: base + 101 }] });
    // n1's port is held here: a restart waits for it (about 3 s) and fails, without any node process.
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(base + 1, '127.0.0.1', () => r()));
    try {
      const act = createUiActions({ dir });
      const settled: number[] = [];
      const clicks = [0, 1, 2].map((i) =>
        act({ action: 'restart', node: 'n1' }).then((r) => {
          settled.push(i);
          return r;
        }),
      );
      const first = await clicks[0];
      // Every click is answered with the first: the others were answered with it, not after restarts of their own.
      await new Promise((r) => setImmediate(r));
      expect(settled).toEqual([0, 1, 2]);
      const results = await Promise.all(clicks);
      expect(first).toMatchObject({ ok: false, text: expect.stringContaining(`port ${base + 1} on 127.0.0.1 is already in use`) });
      for (const r of results) expect(r).toEqual(first);
      // Once it is over, Restart restarts again (its own attempt: now the http port is the one held).
      await new Promise((r) => holder.close(() => r(undefined)));
      await new Promise<void>((r) => holder.listen(base + 101, '127.0.0.1', () => r()));
      expect(await act({ action: 'restart', node: 'n1' })).toMatchObject({ ok: false, text: expect.stringContaining(`port ${base + 101} on 127.0.0.1 is already in use`) });
    } finally {
      if (holder.listening) await new Promise((r) => holder.close(() => r(undefined)));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the foreground start table', () => {
  it('lists a member added to the cluster file after the start (it is re-read on every refresh)', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const base = await freeBase();
    let screen = '';
    const wasTty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
    Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true });
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      screen += String(chunk);
      return true;
    });
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const running = start({ dir, nodes: 1, protocol: 'raft', port: base, foregroundMs: 5000 });
      // Once the table is drawn, a member is added to the file (as `members add` records one): the next refresh lists it.
      for (let i = 0; i < 400 && !screen.includes('\x1b[2J'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(screen).toContain('\x1b[2J');
      const cd = new ClusterDir(dir);
      const c = cd.read();
      cd.write({ ...c, nodes: [...c.nodes, { id: 'added9', host: '127.0.0.1', port: base + 9, httpPort: base + 109 }] });
      const drawnBefore = screen.length;
      await running;
      const after = screen.slice(drawnBefore).split('\x1b[2J').filter((t) => t.trim() !== '');
      expect(after.length).toBeGreaterThan(0);
      expect(after.at(-1)).toMatch(/\badded9\b/);
      expect(after.at(-1)).toMatch(/\bn1\b/);
    } finally {
      write.mockRestore();
      log.mockRestore();
      if (wasTty) Object.defineProperty(process.stdout, 'isTTY', wasTty);
      else delete (process.stdout as { isTTY?: boolean }).isTTY;
      await cleanup(dir);
    }
  });
});

describe('an add-member whose outcome is unknown', () => {
  it('is marked in the cluster file, shown by status and the page against the configuration in force, and Remove member takes a non-member off the record', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    try {
      expect((await cli('start', '--nodes', '1', '--dir', dir, '--port', String(await freeBase()), '--detach', '--json')).code).toBe(0);
      const act = createUiActions({ dir, timeoutMs: 8000 });
      // The only voter is down: the learner change is sent to no leader, and the add gives up while proposing it.
      const killN1 = await act({ action: 'kill', node: 'n1' });
      expect(killN1, killN1.text).toMatchObject({ ok: true });
      const added = await act({ action: 'add-member', role: 'learner' });
      expect(added, added.text).toMatchObject({ ok: false, text: expect.stringContaining('n2 is kept on record, stopped, marked "outcome unknown"') });
      expect(added.text).toContain('no leader answers to tell whether it is a member');
      const n2 = new ClusterDir(dir).read().nodes.find((n) => n.id === 'n2') as unknown as { addPending?: { since: string; reason: string } };
      expect(n2.addPending).toMatchObject({ since: expect.stringMatching(/^\d{4}-/), reason: expect.any(String) });
      expect(new ClusterDir(dir).livePid('n2')).toBeUndefined();

      const unknown = JSON.parse((await cli('status', '--dir', dir, '--json')).out) as { membership?: { node: string; membership: string; text: string }[] };
      expect(unknown.membership).toEqual([expect.objectContaining({ node: 'n2', membership: 'unknown', text: expect.stringContaining('with the outcome unknown') })]);
      const source = liveSource({ dir });
      try {
        const frame = await source.poll();
        expect(frame.events.filter((e) => e.node === 'n2' && e.kind === 'config').map((e) => e.text)).toEqual([expect.stringContaining('n2: its add gave up at')]);
      } finally {
        await source.close();
      }

      // n1 back: the configuration in force does not list n2 (the change never reached a leader).
      const restartN1 = await act({ action: 'restart', node: 'n1' });
      expect(restartN1, restartN1.text).toMatchObject({ ok: true });
      let none: { membership?: { node: string; membership: string; text: string }[] } = {};
      for (let i = 0; i < 100 && none.membership?.[0]?.membership !== 'none'; i++) {
        none = JSON.parse((await cli('status', '--dir', dir, '--json')).out) as typeof none;
        if (none.membership?.[0]?.membership !== 'none') await new Promise((r) => setTimeout(r, 200));
      }
      expect(none.membership).toEqual([expect.objectContaining({ node: 'n2', membership: 'none', text: expect.stringContaining('does not list it: not a member') })]);
      const text = (await cli('status', '--dir', dir)).out;
      expect(text).toMatch(/^n2: its add gave up at \d\d:\d\d:\d\d \(.*\) with the outcome unknown; the configuration in force \(leader n1, term \d+\) does not list it/m);

      // Restart of a node whose add did not take effect is refused, saying so (it would start a node of no cluster).
      const restartNone = await act({ action: 'restart', node: 'n2' });
      expect(restartNone, restartNone.text).toMatchObject({ ok: false, text: expect.stringContaining("n2's add did not take effect") });
      expect(new ClusterDir(dir).livePid('n2')).toBeUndefined();

      const removed = await act({ action: 'remove-member', node: 'n2' });
      expect(removed, removed.text).toMatchObject({ ok: true, text: expect.stringContaining('n2 taken off the record') });
      expect(new ClusterDir(dir).read().nodes.map((n) => n.id)).toEqual(['n1']);
      expect((JSON.parse((await cli('status', '--dir', dir, '--json')).out) as { membership?: unknown }).membership).toBeUndefined();

      // A marked node the configuration does list (its learner change committed after the add gave up; made here by
      // marking a learner added now): Restart clears the mark and gives the other nodes its address back.
      const learner = await act({ action: 'add-member', role: 'learner' });
      expect(learner, learner.text).toMatchObject({ ok: true });
      const cd = new ClusterDir(dir);
      const killed = await act({ action: 'kill', node: 'n2' });
      expect(killed, killed.text).toMatchObject({ ok: true });
      setPendingAdd(dir, 'n2', { since: new Date().toISOString(), reason: 'made by the test' });
      cd.setPeerAddress(['n1'], 'n2', undefined);
      const adopted = await act({ action: 'restart', node: 'n2' });
      expect(adopted, adopted.text).toMatchObject({ ok: true });
      expect(pendingAddOf(cd.node(cd.read(), 'n2'))).toBeUndefined();
      const n2Entry = cd.node(cd.read(), 'n2');
      expect((JSON.parse(readFileSync(cd.configFile('n1'), 'utf8')) as { peers: Record<string, string> }).peers.n2).toBe(`${n2Entry.host}:${n2Entry.port}`);
    } finally {
      await cleanup(dir);
    }
  });
});
