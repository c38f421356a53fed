/**
 * Break-it pass (session 15) on chunked snapshot transfer (SnapshotReceiver / SnapshotSender): hostile or
 * broken chunks must be refused or answered without losing what the receiver holds.
 */
import { describe, expect, it } from 'vitest';
import { SnapshotReceiver, SnapshotSender, type SnapshotChunk } from './snapshot-transfer';

const bytes = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => (i * 31 + seed) % 251);
const chunk = (o: Partial<SnapshotChunk> & { data: Uint8Array }): SnapshotChunk => ({ index: 10, term: 2, total: 100, offset: 0, epoch: 3, ...o });

describe('SnapshotReceiver under hostile chunks', () => {
  it('a transfer half received survives every hostile chunk and completes byte for byte', () => {
    const data = bytes(100);
    const r = new SnapshotReceiver({ maxBytes: 1 << 20 });
    expect(r.receive(chunk({ data: data.subarray(0, 40) }))).toMatchObject({ kind: 'ack', ack: { offset: 40, gap: false } });
    const hostile: SnapshotChunk[] = [
      chunk({ offset: 90, data: data.subarray(0, 20) }), // past the declared size
      chunk({ offset: 2 ** 53, data: data.subarray(0, 1) }), // an offset past any size
      chunk({ offset: -1, data: data.subarray(0, 1) }),
      chunk({ offset: 0.5, data: data.subarray(0, 1) }),
      chunk({ offset: Number.NaN, data: data.subarray(0, 1) }),
      chunk({ total: 2 ** 32, data: new Uint8Array(1) }), // 4 GiB declared, over the limit
      chunk({ total: 2 ** 32, epoch: 99, data: new Uint8Array(1) }),
      chunk({ total: 200, data: bytes(40, 9) }), // the same snapshot, its size changed mid-transfer, same epoch
      chunk({ epoch: 2, data: bytes(40, 7) }), // an older sender's chunk
      chunk({ index: 5, epoch: 2, data: bytes(100, 7), total: 100 }), // an older snapshot, whole
      chunk({ index: 5, data: bytes(100, 7) }), // an older snapshot at the same epoch
      chunk({ offset: 60, data: bytes(10, 5) }), // reordered: past what is held (a gap)
      { ...chunk({ data: data.subarray(0, 1) }), data: 'not bytes' as unknown as Uint8Array },
      null as unknown as SnapshotChunk,
    ];
    for (const c of hostile) {
      const res = r.receive(c);
      expect(['refused', 'stale', 'ack']).toContain(res.kind);
      if (res.kind === 'ack') expect(res.ack.offset).toBeLessThanOrEqual(40);
      expect(r.holding).toEqual({ index: 10, term: 2, received: 40, total: 100 });
    }
    // A duplicate of what is held, and an overlapping chunk, change nothing.
    expect(r.receive(chunk({ data: data.subarray(0, 40) }))).toMatchObject({ kind: 'ack', ack: { offset: 40 } });
    expect(r.receive(chunk({ offset: 20, data: data.subarray(20, 70) }))).toMatchObject({ kind: 'ack', ack: { offset: 70 } });
    const done = r.receive(chunk({ offset: 70, data: data.subarray(70) }));
    expect(done.kind).toBe('complete');
    expect(Buffer.from((done as { data: Uint8Array }).data).equals(Buffer.from(data))).toBe(true);
  });

  it('a sender fed answers for another snapshot, past the end, negative or fractional, sends nothing wrong', () => {
    const s = new SnapshotSender({ chunkBytes: 10, windowChunks: 2 });
    const first = s.start({ index: 10, term: 2 }, bytes(35));
    expect(first.map((c) => c.offset)).toEqual([0, 10]);
    for (const ack of [
      { index: 9, term: 2, offset: 30, gap: false },
      { index: 10, term: 2, offset: 36, gap: false },
      { index: 10, term: 2, offset: -5, gap: false },
      { index: 10, term: 2, offset: 2.5, gap: true },
      { index: 10, term: 2, offset: Number.NaN, gap: true },
    ]) {
      expect(s.onAck(ack)).toEqual([]);
    }
    expect(s.acknowledged).toBe(0);
    expect(s.done).toBe(false);
    expect(s.onAck({ index: 10, term: 2, offset: 20, gap: false }).map((c) => [c.offset, c.data.length])).toEqual([
      [20, 10],
      [30, 5],
    ]);
  });
});
