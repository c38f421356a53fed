import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterDir, runsConfig } from '../src/cluster-file';
import { alive, stopNode } from '../src/supervisor';

/** A process that sleeps; with `configFile`, its arguments end like a node's: `node --config <file>`. */
function sleeper(configFile?: string) {
  const args = ['-e', 'setTimeout(() => {}, 20000)', '--', ...(configFile === undefined ? [] : ['node', '--config', configFile])];
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { pid: child.pid as number, stop: async () => { child.kill('SIGKILL'); await exited; } };
}

const stops: (() => Promise<void>)[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function clusterDir(): ClusterDir {
  const dir = mkdtempSync(join(tmpdir(), 'consensus-cli-pid-'));
  dirs.push(dir);
  const cd = new ClusterDir(dir);
  for (const id of ['n1', 'n2']) mkdirSync(cd.nodeDir(id), { recursive: true });
  return cd;
}

describe('node pid files', () => {
  it('name a node only while that pid runs the node\'s own config', async () => {
    const cd = clusterDir();
    const n1 = sleeper(cd.configFile('n1'));
    stops.push(n1.stop);
    writeFileSync(cd.pidFile('n1'), `${n1.pid}\n`);
    expect(runsConfig(n1.pid, cd.configFile('n1'))).toBe(true);
    expect(cd.livePid('n1')).toBe(n1.pid);
    // The same pid recorded for n2 is not n2.
    writeFileSync(cd.pidFile('n2'), `${n1.pid}\n`);
    expect(cd.livePid('n2')).toBeUndefined();
    await n1.stop();
    expect(cd.livePid('n1')).toBeUndefined();
  });

  it('recognise the node when its directory is named through a symlink', async () => {
    const cd = clusterDir();
    writeFileSync(cd.configFile('n1'), '{}');
    const link = `${cd.dir}-link`;
    symlinkSync(cd.dir, link);
    dirs.push(link);
    const n1 = sleeper(cd.configFile('n1'));
    stops.push(n1.stop);
    const viaLink = new ClusterDir(link);
    writeFileSync(viaLink.pidFile('n1'), `${n1.pid}\n`);
    expect(viaLink.livePid('n1')).toBe(n1.pid);
  });

  it('a pid reused by another process after a crash is neither reported nor signalled', async () => {
    const cd = clusterDir();
    const stranger = sleeper();
    stops.push(stranger.stop);
    writeFileSync(cd.pidFile('n1'), `${stranger.pid}\n`);
    expect(cd.livePid('n1')).toBeUndefined();
    expect(await stopNode(cd, 'n1', 'SIGKILL')).toBe(false);
    expect(alive(stranger.pid)).toBe(true);
  });

  it('stop signals the node that the pid file names', async () => {
    const cd = clusterDir();
    const n1 = sleeper(cd.configFile('n1'));
    stops.push(n1.stop);
    writeFileSync(cd.pidFile('n1'), `${n1.pid}\n`);
    expect(await stopNode(cd, 'n1', 'SIGTERM')).toBe(true);
    expect(alive(n1.pid)).toBe(false);
  });
});
