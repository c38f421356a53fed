import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CompactedError, InvalidArgumentError, seededRandom, type LogEntry } from '@consensus-kit/core';
import type { CompactResult, KeyValue, KvRequest, KvResult, KvStatus } from './commands';
import { FutureRevisionError, RevisionCompactedError } from './errors';
import { KvStateMachine } from './kv-state-machine';
import { KeyIndexBuilder, type KvEvent } from './mvcc-store';

let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
const apply = (sm: KvStateMachine, req: KvRequest): KvResult => sm.apply(entry(), req);
const put = (sm: KvStateMachine, key: string, value: string) => apply(sm, { cmd: { op: 'put', key, value } });
const del = (sm: KvStateMachine, key: string, prefix = false) => apply(sm, { cmd: { op: 'delete', key, prefix } });
const getAt = (sm: KvStateMachine, key: string, revision: number) => sm.query({ op: 'get', key, revision }) as KeyValue | undefined;
const rangeAt = (sm: KvStateMachine, prefix: string, revision: number) => sm.query({ op: 'range', prefix, revision }) as KeyValue[];
const compact = (sm: KvStateMachine, revision: number) => apply(sm, { cmd: { op: 'compact', revision } }) as CompactResult;

describe('MVCC history: reads at a past revision (etcdctl get --rev)', () => {
  it('a key read at each revision shows the version it had then, with its revisions and version', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1'); // rev 1
    put(sm, 'b', 'x'); // rev 2
    put(sm, 'a', '2'); // rev 3
    del(sm, 'a'); // rev 4
    put(sm, 'a', '3'); // rev 5: a new generation
    expect(getAt(sm, 'a', 1)).toEqual({ key: 'a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 });
    expect(getAt(sm, 'a', 2)).toMatchObject({ value: '1', modRevision: 1 });
    expect(getAt(sm, 'a', 3)).toEqual({ key: 'a', value: '2', createRevision: 1, modRevision: 3, version: 2, lease: 0 });
    expect(getAt(sm, 'a', 4)).toBeUndefined();
    expect(getAt(sm, 'a', 5)).toEqual({ key: 'a', value: '3', createRevision: 5, modRevision: 5, version: 1, lease: 0 });
    expect(getAt(sm, 'b', 1)).toBeUndefined();
    expect(getAt(sm, 'a', 0)).toMatchObject({ value: '3' }); // 0: now
    expect(sm.query({ op: 'get', key: 'a' })).toMatchObject({ value: '3' });
  });

  it('a range at a past revision merges keys deleted since with live ones, in key order, with limit and after', () => {
    const sm = new KvStateMachine();
    put(sm, 'p/a', '1'); // 1
    put(sm, 'p/b', '1'); // 2
    put(sm, 'p/c', '1'); // 3
    put(sm, 'q', '1'); // 4
    del(sm, 'p/', true); // 5
    put(sm, 'p/b', '2'); // 6
    put(sm, 'p/d', '1'); // 7
    const keys = (kvs: KeyValue[]) => kvs.map((kv) => `${kv.key}=${String(kv.value)}`);
    expect(keys(rangeAt(sm, 'p/', 3))).toEqual(['p/a=1', 'p/b=1', 'p/c=1']);
    expect(keys(rangeAt(sm, 'p/', 4))).toEqual(['p/a=1', 'p/b=1', 'p/c=1']);
    expect(keys(rangeAt(sm, 'p/', 5))).toEqual([]);
    expect(keys(rangeAt(sm, 'p/', 6))).toEqual(['p/b=2']);
    expect(keys(rangeAt(sm, 'p/', 7))).toEqual(['p/b=2', 'p/d=1']);
    expect(keys(rangeAt(sm, '', 2))).toEqual(['p/a=1', 'p/b=1']);
    expect(keys(sm.query({ op: 'range', prefix: 'p/', revision: 3, limit: 2, after: 'p/a' }) as KeyValue[])).toEqual(['p/b=1', 'p/c=1']);
    expect(keys(sm.query({ op: 'range', prefix: 'p/', revision: 3, limit: 1 }) as KeyValue[])).toEqual(['p/a=1']);
  });

  it('a revision not reached yet is etcd ErrFutureRev: FutureRevisionError, an InvalidArgumentError', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1');
    let err: unknown;
    try {
      sm.query({ op: 'get', key: 'a', revision: 2 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FutureRevisionError);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ revision: 2, currentRevision: 1, code: 'INVALID_ARGUMENT' });
    expect(() => sm.query({ op: 'range', prefix: '', revision: 9 })).toThrow(/future revision/);
    expect(() => sm.query({ op: 'get', key: 'a', revision: -1 })).toThrow(InvalidArgumentError);
    expect(() => sm.query({ op: 'get', key: 'a', revision: 1.5 })).toThrow(InvalidArgumentError);
  });
});

describe('MVCC history: compaction (etcdctl compact)', () => {
  it('compact(N) keeps every read at N or later and fails those below with ErrCompacted', () => {
    const sm = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    for (let i = 1; i <= 10; i++) put(sm, 'k', String(i)); // revisions 1..10
    put(sm, 'gone', 'x'); // 11
    del(sm, 'gone'); // 12
    expect(compact(sm, 5)).toEqual({ op: 'compact', revision: 12, compactRevision: 5 });
    expect(sm.currentRevision).toBe(12); // a compaction moves no revision
    for (let r = 5; r <= 12; r++) expect(getAt(sm, 'k', r)?.value).toBe(String(Math.min(r, 10)));
    let err: unknown;
    try {
      getAt(sm, 'k', 4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RevisionCompactedError);
    expect(err).toBeInstanceOf(CompactedError); // core's COMPACTED code: never retried by a client
    expect(err).toMatchObject({ revision: 4, compactRevision: 5, code: 'COMPACTED' });
    expect(() => rangeAt(sm, '', 1)).toThrow(RevisionCompactedError);
    expect(sm.query({ op: 'status' })).toEqual({ revision: 12, compactRevision: 5 } satisfies KvStatus);
    // Compacting past the deletion forgets the deleted key's history entirely.
    expect(getAt(sm, 'gone', 11)).toMatchObject({ value: 'x' });
    compact(sm, 12);
    expect(getAt(sm, 'gone', 12)).toBeUndefined();
    expect(sm.historyKeys).toBe(0);
    expect(getAt(sm, 'k', 12)?.value).toBe('10');
  });

  it('compacting at or below the compaction point is ErrCompacted, past the store is ErrFutureRev, and neither changes anything', () => {
    const sm = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    put(sm, 'a', '1');
    put(sm, 'a', '2');
    compact(sm, 2);
    expect(() => compact(sm, 2)).toThrow(RevisionCompactedError);
    expect(() => compact(sm, 1)).toThrow(RevisionCompactedError);
    expect(() => compact(sm, 3)).toThrow(FutureRevisionError);
    expect(() => apply(sm, { cmd: { op: 'compact', revision: 0 } })).toThrow(InvalidArgumentError);
    expect(() => apply(sm, { cmd: { op: 'compact', revision: 'x' } } as never)).toThrow(InvalidArgumentError);
    expect(sm.query({ op: 'status' })).toEqual({ revision: 2, compactRevision: 2 });
  });

  it('a compaction error inside a session keeps its class on the first try and on a retry', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1');
    const req: KvRequest = { cmd: { op: 'compact', revision: 5 }, session: { id: 'c', seq: 1 } };
    expect(() => apply(sm, req)).toThrow(FutureRevisionError);
    put(sm, 'a', '2');
    put(sm, 'a', '3');
    put(sm, 'a', '4');
    put(sm, 'a', '5');
    // The retry is answered from the session table, not re-run (revision 5 exists now).
    expect(() => apply(sm, req)).toThrow(FutureRevisionError);
    const again: KvRequest = { cmd: { op: 'compact', revision: 3 }, session: { id: 'c', seq: 2 } };
    expect(apply(sm, again)).toMatchObject({ compactRevision: 3 });
    const old: KvRequest = { cmd: { op: 'compact', revision: 2 }, session: { id: 'c', seq: 3 } };
    expect(() => apply(sm, old)).toThrow(RevisionCompactedError);
    expect(() => apply(sm, old)).toThrow(expect.objectContaining({ revision: 2, compactRevision: 3 }));
  });

  it('retention compacts automatically, counted in revisions: history stays bounded', () => {
    const sm = new KvStateMachine({ historyRevisions: 100 });
    for (let i = 1; i <= 1000; i++) put(sm, `k${i % 7}`, String(i));
    expect(sm.compactRevision).toBe(900);
    expect(getAt(sm, 'k0', 900)).toBeDefined();
    expect(() => getAt(sm, 'k0', 899)).toThrow(RevisionCompactedError);
    // A hot key's history holds only what the last 100 revisions superseded, not 1000 versions.
    const past = (sm as unknown as { store: { past: Map<string, { recs?: unknown[]; head?: number }> } }).store.past;
    const retained = [...past.values()].reduce((n, h) => n + (h.recs === undefined ? 1 : h.recs.length - (h.head as number)), 0);
    expect(retained).toBeGreaterThan(90);
    expect(retained).toBeLessThanOrEqual(107);
    // Many keys created and deleted: their tombstones go too.
    for (let i = 0; i < 500; i++) {
      put(sm, `tmp/${i}`, 'x');
      del(sm, `tmp/${i}`);
    }
    expect(sm.historyKeys).toBeLessThanOrEqual(7 + 50);
    expect(sm.size).toBe(7);
  });

  it('historyRevisions 0 keeps only the current revision readable; a bad value is refused', () => {
    const sm = new KvStateMachine({ historyRevisions: 0 });
    put(sm, 'a', '1');
    put(sm, 'a', '2');
    expect(getAt(sm, 'a', 2)?.value).toBe('2');
    expect(() => getAt(sm, 'a', 1)).toThrow(RevisionCompactedError);
    expect(() => new KvStateMachine({ historyRevisions: -1 })).toThrow(InvalidArgumentError);
    expect(() => new KvStateMachine({ historyRevisions: 1.5 })).toThrow(InvalidArgumentError);
  });
});

/** The whole store at every revision, as a model: the state after each write command. */
function model() {
  const states: Map<string, string>[] = [new Map()];
  return {
    states,
    write(change: (m: Map<string, string>) => boolean) {
      const next = new Map(states[states.length - 1]);
      if (change(next)) states.push(next);
    },
  };
}

describe('MVCC history against a model (seeded)', () => {
  it.each([1, 2, 3, 4])('seed %i: every read at every readable revision matches; older ones are compacted; a snapshot restores the same history', (seed) => {
    const random = seededRandom(seed);
    const retention = 1 + Math.floor(random() * 40);
    const sm = new KvStateMachine({ historyRevisions: retention });
    const m = model();
    const key = () => `k/${Math.floor(random() * 12)}`;
    for (let step = 0; step < 400; step++) {
      const r = random();
      if (r < 0.5) {
        const k = key();
        const v = String(step);
        put(sm, k, v);
        m.write((s) => (s.set(k, v), true));
      } else if (r < 0.65) {
        const k = key();
        del(sm, k);
        m.write((s) => s.delete(k));
      } else if (r < 0.7) {
        const p = `k/${Math.floor(random() * 2)}`;
        del(sm, p, true);
        m.write((s) => {
          let any = false;
          for (const k of [...s.keys()]) if (k.startsWith(p)) any = s.delete(k) || any;
          return any;
        });
      } else if (r < 0.8) {
        const a = key();
        const b = key();
        if (a !== b) {
          apply(sm, { cmd: { op: 'txn', if: [{ key: a, target: 'version', cmp: '>', value: 0 }], then: [{ op: 'put', key: b, value: 't' }, { op: 'delete', key: a }], else: [{ op: 'put', key: a, value: 'e' }] } });
          m.write((s) => {
            if (s.has(a)) {
              s.set(b, 't');
              s.delete(a);
            } else s.set(a, 'e');
            return true;
          });
        }
      } else if (r < 0.83) {
        const target = sm.compactRevision + 1 + Math.floor(random() * 5);
        if (target <= sm.currentRevision) compact(sm, target);
      } else if (r < 0.86) {
        const copy = new KvStateMachine({ historyRevisions: retention });
        copy.restore(sm.snapshot());
        expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);
        Object.assign(sm, { store: (copy as unknown as { store: unknown }).store });
      }
      expect(sm.currentRevision).toBe(m.states.length - 1);
      const rev = 1 + Math.floor(random() * (sm.currentRevision + 1)); // 0 would mean "now"
      if (sm.currentRevision === 0) continue;
      if (rev > sm.currentRevision) expect(() => rangeAt(sm, '', rev)).toThrow(FutureRevisionError);
      else if (rev < sm.compactRevision) expect(() => rangeAt(sm, 'k/', rev)).toThrow(RevisionCompactedError);
      else {
        const want = [...(m.states[rev] as Map<string, string>)].sort(([x], [y]) => (x < y ? -1 : 1));
        expect(rangeAt(sm, '', rev).map((kv) => [kv.key, kv.value])).toEqual(want);
        const k = key();
        expect(getAt(sm, k, rev)?.value).toBe(m.states[rev]?.get(k));
      }
      // Replaying the changes after a readable revision onto the store as it was then gives the store now.
      const base = Math.min(Math.max(sm.compactRevision, rev), sm.currentRevision);
      const state = new Map(m.states[base]);
      let last = base + 1;
      for (const e of sm.changes(base + 1)) {
        expect(e.revision).toBeGreaterThanOrEqual(last);
        last = e.revision;
        const k = e.type === 'put' ? e.kv.key : e.key;
        expect(e.prev?.value).toBe(state.get(k));
        if (e.type === 'put') state.set(k, e.kv.value as string);
        else state.delete(k);
      }
      expect([...state].sort(([x], [y]) => (x < y ? -1 : 1))).toEqual([...(m.states.at(-1) as Map<string, string>)].sort(([x], [y]) => (x < y ? -1 : 1)));
    }
    expect(sm.compactRevision).toBeGreaterThanOrEqual(sm.currentRevision - retention);
  });
});

describe('the change log (what a watch from a past revision replays)', () => {
  it('changes(from) gives every put and delete from that revision on, in applied order, with the key before each', () => {
    const sm = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    put(sm, 'a', '1'); // 1
    put(sm, 'b', '1'); // 2
    apply(sm, { cmd: { op: 'txn', then: [{ op: 'put', key: 'z', value: '1' }, { op: 'delete', key: 'a' }, { op: 'put', key: 'b', value: '2' }] } }); // 3
    del(sm, 'b'); // 4
    const brief = (e: KvEvent) => (e.type === 'put' ? `${e.revision} put ${e.kv.key}=${String(e.kv.value)}` : `${e.revision} delete ${e.key}`) + (e.prev ? ` (was ${String(e.prev.value)})` : '');
    expect(sm.changes(1).map(brief)).toEqual(['1 put a=1', '2 put b=1', '3 put z=1', '3 delete a (was 1)', '3 put b=2 (was 1)', '4 delete b (was 2)']);
    expect(sm.changes(3, 2).map(brief)).toEqual(['3 put z=1', '3 delete a (was 1)']);
    expect(sm.changes(5)).toEqual([]);
    // The log, op order within a revision included, survives a snapshot.
    const before = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    before.restore(sm.snapshot());
    expect(before.changes(1).map(brief)).toEqual(sm.changes(1).map(brief));
    compact(sm, 3);
    expect(sm.changes(4).map(brief)).toEqual(['4 delete b (was 2)']);
    expect(() => sm.changes(3)).toThrow(RevisionCompactedError);
    const copy = new KvStateMachine({ historyRevisions: Number.POSITIVE_INFINITY });
    copy.restore(sm.snapshot());
    expect(copy.changes(4)).toEqual(sm.changes(4));
  });
});

describe('snapshot format', () => {
  it('a snapshot written by the code before MVCC (format 1, testdata/snapshot-v1.bin) restores with its keys, values, revision and sessions', () => {
    const sm = new KvStateMachine();
    sm.restore(readFileSync(new URL('../testdata/snapshot-v1.bin', import.meta.url)));
    expect(sm.currentRevision).toBe(9);
    // It carries no history: revision 9 is the oldest one that can be read.
    expect(sm.compactRevision).toBe(9);
    expect(() => getAt(sm, 'config/port', 8)).toThrow(RevisionCompactedError);
    expect(getAt(sm, 'config/port', 9)).toMatchObject({ value: '7200' });
    const all = sm.range('');
    expect(all.map((kv) => kv.key)).toEqual(['bin', 'config/host', 'config/port', 'counter', 'leader']);
    expect(sm.query({ op: 'get', key: 'config/port' })).toEqual({ key: 'config/port', value: '7200', createRevision: 1, modRevision: 3, version: 2, lease: 0 });
    expect(sm.query({ op: 'get', key: 'config/host' })).toMatchObject({ value: 'example.org', createRevision: 2, modRevision: 2, version: 1 });
    expect(Array.from((sm.query({ op: 'get', key: 'bin' }) as KeyValue).value as Uint8Array)).toEqual([0, 1, 2, 255]);
    expect(sm.query({ op: 'get', key: 'leader' })).toMatchObject({ value: 'n1', createRevision: 7 });
    expect(sm.query({ op: 'get', key: 'counter' })).toMatchObject({ value: '2', modRevision: 9, version: 2 });
    expect(sm.query({ op: 'get', key: 'gone' })).toBeUndefined();
    // Its session table came along: the retried request is answered from it, not applied again.
    expect(apply(sm, { cmd: { op: 'put', key: 'counter', value: '2' }, session: { id: 'client-1', seq: 2, ack: 1 } })).toEqual({ op: 'put', revision: 9 });
    expect(sm.currentRevision).toBe(9);
    // And the store goes on: history from here on.
    put(sm, 'config/port', '7300');
    expect(getAt(sm, 'config/port', 9)).toMatchObject({ value: '7200' });
    expect(getAt(sm, 'config/port', 10)).toMatchObject({ value: '7300', version: 3 });
  });

  it('a snapshot of format 2 (testdata/snapshot-v2.bin, before leases) restores: keys, history, compaction point and the session table with its stored typed error', () => {
    const sm = new KvStateMachine({ historyRevisions: 4 });
    sm.restore(readFileSync(new URL('../testdata/snapshot-v2.bin', import.meta.url)));
    expect(sm.query({ op: 'status' })).toEqual({ revision: 9, compactRevision: 5 });
    expect(sm.range('').map((kv) => kv.key)).toEqual(['bin', 'config/host', 'config/port', 'counter', 'leader']);
    expect(sm.query({ op: 'get', key: 'config/port' })).toEqual({ key: 'config/port', value: '7200', createRevision: 1, modRevision: 3, version: 2, lease: 0 });
    expect(getAt(sm, 'counter', 8)).toMatchObject({ value: '1' });
    expect(() => getAt(sm, 'counter', 4)).toThrow(RevisionCompactedError);
    // The refused compaction's answer is in the session: a retry gets the same typed error, nothing runs again.
    expect(() => apply(sm, { cmd: { op: 'compact', revision: 2 }, session: { id: 'client-1', seq: 3, ack: 2 } })).toThrow(RevisionCompactedError);
    expect(apply(sm, { cmd: { op: 'put', key: 'counter', value: '2' }, session: { id: 'client-1', seq: 4, ack: 3 } })).toEqual({ op: 'put', revision: 10 });
  });

  it('format 2 round-trips history, tombstones and the compaction point; the copy compacts as the original', () => {
    const sm = new KvStateMachine({ historyRevisions: 5 });
    for (let i = 1; i <= 8; i++) put(sm, 'a', String(i));
    put(sm, 'b', 'x');
    del(sm, 'b');
    const copy = new KvStateMachine({ historyRevisions: 5 });
    copy.restore(sm.snapshot());
    expect(copy.query({ op: 'status' })).toEqual(sm.query({ op: 'status' }));
    for (let r = sm.compactRevision; r <= sm.currentRevision; r++) expect(rangeAt(copy, '', r)).toEqual(rangeAt(sm, '', r));
    for (let i = 0; i < 6; i++) {
      put(sm, 'a', `x${i}`);
      put(copy, 'a', `x${i}`);
      expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);
    }
  });

  it('refuses an unknown snapshot version with a typed error', async () => {
    const { pack } = await import('msgpackr');
    expect(() => new KvStateMachine().restore(pack({ v: 99, revision: 1, kvs: [] }))).toThrow(/unknown format/);
  });
});

describe('KeyIndexBuilder: a key index built bottom-up as restored keys arrive', () => {
  it('makes a valid tree of every size (a single leaf, exactly full, one over, several levels) that later inserts and deletes keep valid', () => {
    const random = seededRandom(5);
    for (const n of [0, 1, 26, 32, 33, 100, 833, 5000, 40_000]) {
      const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(6, '0')}`);
      const values = keys.map((key, i) => ({ key, value: `v${i}`, createRevision: i + 1, modRevision: i + 1, version: 1, lease: 0 }));
      const b = new KeyIndexBuilder(keys, values);
      for (let read = 0; read < n; read += 1 + Math.floor(random() * 200)) b.advance(read);
      const tree = b.finish();
      tree.checkValid();
      expect(tree.size).toBe(n);
      expect(tree.keysArray()).toEqual(keys);
      if (n > 0) expect(tree.get(keys[n >> 1] as string)).toBe(values[n >> 1]);
      for (let i = 0; i < 300; i++) {
        const k = `k${String(Math.floor(random() * (n + 50))).padStart(6, '0')}${random() < 0.5 ? 'x' : ''}`;
        if (random() < 0.5) tree.set(k, undefined);
        else tree.delete(k);
      }
      tree.checkValid();
    }
  });
});
