/**
 * The upgrade path of DESIGN's "Composition": a kv-only cluster starts running `{ kv, lock }`. Its snapshots
 * (kv's own, written before) and its old log entries (kv commands without `{ sm }`) keep working, through
 * `combineStateMachines(..., { primary: 'kv' })`, and the lock machine starts empty beside them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MalformedMessageError, combineStateMachines, type LogEntry } from '@consensus-kit/core';
import { KvStateMachine } from '@consensus-kit/kv';
import { LockStateMachine } from '../src/lock-state-machine';

const fixture = (name: string) => readFileSync(new URL(`../../kv/testdata/${name}`, import.meta.url));

let index = 100;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });

function node() {
  const kv = new KvStateMachine({ historyRevisions: 4 });
  const lock = new LockStateMachine({ minSessionTtlMs: 100 });
  return { kv, lock, sm: combineStateMachines({ kv, lock }, { primary: 'kv' }) };
}

describe('a kv-only cluster upgrades to { kv, lock } without losing a key', () => {
  it('restores a kv snapshot of format 2 (kv testdata) into kv, and the lock machine starts empty', () => {
    const { kv, lock, sm } = node();
    sm.restore(fixture('snapshot-v2.bin'));
    expect(kv.query({ op: 'status' })).toEqual({ revision: 9, compactRevision: 5 });
    expect(sm.query({ op: 'get', key: 'config/port' })).toMatchObject({ value: '7200', modRevision: 3 });
    expect(sm.query({ sm: 'lock', q: { op: 'locks' } })).toEqual([]);
    expect(lock.sessionCount).toBe(0);
  });

  it('restores a kv snapshot of format 1 (kv testdata) into kv', () => {
    const { sm } = node();
    sm.restore(fixture('snapshot-v1.bin'));
    expect(sm.query({ op: 'get', key: 'config/host' })).toMatchObject({ value: 'example.org' });
    expect(sm.query({ sm: 'kv', q: { op: 'get', key: 'leader' } })).toMatchObject({ value: 'n1' });
  });

  it('applies the old log (bare kv commands and kv time entries) next to new routed commands, and a new snapshot keeps both', () => {
    const { kv, lock, sm } = node();
    sm.restore(fixture('snapshot-v2.bin'));
    // Entries written by the kv-only version: commands without { sm }, a kv time entry.
    expect(sm.apply(entry(), { cmd: { op: 'put', key: 'after', value: 'upgrade' } })).toMatchObject({ revision: 10 });
    sm.apply(entry(), { cmd: { op: 'time', term: 1, ms: 0 } });
    // Entries of the new version: routed commands and combined time entries, which reach both machines.
    const time = sm.timeCommand?.(2, 0);
    sm.apply(entry(), time as never);
    const open = sm.apply(entry(), { sm: 'lock', cmd: { cmd: { op: 'open', ttl: 1000 } } }) as { session: number };
    const got = sm.apply(entry(), { sm: 'lock', cmd: { cmd: { op: 'acquire', session: open.session, req: 1, name: 'm', mode: 'mutex' } } });
    expect(got).toMatchObject({ status: 'granted', token: index });
    sm.apply(entry(), sm.timeCommand?.(2, 300) as never);
    expect([kv.now, lock.now]).toEqual([300, 300]);

    const copy = node();
    copy.sm.restore(sm.snapshot());
    expect(copy.sm.query({ op: 'get', key: 'after' })).toMatchObject({ value: 'upgrade' });
    expect(copy.sm.query({ op: 'get', key: 'config/port' })).toMatchObject({ value: '7200' });
    expect(copy.sm.query({ sm: 'lock', q: { op: 'lock', name: 'm' } })).toMatchObject({ holders: [{ session: open.session, token: index - 1 }] });
    expect(copy.lock.now).toBe(300);
  });

  it('without the primary option, a bare kv snapshot is refused rather than restored into an empty store', () => {
    const sm = combineStateMachines({ kv: new KvStateMachine(), lock: new LockStateMachine() });
    expect(() => sm.restore(fixture('snapshot-v2.bin'))).toThrow(MalformedMessageError);
  });
});
