import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { ErrorCode, isConsensusError } from '@consensus-kit/core';
import type { LockHandle, LockInfo, LockMode, LockQuery, SessionInfo } from '@consensus-kit/lock';
import { createLockClient } from '@consensus-kit/lock/tcp';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { DEFAULT_KV_TIMEOUT_MS, formatDuration, withDeadline } from '../deadline';
import { CliError } from '../errors';
import type { CliKit } from '../kit';
import type { LockWatchEvent, LockWatchPush } from '../lock-watch';
import { outputFor } from '../render';
import type { Target } from '../target';
import { untilStopped } from '../until-stopped';

export interface LockCommandOptions {
  target: Target;
  json?: boolean;
  /** `--timeout`: give up after this many ms (default `DEFAULT_KV_TIMEOUT_MS`). */
  timeout?: number;
  /** `lock list --prefix`: only locks whose name starts with it. */
  prefix?: string;
  /** Where each line goes (default: console.log). */
  print?: (line: string) => void;
}

const READ_NOTE = 'no majority answered in time (`consensus-cli status` shows the nodes)';

const say = (o: { print?: (line: string) => void }) => o.print ?? ((line: string) => console.log(line));

/** A request channel to the target cluster's lock service (on the nodes' client port): follows redirects to the leader. */
export function connectLocks(t: Target, timeoutMs: number): RpcClient {
  return createRpcClient({
    endpoints: t.endpoints,
    clusterId: t.clusterId,
    connectTimeoutMs: 300,
    timeoutMs,
    ...(t.secret !== undefined ? { secret: t.secret } : {}),
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
  });
}

/** A linearizable lock-table read (`lock.read`), within the command's deadline. */
async function readLocks<T>(o: LockCommandOptions, what: string, q: LockQuery): Promise<T>;
async function readLocks<T>(o: LockCommandOptions, what: string, q: LockQuery[]): Promise<T>;
async function readLocks(o: LockCommandOptions, what: string, q: LockQuery | LockQuery[]): Promise<unknown> {
  const timeoutMs = o.timeout ?? DEFAULT_KV_TIMEOUT_MS;
  const rpc = connectLocks(o.target, timeoutMs + 1000);
  try {
    return await withDeadline(timeoutMs, { what, byDefault: o.timeout === undefined, note: READ_NOTE }, (signal) => {
      const call = signal ? { signal } : {};
      return Array.isArray(q) ? Promise.all(q.map((one) => rpc.request({ t: 'lock.read', q: one }, call))) : rpc.request({ t: 'lock.read', q }, call);
    });
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (isConsensusError(e)) throw new CliError(`${what}: ${e.message} [${e.code}]`);
    throw e;
  } finally {
    await rpc.close();
  }
}

/** `owner (session 3)`, or `session 3` when the session has no owner name. */
function sessionLabel(session: number, owners: ReadonlyMap<number, string>): string {
  const owner = owners.get(session);
  return owner !== undefined && owner !== '' ? `${owner} (session ${session})` : `session ${session}`;
}

/**
 * One lock as `lock list` prints it: its name and kind, then each holder (session, owner, fencing token, mode)
 * and each waiter in FIFO order (the log order of their enqueue entries).
 */
export function describeLock(l: LockInfo, owners: ReadonlyMap<number, string> = new Map()): string[] {
  const kind = l.kind === 'semaphore' ? `semaphore ${l.holders.reduce((n, h) => n + h.count, 0)}/${l.permits}` : l.kind;
  const lines = [`${l.name} (${kind}): ${l.holders.length} holder${l.holders.length === 1 ? '' : 's'}, ${l.waiters.length} waiting`];
  for (const h of l.holders) {
    const extra = [h.mode !== 'mutex' && h.mode !== 'semaphore' ? h.mode : '', h.count > 1 ? `x${h.count}` : ''].filter((s) => s !== '').join(' ');
    lines.push(`  held by ${sessionLabel(h.session, owners)} token ${h.token}${extra === '' ? '' : ` ${extra}`}`);
  }
  l.waiters.forEach((w, i) => {
    const extra = [w.mode !== 'mutex' && w.mode !== 'semaphore' ? w.mode : '', w.count > 1 ? `x${w.count}` : ''].filter((s) => s !== '').join(' ');
    lines.push(`  waiting #${i + 1}: ${sessionLabel(w.session, owners)} since index ${w.index}${extra === '' ? '' : ` ${extra}`}`);
  });
  if (l.delayUntil > 0) lines.push(`  lock-delay until replicated time ${l.delayUntil} ms`);
  return lines;
}

/**
 * `lock list [--prefix p]`: every lock with holders or waiters, each holder with its fencing token and session,
 * waiters in FIFO order (--json: one object with `locks` and the `sessions` they belong to).
 */
export async function lockList(o: LockCommandOptions, kinds?: readonly LockInfo['kind'][]): Promise<void> {
  const what = kinds?.includes('semaphore') === true && kinds.length === 1 ? 'semaphore list' : 'lock list';
  const [all, sessions] = await readLocks<[LockInfo[], SessionInfo[]]>(o, what, [
    { op: 'locks', ...(o.prefix !== undefined ? { prefix: o.prefix } : {}) },
    { op: 'sessions' },
  ]);
  const locks = kinds === undefined ? all : all.filter((l) => kinds.includes(l.kind));
  const print = say(o);
  if (outputFor(o).json) {
    const used = new Set(locks.flatMap((l) => [...l.holders.map((h) => h.session), ...l.waiters.map((w) => w.session)]));
    print(JSON.stringify({ locks, sessions: sessions.filter((s) => used.has(s.id)).map(({ id, ttl, remaining, owner }) => ({ id, ttl, remaining, owner })) }));
    return;
  }
  if (locks.length === 0) {
    print(what === 'semaphore list' ? 'no semaphores held or awaited' : 'no locks held or awaited');
    return;
  }
  const owners = new Map(sessions.map((s) => [s.id, s.owner]));
  for (const l of locks) for (const line of describeLock(l, owners)) print(line);
}

/** The lock client's session TTL when `--ttl` is not given. */
export const DEFAULT_LOCK_TTL_MS = 10_000;
/** The environment variables `--exec` sets for its command. */
export const LOCK_ENV = { token: 'CK_LOCK_TOKEN', name: 'CK_LOCK_NAME', session: 'CK_LOCK_SESSION' } as const;

export interface AcquireCommandOptions extends LockCommandOptions {
  /** `--ttl`: the session's TTL in ms. */
  ttl?: number;
  /** `--mode read|write` (a read/write lock); absent: a mutex. Set to 'semaphore' by `semaphore acquire`. */
  mode?: LockMode;
  /** `semaphore acquire --permits N`: the semaphore's size. */
  permits?: number;
  /** `semaphore acquire --count k`: permits to take (default 1). */
  count?: number;
  /** `--hold <duration>`: release after this long (default: hold until Ctrl-C, SIGTERM or SIGHUP). */
  hold?: number;
  /** `--exec <cmd>`: run the command (through the shell) while holding, then release; exit with its code. */
  exec?: string;
  /** `--owner`: the name `lock list` shows for the session (default user@host pid). */
  owner?: string;
  /** Ends the hold (exit 0), as Ctrl-C does. */
  signal?: AbortSignal;
}

/** The errors a cluster answers that mean it cannot serve now (no leader, no quorum): said as such. */
function unavailable(e: unknown): boolean {
  return isConsensusError(e) && [ErrorCode.NOT_LEADER, ErrorCode.TIMEOUT, ErrorCode.TRANSPORT, ErrorCode.LEADERSHIP_LOST, ErrorCode.PROPOSAL_DROPPED].includes(e.code as never);
}

function lockError(what: string, e: unknown): unknown {
  if (e instanceof CliError) return e;
  if (unavailable(e)) return new CliError(`${what}: the cluster did not answer (${(e as Error).message}); no leader or no majority? \`consensus-cli status\` shows the nodes`);
  if (isConsensusError(e)) return new CliError(`${what}: ${e.message} [${e.code}]`, e.code === ErrorCode.INVALID_ARGUMENT ? 2 : 1);
  return e;
}

/** Checks the flags of `lock acquire` / `semaphore acquire` before anything is sent. */
export function checkAcquireOptions(o: Omit<AcquireCommandOptions, 'target'>, what: string): void {
  if (o.hold !== undefined && o.exec !== undefined) throw new CliError(`${what}: --hold and --exec exclude each other (--exec holds while its command runs)`, 2);
  if (o.exec !== undefined && o.exec.trim() === '') throw new CliError(`${what}: --exec needs a command`, 2);
  if (o.mode === 'semaphore') {
    if (o.permits === undefined) throw new CliError(`${what}: --permits <n> (the semaphore's size) is required`, 2);
    if (o.count !== undefined && o.count > o.permits) throw new CliError(`${what}: --count ${o.count} exceeds --permits ${o.permits}`, 2);
  }
  if (o.ttl !== undefined && o.ttl < 3) throw new CliError(`${what}: --ttl must be at least 3ms`, 2);
}

/** Resolves once `signal` aborts (at once if it has). */
const aborted = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });

/**
 * `lock acquire <name>` and `semaphore acquire <name>`: waits for the lock (FIFO behind earlier waiters; at most
 * `--timeout`), prints its fencing token, then holds it, keeping the session alive, until Ctrl-C / SIGTERM /
 * SIGHUP, for `--hold`, or while `--exec`'s command runs (with the token in CK_LOCK_TOKEN; the command's exit
 * code becomes this one's). Released on the way out. If the hold is lost meanwhile (the cluster expired the
 * session, or no keepalive was acknowledged for a TTL) the command says so and exits 1 (an `--exec` command is
 * sent SIGTERM first): whatever it guarded must stop.
 */
export async function lockAcquire(o: AcquireCommandOptions, name: string): Promise<void> {
  const kind = o.mode === 'semaphore' ? 'semaphore' : 'lock';
  const what = `${kind} acquire ${name}`;
  checkAcquireOptions(o, what);
  const print = say(o);
  const json = outputFor(o).json;
  const t = o.target;
  const client = createLockClient({
    endpoints: t.endpoints,
    clusterId: t.clusterId,
    ttlMs: o.ttl ?? DEFAULT_LOCK_TTL_MS,
    // One call (opening the session, queueing, releasing) gives up within --timeout too: a cluster without a
    // leader or a majority fails the command then, not only after the default.
    timeoutMs: Math.min(o.timeout ?? DEFAULT_KV_TIMEOUT_MS, DEFAULT_KV_TIMEOUT_MS),
    owner: o.owner ?? `${process.env.USER ?? 'cli'}@${hostname()} pid ${process.pid}`,
    ...(t.secret !== undefined ? { secret: t.secret } : {}),
    ...(t.tls !== undefined ? { rpc: { tls: t.tls } } : {}),
  });
  const stop = untilStopped(o.signal);
  let held: LockHandle | undefined;
  try {
    try {
      held = await client.acquire(name, {
        signal: stop.signal,
        ...(o.mode !== undefined ? { mode: o.mode } : {}),
        ...(o.permits !== undefined ? { permits: o.permits } : {}),
        ...(o.count !== undefined ? { count: o.count } : {}),
        ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
      });
    } catch (e) {
      if (stop.signal.aborted) throw new CliError(`${what}: stopped while waiting (nothing held)`, 130);
      if (isConsensusError(e) && e.code === ErrorCode.TIMEOUT && o.timeout !== undefined && client.sessionId !== undefined) {
        throw new CliError(`${what}: not acquired within ${formatDuration(o.timeout)} (--timeout); \`consensus-cli ${kind} list\` shows who holds it`);
      }
      throw lockError(what, e);
    }
    const h = held;
    const session = client.sessionId ?? 0;
    print(
      json
        ? JSON.stringify({ name, token: h.token, session, mode: h.mode, ...(o.permits !== undefined ? { permits: o.permits, count: o.count ?? 1 } : {}) })
        : `acquired ${name} with fencing token ${h.token} (session ${session}${h.mode !== 'mutex' && h.mode !== 'semaphore' ? `, ${h.mode}` : ''})` +
            (o.exec !== undefined ? '' : o.hold !== undefined ? `; holding for ${formatDuration(o.hold)}` : '; holding until Ctrl-C'),
    );
    const lost = aborted(h.signal).then(() => 'lost' as const);
    if (o.exec !== undefined) {
      const code = await runWhileHeld(o.exec, { token: h.token, name, session }, h.signal, stop.signal);
      if (h.signal.aborted) throw new CliError(`${what}: ${(h.signal.reason as Error).message}; the command was stopped`);
      process.exitCode = code;
      return;
    }
    const until: Promise<'stopped' | 'lost'>[] = [aborted(stop.signal).then(() => 'stopped' as const), lost];
    let timer: NodeJS.Timeout | undefined;
    if (o.hold !== undefined) until.push(new Promise((resolve) => (timer = setTimeout(() => resolve('stopped'), o.hold))));
    const outcome = await Promise.race(until);
    clearTimeout(timer);
    if (outcome === 'lost') throw new CliError(`${what}: ${(h.signal.reason as Error).message}; stop using token ${h.token}`);
  } finally {
    stop.dispose();
    if (held?.held === true) await held.release().catch(() => undefined);
    if (held !== undefined && !json && held.signal.aborted === false) print(`released ${name} (token ${held.token})`);
    await client.close().catch(() => undefined);
  }
}

/**
 * Runs `cmd` through the shell with the lock's token in its environment; resolves with its exit code (128 +
 * signal number when a signal ended it). SIGTERM goes to it when the hold is lost or this command is stopped.
 */
function runWhileHeld(cmd: string, lock: { token: number; name: string; session: number }, lost: AbortSignal, stopped: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, {
      shell: true,
      stdio: 'inherit',
      env: { ...process.env, [LOCK_ENV.token]: String(lock.token), [LOCK_ENV.name]: lock.name, [LOCK_ENV.session]: String(lock.session) },
    });
    const term = () => child.kill('SIGTERM');
    lost.addEventListener('abort', term, { once: true });
    stopped.addEventListener('abort', term, { once: true });
    const done = () => {
      lost.removeEventListener('abort', term);
      stopped.removeEventListener('abort', term);
    };
    child.once('error', (e) => {
      done();
      reject(new CliError(`--exec ${JSON.stringify(cmd)}: cannot run it (${e.message})`));
    });
    child.once('exit', (code, signal) => {
      done();
      const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      resolve(code ?? 128 + (signal !== null ? (SIGNALS[signal] ?? 1) : 1));
    });
  });
}

/**
 * `lock release <name> [--session id]`: for a holder that cannot release (its process is gone, or hung): ends
 * the holding session in the cluster (`close`: every lock it holds is released at once, without lock-delay).
 * Its client, if it still runs, learns at its next keepalive (within a third of its TTL) that the session is
 * gone and gives the lock up; until then fencing refuses its writes once the next holder has written. With
 * several holders (a read lock, a semaphore), `--session` names the one.
 */
export async function lockRelease(o: LockCommandOptions & { session?: number }, name: string): Promise<void> {
  const what = `lock release ${name}`;
  const info = await readLocks<LockInfo | undefined>(o, what, { op: 'lock', name });
  const holders = info?.holders ?? [];
  if (holders.length === 0) throw new CliError(`${what}: nobody holds ${JSON.stringify(name)}`);
  const sessions = [...new Set(holders.map((h) => h.session))];
  let session = o.session;
  if (session === undefined) {
    if (sessions.length > 1) throw new CliError(`${what}: ${sessions.length} sessions hold it (${sessions.join(', ')}): say which with --session <id>`, 2);
    session = sessions[0] as number;
  } else if (!sessions.includes(session)) {
    throw new CliError(`${what}: session ${session} does not hold it (holders: ${sessions.join(', ')})`);
  }
  const timeoutMs = o.timeout ?? DEFAULT_KV_TIMEOUT_MS;
  const rpc = connectLocks(o.target, timeoutMs + 1000);
  try {
    const s = session;
    const r = await withDeadline(timeoutMs, { what, byDefault: o.timeout === undefined, note: 'the release may still take effect (`consensus-cli lock list` shows)' }, (signal) =>
      rpc.request<{ released: number }>({ t: 'lock.write', cmd: { op: 'close', session: s } }, signal ? { signal } : {}),
    );
    const tokens = holders.filter((h) => h.session === s).map((h) => h.token);
    say(o)(
      outputFor(o).json
        ? JSON.stringify({ name, session: s, tokens, released: r.released })
        : `released ${name} (token ${tokens.join(', ')}): closed session ${s}, which released ${r.released} hold${r.released === 1 ? '' : 's'} and waits in all`,
    );
  } catch (e) {
    throw lockError(what, e);
  } finally {
    await rpc.close();
  }
}

/** One watch event as a line: `GRANTED jobs token 42 session 7`, or JSON with --json. */
export function describeWatchEvent(name: string, index: number, e: LockWatchEvent, json: boolean): string {
  if (json) return JSON.stringify({ ...e, name, index });
  const mode = (m: LockMode) => (m === 'read' || m === 'write' ? ` (${m})` : '');
  switch (e.type) {
    case 'granted':
      return `GRANTED ${name} token ${e.token} session ${e.session}${mode(e.mode)}${e.count > 1 ? ` x${e.count}` : ''}`;
    case 'released':
      return `RELEASED ${name} token ${e.token} session ${e.session}`;
    case 'expired':
      return `EXPIRED ${name} token ${e.token} session ${e.session} (session expired; lock-delay follows)`;
    case 'waiting':
      return `WAITING ${name} session ${e.session} req ${e.req}${mode(e.mode)} #${e.position} in queue`;
    case 'left':
      return `LEFT ${name} session ${e.session} req ${e.req} (gave up or its session ended)`;
  }
}

function describeState(name: string, state: LockInfo | null, json: boolean, index: number): string {
  if (json) return JSON.stringify({ type: 'state', name, index, state });
  if (state === null) return `STATE ${name}: free, nobody waiting`;
  const holders = state.holders.map((h) => `session ${h.session} token ${h.token}`).join(', ');
  return `STATE ${name}: ${holders === '' ? 'free' : `held by ${holders}`}, ${state.waiters.length} waiting`;
}

/**
 * `lock watch <name>`: prints the lock's state, then its grants, releases, expiries and queue changes as they
 * are applied (server push from a node, `lock.watch`), until Ctrl-C / SIGTERM (exit 0). If the node goes away
 * it reconnects to another and prints the state again (a note goes to stderr).
 */
export async function lockWatch(o: LockCommandOptions & { signal?: AbortSignal }, name: string): Promise<void> {
  if (name === '') throw new CliError('lock watch needs a lock name', 2);
  const print = say(o);
  const json = outputFor(o).json;
  const rpc = connectLocks(o.target, DEFAULT_KV_TIMEOUT_MS);
  const stop = untilStopped(o.signal);
  let failures = 0;
  try {
    while (!stop.signal.aborted) {
      let heard = false;
      try {
        await rpc.subscribe(
          { t: 'lock.watch', name },
          (p) => {
            heard = true;
            const push = p as LockWatchPush;
            if ('state' in push) print(describeState(name, push.state, json, push.index));
            else for (const e of push.events) print(describeWatchEvent(name, push.index, e, json));
          },
          { signal: stop.signal },
        );
      } catch (e) {
        if (stop.signal.aborted) return;
        if (isConsensusError(e) && e.code === ErrorCode.INVALID_ARGUMENT) throw new CliError(`lock watch ${name}: ${e.message}`, 2);
        if (!heard && ++failures >= 50) throw lockError(`lock watch ${name}`, e);
        if (heard) failures = 0;
        process.stderr.write(`lock watch: ${(e as Error).message}; reconnecting\n`);
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    stop.dispose();
    await rpc.close();
  }
}

/** Registers `lock acquire|release|list|watch` and `semaphore acquire|list`. */
export function registerLockCommands(program: Command, kit: CliKit): void {
  const acquireOptions = (c: Command): Command =>
    c
      .addOption(new Option('--ttl <duration>', `the session's TTL: the cluster frees the lock this long after the holder stops answering (default ${formatDuration(DEFAULT_LOCK_TTL_MS)})`).argParser(kit.durationArg))
      .addOption(new Option('--timeout <duration>', 'give up waiting for the lock after this long (default: wait until Ctrl-C)').argParser(kit.durationArg))
      .addOption(new Option('--hold <duration>', 'release after this long (default: hold until Ctrl-C)').argParser(kit.durationArg))
      .option('--exec <command>', `run the command (through the shell) while holding, with the token in ${LOCK_ENV.token}; exit with its code`)
      .option('--owner <name>', 'the name `list` shows for this holder (default user@host pid)')
      .addOption(kit.json());
  const lock = program.command('lock').description('distributed locks with fencing tokens: mutex, read/write lock');
  kit.target(
    acquireOptions(
      lock
        .command('acquire <name>')
        .description('wait for a lock, print its fencing token and hold it until Ctrl-C (or --hold, or while --exec runs)')
        .addOption(new Option('--mode <mode>', 'take a read/write lock, for reading (shared) or writing (exclusive); default: a mutex').choices(['read', 'write'])),
    ).action((n: string, o: Omit<AcquireCommandOptions, 'target'>, cmd: Command) => {
      checkAcquireOptions(o, `lock acquire ${n}`); // before the target is resolved: a usage error whatever the cluster
      return lockAcquire({ ...o, target: kit.targetOf(cmd) }, n);
    }),
  );
  kit.target(
    lock
      .command('release <name>')
      .description("free a lock whose holder cannot release it: closes the holder's session (its client learns at its next keepalive)")
      .addOption(new Option('--session <id>', 'the holding session, when several hold it').argParser(kit.intArg('--session', 1, Number.MAX_SAFE_INTEGER)))
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((n: string, o: Omit<LockCommandOptions, 'target'> & { session?: number }, cmd: Command) => lockRelease({ ...o, target: kit.targetOf(cmd) }, n)),
  );
  kit.target(
    lock
      .command('list')
      .description('every lock held or awaited: holders with fencing token and session, waiters in FIFO order')
      .option('--prefix <prefix>', 'only locks whose name starts with this')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((o: Omit<LockCommandOptions, 'target'>, cmd: Command) => lockList({ ...o, target: kit.targetOf(cmd) }, ['mutex', 'rwlock'])),
  );
  kit.target(
    lock
      .command('watch <name>')
      .description('print grants, releases, expiries and queue changes of a lock as they happen, until Ctrl-C')
      .addOption(kit.json())
      .action((n: string, o: Omit<LockCommandOptions, 'target'>, cmd: Command) => lockWatch({ ...o, target: kit.targetOf(cmd) }, n)),
  );

  const semaphore = program.command('semaphore').description('counting semaphores with fencing tokens: at most N holders at once');
  kit.target(
    acquireOptions(
      semaphore
        .command('acquire <name>')
        .description('wait for permits of a semaphore, print the fencing token and hold them until Ctrl-C (or --hold, or while --exec runs)')
        .addOption(new Option('--permits <n>', "the semaphore's size (the same for every client of it)").argParser(kit.intArg('--permits', 1, 1_000_000)))
        .addOption(new Option('--count <k>', 'permits to take (default 1)').argParser(kit.intArg('--count', 1, 1_000_000))),
    ).action((n: string, o: Omit<AcquireCommandOptions, 'target' | 'mode'>, cmd: Command) => {
      checkAcquireOptions({ ...o, mode: 'semaphore' }, `semaphore acquire ${n}`);
      return lockAcquire({ ...o, mode: 'semaphore', target: kit.targetOf(cmd) }, n);
    }),
  );
  kit.target(
    semaphore
      .command('list')
      .description('every semaphore held or awaited: permits in use, holders with token and session, waiters in FIFO order')
      .option('--prefix <prefix>', 'only semaphores whose name starts with this')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((o: Omit<LockCommandOptions, 'target'>, cmd: Command) => lockList({ ...o, target: kit.targetOf(cmd) }, ['semaphore'])),
  );
}
