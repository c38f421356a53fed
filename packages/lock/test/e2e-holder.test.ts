/**
 * End to end with a real process holding the lock: kill -9 and SIGSTOP of the holder's client. The next
 * holder (in this process) gets a higher fencing token, and the stale holder's writes are refused by the
 * fenced resource. One node over TCP on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { tcpTransport } from '@consensus-kit/transport-tcp';
import type { LockQuery, LockResult } from '../src/commands';
import { FencedResource } from '../src/fenced-resource';
import { LockStateMachine, type LockQueryResult, type LockRequest } from '../src/lock-state-machine';
import { createLockService } from '../src/service';
import { createLockClient } from '../src/tcp';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const HOLDER = fileURLToPath(new URL('./fixtures/holder.ts', import.meta.url));

async function soloNode(clusterId: string) {
  const transport = tcpTransport({ id: 'n1', clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  const stateMachine = new LockStateMachine({ minSessionTtlMs: 50, lockDelayMs: 200 });
  const node = new ConsensusNode<LockRequest, LockResult, LockQuery, LockQueryResult>({ id: 'n1', peers: ['n1'], protocol: solo, storage: new MemoryStorage(), transport, stateMachine, tickMs: 5, electionTicks: 2, timeIntervalMs: 10 });
  const service = createLockService({ node, stateMachine });
  transport.onRequest(service);
  await node.start();
  cleanups.push(() => node.stop());
  cleanups.push(() => service.close());
  await node.waitForLeader();
  return { endpoint: transport.endpoint(), stateMachine };
}

/** Starts the holder process; resolves with it once it holds the lock, and collects its lines. */
function holder(endpoint: string, clusterId: string, ttlMs: number): Promise<{ child: ChildProcess; token: number; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@consensus-kit/source', HOLDER, endpoint, clusterId, String(ttlMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    child.on('exit', (code, signal) => reject(new Error(`holder exited (${code ?? signal}) before it held the lock`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      lines.push(line);
      const m = /^granted (\d+)$/.exec(line);
      if (m !== null) resolve({ child, token: Number(m[1]), lines });
    });
  });
}

describe('a holder in another process', () => {
  it('kill -9 of the holder: its session expires, the waiter here gets the lock with a higher token', async () => {
    const { endpoint } = await soloNode('lock-e2e-kill');
    const h = await holder(endpoint, 'lock-e2e-kill', 300);
    const next = createLockClient({ endpoints: [endpoint], clusterId: 'lock-e2e-kill', ttlMs: 2000 });
    cleanups.push(() => next.close());
    const waiting = next.acquire('m');
    await new Promise((r) => setTimeout(r, 100));
    h.child.kill('SIGKILL');
    const lock = await waiting;
    expect(lock.token).toBeGreaterThan(h.token);
    await lock.release();
  }, 30_000);

  it('SIGSTOP of the holder: the next holder gets a higher token, and the stopped holder’s writes after SIGCONT are refused', async () => {
    const { endpoint } = await soloNode('lock-e2e-stop');
    const h = await holder(endpoint, 'lock-e2e-stop', 300);
    const resource = new FencedResource('store');
    const writes = { accepted: 0, refused: 0 };
    const apply = (token: number) => (resource.accept(token) ? writes.accepted++ : writes.refused++);
    const next = createLockClient({ endpoints: [endpoint], clusterId: 'lock-e2e-stop', ttlMs: 2000 });
    cleanups.push(() => next.close());
    const waiting = next.acquire('m');
    await new Promise((r) => setTimeout(r, 100));
    h.child.kill('SIGSTOP');
    const lock = await waiting;
    expect(lock.token).toBeGreaterThan(h.token);
    lock.ifOwner((t) => apply(t)); // the new holder writes first
    const before = h.lines.length;
    h.child.kill('SIGCONT');
    // Until the resumed holder reports the loss (bounded): a loaded machine may take a while to run it again.
    for (let waited = 0; waited < 10_000 && !h.lines.slice(before).includes('lost'); waited += 50) await new Promise((r) => setTimeout(r, 50));
    const after = h.lines.slice(before);
    for (const line of after) {
      const m = /^write (\d+)$/.exec(line);
      if (m !== null) apply(Number(m[1]));
    }
    // The resumed holder learns it lost the lock, and whatever it wrote meanwhile was refused.
    expect(after).toContain('lost');
    expect(writes.accepted).toBe(1);
    expect(writes.refused).toBeGreaterThan(0);
    await lock.release();
  }, 30_000);
});
