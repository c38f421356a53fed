import { ConfigError, seededRandom, type Envelope } from '@consensus-kit/core';
import { describe, expect, it } from 'vitest';
import type { SnapshotMessage } from '../src/messages';
import { parseMessage } from '../src/messages';
import { paxos } from '../src/index';
import { cluster, elect, enc, settle, type, until } from './helpers';
import type { TestNetwork } from './network';

/**
 * Snapshots travel in chunks (core's SnapshotSender / SnapshotReceiver; Raft thesis 5.3, windowed and resumed like
 * etcd's snapshot streaming): a follower behind the leader's compacted log catches up from a snapshot many chunks
 * long, under losses, stalls and its own restart, and no message carries more than `snapshotChunkBytes` of it.
 */

const CHUNK = 64;

/** a leads {a, b, c}; c is cut off while a decides `count` values and compacts its log: c is behind a snapshot. */
function behindSnapshot(count: number, maxSnapshotBytes?: number): { net: TestNetwork; index: number; total: number } {
  const net = cluster(['a', 'b', 'c'], { snapshotChunkBytes: CHUNK, ...(maxSnapshotBytes === undefined ? {} : { maxSnapshotBytes }) });
  elect(net, 'a');
  const a = net.get('a').node;
  net.partition(['a', 'b']);
  for (let i = 0; i < count; i++) {
    a.propose(enc.encode(`value-${i}-${'x'.repeat(20)}`));
    if (i % 16 === 15) settle(net, 1, ['a', 'b']);
  }
  settle(net, 3, ['a', 'b']);
  expect(a.commit).toBeGreaterThan(count);
  const index = net.snapshot('a');
  a.compacted(index);
  const total = net.get('a').storage.snapshot()?.data.length ?? 0;
  expect(total).toBeGreaterThan(50 * CHUNK);
  return { net, index, total };
}

const chunksTo = (seen: Envelope[], to: string) => seen.filter((e) => e.to === to && type(e) === 'SnapshotChunk').map((e) => e.msg as SnapshotMessage);

describe('chunked snapshot streaming', () => {
  it('a follower behind a compacted log catches up from a snapshot of many chunks while a third of them and their answers are lost', () => {
    const { net, index, total } = behindSnapshot(200);
    const rnd = seededRandom(7);
    const seen: Envelope[] = [];
    let dropped = 0;
    net.filter = (e) => {
      seen.push(e);
      const t = type(e);
      if ((t === 'SnapshotChunk' || t === 'SnapshotAck') && rnd() < 0.33) {
        dropped++;
        return false;
      }
      return true;
    };
    net.heal();
    const c = net.get('c');
    until(net, () => c.node.commit >= index && c.appliedIndex >= index, 2000);
    const chunks = chunksTo(seen, 'c');
    expect(dropped).toBeGreaterThan(20);
    // Many chunks, none over the chunk size, all of one snapshot whose bytes they cover.
    expect(chunks.length).toBeGreaterThan(total / CHUNK);
    expect(Math.max(...chunks.map((m) => m.data.length))).toBeLessThanOrEqual(CHUNK);
    expect(new Set(chunks.map((m) => m.total))).toEqual(new Set([total]));
    expect(new Set(chunks.map((m) => m.offset)).size).toBe(Math.ceil(total / CHUNK));
    // Resumed, not restarted: resends stay within a small multiple of the snapshot.
    expect(chunks.reduce((s, m) => s + m.data.length, 0)).toBeLessThan(4 * total);
    // c installed exactly the leader's state and goes on with the cluster.
    expect(net.get('c').applied).toEqual(net.get('a').applied.slice(0, net.get('c').applied.length));
    net.filter = undefined;
    net.get('a').node.propose(enc.encode('after'));
    settle(net, 5);
    for (const id of ['a', 'b', 'c']) expect(net.get(id).applied.at(-1)).toBe('after');
  });

  it('after a stall (every chunk to the follower lost for a while) the leader resumes from the offset the follower holds', () => {
    const { net, index, total } = behindSnapshot(120);
    const seen: Envelope[] = [];
    // A third of the snapshot arrives, then every chunk to c is lost for a while.
    let cut = true;
    net.filter = (e) => {
      seen.push(e);
      return !(cut && type(e) === 'SnapshotChunk' && (e.msg as SnapshotMessage).offset >= total / 3);
    };
    net.heal();
    const c = net.get('c');
    settle(net, 10);
    const held = c.node.snapIn.holding?.received as number;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(total);
    seen.length = 0;
    cut = false;
    until(net, () => c.node.commit >= index, 500);
    const after = chunksTo(seen, 'c');
    // Nothing below what c held was sent again.
    expect(Math.min(...after.map((m) => m.offset))).toBeGreaterThanOrEqual(held - CHUNK);
    expect(after.reduce((s, m) => s + m.data.length, 0)).toBeLessThan(total - held + 8 * CHUNK);
    expect(net.get('c').applied).toEqual(net.get('a').applied.slice(0, net.get('c').applied.length));
  });

  it('a follower restarted in the middle of a transfer gets the snapshot again from offset 0 and installs it', () => {
    const { net, index } = behindSnapshot(120);
    net.filter = (e) => !(type(e) === 'SnapshotChunk' && (e.msg as SnapshotMessage).offset >= 10 * CHUNK);
    net.heal();
    const c = net.get('c');
    settle(net, 3);
    expect(c.node.snapIn.holding?.received).toBe(10 * CHUNK);
    net.crash('c');
    settle(net, 2, ['a', 'b']);
    net.filter = undefined;
    net.restart('c');
    expect(net.get('c').node.snapIn.holding).toBeUndefined();
    until(net, () => net.get('c').node.commit >= index && net.get('c').appliedIndex >= index, 1000);
    expect(net.get('c').applied).toEqual(net.get('a').applied.slice(0, net.get('c').applied.length));
  });

  it('a new leader continues the transfer its predecessor began, from the offset the follower holds', () => {
    const { net, index, total } = behindSnapshot(120);
    // b takes the same snapshot as a (the same decided prefix: the same (index, term) and bytes).
    expect(net.snapshot('b')).toBe(index);
    net.get('b').node.compacted(index);
    expect(net.get('b').storage.snapshot()?.data).toEqual(net.get('a').storage.snapshot()?.data);
    net.filter = (e) => !(type(e) === 'SnapshotChunk' && (e.msg as SnapshotMessage).offset >= total / 3);
    net.heal();
    const c = net.get('c');
    settle(net, 3);
    const held = c.node.snapIn.holding?.received as number;
    expect(held).toBeGreaterThan(0);
    net.crash('a');
    const seen: Envelope[] = [];
    net.filter = (e) => {
      seen.push(e);
      return true;
    };
    net.get('b').node.campaign(true);
    until(net, () => c.node.commit >= index, 1000);
    const fromB = seen.filter((e) => e.from === 'b' && e.to === 'c' && type(e) === 'SnapshotChunk').map((e) => e.msg as SnapshotMessage);
    expect(fromB.length).toBeGreaterThan(0);
    // b's first window starts at 0; c answers with what it holds, and b goes on from there.
    const bytes = fromB.reduce((s, m) => s + m.data.length, 0);
    expect(bytes).toBeLessThan(total - held + 8 * CHUNK);
  });

  it('a partial snapshot whose sender went silent is dropped after four election timeouts, so a lower-epoch transfer gets through', () => {
    const { net, index } = behindSnapshot(120);
    const c = net.get('c');
    // A transfer of a later snapshot from a sender of a higher epoch begins, and that sender is never heard again.
    c.node.step({ from: 'b', to: 'c', msg: { type: 'SnapshotChunk', index: index + 5, term: 1, config: { voters: ['a', 'b', 'c'] }, total: 1000, offset: 0, data: new Uint8Array(CHUNK), epoch: 2 ** 40, membership: null } });
    expect(c.node.snapIn.holding?.index).toBe(index + 5);
    net.heal();
    settle(net, 20);
    // a's chunks (its promise is the lower epoch) are stale meanwhile.
    expect(c.node.commit).toBeLessThan(index);
    const rounds = until(net, () => c.node.commit >= index, 200);
    expect(rounds).toBeGreaterThan(10);
    expect(net.get('c').applied).toEqual(net.get('a').applied.slice(0, net.get('c').applied.length));
  });

  it('malformed chunks and answers are dropped on decode; a declared size over the limit is refused; the node goes on', () => {
    const base = { type: 'SnapshotChunk', index: 9, term: 1, config: { voters: ['a'] }, membership: null, epoch: 0 };
    expect(parseMessage({ ...base, total: 10, offset: 8, data: new Uint8Array(3) })).toBeUndefined();
    expect(parseMessage({ ...base, total: 10, offset: -1, data: new Uint8Array(3) })).toBeUndefined();
    expect(parseMessage({ ...base, offset: 0, data: new Uint8Array(3) })).toBeUndefined();
    expect(parseMessage({ ...base, total: 10, offset: 0, epoch: 'x', data: new Uint8Array(3) })).toBeUndefined();
    expect(parseMessage({ type: 'SnapshotAck', index: 1, term: 1, offset: 1 })).toBeUndefined();
    expect(parseMessage({ type: 'SnapshotAck', index: 1, term: 1, offset: 1.5, gap: false })).toBeUndefined();
    expect(parseMessage({ type: 'SnapshotAck', index: 1, term: 1, offset: 1, gap: true })).toEqual({ type: 'SnapshotAck', index: 1, term: 1, offset: 1, gap: true });
    const net = cluster(['a', 'b', 'c'], { snapshotChunkBytes: CHUNK });
    elect(net, 'a');
    const c = net.get('c').node;
    const slot = c.commit + 3;
    const hostile = [
      { ...base, index: slot, total: 2 ** 40, offset: 0, data: new Uint8Array(4) },
      { ...base, index: slot, total: 10, offset: 0, data: new Uint8Array(4), membership: { junk: true } },
      { ...base, index: slot + 1, total: 4, offset: 0, data: new Uint8Array(4), membership: { junk: true } },
      { type: 'SnapshotAck', index: slot, term: 1, offset: 2 ** 40, gap: true },
    ];
    for (const msg of hostile.slice(0, 2)) c.step({ from: 'a', to: 'c', msg });
    expect(c.snapIn.holding).toEqual({ index: slot, term: 1, received: 4, total: 10 });
    // Complete but with a malformed membership: not installed, not acknowledged, forgotten.
    c.step({ from: 'a', to: 'c', msg: hostile[2] });
    expect(c.snap).toBeUndefined();
    expect(c.snapIn.holding).toBeUndefined();
    c.step({ from: 'a', to: 'c', msg: hostile[1] });
    expect(c.snapIn.holding).toEqual({ index: slot, term: 1, received: 4, total: 10 });
    net.get('a').node.step({ from: 'c', to: 'a', msg: hostile[3] });
    for (let i = 0; i < 5; i++) net.get('a').node.propose(enc.encode('still'));
    settle(net, 3);
    expect(net.get('c').applied.at(-1)).toBe('still');
    // The commit point passed the partial snapshot: its buffer is freed.
    expect(c.snapIn.holding).toBeUndefined();
  });

  it("a replica of the earlier version's whole-snapshot message (`Snapshot`) is still installed, as one chunk; chunks carry another tag, which such a replica ignores", () => {
    const { net, index } = behindSnapshot(120);
    const a = net.get('a');
    const snap = a.storage.snapshot();
    if (snap === undefined) throw new Error('no snapshot');
    const legacy = { type: 'Snapshot', index: snap.index, term: snap.term, config: snap.config, data: snap.data, membership: a.node.membership.asOf(snap.index).toWire() };
    expect(parseMessage(legacy)).toMatchObject({ type: 'SnapshotChunk', total: snap.data.length, offset: 0, epoch: 0 });
    const c = net.get('c');
    c.node.step({ from: 'a', to: 'c', msg: legacy });
    // c stays cut off from a and b: the one message installs the snapshot.
    until(net, () => c.node.commit >= index && c.appliedIndex >= index, 20);
    expect(c.applied).toEqual(a.applied.slice(0, c.applied.length));
  });

  it('a snapshot larger than maxSnapshotBytes is refused before anything is allocated: the replica keeps its state, says why, and the others go on', () => {
    const { net, index, total } = behindSnapshot(120, 1000);
    expect(total).toBeGreaterThan(1000);
    const c = net.get('c');
    const before = { commit: c.node.commit, last: c.node.log.lastIndex, applied: [...c.applied] };
    const heardChunks: number[] = [];
    net.filter = (e) => {
      if (e.to === 'c' && type(e) === 'SnapshotChunk') heardChunks.push((e.msg as SnapshotMessage).total);
      return true;
    };
    net.heal();
    settle(net, 40);
    expect(heardChunks.length).toBeGreaterThan(0);
    expect(new Set(heardChunks)).toEqual(new Set([total]));
    expect(c.node.snapIn.holding).toBeUndefined();
    expect(c.node.commit).toBe(before.commit);
    expect(c.node.commit).toBeLessThan(index);
    expect(c.node.log.lastIndex).toBe(before.last);
    expect(c.applied).toEqual(before.applied);
    expect(c.node.status().details.snapshotRefused).toBe(`snapshot ${index} from a: snapshot of ${total} bytes over the 1000-byte limit`);
    net.get('a').node.propose(enc.encode('on'));
    settle(net, 5);
    for (const id of ['a', 'b']) expect(net.get(id).applied.at(-1)).toBe('on');
  });

  it('maxSnapshotBytes is validated: a positive integer up to 2^32 - 1; 2 GiB by default', () => {
    expect(paxos.parseOptions({ maxSnapshotBytes: 1 << 20 })).toEqual({ maxSnapshotBytes: 1 << 20 });
    for (const bad of [0, -1, 1.5, 'big', 2 ** 32]) expect(() => paxos.parseOptions({ maxSnapshotBytes: bad })).toThrow(ConfigError);
    expect(cluster(['a']).get('a').node.snapIn.maxBytes).toBe(2 ** 31);
  });

  it('snapshotChunkBytes is validated: a positive integer up to 16 MiB', () => {
    expect(paxos.parseOptions({ snapshotChunkBytes: 64 })).toEqual({ snapshotChunkBytes: 64 });
    for (const bad of [0, -1, 1.5, 'big', 32 * 1024 * 1024]) expect(() => paxos.parseOptions({ snapshotChunkBytes: bad })).toThrow(ConfigError);
  });
});

describe('a follower catching up from a snapshot does not campaign against the leader that sends it', () => {
  it("the leader's chunks restart the follower's election countdown: a transfer longer than an election timeout, with the heartbeats held back, ends with no campaign", () => {
    const { net, index } = behindSnapshot(200);
    const c = net.get('c');
    // Once the transfer has begun, c hears nothing from a but its chunks (heartbeats and the rest queued behind
    // them), and at most one chunk per round: the transfer lasts many election timeouts.
    let started = false;
    let allowed = 0;
    const fromC: string[] = [];
    net.filter = (e) => {
      if (e.from === 'c') fromC.push(type(e));
      if (e.from !== 'a' || e.to !== 'c') return true;
      if (type(e) !== 'SnapshotChunk') return !started;
      started = true;
      return allowed-- > 0;
    };
    net.heal();
    let rounds = 0;
    for (; rounds < 2000 && !(c.node.commit >= index && c.appliedIndex >= index); rounds++) {
      allowed = 1;
      settle(net, 1);
      expect(c.node.status().role).toBe('follower');
    }
    expect(c.node.commit).toBeGreaterThanOrEqual(index);
    expect(rounds).toBeGreaterThan(4 * 20); // several times the longest election timeout (2 x electionTicks)
    expect(fromC).not.toContain('Prepare');
    expect(c.applied).toEqual(net.get('a').applied.slice(0, c.applied.length));
  });

  it('no campaign while the host makes the install durable and restores it (between the Ready that carries it and advance); one after, if the leader stays silent', () => {
    const { net, total } = behindSnapshot(120);
    const c = net.get('c');
    net.heal();
    // Deliver until the chunk that completes the snapshot is next for c; hand it to c outside the network.
    let last: Envelope | undefined;
    for (let i = 0; i < 200 && last === undefined; i++) {
      net.tick('a');
      while (net.queue.length > 0) {
        const next = net.queue[0] as Envelope;
        if (next.to === 'c' && type(next) === 'SnapshotChunk') {
          const m = next.msg as SnapshotMessage;
          if (m.offset + m.data.length === total) {
            last = next;
            net.queue.shift();
            break;
          }
        }
        net.deliverOne();
      }
    }
    if (last === undefined) throw new Error('the last chunk never came');
    const n = c.node;
    n.step(last);
    n.advance(n.ready()); // the install's marks
    const install = n.ready();
    expect(install.snapshot?.index).toBeGreaterThan(0);
    // The host is busy with the install (a large one: seconds); the leader is not heard meanwhile.
    for (let i = 0; i < 6 * 10; i++) n.tick();
    expect(n.status().role).toBe('follower');
    expect(n.hasReady() ? n.ready().messages.map((e) => type(e)) : []).not.toContain('Prepare');
    n.advance(install);
    for (let i = 0; i < 2 * 10 + 1; i++) n.tick();
    expect(n.status().role).not.toBe('follower');
  });
});
