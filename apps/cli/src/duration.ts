import { CliError } from './errors';

/** '10s', '500ms', '2m', or a bare number of seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(text).trim());
  if (m === null) throw new CliError(`invalid duration ${JSON.stringify(text)} (use e.g. 500ms, 10s, 2m)`, 2);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (!(ms > 0) || ms > 24 * 3600_000) throw new CliError(`duration ${text} is out of range`, 2);
  return ms;
}

/**
 * An integer flag (a port, a count) as typed: plain decimal digits (a '-' first only where negatives are allowed),
 * nothing else. `Number()` alone took `1e3` as 1000, `0x10` as 16, ` 80` as 80, `80.0` as 80 and `''` as 0: a
 * typo became some other port instead of a usage error. A `CliError` (exit code 2) names the flag.
 */
export function parseIntOption(text: string, what: string, min: number, max: number): number {
  const digits = min < 0 ? /^-?\d{1,16}$/ : /^\d{1,16}$/;
  const n = typeof text === 'string' && digits.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`${what} must be an integer from ${min} to ${max} in decimal digits, got ${JSON.stringify(text)}`, 2);
  }
  return n;
}
