/**
 * Break-it pass (session 17): a restore must not keep the snapshot's bytes alive. Live byte values are copied
 * ("the snapshot's buffer is not kept"), but a byte value in the history is unpacked by msgpackr as a view
 * (`subarray`) of the snapshot, so one 3-byte past value pins the whole snapshot buffer (a SharedArrayBuffer,
 * counted against MAX_SHARED_ALIVE, while this process holds it) until that history is compacted.
 */
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { KvStateMachine } from './kv-state-machine';

describe('kv restore: history byte values do not pin the snapshot buffer', () => {
  it('a past byte value read back after restore() and beginRestore() is not a view of the snapshot', () => {
    let index = 0;
    const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
    const sm = new KvStateMachine();
    for (let i = 0; i < 3000; i++) sm.apply(entry(), { cmd: { op: 'put', key: `k${i}`, value: `v${i}`.padEnd(60, '.') } });
    sm.apply(entry(), { cmd: { op: 'put', key: 'b', value: new Uint8Array([1, 2, 3]) } });
    const rev = sm.revision;
    sm.apply(entry(), { cmd: { op: 'put', key: 'b', value: new Uint8Array([4, 5, 6]) } });
    const snap = sm.snapshot();
    for (const how of ['restore', 'beginRestore'] as const) {
      const copy = new KvStateMachine();
      if (how === 'restore') copy.restore(snap);
      else {
        const job = copy.beginRestore(snap);
        while (!job.step(7));
      }
      const past = copy.range('b', 1, undefined, rev)[0]?.value as Uint8Array;
      expect(Array.from(past)).toEqual([1, 2, 3]);
      expect({ how, sharesSnapshotBuffer: past.buffer === snap.buffer, bufferBytes: past.buffer.byteLength }).toEqual({ how, sharesSnapshotBuffer: false, bufferBytes: 3 });
    }
  });
});
