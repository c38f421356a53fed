import { Option, type Command } from 'commander';
import { isConsensusError } from '@consensus-kit/core';
import { watchKeys, type KvEvent, type KvValue } from '@consensus-kit/kv';
import { createRpcClient } from '@consensus-kit/transport-tcp';
import { CliError } from '../errors';
import type { CliKit } from '../kit';
import { outputFor } from '../render';
import type { Target } from '../target';
import { untilStopped } from '../until-stopped';

export interface WatchCommandOptions {
  target: Target;
  prefix?: boolean;
  /** First revision to print (history is replayed from it). */
  rev?: number;
  prevKv?: boolean;
  json?: boolean;
  /** Print progress notifications (the revision the watch is complete up to, when it is quiet). */
  progress?: boolean;
  /** Ends the watch (exit 0); the command also ends on SIGINT, SIGTERM and SIGHUP. */
  signal?: AbortSignal;
  /** Where each line goes (default: console.log). */
  print?: (line: string) => void;
}

const text = (v: KvValue) => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

/** One line per event: etcdctl's three-line form made one line (`PUT key value`), or JSON with --json. */
export function describeEvent(e: KvEvent, json: boolean): string {
  if (json) {
    const prev = e.prev === undefined ? {} : { prev: { ...e.prev, value: text(e.prev.value) } };
    return e.type === 'put'
      ? JSON.stringify({ type: 'put', revision: e.revision, key: e.kv.key, value: text(e.kv.value), kv: { ...e.kv, value: text(e.kv.value) }, ...prev })
      : JSON.stringify({ type: 'delete', revision: e.revision, key: e.key, ...prev });
  }
  const prev = e.prev === undefined ? '' : ` (was ${JSON.stringify(text(e.prev.value))})`;
  return e.type === 'put' ? `PUT ${e.kv.key} ${JSON.stringify(text(e.kv.value))} rev=${e.revision}${prev}` : `DELETE ${e.key} rev=${e.revision}${prev}`;
}

/**
 * `watch <key>`: prints every change of the key (or of every key under it with --prefix), one line each, until
 * Ctrl-C or SIGTERM (exit 0). With --rev the history from that revision is printed first. The watch survives a
 * node crash or a leader change: it reconnects to another node and resumes from the last revision printed, so
 * no event is printed twice or skipped (a note goes to stderr). A compacted --rev, a refused handshake or a bad
 * argument end it with a message and a non-zero exit.
 */
export async function watchCommand(o: WatchCommandOptions, key: string): Promise<void> {
  const out = outputFor(o);
  const print = o.print ?? ((line: string) => console.log(line));
  const t = o.target;
  const rpc = createRpcClient({
    endpoints: t.endpoints,
    clusterId: t.clusterId,
    connectTimeoutMs: 300,
    ...(t.secret !== undefined ? { secret: t.secret } : {}),
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
  });
  const stop = untilStopped(o.signal);
  try {
    const watch = watchKeys(rpc, key, {
      signal: stop.signal,
      ...(o.prefix === true ? { prefix: true } : {}),
      ...(o.rev !== undefined && o.rev > 0 ? { startRevision: o.rev } : {}),
      ...(o.prevKv === true ? { prevKv: true } : {}),
      ...(o.progress === true ? { progressNotify: true } : {}),
      onReconnect: ({ error, resumeFrom }) => {
        process.stderr.write(`watch: ${error.message}; reconnecting${resumeFrom !== undefined ? ` from revision ${resumeFrom}` : ''}\n`);
      },
    });
    for await (const batch of watch) {
      if (batch.progress === true) {
        print(out.json ? JSON.stringify({ type: 'progress', revision: batch.revision }) : `PROGRESS rev=${batch.revision}`);
        continue;
      }
      for (const e of batch.events) print(describeEvent(e, out.json));
    }
  } catch (e) {
    if (isConsensusError(e)) throw new CliError(`watch ${key}: ${e.message}`);
    throw e;
  } finally {
    stop.dispose();
    await rpc.close();
  }
}

/** Registers the `watch` commands. */
export function registerWatchCommands(program: Command, kit: CliKit): void {
  kit.target(
    program
      .command('watch <key>')
      .description('print every change of a key (or prefix) as it happens, until Ctrl-C; --rev replays history first')
      .option('--prefix', 'watch every key that starts with <key>')
      .addOption(new Option('--rev <revision>', 'start at this revision (replaying history from it); default: now').argParser(kit.intArg('--rev', 1, Number.MAX_SAFE_INTEGER)))
      .option('--prev-kv', "print each event's previous value")
      .option('--progress', 'also print progress notifications (the revision the watch is complete up to) while quiet')
      .addOption(kit.json())
      .action((k: string, o: Omit<WatchCommandOptions, 'target'>, cmd: Command) => watchCommand({ ...o, target: kit.targetOf(cmd) }, k)),
  );
}
