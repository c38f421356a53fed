import { ConfigError, type Envelope, type Ready } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import { decodeHardState, parseMessage, zab } from '../src/index';
import type { SnapAck, SnapChunk, Sync, ZabMessage } from '../src/messages';
import { electLeader, msgType, network, proposeAll, settle } from './helpers';

/**
 * SNAP in chunks (ZooKeeper's LearnerHandler streams the serialized data tree after the SNAP packet, then the
 * proposals, then NEWLEADER; Learner.syncWithLeader deserializes it before it takes anything else): the leader sends
 * the snapshot `snapshotChunkBytes` at a time, a few chunks in flight, resuming from the follower's offset after a
 * loss; the follower installs it only once whole, then takes the DIFF after it, and only then currentEpoch and the
 * NEWLEADER ack (DSN 2011 IV-B).
 */

const long = (i: number) => `value-${i}-${'z'.repeat(20)}`;
const chunksOf = (log: Envelope[], to: string) => log.filter((e) => e.to === to && msgType(e) === 'SnapChunk').map((e) => e.msg as SnapChunk);

/**
 * c leads epoch 1; a misses x1..x6, which b and c compact into a snapshot; c hands over to b (epoch 2), x7 goes in,
 * and a (still at currentEpoch 1) restarts: it needs SNAP from b, then the DIFF of x7.
 */
function behindSnapshot(options: Record<string, unknown>, hooks: Parameters<typeof network>[2] = {}) {
  const net = network(['a', 'b', 'c'], options, hooks);
  electLeader(net);
  proposeAll(net, 'c', [long(0)]);
  net.crash('a');
  proposeAll(net, 'c', [1, 2, 3, 4, 5, 6].map(long));
  settle(net, () => net.get('b').applied.length === 7);
  net.snapshot('c');
  const at = net.snapshot('b');
  net.get('c').node.transferLeadership('b');
  electLeader(net, 'b');
  proposeAll(net, 'b', [long(7)]);
  settle(net, () => net.get('c').applied.length === 8);
  const snapBytes = net.get('b').storage.snapshot()?.data.length ?? 0;
  return { net, at, snapBytes, epoch: net.get('b').node.epoch, expected: [0, 1, 2, 3, 4, 5, 6, 7].map(long) };
}

describe('SNAP in chunks (LearnerHandler.syncFollower, Learner.syncWithLeader)', () => {
  it('a follower that needs SNAP of a snapshot larger than one chunk catches up, every chunk at most snapshotChunkBytes', () => {
    const sent: Envelope[] = [];
    const { net, at, snapBytes, expected } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    expect(snapBytes).toBeGreaterThan(8 * 16);
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    expect(net.get('a').applied).toEqual(expected);
    expect(net.get('a').node.status().role).toBe('follower');
    const chunks = chunksOf(sent, 'a');
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(snapBytes / 16));
    for (const c of chunks) {
      expect(c.data.length).toBeLessThanOrEqual(16);
      expect(c).toMatchObject({ index: at, total: snapBytes });
    }
    // No message carries the whole snapshot: the Sync after it is a DIFF from the snapshot's index.
    const toA = sent.filter((e) => e.to === 'a' && msgType(e) === 'Sync').map((e) => e.msg as Sync);
    expect(toA.every((s) => s.snapshot === undefined)).toBe(true);
    expect(toA.at(-1)).toMatchObject({ mode: 'diff' });
    expect(toA.at(-1)?.entries.map((e) => e.index)).toEqual([at + 1]);
    expect(net.get('a').storage.snapshot()?.index).toBe(at);
    // Once synchronised, the leader's status no longer shows a transfer.
    expect(net.get('b').node.status().details.peers?.a?.snapshot).toBeUndefined();
  });

  it('the leader\'s status shows a transfer under way: the snapshot and the bytes acknowledged', () => {
    const { net, at, snapBytes } = behindSnapshot({ snapshotChunkBytes: 16 });
    // Acknowledgements past the first two chunks are lost: the transfer stays under way.
    net.filter = (env) => !(msgType(env) === 'SnapAck' && (env.msg as SnapAck).offset > 32);
    net.restart('a');
    for (let i = 0; i < 5; i++) {
      net.deliver();
      net.tickAll();
    }
    expect(net.get('b').node.status().details.peers?.a).toMatchObject({ stage: 'sync', snapshot: { index: at, acked: 32, total: snapBytes } });
  });

  it('a lost chunk is resent from the follower\'s offset, not from the start', () => {
    const sent: Envelope[] = [];
    const { net, snapBytes, expected } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    let dropped: number | undefined;
    net.filter = (env) => {
      const m = env.msg as SnapChunk;
      if (dropped === undefined && msgType(env) === 'SnapChunk' && m.offset === 48) {
        dropped = m.offset;
        return false;
      }
      return true;
    };
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    expect(dropped).toBe(48);
    expect(net.get('a').applied).toEqual(expected);
    const offsets = chunksOf(sent, 'a').map((c) => c.offset);
    // Offset 48 went twice; nothing before it was sent again.
    expect(offsets.filter((o) => o === 48)).toHaveLength(2);
    for (const o of [0, 16, 32]) expect(offsets.filter((x) => x === o)).toHaveLength(1);
    expect(offsets.length).toBeLessThan(2 * Math.ceil(snapBytes / 16));
  });

  it('no more than a window of chunks is in flight before the follower acknowledges', () => {
    let chunksSent = 0;
    let beforeFirstAck: number | undefined;
    const { net } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (_r, rd) => (chunksSent += rd.messages.filter((m) => msgType(m) === 'SnapChunk').length) });
    chunksSent = 0;
    net.filter = (env) => {
      if (msgType(env) === 'SnapAck') beforeFirstAck ??= chunksSent;
      return true;
    };
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    expect(beforeFirstAck).toBeGreaterThan(1);
    expect(beforeFirstAck).toBeLessThanOrEqual(4);
  });

  it('the snapshot is installed whole, then the DIFF, then currentEpoch, then the NEWLEADER ack, each in a later Ready', () => {
    const readysOfA: Ready[] = [];
    const { net, at, epoch: epochNow } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (r, rd) => r.id === 'a' && readysOfA.push(rd) });
    readysOfA.length = 0;
    expect(net.get('a').node.currentEpoch).toBeLessThan(epochNow);
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    const snap = readysOfA.findIndex((rd) => rd.snapshot !== undefined);
    const diff = readysOfA.findIndex((rd) => rd.entries.some((e) => e.index === at + 1));
    const epoch = readysOfA.findIndex((rd) => rd.hardState !== undefined && decodeHardState(rd.hardState).currentEpoch === epochNow);
    const ack = readysOfA.findIndex((rd) => rd.messages.some((m) => msgType(m) === 'AckNewLeader'));
    expect(snap).toBeGreaterThanOrEqual(0);
    expect(readysOfA[snap]?.snapshot?.index).toBe(at);
    expect(snap).toBeLessThan(diff);
    expect(diff).toBeLessThan(epoch);
    expect(epoch).toBeLessThan(ack);
    // Nothing before the install acknowledged NEWLEADER or took the epoch.
    for (const rd of readysOfA.slice(0, snap + 1)) expect(rd.messages.some((m) => msgType(m) === 'AckNewLeader')).toBe(false);
  });

  it('a follower that crashes in the middle of a transfer catches up after it restarts', () => {
    const { net, expected } = behindSnapshot({ snapshotChunkBytes: 16 });
    let seen = 0;
    net.filter = (env) => {
      if (msgType(env) === 'SnapChunk' && env.to === 'a' && ++seen === 3) net.crash('a');
      return true;
    };
    net.restart('a');
    for (let i = 0; i < 20; i++) {
      net.deliver();
      net.tickAll();
    }
    expect(net.get('a').up).toBe(false);
    net.filter = undefined;
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    expect(net.get('a').applied).toEqual(expected);
  });

  it('the default chunk is 1 MiB: a small snapshot goes in one chunk', () => {
    const sent: Envelope[] = [];
    const { net, snapBytes } = behindSnapshot({}, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    const chunks = chunksOf(sent, 'a');
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.data.length).toBe(snapBytes);
  });
});

describe('maxSnapshotBytes: the largest SNAP a follower accepts', () => {
  it('a larger SNAP is refused before anything is allocated: the follower keeps its state, says why, and the others go on', () => {
    const sent: Envelope[] = [];
    const { net, at, snapBytes } = behindSnapshot({ snapshotChunkBytes: 16, maxSnapshotBytes: 100 }, { onPersisted: (_r, rd) => sent.push(...rd.messages) });
    expect(snapBytes).toBeGreaterThan(100);
    const held = net.get('a').storage.lastIndex();
    net.restart('a');
    const a = net.get('a');
    settle(net, () => chunksOf(sent, 'a').length > 20);
    for (let i = 0; i < 20; i++) {
      net.tickAll();
      net.deliver();
    }
    expect(a.node.snapIn.holding).toBeUndefined();
    expect(a.storage.snapshot()).toBeUndefined();
    expect(a.storage.lastIndex()).toBe(held);
    expect(a.appliedIndex).toBeLessThan(at);
    expect(a.node.status().details.snapshotRefused).toBe(`snapshot ${at} from b: snapshot of ${snapBytes} bytes over the 100-byte limit`);
    proposeAll(net, 'b', [long(8)]);
    settle(net, () => net.get('c').applied.length === 9);
    expect(net.get('b').applied.at(-1)).toBe(long(8));
  });

  it('maxSnapshotBytes must be a positive integer of at most 2^32 - 1; 2 GiB by default', () => {
    for (const bad of [0, -1, 1.5, '64', 2 ** 32]) {
      expect(() => zab.parseOptions({ maxSnapshotBytes: bad }), String(bad)).toThrow(ConfigError);
    }
    expect(zab.parseOptions({ maxSnapshotBytes: 1 << 20 })).toEqual({ maxSnapshotBytes: 1 << 20 });
    expect(network(['a']).get('a').node.snapIn.maxBytes).toBe(2 ** 31);
  });
});

describe('snapshotChunkBytes and SnapChunk / SnapAck on the wire', () => {
  it('snapshotChunkBytes must be a positive integer of at most 16 MiB', () => {
    for (const bad of [0, -1, 1.5, '64', 32 << 20]) {
      expect(() => zab.parseOptions({ snapshotChunkBytes: bad }), String(bad)).toThrow(ConfigError);
    }
    expect(zab.parseOptions({ snapshotChunkBytes: 64 })).toEqual({ snapshotChunkBytes: 64 });
  });

  const chunk = { type: 'SnapChunk', nonce: 1, req: 0, epoch: 2, index: 10, term: 1, config: { voters: ['a'], learners: [] }, total: 8, offset: 4, data: new Uint8Array(4) };

  it('a well-formed chunk and acknowledgement decode', () => {
    expect(parseMessage(chunk)).toBe(chunk);
    const ack = { type: 'SnapAck', nonce: 1, epoch: 2, index: 10, term: 1, offset: 8, gap: false };
    expect(parseMessage(ack)).toBe(ack);
  });

  it('malformed chunks and acknowledgements are refused on decode (remote input never crashes a node)', () => {
    const bad: unknown[] = [
      { ...chunk, data: [1, 2, 3, 4] },
      { ...chunk, offset: 6 },
      { ...chunk, offset: -4 },
      { ...chunk, total: 2.5 },
      { ...chunk, data: new Uint8Array(0) },
      { ...chunk, index: 'x' },
      { ...chunk, config: { voters: 'a' } },
      { ...chunk, config: undefined },
      { type: 'SnapAck', nonce: 1, epoch: 2, index: 10, term: 1, offset: 8 },
      { type: 'SnapAck', nonce: 1, epoch: 2, index: 10, term: 1, offset: -1, gap: false },
    ];
    for (const m of bad) expect(parseMessage(m), JSON.stringify(m)).toBeUndefined();
  });

  it('a follower fed hostile chunks goes on (no throw) and still catches up', () => {
    const { net, at, expected } = behindSnapshot({ snapshotChunkBytes: 16 });
    // Hold the leader's chunks back until a waits for its SNAP.
    net.filter = (env) => msgType(env) !== 'SnapChunk';
    net.restart('a');
    settle(net, () => net.get('a').node.stage === 'acked', 100);
    net.filter = undefined;
    const a = net.get('a').node;
    const nonce = a.nonce;
    const base = { type: 'SnapChunk', nonce, req: a.syncReq, epoch: a.leaderEpoch, index: at, term: 1, config: { voters: ['a', 'b', 'c'], learners: [] } };
    for (const msg of [
      { ...base, total: 2 ** 40, offset: 0, data: new Uint8Array(16) },
      { ...base, total: 16, offset: 16, data: new Uint8Array(0) },
      { ...base, total: 32, offset: 16, data: new Uint8Array(16) },
      { ...base, index: 0, total: 16, offset: 0, data: new Uint8Array(16) },
    ]) {
      expect(() => a.step({ from: 'b', to: 'a', msg })).not.toThrow();
    }
    settle(net, () => net.get('a').applied.length === 8);
    expect(net.get('a').applied).toEqual(expected);
  });
});

describe('SNAP in chunks: whose bytes, and which ACKEPOCH', () => {
  it('a partial snapshot of one leader is never completed with another leader\'s bytes for the same (index, term, size)', () => {
    const { net } = behindSnapshot({ snapshotChunkBytes: 16 });
    const a = net.get('a').node;
    // a, following b, holds the first 16 bytes of b's snapshot (10, 1) of 32 bytes.
    Object.assign(a, { phase: 'following', leaderId: 'b', stage: 'acked', leaderEpoch: 5, nonce: 7, syncReq: 0 });
    const config = { voters: ['a', 'b', 'c'], learners: [] };
    const chunk = (from: string, offset: number, fill: number) => ({ from, to: 'a', msg: { type: 'SnapChunk', nonce: 7, req: 0, epoch: 5, index: 10, term: 1, config, total: 32, offset, data: new Uint8Array(16).fill(fill) } });
    a.step(chunk('b', 0, 1));
    a.ready();
    // Now it follows c (same epoch number for the sake of the test), whose snapshot at (10, 1) has other bytes.
    Object.assign(a, { leaderId: 'c' });
    a.step(chunk('c', 16, 2));
    const out = a.ready().messages.map((e) => e.msg as SnapAck);
    // It holds nothing of c's snapshot: c must start from 0 (no install of half b's, half c's bytes).
    expect(out).toEqual([expect.objectContaining({ type: 'SnapAck', offset: 0, gap: true })]);
    expect(a.log.base).toBe(0);
  });

  it('the leader ignores an ACKEPOCH older than the latest: it would resend the SNAP under a req the follower drops', () => {
    const sent: Envelope[] = [];
    const acks: Envelope[] = [];
    const { net, expected } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (r, rd) => r.id === 'b' && sent.push(...rd.messages) });
    net.filter = (env) => {
      if (env.to === 'b' && msgType(env) === 'AckEpoch') acks.push(env);
      return true;
    };
    net.restart('a');
    settle(net, () => net.get('a').applied.length === 8);
    expect(acks.map((e) => (e.msg as { req: number }).req)).toContain(1);
    // A delayed copy of a's first ACKEPOCH (req 0) reaches b while a is still synchronising: replay it on the
    // session that is current (a registers again from scratch).
    net.filter = undefined;
    sent.length = 0;
    const first = acks.find((e) => (e.msg as { req: number }).req === 0) as Envelope;
    const p = net.get('b').node.peers.get('a');
    expect(p?.stage).toBe('synced');
    if (p !== undefined) p.stage = 'sync';
    net.queue.push(first);
    net.deliver();
    net.processAll();
    expect(sent.filter((e) => msgType(e) === 'SnapChunk' || msgType(e) === 'Sync')).toEqual([]);
    expect(net.get('a').applied).toEqual(expected);
  });
});

describe('SNAP in one message (a leader of an earlier version)', () => {
  it('is still taken: the snapshot replaces the log, the entries after it follow', () => {
    const { net } = behindSnapshot({});
    const a = net.get('a').node;
    Object.assign(a, { phase: 'following', leaderId: 'b', stage: 'acked', leaderEpoch: 5, nonce: 7, syncReq: 0 });
    const snapshot = { index: 10, term: 1, config: { voters: ['a', 'b', 'c'], learners: [] }, data: new TextEncoder().encode('[]') };
    const entries = [{ index: 11, term: 1, type: 'noop' as const, data: new Uint8Array(0) }];
    a.step({ from: 'b', to: 'a', msg: { type: 'Sync', nonce: 7, req: 0, epoch: 5, base: 11, mode: 'snap', snapshot, entries } });
    const rd = a.ready();
    expect(rd.snapshot?.index).toBe(10);
    expect(rd.entries.map((e) => e.index)).toEqual([11]);
    expect(a.stage).toBe('syncing');
  });
});

describe('a snapshot over transport-tcp\'s 32 MiB frame limit', () => {
  it('reaches a follower in 1 MiB chunks: no message carries more than 1 MiB of payload', () => {
    const MiB = 1 << 20;
    let largest = 0;
    const payload = (m: ZabMessage): number => {
      if (m.type === 'SnapChunk') return m.data.length;
      if (m.type === 'Sync') return (m.snapshot?.data.length ?? 0) + m.entries.reduce((n, e) => n + e.data.length, 0);
      if (m.type === 'Proposal' || m.type === 'Inform') return m.entries.reduce((n, e) => n + e.data.length, 0);
      return 0;
    };
    // One entry per PROPOSAL and synchronisation message, each entry just under 1 MiB of text.
    const net = network(['a', 'b', 'c'], { maxBatch: 1 }, { onPersisted: (_r, rd) => rd.messages.forEach((e) => (largest = Math.max(largest, payload(e.msg as ZabMessage)))) });
    electLeader(net);
    net.crash('a');
    const values = Array.from({ length: 34 }, (_, i) => `${i}`.padEnd(MiB - 64, 'v'));
    for (const v of values) proposeAll(net, 'c', [v]);
    settle(net, () => net.get('b').applied.length === values.length);
    net.snapshot('b');
    net.snapshot('c');
    const total = net.get('c').storage.snapshot()?.data.length ?? 0;
    expect(total).toBeGreaterThan(32 * MiB);
    net.restart('a');
    settle(net, () => net.get('a').applied.length === values.length);
    expect(net.get('a').applied.every((v, i) => v === values[i])).toBe(true);
    expect(net.get('a').storage.snapshot()?.data.length).toBe(total);
    expect(largest).toBeLessThanOrEqual(MiB);
  }, 60_000);
});

describe('SNAP in chunks: stale chunks', () => {
  it('chunks answering an older ACKEPOCH are ignored once the follower asked for the rest (no second transfer, no ack)', () => {
    const chunks: Envelope[] = [];
    const fromA: Envelope[] = [];
    const { net, expected } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (r, rd) => r.id === 'a' && fromA.push(...rd.messages) });
    // Every chunk to a is recorded; the DIFF after the snapshot is held back, so a waits with its next ACKEPOCH out.
    net.filter = (env) => {
      if (env.to === 'a' && msgType(env) === 'SnapChunk') chunks.push(env);
      return !(env.to === 'a' && msgType(env) === 'Sync');
    };
    net.restart('a');
    settle(net, () => net.get('a').node.syncReq === 1 && net.get('a').node.log.base > 0, 100);
    const a = net.get('a').node;
    expect(a.stage).toBe('acked');
    // Every chunk of the finished transfer (req 0) arrives again.
    fromA.length = 0;
    for (const env of chunks) a.step(env);
    net.processAll();
    expect(fromA.filter((e) => msgType(e) === 'SnapAck' || msgType(e) === 'AckEpoch')).toEqual([]);
    expect(a.snapIn.holding).toBeUndefined();
    net.filter = undefined;
    settle(net, () => net.get('a').applied.length === 8);
    expect(net.get('a').applied).toEqual(expected);
  });
});

describe('SNAP in chunks: a reconnection', () => {
  it('to the same leader resumes the transfer from the bytes the follower holds', () => {
    const acks: SnapAck[] = [];
    const { net, expected } = behindSnapshot({ snapshotChunkBytes: 16 }, { onPersisted: (r, rd) => r.id === 'a' && acks.push(...rd.messages.filter((e) => msgType(e) === 'SnapAck').map((e) => e.msg as SnapAck)) });
    let delivered = 0;
    net.filter = (env) => !(env.to === 'a' && msgType(env) === 'SnapChunk' && ++delivered > 3);
    net.restart('a');
    const a = () => net.get('a').node;
    settle(net, () => a().snapIn.holding?.received === 48, 100);
    const session = a().nonce;
    // Cut off from here: a gives up on this session, looks, and finds b again (a new session, a new nonce).
    net.partition(['a']);
    net.filter = undefined;
    settle(net, () => a().phase === 'looking', 100);
    net.heal();
    settle(net, () => net.get('a').applied.length === 8);
    expect(a().nonce).not.toBe(session);
    expect(net.get('a').applied).toEqual(expected);
    // In the new session the first answer already holds the 48 bytes of the old one.
    const later = acks.filter((x) => x.nonce !== session);
    expect(later[0]?.offset).toBeGreaterThanOrEqual(48);
  });
});
