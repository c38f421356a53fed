import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isZombie, pidExists, processIdentity, processRunning } from './process-identity';

function sleeper() {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { pid: child.pid as number, stop: async () => { child.kill(); await exited; } };
}

describe('process identity', () => {
  it('names a running process the same way every time, and two processes differently', async () => {
    const mine = processIdentity(process.pid);
    expect(mine).toBeDefined();
    expect(processIdentity(process.pid)).toBe(mine);
    const other = sleeper();
    try {
      const theirs = processIdentity(other.pid);
      expect(theirs).toBeDefined();
      expect(theirs).not.toBe(mine);
    } finally {
      await other.stop();
    }
  });

  it('a recorded process runs while its pid exists with the same identity', async () => {
    const p = sleeper();
    const identity = processIdentity(p.pid) as string;
    expect(processRunning(p.pid, identity)).toBe(true);
    expect(processRunning(p.pid)).toBe(true); // a record without identity: the pid alone
    expect(processRunning(p.pid, `${identity}0`)).toBe(false); // same pid, another process
    await p.stop();
    expect(pidExists(p.pid)).toBe(false);
    expect(processRunning(p.pid, identity)).toBe(false);
    expect(processIdentity(p.pid)).toBeUndefined();
  });

  it('a zombie (exited, not yet reaped by its parent) does not run, though its pid still exists', async () => {
    // The shell starts `sleep 1` and becomes `sleep 30`, which never reaps it: a zombie until we stop its parent.
    // (The child outlives the shell's own turn: a shell may reap a child that exits before it execs.)
    const parent = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise<void>((resolve) => parent.on('exit', () => resolve()));
    try {
      const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      const deadline = Date.now() + 15_000;
      while (!isZombie(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(isZombie(pid)).toBe(true);
      expect(pidExists(pid)).toBe(true);
      expect(processRunning(pid)).toBe(false);
      expect(isZombie(parent.pid as number)).toBe(false);
      expect(processRunning(parent.pid as number)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
      await exited;
    }
  });

  it('rejects pids that cannot name a process', () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) {
      expect(pidExists(pid)).toBe(false);
      expect(processIdentity(pid)).toBeUndefined();
      expect(processRunning(pid)).toBe(false);
    }
  });
});
