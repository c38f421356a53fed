import type { Command } from 'commander';
import type { CliKit } from '../kit';

/** Registers the `watch` commands. */
export function registerWatchCommands(_program: Command, _kit: CliKit): void {}
