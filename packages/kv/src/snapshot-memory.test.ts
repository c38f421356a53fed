import { describe, expect, it } from 'vitest';
import { KvStateMachine } from './kv-state-machine';

// In a file of its own: the bound counts the snapshot buffers of this module instance not yet collected, and a
// test file gets a fresh one.
describe('kv snapshot memory', () => {
  it('a snapshot is written into shared memory (which V8 does not count toward a major collection) while fewer than three earlier ones are uncollected (a node holds its latest, and the one it replaced awaits a major collection), then into ordinary memory; the bytes are the same', () => {
    const sm = new KvStateMachine();
    // Large enough that the snapshot is a view of its buffer (a small one is a trimmed copy).
    for (let i = 0; i < 3000; i++) sm.apply({ index: i + 1, term: 1, type: 'command', data: new Uint8Array() }, { cmd: { op: 'put', key: `k${i}`, value: `v${i}`.padEnd(60, '.') } });
    // Each one kept alive: the third finds two uncollected (a node's stored snapshot and the one it replaced),
    // the fourth three.
    const kept = [sm.snapshot(), sm.snapshot(), sm.snapshot(), sm.snapshot()];
    expect(kept.map((b) => b.buffer instanceof SharedArrayBuffer)).toEqual([true, true, true, false]);
    for (const b of kept) expect(Buffer.from(b).equals(Buffer.from(kept[0] as Uint8Array))).toBe(true);
    const copy = new KvStateMachine();
    copy.restore(kept[0] as Uint8Array);
    expect(copy.range('')).toEqual(sm.range(''));
  });
});
