/**
 * Leftovers of the ui break-it pass and of embedding (session 15): integer flags in decimal digits only, startNode
 * on a data directory that cannot be made, a Restart clicked while one runs, the foreground table following the
 * cluster file, and an add-member whose outcome is unknown.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseIntOption } from '../src/duration';
import { CliError } from '../src/errors';
import { cli, tempDir } from './helpers';

describe('integer flags take plain decimal digits', () => {
  it('parseIntOption refuses exponents, hex, blanks and fractions with a CliError naming the flag', () => {
    for (const bad of ['1e3', '0x10', ' 80', '80 ', '80.0', '', '+80', '0b11', '1_000', '８０']) {
      let error: unknown;
      try {
        parseIntOption(bad, '--port', 0, 65535);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(2);
      expect((error as CliError).message).toBe(`--port must be an integer from 0 to 65535 in decimal digits, got ${JSON.stringify(bad)}`);
    }
    expect(parseIntOption('1000', '--port', 0, 65535)).toBe(1000);
    expect(parseIntOption('0', '--port', 0, 65535)).toBe(0);
    expect(parseIntOption('007', '--port', 0, 65535)).toBe(7);
    expect(() => parseIntOption('-1', '--port', 0, 65535)).toThrow(CliError);
    expect(parseIntOption('-1', '--delta', -5, 5)).toBe(-1);
  });

  it('every port flag refuses 1e3 and 0x10 as a usage error naming the flag, before doing anything', async () => {
    const dir = tempDir();
    const runs: [string[], string][] = [
      [['start', '--dir', dir, '--port', '1e3'], '--port'],
      [['start', '--dir', dir, '--port', '0x1000'], '--port'],
      [['start', '--dir', dir, '--ui', '0x10'], '--ui'],
      [['ui', '--dir', dir, '--port', '80.0'], '--port'],
      [['snapshot', 'restore', 'x.snap', '--dir', dir, '--port', '7e3'], '--port'],
    ];
    for (const [args, flag] of runs) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toContain(`${flag} must be an integer from`);
    }
    rmSync(dir, { recursive: true, force: true });
  });
});
