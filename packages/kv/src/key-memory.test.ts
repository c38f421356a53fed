import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@consensus-kit/core';
import { KvStateMachine } from './kv-state-machine';

// A full collection without --expose-gc: the flag set at run time, `gc` taken from a fresh context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KEYS = 50_000;
const key = (i: number) => `key/${String(i).padStart(12, '0')}`;
/** A fresh flat string for each call, as every command decoded from the wire carries its own copy of its key. */
const freshKey = (i: number) => Buffer.from(key(i)).toString('latin1');

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** The heap a store of KEYS keys takes once each was written, overwritten once with `overwriteKey`'s string, and its history compacted. */
function heapAfterOverwrites(overwriteKey: (i: number, first: string) => string): number {
  let index = 0;
  const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
  const before = heapUsed();
  const sm = new KvStateMachine();
  const firsts: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const k = freshKey(i);
    firsts.push(k);
    sm.apply(entry(), { cmd: { op: 'put', key: k, value: 'v1' } });
  }
  for (let i = 0; i < KEYS; i++) sm.apply(entry(), { cmd: { op: 'put', key: overwriteKey(i, firsts[i] as string), value: 'v2' } });
  sm.apply(entry(), { cmd: { op: 'compact', revision: sm.revision } });
  firsts.length = 0;
  const after = heapUsed();
  // Still in use here, so the store is not collected before the measurement.
  expect(sm.size).toBe(KEYS);
  return after - before;
}

describe('kv key memory', () => {
  it('an overwrite keeps one string per key: a command carrying its own copy of the key costs no more memory than one reusing the stored string', () => {
    const reused = heapAfterOverwrites((_, first) => first);
    const fresh = heapAfterOverwrites((i) => freshKey(i));
    // A kept second copy of a 16-character key is about 32 bytes a key (1.6 MB here); allow a tenth of that.
    expect((fresh - reused) / KEYS).toBeLessThan(3.2);
    // Both stores were measured whole (about 300 bytes a key or more), not collected under the measurement.
    expect(reused / KEYS).toBeGreaterThan(100);
  });
});
