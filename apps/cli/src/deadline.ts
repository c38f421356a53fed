import { CliError } from './errors';

/** The kv commands' deadline when `--timeout` is not given: the 15 s the CLI's kv client has always had. */
export const DEFAULT_KV_TIMEOUT_MS = 15_000;

/** `1500` -> '1.5s', `200` -> '200ms', as `--timeout` takes it. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Number((ms / 1000).toFixed(3))}s`;
}

/** Thrown when a command's `--timeout` passes: one line naming the command, the deadline and what it means. */
export class DeadlineError extends CliError {
  constructor(what: string, timeoutMs: number, note?: string, byDefault = false) {
    super(`${what}: gave up after ${formatDuration(timeoutMs)} (${byDefault ? 'the default --timeout' : '--timeout'})${note ? `; ${note}` : ''}`, 1);
    this.name = 'DeadlineError';
  }
}

export interface DeadlineOptions {
  /** What the command was doing, for the message ('put greeting'). */
  what: string;
  /** What the user should know after giving up (a write may still take effect, ...). */
  note?: string;
  /** The deadline is the command's default, not a --timeout the user gave (the message says so). */
  byDefault?: boolean;
  /** Run when the deadline passes, before the error is thrown (to stop what the command started). */
  onTimeout?: () => Promise<void> | void;
}

/**
 * Runs `fn` and gives up after `timeoutMs` (none when undefined): the signal passed to `fn` aborts, `onTimeout`
 * runs, and a `DeadlineError` is thrown whatever `fn` is still doing (a failure it reports later is dropped).
 */
export async function withDeadline<T>(timeoutMs: number | undefined, o: DeadlineOptions, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  if (timeoutMs === undefined) return fn(undefined);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new DeadlineError(o.what, timeoutMs, o.note, o.byDefault);
      controller.abort(e);
      void Promise.resolve()
        .then(() => o.onTimeout?.())
        .catch(() => undefined)
        .then(() => reject(e));
    }, timeoutMs);
  });
  // Once the deadline has passed, what `fn` does (its abort error, say) no longer decides the outcome.
  const work = fn(controller.signal).catch((e: unknown) => (controller.signal.aborted ? expired : Promise.reject(e)));
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
