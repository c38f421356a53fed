import type { Command } from 'commander';
import { isConsensusError } from '@consensus-kit/core';
import type { LockInfo, LockQuery, SessionInfo } from '@consensus-kit/lock';
import { createRpcClient, type RpcClient } from '@consensus-kit/transport-tcp';
import { DEFAULT_KV_TIMEOUT_MS, withDeadline } from '../deadline';
import { CliError } from '../errors';
import type { CliKit } from '../kit';
import { outputFor } from '../render';
import type { Target } from '../target';

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

/** Registers `lock list` (the lock service's commands). */
export function registerLockCommands(program: Command, kit: CliKit): void {
  const lock = program.command('lock').description('distributed locks with fencing tokens (mutex and read/write lock)');
  kit.target(
    lock
      .command('list')
      .description('every lock held or awaited: holders with fencing token and session, waiters in FIFO order')
      .option('--prefix <prefix>', 'only locks whose name starts with this')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((o: Omit<LockCommandOptions, 'target'>, cmd: Command) => lockList({ ...o, target: kit.targetOf(cmd) }, ['mutex', 'rwlock'])),
  );
}
