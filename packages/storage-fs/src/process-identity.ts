import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * A pid names a process only while that process runs: once it is gone (a crash, a `kill -9`, a reboot) the
 * system hands the number to the next process it starts. A lock or pid file that records only the pid then
 * points at a stranger, which locks a node out of its own data or lets `consensus-cli kill` signal the wrong
 * process. So they also record the process's identity: when it started, and on Linux in which boot.
 *
 * Linux: `<boot id>/<start time in clock ticks since boot>` from /proc. Elsewhere: the start time `ps -o lstart=`
 * prints. `undefined` when neither can be read (the process is gone, or the platform has neither).
 */
export function processIdentity(pid: number): string | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') return linuxIdentity(pid);
  if (process.platform === 'win32') return undefined;
  const ps = spawnSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', timeout: 2000 });
  const start = ps.status === 0 ? ps.stdout.trim() : '';
  return start === '' ? undefined : start;
}

let bootId: string | undefined;

function linuxIdentity(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
  // proc(5): the command name (field 2) is in parentheses and may hold spaces or ')'; field 22, starttime,
  // is the 20th after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return start === undefined || !/^\d+$/.test(start) ? undefined : `${bootId}/${start}`;
}

/** Whether a process with this id exists (signal 0 probes without signalling; EPERM means it exists). */
export function pidExists(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException)?.code === 'EPERM';
  }
}

/**
 * Whether `pid` is a zombie: it has exited, but its parent has not collected its status yet, so the pid still
 * exists. A node killed with SIGKILL stays one until its parent reaps it, which under an init that does not reap
 * (common in containers) is never. Linux reads its state from /proc; elsewhere `ps -o stat=` tells.
 */
export function isZombie(pid: number): boolean {
  if (process.platform === 'win32') return false;
  if (process.platform === 'linux') {
    try {
      // proc(5): a thread group's leader shows as a zombie as soon as it exits, while its other threads may
      // still be exiting and holding the process's files (its sockets, its lock): gone only once it is alone.
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const state = /^State:\s*(\S)/m.exec(status)?.[1];
      const threads = Number(/^Threads:\s*(\d+)/m.exec(status)?.[1] ?? '1');
      return (state === 'Z' || state === 'X') && threads <= 1;
    } catch {
      return false;
    }
  }
  const ps = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8', timeout: 2000 });
  return ps.status === 0 && ps.stdout.trim().startsWith('Z');
}

/**
 * Whether the process a lock or pid file recorded still runs (a zombie does not): the pid exists and, when an identity was
 * recorded and can be read now, it is the same one. A record without an identity (written by an older
 * version) falls back to the pid alone, as does a platform where the identity cannot be read.
 */
export function processRunning(pid: number, identity?: string): boolean {
  if (!pidExists(pid) || isZombie(pid)) return false;
  if (identity === undefined) return true;
  const now = processIdentity(pid);
  return now === undefined || now === identity;
}
