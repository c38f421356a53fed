/**
 * `consensus-cli lock ...` end to end, with real processes on a real cluster of each protocol under test: two
 * `lock acquire` processes on one name, the second waiting in the queue (`lock list` shows both) and getting a
 * higher fencing token once the first releases or is killed with SIGKILL; `lock watch` reporting it by push;
 * `--exec` with the token in its environment.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOLS_UNDER_TEST, cleanup, cli, freeBase, spawnCli, tempDir, useSourceNodes, waitFor, type CliProcess as Proc } from './helpers';

useSourceNodes();

interface Acquired {
  name: string;
  token: number;
  session: number;
}

/** The JSON line `lock acquire --json` prints once it holds the lock. */
const acquired = (p: Proc, what: string): Promise<Acquired> =>
  waitFor(what, async () => {
    const line = p.lines().find((l) => l.startsWith('{'));
    return line === undefined ? undefined : (JSON.parse(line) as Acquired);
  }, 60_000);

interface ListJson {
  locks: { name: string; kind: string; holders: { session: number; token: number }[]; waiters: { session: number; index: number }[] }[];
  sessions: { id: number; owner: string }[];
}

async function listOf(dir: string): Promise<ListJson> {
  const r = await cli('lock', 'list', '--dir', dir, '--json');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as ListJson;
}

for (const protocol of PROTOCOLS_UNDER_TEST) {
  describe(`consensus-cli lock on a 3-node ${protocol} cluster`, () => {
    let dir = '';
    const running: Proc[] = [];
    const run = (args: string[]) => {
      const p = spawnCli([...args, '--dir', dir]);
      running.push(p);
      return p;
    };
    beforeAll(async () => {
      dir = tempDir();
      const r = await cli('start', '--dir', dir, '--protocol', protocol, '--port', String(await freeBase()), '--detach', '--json');
      if (r.code !== 0) throw new Error(`start failed: ${r.err}`);
    });
    afterAll(async () => {
      for (const p of running) p.signal('SIGKILL');
      await cleanup(dir);
    });

    it('a second acquire waits behind the first (lock list shows holder and waiter, lock watch the handoff) and gets a higher token when the first releases', async () => {
      const watch = run(['lock', 'watch', 'jobs/a', '--json']);
      await waitFor('the watch to start', async () => (watch.lines().length > 0 ? true : undefined), 60_000);
      const first = run(['lock', 'acquire', 'jobs/a', '--json', '--owner', 'first']);
      const a = await acquired(first, 'the first grant');
      const second = run(['lock', 'acquire', 'jobs/a', '--json', '--owner', 'second']);
      const list = await waitFor('the second acquire to queue', async () => {
        const l = await listOf(dir);
        return l.locks[0]?.waiters.length === 1 ? l : undefined;
      });
      expect(list.locks).toMatchObject([{ name: 'jobs/a', kind: 'mutex', holders: [{ session: a.session, token: a.token }], waiters: [{}] }]);
      const waiter = list.locks[0]?.waiters[0]?.session as number;
      expect(waiter).not.toBe(a.session);
      expect(new Map(list.sessions.map((s) => [s.id, s.owner]))).toEqual(new Map([[a.session, 'first'], [waiter, 'second']]));
      const human = await cli('lock', 'list', '--dir', dir);
      expect(human.out).toContain(`held by first (session ${a.session}) token ${a.token}`);
      expect(human.out).toContain(`waiting #1: second (session ${waiter})`);
      expect(second.lines()).toEqual([]);

      first.signal('SIGTERM');
      expect(await first.exited).toBe(0);
      const b = await acquired(second, 'the second grant');
      expect(b.session).toBe(waiter);
      expect(b.token).toBeGreaterThan(a.token);
      second.signal('SIGINT');
      expect(await second.exited).toBe(0);

      const events = () => watch.lines().map((l) => JSON.parse(l) as { type: string; token?: number; session?: number });
      await waitFor('the watch to see the second release', async () => (events().filter((e) => e.type === 'released').length >= 2 ? true : undefined), 30_000);
      expect(events().map((e) => [e.type, e.token ?? e.session])).toEqual([
        ['state', undefined],
        ['granted', a.token],
        ['waiting', waiter],
        ['released', a.token],
        ['granted', b.token],
        ['released', b.token],
      ]);
      watch.signal('SIGTERM');
      expect(await watch.exited).toBe(0);
      expect((await listOf(dir)).locks).toEqual([]);
    });

    it('kill -9 of the holder: its session expires and the waiter gets the lock with a higher token', async () => {
      const first = run(['lock', 'acquire', 'jobs/b', '--json', '--ttl', '2s']);
      const a = await acquired(first, 'the first grant');
      const second = run(['lock', 'acquire', 'jobs/b', '--json', '--ttl', '2s']);
      await waitFor('the second acquire to queue', async () => ((await listOf(dir)).locks[0]?.waiters.length === 1 ? true : undefined));
      first.signal('SIGKILL');
      const b = await acquired(second, 'the grant after the holder died');
      expect(b.token).toBeGreaterThan(a.token);
      second.signal('SIGTERM');
      expect(await second.exited).toBe(0);
    });

    it('--exec runs the command with the token in CK_LOCK_TOKEN, releases after it and exits with its code', async () => {
      const p = run(['lock', 'acquire', 'jobs/c', '--exec', 'echo "token=$CK_LOCK_TOKEN name=$CK_LOCK_NAME"; exit 7']);
      expect(await p.exited).toBe(7);
      const lines = p.lines();
      const token = Number(/fencing token (\d+)/.exec(lines[0] ?? '')?.[1]);
      expect(token).toBeGreaterThan(0);
      expect(lines).toContain(`token=${token} name=jobs/c`);
      expect((await listOf(dir)).locks).toEqual([]);
    });

    it('lock release closes the session of a holder that does not release: the holder learns and exits 1, the waiter gets a higher token', async () => {
      const first = run(['lock', 'acquire', 'jobs/d', '--json', '--ttl', '3s']);
      const a = await acquired(first, 'the first grant');
      const second = run(['lock', 'acquire', 'jobs/d', '--json']);
      await waitFor('the second acquire to queue', async () => ((await listOf(dir)).locks.find((l) => l.name === 'jobs/d')?.waiters.length === 1 ? true : undefined));
      const r = await cli('lock', 'release', 'jobs/d', '--dir', dir, '--json');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ name: 'jobs/d', session: a.session, tokens: [a.token] });
      const b = await acquired(second, 'the grant after the release');
      expect(b.token).toBeGreaterThan(a.token);
      // The holder's next keepalive (every TTL/3) finds its session gone: it gives the lock up and says so.
      expect(await first.exited).toBe(1);
      expect(first.stderr()).toMatch(/lock acquire jobs\/d: .*lost.*stop using token/);
      second.signal('SIGTERM');
      expect(await second.exited).toBe(0);
      const none = await cli('lock', 'release', 'jobs/d', '--dir', dir);
      expect([none.code, none.err]).toEqual([1, 'consensus-cli: lock release jobs/d: nobody holds "jobs/d"\n']);
    });

    it('semaphore: two holders of 2 permits at once, a third waits (semaphore list shows them); --exec of a lost hold is stopped and the command exits 1', async () => {
      const holders = [run(['semaphore', 'acquire', 'pool', '--permits', '2', '--json']), run(['semaphore', 'acquire', 'pool', '--permits', '2', '--json'])];
      const got = await Promise.all(holders.map((h, i) => acquired(h, `permit ${i + 1}`)));
      expect(new Set(got.map((g) => g.session)).size).toBe(2);
      const third = run(['semaphore', 'acquire', 'pool', '--permits', '2', '--ttl', '2s', '--exec', 'echo started; sleep 60']);
      const listed = await waitFor('the third to queue', async () => {
        const r = await cli('semaphore', 'list', '--dir', dir, '--json');
        const l = (JSON.parse(r.out) as ListJson).locks.find((x) => x.name === 'pool');
        return l?.waiters.length === 1 ? l : undefined;
      });
      expect(listed).toMatchObject({ kind: 'semaphore', holders: [...got].sort((x, y) => x.token - y.token).map((g) => ({ session: g.session, token: g.token })) });
      expect((await cli('lock', 'list', '--dir', dir, '--json')).out).not.toContain('"pool"'); // lock list: mutexes and rwlocks
      holders[0]?.signal('SIGTERM');
      await waitFor('the third to run its command', async () => (third.lines().includes('started') ? true : undefined));
      // The third's session is closed under it: its command gets SIGTERM and the acquire exits 1.
      const session = (JSON.parse((await cli('semaphore', 'list', '--dir', dir, '--json')).out) as ListJson).locks[0]?.holders.map((h) => h.session) ?? [];
      const thirdSession = session.find((s) => s !== got[1]?.session) as number;
      expect((await cli('lock', 'release', 'pool', '--session', String(thirdSession), '--dir', dir)).code).toBe(0);
      expect(await third.exited).toBe(1);
      expect(third.stderr()).toMatch(/semaphore acquire pool: .*lost.*the command was stopped/);
      holders[1]?.signal('SIGTERM');
      expect(await holders[1]?.exited).toBe(0);
    });

    it('--mode read: two readers hold the lock at once, a writer waits for both', async () => {
      const readers = [run(['lock', 'acquire', 'cfg', '--mode', 'read', '--json']), run(['lock', 'acquire', 'cfg', '--mode', 'read', '--json'])];
      const got = await Promise.all(readers.map((r, i) => acquired(r, `reader ${i + 1}`)));
      expect(got.map((g) => (g as Acquired & { mode: string }).mode)).toEqual(['read', 'read']);
      const writer = run(['lock', 'acquire', 'cfg', '--mode', 'write', '--json']);
      const l = await waitFor('the writer to queue', async () => {
        const x = (await listOf(dir)).locks.find((y) => y.name === 'cfg');
        return x?.waiters.length === 1 ? x : undefined;
      });
      expect(l).toMatchObject({ kind: 'rwlock' });
      expect(l.holders).toHaveLength(2);
      readers[0]?.signal('SIGTERM');
      await readers[0]?.exited;
      expect(writer.lines()).toEqual([]);
      readers[1]?.signal('SIGTERM');
      const w = await acquired(writer, 'the writer');
      expect(w.token).toBeGreaterThan(Math.max(...got.map((g) => g.token)));
      writer.signal('SIGTERM');
      expect(await writer.exited).toBe(0);
    });

    it('a cluster without a majority: acquire and list fail within --timeout with one line saying so', async () => {
      expect((await cli('kill', 'n1', '--dir', dir)).code).toBe(0);
      expect((await cli('kill', 'n2', '--dir', dir)).code).toBe(0);
      const started = Date.now();
      const acquire = await cli('lock', 'acquire', 'jobs/e', '--timeout', '1s', '--hold', '1ms', '--dir', dir);
      expect(acquire.code).toBe(1);
      expect(acquire.err).toMatch(/^consensus-cli: lock acquire jobs\/e: (the cluster did not answer .*no leader or no majority\?|not acquired within 1s)/);
      const list = await cli('lock', 'list', '--timeout', '1s', '--dir', dir);
      expect(list.code).toBe(1);
      expect(list.err).toMatch(/^consensus-cli: lock list: gave up after 1s \(--timeout\)/);
      expect(Date.now() - started).toBeLessThan(15_000);
    });
  });
}

describe('lock command arguments', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(async () => {
    await cleanup(dir);
  });

  it('refuses bad arguments with a usage error before talking to any cluster', async () => {
    for (const args of [
      ['lock', 'acquire', 'm', '--mode', 'exclusive'],
      ['lock', 'acquire', 'm', '--hold', '1s', '--exec', 'true'],
      ['semaphore', 'acquire', 's'],
      ['semaphore', 'acquire', 's', '--permits', '2', '--count', '3'],
      ['semaphore', 'acquire', 's', '--permits', '0'],
    ]) {
      const r = await cli(...args, '--dir', join(dir, 'none'));
      expect(r.code, args.join(' ')).toBe(2);
    }
  });
});
