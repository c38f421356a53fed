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

export function parseIntOption(text: string, what: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`, 2);
  return n;
}
