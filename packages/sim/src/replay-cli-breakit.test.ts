/**
 * Break-it pass (session 14) on `consensus-sim replay <seed> --ui`: a port that cannot be served is a clear
 * error and exit code 2 (bad usage), found before the run is recorded, never a stack trace with exit code 3.
 */
import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureOutput } from '../test/capture-output';
import { main } from './cli';

let dir: string;
let holder: Server | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sim-replay-breakit-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  if (holder) await new Promise((done) => holder?.close(done));
  holder = undefined;
  await rm(dir, { recursive: true, force: true });
});


describe('sim replay --ui break-it: ports', () => {
  it('a port out of range is a usage error before anything runs', async () => {
    const { out, err } = captureOutput();
    expect(await main(['replay', '1', '--protocol', 'toy', '--ticks', '50', '--ui', '--port', '70000', '--report-dir', dir])).toBe(2);
    expect(err.join('\n')).toMatch(/--port must be an integer from 0 to 65535/);
    expect(out).toEqual([]);
  });

  it('a port in use is a one-line error with exit code 2, not a stack trace', async () => {
    holder = createServer();
    await new Promise<void>((done) => holder?.listen(0, '127.0.0.1', done));
    const port = (holder.address() as { port: number }).port;
    const { err } = captureOutput();
    const stop = new AbortController();
    const code = await main(['replay', '1', '--protocol', 'toy', '--ticks', '50', '--ui', '--port', String(port), '--report-dir', dir], { stop: stop.signal });
    stop.abort();
    expect(code).toBe(2);
    const text = err.join('\n');
    expect(text).toMatch(new RegExp(`error: port ${port} on 127\\.0\\.0\\.1 is already in use`));
    expect(text).not.toMatch(/\n\s+at /);
  });
});
