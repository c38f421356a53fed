import type { Command, Option } from 'commander';
import type { Target } from './target';

/**
 * The shared option builders of `createProgram`, handed to the command families that register themselves
 * from their own file (`registerWatchCommands(program, kit)`), so every command spells `--dir`, `--json` and
 * the remote-cluster options the same way.
 */
export interface CliKit {
  /** Adds `--dir` and the remote-cluster options (`--endpoints`, `--cluster-id`, TLS, secret) to a command. */
  target(c: Command): Command;
  /** The cluster a command built with `target` talks to. */
  targetOf(c: Command): Target;
  json(): Option;
  /** `--timeout <duration>`; `defaultMs`: its deadline without the flag. */
  timeout(defaultMs?: number): Option;
  /** `--timeout` with the kv commands' default. */
  kvTimeout(): Option;
  /** `--dir <path>` alone (for commands that act on a local cluster directory). */
  dir(): Option;
  /** An argument parser for an integer in [min, max]; a bad value is a usage error naming `what`. */
  intArg(what: string, min: number, max: number): (v: string) => number;
  /** An argument parser for a duration ('500ms', '5s', '1m'). */
  durationArg(v: string): number;
}
