import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors';
import { SnapshotReceiver, SnapshotSender, type SnapshotChunk, type SnapshotChunkAck } from './snapshot-transfer';
import { seededRandom } from './validate';

const bytes = (n: number, seed = 1) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
};

interface Faults {
  drop?: number;
  dup?: number;
  reorder?: number;
}

/**
 * A lossy channel both ways, driven by ticks: each round delivers what is in flight (shuffled, some dropped, some
 * duplicated), then the sender ticks. Returns the rounds it took and what the receiver handed over.
 */
function run(sender: SnapshotSender, receiver: SnapshotReceiver, first: SnapshotChunk[], seed: number, f: Faults, maxRounds = 5000) {
  const rnd = seededRandom(seed);
  let toRecv: SnapshotChunk[] = [...first];
  let toSend: SnapshotChunkAck[] = [];
  const completed: Uint8Array[] = [];
  let sent = first.length;
  const mangle = <T>(xs: T[]): T[] => {
    let out: T[] = [];
    for (const x of xs) {
      if (rnd() < (f.drop ?? 0)) continue;
      out.push(x);
      if (rnd() < (f.dup ?? 0)) out.push(x);
    }
    if (rnd() < (f.reorder ?? 0)) out = out.map((x) => [rnd(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
    return out;
  };
  let rounds = 0;
  for (; rounds < maxRounds && !sender.done; rounds++) {
    const acks: SnapshotChunkAck[] = [];
    for (const c of mangle(toRecv)) {
      const r = receiver.receive(c);
      if (r.kind === 'ack' || r.kind === 'complete') acks.push(r.ack);
      if (r.kind === 'complete') completed.push(r.data);
      expect(r.kind).not.toBe('refused');
    }
    toRecv = [];
    for (const a of mangle(toSend)) toRecv.push(...sender.onAck(a));
    toSend = acks;
    toRecv.push(...sender.tick());
    sent += toRecv.length;
  }
  return { rounds, completed, sent };
}

describe('SnapshotSender / SnapshotReceiver (Raft thesis 5.3, Figure 5.3; windowed like etcd)', () => {
  it('streams a snapshot in chunks of chunkBytes, at most windowChunks unacknowledged', () => {
    const data = bytes(1000);
    const s = new SnapshotSender({ chunkBytes: 64, windowChunks: 3 });
    const first = s.start({ index: 10, term: 2 }, data);
    expect(first.map((c) => [c.offset, c.data.length])).toEqual([[0, 64], [64, 64], [128, 64]]);
    expect(s.pending()).toEqual([]); // the window is full
    const r = new SnapshotReceiver();
    const res = r.receive(first[0]!);
    expect(res).toEqual({ kind: 'ack', ack: { index: 10, term: 2, offset: 64, gap: false } });
    const more = s.onAck((res as { ack: SnapshotChunkAck }).ack);
    expect(more.map((c) => c.offset)).toEqual([192]);
  });

  it('delivers the exact bytes, handed over once, over a perfect channel', () => {
    const data = bytes(10_000);
    const s = new SnapshotSender({ chunkBytes: 100 });
    const r = new SnapshotReceiver();
    const out = run(s, r, s.start({ index: 5, term: 1 }, data), 1, {});
    expect(out.completed).toHaveLength(1);
    expect(out.completed[0]).toEqual(data);
    expect(s.done).toBe(true);
    expect(r.holding).toBeUndefined();
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('arrives whole under drops, duplicates and reorders (seed %i)', (seed) => {
    const data = bytes(5000, seed);
    const s = new SnapshotSender({ chunkBytes: 64, windowChunks: 4, stallTicks: 2 });
    const r = new SnapshotReceiver();
    const out = run(s, r, s.start({ index: 7, term: 3 }, data), seed, { drop: 0.3, dup: 0.3, reorder: 0.5 });
    expect(s.done).toBe(true);
    expect(out.completed).toHaveLength(1);
    expect(out.completed[0]).toEqual(data);
  });

  it('resumes from the acknowledged offset after a lost chunk instead of restarting', () => {
    const data = bytes(640);
    const s = new SnapshotSender({ chunkBytes: 64, windowChunks: 4 });
    const r = new SnapshotReceiver();
    const [c0, c1, c2, c3] = s.start({ index: 1, term: 1 }, data);
    r.receive(c0!);
    // c1 is lost; c2 and c3 each report the gap at 64.
    const a2 = r.receive(c2!);
    expect(a2).toEqual({ kind: 'ack', ack: { index: 1, term: 1, offset: 64, gap: true } });
    const resent = s.onAck((a2 as { ack: SnapshotChunkAck }).ack);
    expect(resent.map((c) => c.offset)).toEqual([64, 128, 192, 256]);
    // The second report of the same gap does not rewind again.
    expect(s.onAck((r.receive(c3!) as { ack: SnapshotChunkAck }).ack)).toEqual([]);
    expect(c1!.offset).toBe(64);
  });

  it('resends from the last acknowledged byte after stallTicks ticks without progress', () => {
    const s = new SnapshotSender({ chunkBytes: 10, windowChunks: 2, stallTicks: 3 });
    s.start({ index: 1, term: 1 }, bytes(100));
    expect(s.tick()).toEqual([]);
    expect(s.tick()).toEqual([]);
    expect(s.tick().map((c) => c.offset)).toEqual([0, 10]);
    // Progress resets the count.
    s.onAck({ index: 1, term: 1, offset: 10, gap: false });
    expect(s.tick().map((c) => c.offset)).toEqual([]);
    expect(s.tick()).toEqual([]);
    expect(s.tick()).toEqual([]);
    expect(s.tick().map((c) => c.offset)).toEqual([10, 20]);
  });

  it('a restarted sender resumes from the offset the receiver holds', () => {
    const data = bytes(2000);
    const s1 = new SnapshotSender({ chunkBytes: 100 });
    const r = new SnapshotReceiver();
    for (const c of s1.start({ index: 9, term: 4 }, data)) r.receive(c);
    expect(r.holding).toEqual({ index: 9, term: 4, received: 400, total: 2000 });
    // The sender restarts (a new object, perhaps a new leader with a higher epoch and other chunk size).
    const s2 = new SnapshotSender({ chunkBytes: 150 });
    const first = s2.start({ index: 9, term: 4 }, data, 5);
    expect(first[0]!.offset).toBe(0);
    const a = r.receive(first[0]!);
    expect(a).toEqual({ kind: 'ack', ack: { index: 9, term: 4, offset: 400, gap: false } });
    const next = s2.onAck((a as { ack: SnapshotChunkAck }).ack);
    expect(next[0]!.offset).toBe(600); // 150..600 were in flight already; nothing below 400 resent after the ack
    const out = run(s2, r, first.slice(1).concat(next), 3, { drop: 0.2, reorder: 0.5 });
    expect(out.completed).toHaveLength(1);
    expect(out.completed[0]).toEqual(data);
  });

  it('a restarted receiver gets the snapshot again from offset 0', () => {
    const data = bytes(1000);
    const s = new SnapshotSender({ chunkBytes: 100, windowChunks: 4 });
    let r = new SnapshotReceiver();
    const inFlight: SnapshotChunk[] = [];
    for (const c of s.start({ index: 3, term: 1 }, data)) {
      const a = r.receive(c);
      if (a.kind === 'ack') inFlight.push(...s.onAck(a.ack));
    }
    expect(s.acknowledged).toBe(400);
    r = new SnapshotReceiver(); // crashed: nothing held
    const a = r.receive(inFlight[0]!);
    expect(inFlight[0]!.offset).toBe(400);
    expect(a).toEqual({ kind: 'ack', ack: { index: 3, term: 1, offset: 0, gap: true } });
    const again = s.onAck((a as { ack: SnapshotChunkAck }).ack);
    expect(again[0]!.offset).toBe(0);
    const out = run(s, r, again, 4, { drop: 0.2, dup: 0.2, reorder: 0.3 });
    expect(out.completed).toHaveLength(1);
    expect(out.completed[0]).toEqual(data);
  });

  it('restarts from 0 when the snapshot changes, and the receiver drops the stale one', () => {
    const old = bytes(1000, 1);
    const fresh = bytes(700, 2);
    const s = new SnapshotSender({ chunkBytes: 100, windowChunks: 2 });
    const r = new SnapshotReceiver();
    for (const c of s.start({ index: 3, term: 1 }, old)) r.receive(c);
    expect(r.holding?.received).toBe(200);
    // The same snapshot again keeps the progress.
    expect(s.start({ index: 3, term: 1 }, old)).toEqual([]);
    const first = s.start({ index: 8, term: 1 }, fresh);
    expect(first.map((c) => [c.index, c.offset])).toEqual([[8, 0], [8, 100]]);
    // A late chunk of the old snapshot is not an answer to the new one.
    expect(s.onAck({ index: 3, term: 1, offset: 300, gap: false })).toEqual([]);
    r.receive(first[0]!);
    expect(r.holding).toEqual({ index: 8, term: 1, received: 100, total: 700 });
    // A chunk of the older snapshot is stale now.
    expect(r.receive({ index: 3, term: 1, total: 1000, offset: 0, data: old.subarray(0, 100), epoch: 0 })).toEqual({ kind: 'stale' });
    const out = run(s, r, first.slice(1), 5, { drop: 0.25, dup: 0.25, reorder: 0.5 });
    expect(out.completed).toHaveLength(1);
    expect(out.completed[0]).toEqual(fresh);
  });

  it('a transfer of a higher epoch replaces a newer snapshot of a lower epoch; a lower epoch is stale', () => {
    const r = new SnapshotReceiver();
    r.receive({ index: 50, term: 2, total: 300, offset: 0, data: bytes(100), epoch: 1 });
    expect(r.receive({ index: 40, term: 2, total: 200, offset: 100, data: bytes(100), epoch: 2 })).toEqual({
      kind: 'ack',
      ack: { index: 40, term: 2, offset: 0, gap: true },
    });
    expect(r.holding?.index).toBe(50); // replaced only by the first chunk of the new transfer
    r.receive({ index: 40, term: 2, total: 200, offset: 0, data: bytes(100), epoch: 2 });
    expect(r.holding).toEqual({ index: 40, term: 2, received: 100, total: 200 });
    expect(r.receive({ index: 50, term: 2, total: 300, offset: 0, data: bytes(100), epoch: 1 })).toEqual({ kind: 'stale' });
  });

  it('a late duplicate of a completed snapshot is answered "all held", not restarted', () => {
    const r = new SnapshotReceiver();
    const data = bytes(20);
    expect(r.receive({ index: 1, term: 1, total: 20, offset: 0, data, epoch: 0 }).kind).toBe('complete');
    expect(r.receive({ index: 1, term: 1, total: 20, offset: 0, data: data.subarray(0, 10), epoch: 0 })).toEqual({
      kind: 'ack',
      ack: { index: 1, term: 1, offset: 20, gap: false },
    });
    r.reset();
    expect(r.receive({ index: 1, term: 1, total: 20, offset: 0, data, epoch: 0 }).kind).toBe('complete');
  });

  it('an empty snapshot is one empty chunk', () => {
    const s = new SnapshotSender({ chunkBytes: 8 });
    const r = new SnapshotReceiver();
    const cs = s.start({ index: 2, term: 1 }, new Uint8Array(0));
    expect(cs).toHaveLength(1);
    const res = r.receive(cs[0]!);
    expect(res.kind).toBe('complete');
    s.onAck((res as { ack: SnapshotChunkAck }).ack);
    expect(s.done).toBe(true);
    expect(s.tick()).toEqual([]);
  });

  it('refuses a chunk past the declared size, a size over maxBytes and ill-typed fields, holding nothing', () => {
    const r = new SnapshotReceiver({ maxBytes: 1000 });
    expect(r.receive({ index: 1, term: 1, total: 10, offset: 5, data: bytes(6), epoch: 0 })).toMatchObject({ kind: 'refused', reason: expect.stringContaining('past the declared size') });
    expect(r.receive({ index: 1, term: 1, total: 1001, offset: 0, data: bytes(6), epoch: 0 })).toMatchObject({ kind: 'refused', reason: expect.stringContaining('limit') });
    expect(r.receive({ index: -1, term: 1, total: 10, offset: 0, data: bytes(6), epoch: 0 })).toMatchObject({ kind: 'refused' });
    expect(r.receive({ index: 1, term: 1, total: 10, offset: 0, data: [1, 2] as unknown as Uint8Array, epoch: 0 })).toMatchObject({ kind: 'refused' });
    expect(r.receive(null as unknown as SnapshotChunk)).toMatchObject({ kind: 'refused' });
    expect(r.holding).toBeUndefined();
    // Once a transfer is held, a chunk past its size is refused and the bytes held stay.
    r.receive({ index: 1, term: 1, total: 10, offset: 0, data: bytes(4), epoch: 0 });
    expect(r.receive({ index: 1, term: 1, total: 10, offset: 4, data: bytes(7), epoch: 0 }).kind).toBe('refused');
    expect(r.holding).toEqual({ index: 1, term: 1, received: 4, total: 10 });
  });

  it('ignores answers past the end or for another snapshot', () => {
    const s = new SnapshotSender({ chunkBytes: 10, windowChunks: 1 });
    s.start({ index: 1, term: 1 }, bytes(30));
    expect(s.onAck({ index: 1, term: 1, offset: 31, gap: false })).toEqual([]);
    expect(s.onAck({ index: 1, term: 2, offset: 10, gap: false })).toEqual([]);
    expect(s.acknowledged).toBe(0);
    expect(s.done).toBe(false);
  });

  it('bad options are InvalidArgumentError', () => {
    expect(() => new SnapshotSender({ chunkBytes: 0 })).toThrow(InvalidArgumentError);
    expect(() => new SnapshotSender({ windowChunks: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => new SnapshotSender({ stallTicks: -1 })).toThrow(InvalidArgumentError);
    expect(() => new SnapshotReceiver({ maxBytes: 0 })).toThrow(InvalidArgumentError);
    expect(() => new SnapshotSender().start({ index: -1, term: 0 }, bytes(1))).toThrow(InvalidArgumentError);
    expect(() => new SnapshotSender().start({ index: 1, term: 0 }, 'x' as unknown as Uint8Array)).toThrow(InvalidArgumentError);
  });
});
