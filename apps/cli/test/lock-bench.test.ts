/**
 * The lock benchmark loop: a short smoke run of real lock clients over TCP against one in-process node, and the
 * loop's own checks (a stale token and an overlapping grant are counted, so `bench --op lock` fails on them).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { LockStateMachine, createLockService, type LockQuery, type LockQueryResult, type LockRequest, type LockResult } from '@consensus-kit/lock';
import { tcpTransport } from '@consensus-kit/transport-tcp';
import { consensusContenders, runLockLoop, type BenchContender } from '../src/lock-bench';
import { cli, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function soloLockNode(clusterId: string): Promise<string> {
  const transport = tcpTransport({ id: 'n1', clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {} });
  const stateMachine = new LockStateMachine();
  const node = new ConsensusNode<LockRequest, LockResult, LockQuery, LockQueryResult>({ id: 'n1', peers: ['n1'], protocol: solo, storage: new MemoryStorage(), transport, stateMachine, tickMs: 5, electionTicks: 2, timeIntervalMs: 10 });
  const service = createLockService({ node, stateMachine });
  transport.onRequest(service);
  await node.start();
  cleanups.push(() => node.stop(), () => service.close());
  await node.waitForLeader();
  return transport.endpoint();
}

/** A fake lock that grants at once to everyone, with the tokens given (no mutual exclusion at all). */
function fake(tokens: number[], holdMs = 0): BenchContender {
  let i = 0;
  return {
    async acquire() {
      await new Promise((r) => setTimeout(r, 1));
      return { token: tokens[i++ % tokens.length], release: () => new Promise<void>((r) => setTimeout(r, holdMs)) };
    },
    async close() {},
  };
}

describe('bench --op lock loop', () => {
  it('three contenders over TCP: every one gets grants, tokens strictly increase, no overlap', async () => {
    const endpoint = await soloLockNode('lock-bench-smoke');
    const clients = consensusContenders(3, 'bench/lock', { endpoints: [endpoint], clusterId: 'lock-bench-smoke' });
    cleanups.push(() => Promise.all(clients.map((c) => c.close())).then(() => undefined));
    const r = await runLockLoop(clients, { durationMs: 400, warmupMs: 100 });
    expect(r.contenders).toBe(3);
    expect(r.fenced).toBe(true);
    expect(r.staleWrites).toBe(0);
    expect(r.overlaps).toBe(0);
    expect(r.handoffs).toBeGreaterThan(0);
    expect(r.handoffs).toBe(r.perClient.reduce((a, b) => a + b, 0));
    // FIFO: every contender is served in turn.
    for (const n of r.perClient) expect(n).toBeGreaterThan(0);
    expect(r.spread).toBeGreaterThanOrEqual(1);
    expect(r.handoffMs.p50).toBeGreaterThan(0);
    expect(r.handoffMs.p99).toBeGreaterThanOrEqual(r.handoffMs.p50);
    // Each cycle logs at least its acquire and its release (the release entry is the next grant).
    expect(r.entriesPerHandoff).toBeGreaterThanOrEqual(1);
  });

  it('a token that is not strictly higher than the last accepted is counted stale', async () => {
    const r = await runLockLoop([fake([5, 5, 4, 6])], { durationMs: 60 });
    expect(r.fenced).toBe(true);
    expect(r.staleWrites).toBeGreaterThan(0);
  });

  it('a grant while another contender still holds is counted as an overlap', async () => {
    // A "lock" that excludes nobody: both contenders' first acquires resolve while the other holds.
    let t = 0;
    const everyone = (): BenchContender => ({
      acquire: async () => ({ token: ++t, release: async () => {} }),
      async close() {},
    });
    const r = await runLockLoop([everyone(), everyone()], { durationMs: 30 });
    expect(r.overlaps).toBeGreaterThan(0);
    expect(r.staleWrites).toBe(0);
  });

  it('a real lock with one contender never overlaps itself, and a lock without tokens is reported unfenced', async () => {
    let t = 0;
    const r = await runLockLoop([{ acquire: async () => ({ token: undefined, release: async () => void t++ }), async close() {} }], { durationMs: 30 });
    expect(r.overlaps).toBe(0);
    expect(r.fenced).toBe(false);
    expect(r.entriesPerHandoff).toBeUndefined();
    expect(r.writes).toBeGreaterThan(0);
    expect(t).toBe(r.writes);
  });
});

describe('consensus-cli bench --op lock', () => {
  const dir = useStartedCluster();

  it('runs 1 and 3 contenders against the started cluster: grants, handoff latency, per-client counts, no stale write', async () => {
    for (const contenders of [1, 3]) {
      const r = await cli('bench', '--dir', dir(), '--op', 'lock', '--contenders', String(contenders), '--duration', '700ms', '--warmup', '200ms', '--json');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const res = JSON.parse(r.out.trim().split('\n').at(-1) as string) as {
        op: string; contenders: number; handoffs: number; handoffsPerSec: number; perClient: number[]; spread: number | null;
        staleWrites: number; overlaps: number; fenced: boolean; handoffMs: { p50: number; p99: number };
      };
      expect(res).toMatchObject({ op: 'lock', contenders, staleWrites: 0, overlaps: 0, fenced: true });
      expect(res.perClient).toHaveLength(contenders);
      for (const n of res.perClient) expect(n).toBeGreaterThan(0);
      expect(res.handoffs).toBe(res.perClient.reduce((a, b) => a + b, 0));
      expect(res.spread).toBeGreaterThanOrEqual(1);
      expect(0 < res.handoffMs.p50 && res.handoffMs.p50 <= res.handoffMs.p99).toBe(true);
    }
    const bad = await cli('bench', '--dir', dir(), '--op', 'lock', '--contenders', '0');
    expect(bad.code).not.toBe(0);
  });
});
