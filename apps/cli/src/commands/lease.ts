import type { Command } from 'commander';
import { isConsensusError } from '@consensus-kit/core';
import { LeaseNotFoundError, type KvClient, type LeaseInfo } from '@consensus-kit/kv';
import { connectKv } from '../connect';
import { DEFAULT_KV_TIMEOUT_MS, formatDuration, withDeadline } from '../deadline';
import { CliError } from '../errors';
import type { CliKit } from '../kit';
import { outputFor } from '../render';
import type { Target } from '../target';
import { untilStopped } from '../until-stopped';

export interface LeaseCommandOptions {
  target: Target;
  json?: boolean;
  /** `--timeout`: give up after this many ms (default `DEFAULT_KV_TIMEOUT_MS`). */
  timeout?: number;
  /** `lease ttl --keys`: list the keys attached. */
  keys?: boolean;
  /** `lease keepalive`: ends the command (exit 0); it also ends on SIGINT, SIGTERM and SIGHUP. */
  signal?: AbortSignal;
  /** Where each line goes (default: console.log). */
  print?: (line: string) => void;
}

const WRITE_NOTE = 'the write may still take effect (no majority answered in time: `consensus-cli status` shows the nodes)';
const READ_NOTE = 'no majority answered in time (`consensus-cli status` shows the nodes)';

/** A lease id as the commands take it: a positive decimal integer (etcdctl prints hex; these ids are small counters). */
export function parseLeaseId(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(String(text).trim()) || !Number.isSafeInteger(n) || n <= 0) throw new CliError(`<id> must be a lease id (a positive integer), got ${JSON.stringify(text)}`, 2);
  return n;
}

async function withLeases<T>(o: LeaseCommandOptions, what: string, note: string, fn: (kv: KvClient, call: { signal?: AbortSignal }) => Promise<T>): Promise<T> {
  const timeoutMs = o.timeout ?? DEFAULT_KV_TIMEOUT_MS;
  const { kv } = connectKv(o.target, { timeoutMs: timeoutMs + 1000 });
  try {
    return await withDeadline(timeoutMs, { what, byDefault: o.timeout === undefined, note }, (signal) => fn(kv, signal ? { signal } : {}));
  } catch (e) {
    if (LeaseNotFoundError.is(e)) throw new CliError(`${what}: lease ${e.leaseId} not found (expired, revoked or never granted)`);
    throw e;
  } finally {
    await kv.close();
  }
}

const say = (o: LeaseCommandOptions) => o.print ?? ((line: string) => console.log(line));

/** `lease grant <ttl>`: prints the new lease's id (`lease 3 granted with TTL 10s`; --json: the answer). */
export function leaseGrant(o: LeaseCommandOptions, ttlMs: number): Promise<void> {
  return withLeases(o, 'lease grant', WRITE_NOTE, async (kv, call) => {
    const r = await kv.leases.grant(Math.ceil(ttlMs), call);
    say(o)(outputFor(o).json ? JSON.stringify({ id: r.id, ttl: r.ttl }) : `lease ${r.id} granted with TTL ${formatDuration(r.ttl)}`);
  });
}

/** `lease revoke <id>`: revokes it and deletes its keys. */
export function leaseRevoke(o: LeaseCommandOptions, id: number): Promise<void> {
  return withLeases(o, `lease revoke ${id}`, WRITE_NOTE, async (kv, call) => {
    const r = await kv.leases.revoke(id, call);
    say(o)(outputFor(o).json ? JSON.stringify({ id, revision: r.revision, deleted: r.deleted }) : `lease ${id} revoked (${r.deleted} key${r.deleted === 1 ? '' : 's'} deleted, revision ${r.revision})`);
  });
}

function describeLease(l: LeaseInfo): string {
  return `lease ${l.id}: granted TTL ${formatDuration(l.ttl)}, remaining ${formatDuration(l.remaining)}`;
}

/** `lease ttl <id> [--keys]`: the granted TTL, what remains of it, and the attached keys. */
export function leaseTtl(o: LeaseCommandOptions, id: number): Promise<void> {
  return withLeases(o, `lease ttl ${id}`, READ_NOTE, async (kv, call) => {
    const l = await kv.leases.timeToLive(id, { ...(o.keys ? { keys: true } : {}), ...call });
    if (outputFor(o).json) {
      say(o)(JSON.stringify(l));
      return;
    }
    say(o)(describeLease(l) + (l.keys !== undefined ? `, attached keys [${l.keys.join(', ')}]` : ''));
  });
}

/** `lease list`: every live lease, one line each (--json: one array). */
export function leaseList(o: LeaseCommandOptions): Promise<void> {
  return withLeases(o, 'lease list', READ_NOTE, async (kv, call) => {
    const all = await kv.leases.list(call);
    if (outputFor(o).json) say(o)(JSON.stringify(all));
    else if (all.length === 0) say(o)('no leases');
    else for (const l of all) say(o)(describeLease(l));
  });
}

/**
 * `lease keepalive <id>`: keeps the lease alive until Ctrl-C (or SIGTERM, SIGHUP), exit 0. The first keepalive
 * is sent at once (a missing lease fails at once); afterwards one every TTL/3. If the lease is lost (the cluster
 * reports it expired or revoked, or no keepalive was acknowledged for a whole TTL) the command ends with a
 * message and a non-zero exit, so a script can stop what the lease stood for.
 */
export async function leaseKeepAlive(o: LeaseCommandOptions, id: number): Promise<void> {
  const print = say(o);
  const json = outputFor(o).json;
  const timeoutMs = o.timeout ?? DEFAULT_KV_TIMEOUT_MS;
  const { kv } = connectKv(o.target, { timeoutMs });
  const stop = untilStopped(o.signal);
  try {
    const first = await kv.leases.keepAliveOnce(id, { signal: stop.signal });
    const ttl = first.kept[0]?.[1];
    if (ttl === undefined) throw new CliError(`lease keepalive ${id}: lease ${id} not found (expired, revoked or never granted)`);
    print(json ? JSON.stringify({ id, ttl, kept: true }) : `lease ${id} kept alive (TTL ${formatDuration(ttl)}); Ctrl-C to stop`);
    const keeper = kv.leases.keepAlive(id);
    const stopped = new Promise<'stopped'>((resolve) => {
      if (stop.signal.aborted) resolve('stopped');
      stop.signal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const outcome = await Promise.race([keeper.lost, stopped]);
    if (outcome === 'stopped') {
      keeper.stop();
      return;
    }
    const why = outcome.reason === 'not-found' ? 'expired or revoked' : `no keepalive was acknowledged for its TTL; it may have expired`;
    throw new CliError(`lease keepalive ${id}: lease lost (${why})`);
  } catch (e) {
    if (stop.signal.aborted && !(e instanceof CliError)) return;
    if (e instanceof CliError) throw e;
    if (isConsensusError(e)) throw new CliError(`lease keepalive ${id}: ${e.message}`);
    throw e;
  } finally {
    stop.dispose();
    await kv.close();
  }
}

/** Registers `lease grant|keepalive|revoke|ttl|list`. */
export function registerLeaseCommands(program: Command, kit: CliKit): void {
  const lease = program.command('lease').description('leases: keys that vanish when their lease expires (service discovery, liveness)');
  kit.target(
    lease
      .command('grant <ttl>')
      .description('grant a lease (TTL as 10s, 500ms, 2m; a bare number is seconds) and print its id')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((ttl: string, o: Omit<LeaseCommandOptions, 'target'>, cmd: Command) => leaseGrant({ ...o, target: kit.targetOf(cmd) }, kit.durationArg(ttl))),
  );
  kit.target(
    lease
      .command('keepalive <id>')
      .description('keep a lease alive until Ctrl-C; exits non-zero if the lease is lost')
      .addOption(kit.json())
      .action((id: string, o: Omit<LeaseCommandOptions, 'target'>, cmd: Command) => leaseKeepAlive({ ...o, target: kit.targetOf(cmd) }, parseLeaseId(id))),
  );
  kit.target(
    lease
      .command('revoke <id>')
      .description('revoke a lease and delete its keys')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((id: string, o: Omit<LeaseCommandOptions, 'target'>, cmd: Command) => leaseRevoke({ ...o, target: kit.targetOf(cmd) }, parseLeaseId(id))),
  );
  kit.target(
    lease
      .command('ttl <id>')
      .description("a lease's granted TTL and remaining time")
      .option('--keys', 'also list the keys attached to it')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((id: string, o: Omit<LeaseCommandOptions, 'target'>, cmd: Command) => leaseTtl({ ...o, target: kit.targetOf(cmd) }, parseLeaseId(id))),
  );
  kit.target(
    lease
      .command('list')
      .description('every live lease')
      .addOption(kit.kvTimeout())
      .addOption(kit.json())
      .action((o: Omit<LeaseCommandOptions, 'target'>, cmd: Command) => leaseList({ ...o, target: kit.targetOf(cmd) })),
  );
}
