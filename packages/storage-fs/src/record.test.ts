import { describe, expect, it } from 'vitest';
import { HEADER_BYTES, RecordKind, checkRecord, encodeRecords, entryRecordBytes, recordBytes, scanSegment, type RecordSpec } from './record';

function encode(specs: RecordSpec[], seq: number, batchStart = 0, at = 0, into?: Uint8Array): Uint8Array {
  let total = 0;
  for (const s of specs) total += recordBytes((s.numbers?.length ?? 0) * 8 + (s.body?.length ?? 0));
  const out = into ?? new Uint8Array(at + total);
  encodeRecords(out, at, specs, seq, batchStart);
  return out;
}

const entrySpec = (index: number, term: number, body: Uint8Array): RecordSpec => ({
  kind: RecordKind.ENTRY,
  entryType: 2,
  numbers: [index, term],
  body,
});

describe('WAL records', () => {
  it('round-trip an entry with index, term, type and 8-byte alignment', () => {
    const body = new TextEncoder().encode('hello');
    const buf = encode([entrySpec(2 ** 40 + 3, 77, body)], 9);
    expect(buf.length).toBe(entryRecordBytes(5));
    expect(buf.length % 8).toBe(0);
    const check = checkRecord(buf, 0, 9);
    expect(check).toMatchObject({ ok: true, record: { kind: RecordKind.ENTRY, index: 2 ** 40 + 3, term: 77, entryType: 2, payloadBytes: 21 } });
    expect(new TextDecoder().decode(buf.subarray(HEADER_BYTES + 16, HEADER_BYTES + 21))).toBe('hello');
  });

  it('detect a damaged length through the header checksum before using it', () => {
    const buf = encode([entrySpec(1, 1, new Uint8Array(10))], 1);
    new DataView(buf.buffer).setUint32(0, 1 << 29);
    expect(checkRecord(buf, 0, 1)).toMatchObject({ ok: false, reason: 'header checksum mismatch', short: false });
  });

  it('detect a flip in the payload padding', () => {
    const buf = encode([entrySpec(1, 1, new Uint8Array(3))], 1);
    buf[buf.length - 1] = 1; // a padding byte
    expect(checkRecord(buf, 0, 1)).toMatchObject({ ok: false, reason: 'payload checksum mismatch' });
  });

  it('detect a record written into the wrong segment (misdirected write)', () => {
    const buf = encode([entrySpec(1, 1, new Uint8Array(3))], 4);
    expect(checkRecord(buf, 0, 5)).toMatchObject({ ok: false, reason: 'record belongs to segment 4, not 5' });
  });

  it('report a record cut short as short (what a torn write looks like)', () => {
    const buf = encode([entrySpec(1, 1, new Uint8Array(100))], 1);
    expect(checkRecord(buf.subarray(0, 60), 0, 1)).toMatchObject({ ok: false, short: true });
    expect(checkRecord(buf.subarray(0, 10), 0, 1)).toMatchObject({ ok: false, short: true });
  });

  it('tell a torn last write from corruption by the batch start of the records after the damage', () => {
    // Write 1 at offset 0 (two records), write 2 at offset `second` (two records).
    const a = [entrySpec(1, 1, new Uint8Array(50)), entrySpec(2, 1, new Uint8Array(50))];
    const b = [entrySpec(3, 1, new Uint8Array(50)), entrySpec(4, 1, new Uint8Array(50))];
    const second = 2 * entryRecordBytes(50);
    const buf = new Uint8Array(2 * second);
    encodeRecords(buf, 0, a, 1, 0);
    encodeRecords(buf, second, b, 1, second);
    expect(scanSegment(buf, 1)).toMatchObject({ records: [{ index: 1 }, { index: 2 }, { index: 3 }, { index: 4 }], goodEnd: buf.length });

    // Damage in write 1 with write 2 intact after it: corruption.
    const early = buf.slice();
    early[30] = (early[30] as number) ^ 4;
    const s1 = scanSegment(early, 1);
    expect(s1.failure?.offset).toBe(0);
    expect(s1.laterWriteFollows).toBe(true);

    // Damage in the first record of write 2, its second record intact: still inside the last write: torn.
    const late = buf.slice();
    late[second + 30] = (late[second + 30] as number) ^ 4;
    const s2 = scanSegment(late, 1);
    expect(s2.failure?.offset).toBe(second);
    expect(s2.goodEnd).toBe(second);
    expect(s2.laterWriteFollows).toBe(false);
  });

  it('reads zeros after the last record as preallocated space, and a write torn into them as a torn tail', () => {
    const a = [entrySpec(1, 1, new Uint8Array(50).fill(9)), entrySpec(2, 1, new Uint8Array(50).fill(9))];
    const used = 2 * entryRecordBytes(50);
    const buf = new Uint8Array(used + 4096);
    encodeRecords(buf, 0, a, 1, 0);
    expect(scanSegment(buf, 1)).toMatchObject({ records: [{ index: 1 }, { index: 2 }], goodEnd: used, preallocated: 4096 });
    expect(scanSegment(buf, 1).failure).toBeUndefined();

    // A later write landed only in part: its first bytes and a sector further on, zeros between and after.
    const torn = buf.slice();
    encodeRecords(torn, used, [entrySpec(3, 1, new Uint8Array(1200).fill(7))], 1, used);
    torn.fill(0, used + 100, used + 600);
    torn.fill(0, used + 1000);
    const s = scanSegment(torn, 1);
    expect(s.failure?.offset).toBe(used);
    expect(s.goodEnd).toBe(used);
    expect(s.laterWriteFollows).toBe(false);
    expect(s.preallocated).toBe(0);
  });
});
