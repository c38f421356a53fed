import { Argument, Command, CommanderError, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { bench } from './commands/bench';
import { heal, inspectNode, leaderTransfer, membersAdd, membersList, membersRemove, partition } from './commands/admin';
import { kill, restart, start, status, stop } from './commands/cluster';
import { compact, del, get, put, range, txn } from './commands/kv';
import { node } from './commands/node';
import { ring } from './commands/ring';
import { ui } from './commands/ui';
import { registerSnapshotCommands } from './commands/snapshot';
import { registerWatchCommands } from './commands/watch';
import { registerLockCommands } from './commands/lock';
import { parseLeaseId, registerLeaseCommands } from './commands/lease';
import type { CliKit } from './kit';
import { parseDuration, parseIntOption } from './duration';
import { completionScript, SHELLS } from './completion';
import { DEFAULT_KV_TIMEOUT_MS, formatDuration } from './deadline';
import { CliError, describeError } from './errors';
import { localizeHints } from './invocation';
import { LOG_ENV, LOG_FORMATS, LOG_LEVELS } from './logger';
import { PROTOCOLS, parseProtocolOptionFlag } from './protocols';
import { DEFAULT_DIR, TARGET_ENV, resolveTarget, type Target, type TargetOptions, type TargetSources } from './target';

const intArg = (what: string, min: number, max: number) => (v: string) => {
  try {
    return parseIntOption(v, what, min, max);
  } catch (e) {
    throw new CommanderArgError((e as Error).message);
  }
};

const durationArg = (v: string) => {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new CommanderArgError((e as Error).message);
  }
};

/** One repeatable `--protocol-option key=value`, collected into an object. */
const protocolOptionArg = (v: string, previous: Record<string, unknown> | undefined) => {
  try {
    return parseProtocolOptionFlag(v, previous);
  } catch (e) {
    throw new CommanderArgError((e as Error).message);
  }
};

const protocolOption = () =>
  new Option('--protocol-option <key=value>', "a protocol option for every node (repeatable; JSON value, e.g. preVote=false), checked by the protocol").argParser(
    protocolOptionArg,
  );

/** A duration that may also be zero ('0', '0s'). */
const optionalDurationArg = (v: string) => (/^0+(?:\.0+)?(?:ms|s|m)?$/.test(String(v).trim()) ? 0 : durationArg(v));

/** The `consensus-cli` program. Actions throw; `run` turns errors into one line and an exit code. */
export function createProgram(): Command {
  const program = new Command('consensus-cli')
    .description('Start, drive and inspect consensus-kit clusters.')
    .version('0.1.0')
    .showSuggestionAfterError()
    // One line, all of it: commander puts its "(Did you mean ...?)" on a line of its own.
    .configureOutput({ outputError: (str, write) => write(`${oneLine(str)}\n`) })
    // Node logs (#22 item 5): set in the environment, so `node` and the nodes `start`/`restart` spawn follow them.
    .addOption(new Option('--log-format <format>', 'node log lines as text or JSON (one object per line)').choices(LOG_FORMATS).env(LOG_ENV.format))
    .addOption(new Option('--log-level <level>', 'lowest node log level written').choices(LOG_LEVELS).env(LOG_ENV.level))
    .hook('preAction', (cmd) => {
      const o = cmd.opts<{ logFormat?: string; logLevel?: string }>();
      if (o.logFormat !== undefined) process.env[LOG_ENV.format] = o.logFormat;
      if (o.logLevel !== undefined) process.env[LOG_ENV.level] = o.logLevel;
    });

  const dir = () => new Option('--dir <path>', 'cluster directory (of a cluster started by `start`)').default(DEFAULT_DIR).env(TARGET_ENV.dir);
  /**
   * `--dir` and the options that reach any cluster instead: a command that talks to the cluster over its client
   * port takes these (each also from its CONSENSUS_* variable; a flag wins over the variable).
   */
  const target = (c: Command): Command =>
    c
      .addOption(dir())
      .addOption(new Option('--endpoints <host:port,...>', "the nodes' client addresses (instead of --dir)").env(TARGET_ENV.endpoints))
      .addOption(new Option('--cluster-id <id>', 'the cluster id of the nodes at --endpoints (their "clusterId")').env(TARGET_ENV.clusterId))
      .addOption(new Option('--secret <secret>', 'the cluster secret, when the nodes have one ("secret" in their config); other users can see it in ps: prefer --secret-file').env(TARGET_ENV.secret))
      .addOption(new Option('--secret-file <path>', 'read the cluster secret from a file (a trailing newline is not part of it)'))
      .addOption(new Option('--cacert <file>', "TLS: the CA (PEM) that signed the nodes' certificates").env(TARGET_ENV.cacert))
      .addOption(new Option('--cert <file>', 'TLS: this client\'s certificate (PEM), for nodes that require mutual TLS').env(TARGET_ENV.cert))
      .addOption(new Option('--key <file>', 'TLS: the key (PEM) of --cert').env(TARGET_ENV.key))
      .addOption(new Option('--tls-servername <name>', "TLS: the name to check the nodes' certificates against, if not the endpoint's host"));
  /** The cluster a command with `target` options talks to. */
  const targetOf = (c: Command): Target => {
    const sources: TargetSources = {};
    for (const k of ['dir', 'endpoints', 'clusterId', 'secret', 'secretFile', 'cacert', 'cert', 'key', 'tlsServername'] as const) sources[k] = c.getOptionValueSource(k) as TargetSources[typeof k];
    return resolveTarget(c.opts<TargetOptions>(), sources);
  };
  const json = () => new Option('--json', 'machine-readable output');
  /** `--timeout` of a command that talks to the cluster; `defaultMs`: its deadline without the flag. */
  const timeout = (defaultMs?: number) =>
    new Option(
      '--timeout <duration>',
      `give up after this long with an error (e.g. 500ms, 5s, 1m)${defaultMs === undefined ? '; default: each step has its own bound' : `; default ${formatDuration(defaultMs)}`}`,
    ).argParser(durationArg);
  const kvTimeout = () => timeout(DEFAULT_KV_TIMEOUT_MS);
  /** What a command family registered from its own file needs of this one. */
  const kit: CliKit = { target, targetOf, json, timeout, kvTimeout, dir, intArg, durationArg };

  program
    .command('start')
    .description('start a local cluster (one process per node) and show its live status; Ctrl-C stops it')
    .addOption(new Option('--nodes <n>', 'number of nodes').default(3).argParser(intArg('--nodes', 1, 9)))
    .addOption(new Option('--protocol <name>', 'consensus protocol').choices(PROTOCOLS).default('raft'))
    .addOption(protocolOption())
    .addOption(dir())
    .addOption(new Option('--port <port>', 'base port: node i listens on port+i, its http on port+100+i').default(7100).argParser(intArg('--port', 1024, 65000)))
    .option('--detach', 'return once a leader is elected, leaving the cluster running')
    .addOption(new Option('--ui [port]', 'also serve the live visualizer on 127.0.0.1 (on this port; any free one without it) while the cluster runs').argParser(intArg('--ui', 0, 65535)))
    .addOption(json())
    .action((o, cmd: Command) =>
      start({ ...o, protocolOptions: o.protocolOption, given: (['nodes', 'port', 'protocol'] as const).filter((k) => cmd.getOptionValueSource(k) === 'cli') }),
    );

  program
    .command('ui')
    .description('serve the live visualizer of a running cluster on 127.0.0.1 (nodes, logs, messages, a timeline, actions); Ctrl-C stops it')
    .addOption(dir())
    .addOption(new Option('--port <port>', 'port to serve the page on (0: any free port)').default(0).argParser(intArg('--port', 0, 65535)))
    .addOption(new Option('--host <host>', 'interface to serve on; anything but loopback lets others drive the cluster').default('127.0.0.1'))
    .option('--no-open', 'do not open the page in a browser (it opens only when the output is a terminal)')
    .addOption(json())
    .action((o) => ui(o));

  program
    .command('node')
    .description('run one node from a config file (how a node is deployed on a machine)')
    .requiredOption('--config <file>', 'node config file (JSON)')
    .action((o) => node(o));

  const statusCommand = program
    .command('status')
    .description('show every node: role, term, leader, commit, applied, lag')
    .option('--verbose', "also print each node's protocol details (compact JSON)")
    .addOption(timeout())
    .addOption(json())
    .action((o, cmd: Command) => status({ ...o, target: targetOf(cmd) }));
  target(statusCommand);
  program.command('stop').description('stop every node of the cluster').addOption(dir()).addOption(json()).action((o) => stop(o));
  program.command('kill <node>').description('kill a node with SIGKILL (a crash)').addOption(dir()).addOption(json()).action((id, o) => kill(o, id));
  program.command('restart <node>').description('restart a node from its data').addOption(dir()).addOption(json()).action((id, o) => restart(o, id));

  target(
    program
      .command('put <key> [value]')
      .description('write a key; the value is the argument, the content of --file, or stdin when it is -')
      .option('--file <path>', 'the value is the content of this file (byte for byte)')
      .addOption(new Option('--lease <id>', 'attach the key to this lease (`lease grant`): it is deleted when the lease expires or is revoked').argParser(parseLeaseId))
      .addOption(kvTimeout())
      .addOption(json())
      .action((k: string, v: string | undefined, o, cmd: Command) => put({ ...o, target: targetOf(cmd) }, k, v)),
  );
  target(
    program
      .command('get <key>')
      .description('read a key (linearizable unless --serializable)')
      .addOption(json())
      .option('--serializable', "read the answering node's local state")
      .addOption(new Option('--rev <revision>', 'read the key as it was at this revision (0: now)').argParser(intArg('--rev', 0, Number.MAX_SAFE_INTEGER)))
      .addOption(kvTimeout())
      .action((k, o, cmd: Command) => get({ ...o, target: targetOf(cmd) }, k)),
  );
  target(
    program
      .command('del <key>')
      .description('delete a key')
      .option('--prefix', 'delete every key with this prefix')
      .addOption(kvTimeout())
      .addOption(json())
      .action((k, o, cmd: Command) => del({ ...o, target: targetOf(cmd) }, k)),
  );
  target(
    program
      .command('range <prefix>')
      .description('list keys with a prefix, in key order')
      .addOption(new Option('--limit <n>', 'at most n keys').argParser(intArg('--limit', 1, 1_000_000)))
      .option('--serializable', "read the answering node's local state")
      .addOption(new Option('--rev <revision>', 'list the keys as they were at this revision (0: now)').argParser(intArg('--rev', 0, Number.MAX_SAFE_INTEGER)))
      .addOption(kvTimeout())
      .addOption(json())
      .action((p, o, cmd: Command) => range({ ...o, target: targetOf(cmd) }, p)),
  );
  target(
    program
      .command('txn [file]')
      .description('run a transaction read as JSON from a file, or stdin (no file or -): {"if": [...], "then": [...], "else": [...]}')
      .addOption(kvTimeout())
      .addOption(json())
      .action((file: string | undefined, o, cmd: Command) => txn({ ...o, target: targetOf(cmd) }, file)),
  );
  target(
    program
      .command('compact <revision>')
      .description('forget the history before a revision (reads below it fail afterwards)')
      .addOption(kvTimeout())
      .addOption(json())
      .action((rev: string, o, cmd: Command) => compact({ ...o, target: targetOf(cmd) }, parseIntOption(rev, '<revision>', 1, Number.MAX_SAFE_INTEGER))),
  );

  registerWatchCommands(program, kit);
  registerLockCommands(program, kit);
  registerLeaseCommands(program, kit);
  registerSnapshotCommands(program, kit);

  const leader = program.command('leader').description('leadership operations');
  leader
    .command('transfer <node>')
    .description('hand leadership to a node')
    .addOption(timeout(15_000))
    .addOption(json())
    .action((id, o, cmd: Command) => leaderTransfer({ ...o, target: targetOf(cmd) }, id));
  target(leader.commands.at(-1) as Command);

  const members = program.command('members').description('cluster membership');
  target(
    members
      .command('list')
      .description('voters and learners')
      .addOption(timeout())
      .addOption(json())
      .action((o, cmd: Command) => membersList({ ...o, target: targetOf(cmd) })),
  );
  members
    .command('add <node>')
    .description('provision and start a new node, add it as a learner and promote it to voter once it caught up (a learner of the cluster: promote it)')
    .option('--learner', 'add it as a non-voting learner')
    .addOption(timeout())
    .addOption(dir())
    .addOption(json())
    .action((id, o) => membersAdd(o, id));
  members
    .command('remove <node>')
    .description('remove a member through a membership change and stop it')
    .option('--force', 'remove it even if the voters left running would not be a majority')
    .addOption(timeout())
    .addOption(dir())
    .addOption(json())
    .action((id, o) => membersRemove(o, id));

  program.command('inspect <node>').description("verify and describe a node's data directory").addOption(dir()).addOption(json()).action((id, o) => inspectNode(o, id));
  program
    .command('partition <node> [peers...]')
    .description('cut a node off from peers (all others by default), both ways (nodes need "admin": true)')
    .addOption(timeout())
    .addOption(json())
    .action((id, peers: string[], o, cmd: Command) => partition({ ...o, target: targetOf(cmd) }, id, peers));
  target(program.commands.at(-1) as Command);
  target(
    program
      .command('heal')
      .description('restore every link cut by partition')
      .addOption(timeout())
      .addOption(json())
      .action((o, cmd: Command) => heal({ ...o, target: targetOf(cmd) })),
  );

  program
    .command('bench')
    .description('measure ops/s and latency against the cluster in --dir (or a temporary one)')
    .addOption(new Option('--clients <n>', 'requests in flight').default(64).argParser(intArg('--clients', 1, 4096)))
    .addOption(new Option('--duration <time>', 'how long to measure, e.g. 10s').default(10_000, '10s').argParser(durationArg))
    .addOption(
      new Option('--warmup <time>', 'load to run first, not measured (lets the nodes reach steady state), e.g. 2s or 0').default(2_000, '2s').argParser(optionalDurationArg),
    )
    .addOption(new Option('--value-size <bytes>', 'value size').default(256).argParser(intArg('--value-size', 0, 1 << 20)))
    .addOption(
      new Option('--op <op>', 'operation (txn: one compare and one put; lock: contenders loop acquire -> fenced write -> release on one mutex)').choices(['put', 'get', 'mixed', 'txn', 'lock']).default('put'),
    )
    .addOption(new Option('--contenders <n>', '--op lock: lock clients competing for the mutex, each with its own session').default(8).argParser(intArg('--contenders', 1, 256)))
    .option('--temp', 'always run against a temporary 3-node cluster')
    .addOption(new Option('--protocol <name>', 'consensus protocol of the temporary cluster (default raft)').choices(PROTOCOLS))
    .addOption(protocolOption())
    .addOption(dir())
    .addOption(json())
    .action(async (o) => {
      await bench({
        dir: o.dir,
        clients: o.clients,
        durationMs: o.duration,
        warmupMs: o.warmup,
        valueSize: o.valueSize,
        op: o.op,
        contenders: o.contenders,
        temp: o.temp,
        json: o.json,
        protocol: o.protocol,
        protocolOptions: o.protocolOption,
      });
    });

  program
    .command('ring')
    .description('show how a consistent hash ring spreads keys over nodes (a bar chart)')
    .requiredOption('--nodes <list>', 'comma-separated node names, each optionally name:weight')
    .addOption(new Option('--keys <n>', 'number of keys').default(100_000).argParser(intArg('--keys', 1, 100_000_000)))
    .addOption(new Option('--algorithm <name>', 'algorithm').choices(['ring', 'maglev', 'jump', 'rendezvous', 'bounded-load', 'ketama']).default('ring'))
    .addOption(json())
    .action((o) => ring(o));

  program
    .command('completion')
    .description(`print a shell completion script (${SHELLS.join(', ')}); e.g. source <(consensus-cli completion bash)`)
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .action((shell: (typeof SHELLS)[number]) => {
      console.log(completionScript(program, shell).trimEnd());
    });

  return program;
}

/** Commander's multi-line messages (an error, then "(Did you mean ...?)") as one line. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

/** Parses `argv` and runs the command; errors become one line on stderr and a non-zero exit code. */
export async function run(argv: string[] = process.argv): Promise<number> {
  const program = createProgram();
  // Every level, `members remove` as much as `put`: a usage error there is exit code 2 too, not a process.exit.
  const override = (c: Command): void => {
    c.exitOverride();
    for (const sub of c.commands) override(sub);
  };
  override(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are not errors; usage errors were already printed as one line.
      return e.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`consensus-cli: ${localizeHints(describeError(e))}\n`);
    return e instanceof CliError ? e.exitCode : 1;
  }
}
