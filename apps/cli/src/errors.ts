import { isConsensusError } from '@consensus-kit/core';

/** A problem the user can fix: printed as one line, exit code 2 (usage) or 1 (everything else). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** One line for the terminal, whatever was thrown. */
export function describeError(e: unknown): string {
  if (e instanceof CliError) return e.message;
  if (isConsensusError(e)) return `${e.message} [${e.code}]`;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code ? `${e.message} [${code}]` : e.message;
  }
  return String(e);
}
