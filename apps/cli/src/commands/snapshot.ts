import type { Command } from 'commander';
import type { CliKit } from '../kit';

/** Registers the `snapshot` commands. */
export function registerSnapshotCommands(_program: Command, _kit: CliKit): void {}
