import { ConfigError, type Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { zab } from '../src/index';
import type { Proposal, Sync } from '../src/messages';
import { electLeader, msgType, network, proposeAll, settle } from './helpers';

/**
 * Messages carrying entries (Sync, Proposal) hold at most `maxBatchBytes` of entry data (etcd raft's MaxSizePerMsg),
 * always at least one entry: a follower catching up on large values gets them in bounded messages, not `maxBatch`
 * of them in one message the leader encodes in one piece.
 */

const value = (i: number) => `v${String(i).padStart(2, '0')}-${'x'.repeat(36)}`; // 40 bytes
const dataBytes = (m: Sync | Proposal) => m.entries.reduce((s, e) => s + e.data.length, 0);

describe('maxBatchBytes', () => {
  it('a follower restarted 30 large entries behind catches up through messages of at most maxBatchBytes of entries', () => {
    const sent: Envelope[] = [];
    const net = network(['a', 'b', 'c'], { maxBatchBytes: 100 }, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    electLeader(net);
    const leader = ['a', 'b', 'c'].find((id) => net.get(id).node.status().role === 'leader') as string;
    const lagger = ['a', 'b', 'c'].find((id) => id !== leader) as string;
    proposeAll(net, leader, [value(0)]);
    settle(net, () => net.get(lagger).applied.length === 1);
    net.crash(lagger);
    for (let i = 1; i <= 30; i++) proposeAll(net, leader, [value(i)]);
    sent.length = 0;
    net.restart(lagger);
    settle(net, () => net.get(lagger).appliedIndex >= net.get(leader).appliedIndex && net.get(lagger).node.status().leader === leader);
    const carrying = sent.filter((e) => e.to === lagger && (msgType(e) === 'Sync' || msgType(e) === 'Proposal')).map((e) => e.msg as Sync | Proposal);
    const withEntries = carrying.filter((m) => m.entries.length > 0);
    expect(withEntries.reduce((s, m) => s + m.entries.length, 0)).toBeGreaterThanOrEqual(30);
    for (const m of withEntries) {
      expect(dataBytes(m)).toBeLessThanOrEqual(100);
      expect(m.entries.length).toBeLessThanOrEqual(2);
    }
    expect(net.get(lagger).node.status()).toMatchObject({ role: 'follower', leader });
  });

  it('an entry larger than maxBatchBytes still goes, alone in its message', () => {
    const sent: Envelope[] = [];
    const net = network(['a', 'b', 'c'], { maxBatchBytes: 10 }, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    electLeader(net);
    const leader = ['a', 'b', 'c'].find((id) => net.get(id).node.status().role === 'leader') as string;
    proposeAll(net, leader, [value(1), value(2), value(3)]);
    settle(net, () => ['a', 'b', 'c'].every((id) => net.get(id).applied.length === 3));
    const proposals = sent.filter((e) => msgType(e) === 'Proposal').map((e) => e.msg as Proposal);
    expect(proposals.length).toBeGreaterThan(0);
    for (const m of proposals) expect(m.entries.length).toBe(1);
  });

  it('maxBatchBytes must be a positive integer of at most 16 MiB', () => {
    for (const bad of [0, -1, 1.5, '64', 32 << 20]) expect(() => zab.parseOptions({ maxBatchBytes: bad }), String(bad)).toThrow(ConfigError);
    expect(zab.parseOptions({ maxBatchBytes: 4096 })).toEqual({ maxBatchBytes: 4096 });
  });
});
