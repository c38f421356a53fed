import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, SessionExpiredError, seededRandom, type LogEntry } from '@consensus-kit/core';
import type { DeleteResult, KeyValue, KvRequest, KvResult } from './commands';
import { readColumnar } from './snapshot-format';
import { KvStateMachine } from './kv-state-machine';

let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
const apply = (sm: KvStateMachine, req: KvRequest): KvResult => sm.apply(entry(), req);
const put = (sm: KvStateMachine, key: string, value: string) => apply(sm, { cmd: { op: 'put', key, value } });
const get = (sm: KvStateMachine, key: string) => sm.query({ op: 'get', key }) as KeyValue | undefined;

describe('KvStateMachine: etcd-style revisions', () => {
  it('put creates and updates keys; every mutation bumps the cluster revision', () => {
    const sm = new KvStateMachine();
    expect(put(sm, 'a', '1')).toEqual({ op: 'put', revision: 1 });
    expect(put(sm, 'b', '2')).toEqual({ op: 'put', revision: 2 });
    const r = apply(sm, { cmd: { op: 'put', key: 'a', value: '3', prevKv: true } });
    expect(r).toEqual({ op: 'put', revision: 3, prev: { key: 'a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 } });
    expect(get(sm, 'a')).toEqual({ key: 'a', value: '3', createRevision: 1, modRevision: 3, version: 2, lease: 0 });
    expect(put(sm, 'a', '4')).toEqual({ op: 'put', revision: 4 }); // no prevKv: the answer is the revision only
    expect(apply(sm, { cmd: { op: 'put', key: 'new', value: 'x', prevKv: true } })).toEqual({ op: 'put', revision: 5 });
    expect(sm.query({ op: 'revision' })).toBe(5);
  });

  it('delete removes a key, and recreating it starts a new createRevision and version', () => {
    const sm = new KvStateMachine();
    put(sm, 'k', 'v');
    expect(apply(sm, { cmd: { op: 'delete', key: 'k' } })).toEqual({ op: 'delete', revision: 2, deleted: 1 });
    expect(get(sm, 'k')).toBeUndefined();
    put(sm, 'k', 'again');
    expect(get(sm, 'k')).toMatchObject({ createRevision: 3, modRevision: 3, version: 1 });
  });

  it('deleting a missing key changes nothing, not even the revision', () => {
    const sm = new KvStateMachine();
    put(sm, 'x', '1');
    expect(apply(sm, { cmd: { op: 'delete', key: 'missing' } })).toEqual({ op: 'delete', revision: 1, deleted: 0 });
    expect(apply(sm, { cmd: { op: 'delete', key: 'missing', prevKv: true } })).toEqual({ op: 'delete', revision: 1, deleted: 0, prevKvs: [] });
    expect(sm.currentRevision).toBe(1);
  });

  it('range returns keys with a prefix in key order, honouring limit; delete by prefix takes them all in one revision', () => {
    const sm = new KvStateMachine();
    for (const k of ['app/b', 'app/a', 'apple', 'b', 'app/c', 'ap']) put(sm, k, k.toUpperCase());
    expect((sm.query({ op: 'range', prefix: 'app/' }) as KeyValue[]).map((kv) => kv.key)).toEqual(['app/a', 'app/b', 'app/c']);
    expect((sm.query({ op: 'range', prefix: 'app' }) as KeyValue[]).map((kv) => kv.key)).toEqual(['app/a', 'app/b', 'app/c', 'apple']);
    expect((sm.query({ op: 'range', prefix: 'app', limit: 2 }) as KeyValue[]).map((kv) => kv.key)).toEqual(['app/a', 'app/b']);
    expect((sm.query({ op: 'range', prefix: '' }) as KeyValue[]).length).toBe(6);
    const r = apply(sm, { cmd: { op: 'delete', key: 'app/', prefix: true, prevKv: true } });
    expect(r).toMatchObject({ revision: 7, deleted: 3 });
    expect((r as DeleteResult).prevKvs?.map((kv) => [kv.key, kv.value])).toEqual([
      ['app/a', 'APP/A'],
      ['app/b', 'APP/B'],
      ['app/c', 'APP/C'],
    ]);
    expect((sm.query({ op: 'range', prefix: '' }) as KeyValue[]).map((kv) => kv.key)).toEqual(['ap', 'apple', 'b']);
    // Without prevKv the answer is a count: the session table keeps answers, and a prefix can be huge.
    expect(apply(sm, { cmd: { op: 'delete', key: 'ap', prefix: true } })).toEqual({ op: 'delete', revision: 8, deleted: 2 });
    expect((sm.query({ op: 'range', prefix: '' }) as KeyValue[]).map((kv) => kv.key)).toEqual(['b']);
    expect(apply(sm, { cmd: { op: 'delete', key: '', prefix: true } })).toEqual({ op: 'delete', revision: 9, deleted: 1 });
    expect(sm.size).toBe(0);
  });

  it('range pages with after: each page starts past the last key of the one before', () => {
    const sm = new KvStateMachine();
    const keys = Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
    for (const k of [...keys].reverse()) put(sm, k, 'v');
    put(sm, 'o', 'before');
    put(sm, 'q', 'after');
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const got = sm.query({ op: 'range', prefix: 'p/', limit: 10, ...(after === undefined ? {} : { after }) }) as KeyValue[];
      seen.push(...got.map((kv) => kv.key));
      if (got.length < 10) break;
      after = got[got.length - 1]?.key;
    }
    expect(seen).toEqual(keys);
    // `after` need not be a stored key, and one before the prefix starts at the prefix.
    expect((sm.query({ op: 'range', prefix: 'p/', after: 'p/115' }) as KeyValue[]).map((kv) => kv.key)).toEqual(keys.slice(12));
    expect((sm.query({ op: 'range', prefix: 'p/', after: 'a', limit: 1 }) as KeyValue[])[0]?.key).toBe('p/00');
    expect(sm.query({ op: 'range', prefix: 'p/', after: 'p/24' })).toEqual([]);
    expect(() => sm.query({ op: 'range', prefix: 'p/', after: 7 } as never)).toThrow(InvalidArgumentError);
  });
});

describe('KvStateMachine: the key index', () => {
  it('agrees with a plain sorted model through random puts, deletes, prefix deletes, snapshots and paged ranges', () => {
    const random = seededRandom(2026);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    // Few letters and short keys, so prefixes overlap, keys are prefixes of others, and the astral and
    // private-use characters (whose UTF-16 order differs from their code point order) meet.
    const letters = ['a', 'b', 'ab', '/', '\u{1F600}', '\uE000', 'z'];
    const key = () => Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(letters)).join('');
    let sm = new KvStateMachine();
    const model = new Map<string, string>();
    const sorted = () => [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let step = 0; step < 3000; step++) {
      const r = random();
      if (r < 0.6) {
        const k = key();
        const v = String(step);
        put(sm, k, v);
        model.set(k, v);
      } else if (r < 0.8) {
        const k = key();
        apply(sm, { cmd: { op: 'delete', key: k } });
        model.delete(k);
      } else if (r < 0.83) {
        const p = key();
        const res = apply(sm, { cmd: { op: 'delete', key: p, prefix: true } }) as DeleteResult;
        const gone = sorted().filter((k) => k.startsWith(p));
        expect(res.deleted).toBe(gone.length);
        for (const k of gone) model.delete(k);
      } else if (r < 0.85) {
        const copy = new KvStateMachine();
        copy.restore(sm.snapshot());
        sm = copy;
      } else {
        const prefix = random() < 0.2 ? '' : key().slice(0, 1 + Math.floor(random() * 2));
        const limit = 1 + Math.floor(random() * 5);
        const want = sorted().filter((k) => k.startsWith(prefix));
        const got: string[] = [];
        let after: string | undefined;
        for (let page = 0; page <= want.length; page++) {
          const rows = sm.query({ op: 'range', prefix, limit, ...(after === undefined ? {} : { after }) }) as KeyValue[];
          got.push(...rows.map((kv) => kv.key));
          if (rows.length < limit) break;
          after = rows[rows.length - 1]?.key;
        }
        expect(got).toEqual(want);
      }
      expect(sm.size).toBe(model.size);
    }
    const all = sm.query({ op: 'range', prefix: '' }) as KeyValue[];
    expect(all.map((kv) => [kv.key, kv.value])).toEqual(sorted().map((k) => [k, model.get(k)]));
  });
});

describe('KvStateMachine: compare-and-set', () => {
  it('succeeds only when every comparison holds', () => {
    const sm = new KvStateMachine();
    const cas = (compare: object, value: string | null) => apply(sm, { cmd: { op: 'cas', key: 'lock', compare, value } });
    expect(cas({ exists: false }, 'me')).toMatchObject({ succeeded: true, revision: 1 });
    expect(cas({ exists: false }, 'you')).toMatchObject({ succeeded: false, revision: 1, current: { value: 'me' } });
    expect(cas({ value: 'me' }, 'me2')).toMatchObject({ succeeded: true, revision: 2 });
    expect(cas({ modRevision: 1 }, 'stale')).toMatchObject({ succeeded: false });
    expect(cas({ modRevision: 2, version: 2 }, 'fresh')).toMatchObject({ succeeded: true, revision: 3 });
    expect(cas({ version: 3, value: 'fresh' }, null)).toMatchObject({ succeeded: true, revision: 4 });
    expect(get(sm, 'lock')).toBeUndefined();
    expect(cas({ version: 0 }, 'new')).toMatchObject({ succeeded: true });
  });

  it('compares bytes with bytes', () => {
    const sm = new KvStateMachine();
    apply(sm, { cmd: { op: 'put', key: 'b', value: Uint8Array.of(1, 2, 3) } });
    expect(apply(sm, { cmd: { op: 'cas', key: 'b', compare: { value: Uint8Array.of(1, 2, 3) }, value: 'x' } })).toMatchObject({ succeeded: true });
    expect(apply(sm, { cmd: { op: 'cas', key: 'b', compare: { value: Uint8Array.of(1, 2, 3) }, value: 'y' } })).toMatchObject({ succeeded: false });
  });
});

describe('KvStateMachine: exactly-once sessions (thesis 6.3)', () => {
  it('a retried command returns the stored answer and is not applied twice', () => {
    const sm = new KvStateMachine();
    const req: KvRequest = { cmd: { op: 'put', key: 'n', value: '1' }, session: { id: 'c1', seq: 1 } };
    const first = apply(sm, req);
    put(sm, 'other', 'x');
    const retry = apply(sm, req);
    expect(retry).toEqual(first);
    expect(sm.currentRevision).toBe(2);
    expect(get(sm, 'n')).toMatchObject({ version: 1 });
  });

  it('a retried cas does not succeed twice', () => {
    const sm = new KvStateMachine();
    const req: KvRequest = { cmd: { op: 'cas', key: 'x', compare: { exists: false }, value: 'mine' }, session: { id: 'c', seq: 1 } };
    expect(apply(sm, req)).toMatchObject({ succeeded: true });
    expect(apply(sm, req)).toMatchObject({ succeeded: true, revision: 1 });
    expect(sm.currentRevision).toBe(1);
  });

  it('acknowledged answers are forgotten; reusing their seq is a SessionExpiredError', () => {
    const sm = new KvStateMachine();
    apply(sm, { cmd: { op: 'put', key: 'a', value: '1' }, session: { id: 'c', seq: 1 } });
    apply(sm, { cmd: { op: 'put', key: 'a', value: '2' }, session: { id: 'c', seq: 2, ack: 1 } });
    expect(() => apply(sm, { cmd: { op: 'put', key: 'a', value: '1' }, session: { id: 'c', seq: 1 } })).toThrow(SessionExpiredError);
    expect(get(sm, 'a')).toMatchObject({ value: '2', version: 2 });
  });

  it('sessions expire after a number of log entries, identically on every replica', () => {
    const make = () => new KvStateMachine({ expireAfterEntries: 32 });
    const a = make();
    const b = make();
    const log: KvRequest[] = [{ cmd: { op: 'put', key: 'k', value: 'v' }, session: { id: 'old', seq: 1 } }];
    for (let i = 0; i < 100; i++) log.push({ cmd: { op: 'put', key: `f${i}`, value: 'x' } });
    let i = 0;
    for (const req of log) {
      const e: LogEntry = { index: ++i, term: 1, type: 'command', data: new Uint8Array() };
      a.apply(e, req);
      b.apply(e, req);
    }
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    // The old session is gone: its retry is applied as new (a new session), the key gets version 2.
    a.apply({ index: ++i, term: 1, type: 'command', data: new Uint8Array() }, log[0] as KvRequest);
    expect(get(a, 'k')).toMatchObject({ version: 2 });
  });

  it('an acknowledgement drops exactly the answers at or below it, in whatever order the seqs were applied', () => {
    const random = seededRandom(11);
    for (let round = 0; round < 50; round++) {
      const sm = new KvStateMachine();
      const restored = new KvStateMachine();
      // Seqs mostly in order, some swapped with their neighbour (a retry applied after a later write).
      const seqs = Array.from({ length: 60 }, (_, i) => i + 1);
      for (let i = 0; i + 1 < seqs.length; i++) if (random() < 0.3) [seqs[i], seqs[i + 1]] = [seqs[i + 1]!, seqs[i]!];
      const kept = new Set<number>();
      let acked = 0;
      for (const [n, seq] of seqs.entries()) {
        const ack = seq > acked + 1 && random() < 0.5 ? acked + 1 + Math.floor(random() * Math.min(3, seq - acked - 1)) : undefined;
        if (ack !== undefined && ack > acked) acked = ack;
        if (seq <= acked) continue; // the client never sends a seq it has acknowledged
        apply(sm, { cmd: { op: 'put', key: 'k', value: String(seq) }, session: { id: 'c', seq, ...(ack !== undefined ? { ack } : {}) } });
        for (const s of kept) if (s <= acked) kept.delete(s);
        kept.add(seq);
        if (n === 30) restored.restore(sm.snapshot()); // half-way: the copy continues from a snapshot
        else if (n > 30) restored.apply({ index, term: 1, type: 'command', data: new Uint8Array() }, { cmd: { op: 'put', key: 'k', value: String(seq) }, session: { id: 'c', seq, ...(ack !== undefined ? { ack } : {}) } });
      }
      const sessions = readColumnar(sm.snapshot()).header.sessions as [string, number, number, [number, unknown][]][];
      const [, , tableAcked, answers] = sessions[0]!;
      expect(tableAcked).toBe(acked);
      expect(answers.map(([seq]) => seq).sort((x, y) => x - y)).toEqual([...kept].sort((x, y) => x - y));
      // The replica that restored half-way holds the same table.
      expect(readColumnar(restored.snapshot()).header.sessions).toEqual(sessions);
    }
  });

  it('bounds stored answers for a client that never acknowledges', () => {
    const sm = new KvStateMachine({ maxAnswersPerSession: 8 });
    for (let seq = 1; seq <= 20; seq++) apply(sm, { cmd: { op: 'put', key: 'k', value: String(seq) }, session: { id: 'greedy', seq } });
    expect(() => apply(sm, { cmd: { op: 'put', key: 'k', value: '1' }, session: { id: 'greedy', seq: 1 } })).toThrow(SessionExpiredError);
    expect(apply(sm, { cmd: { op: 'put', key: 'k', value: '20' }, session: { id: 'greedy', seq: 20 } })).toMatchObject({ revision: 20 });
  });
});

describe('KvStateMachine: snapshots', () => {
  it('restore gives an identical store, revision and session table', () => {
    const sm = new KvStateMachine();
    const random = seededRandom(7);
    let lastSessionRequest: KvRequest | undefined;
    for (let i = 0; i < 500; i++) {
      const key = `k${Math.floor(random() * 50)}`;
      const r = random();
      if (r < 0.6) {
        lastSessionRequest = { cmd: { op: 'put', key, value: String(i) }, session: { id: `c${i % 3}`, seq: i + 1 } };
        apply(sm, lastSessionRequest);
      }
      else if (r < 0.8) apply(sm, { cmd: { op: 'delete', key } });
      else apply(sm, { cmd: { op: 'cas', key, compare: { exists: true }, value: 'cas' } });
    }
    const copy = new KvStateMachine();
    copy.restore(sm.snapshot());
    expect(copy.query({ op: 'range', prefix: '' })).toEqual(sm.query({ op: 'range', prefix: '' }));
    expect(copy.currentRevision).toBe(sm.currentRevision);
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);
    // The session table came along: a retry is deduplicated on the copy too.
    const rev = copy.currentRevision;
    copy.apply(entry(), lastSessionRequest as KvRequest);
    expect(copy.currentRevision).toBe(rev);
  });

  it('refuses a snapshot it cannot read with a typed error', () => {
    expect(() => new KvStateMachine().restore(Uint8Array.of(0xc1))).toThrow(/not valid msgpack|unknown format/);
  });
});

describe('KvStateMachine: bad input gets InvalidArgumentError and changes nothing', () => {
  it.each<[string, unknown]>([
    ['not an object', 'put a 1'],
    ['missing cmd', {}],
    ['unknown op', { cmd: { op: 'explode', key: 'a' } }],
    ['empty key', { cmd: { op: 'put', key: '', value: 'x' } }],
    ['numeric value', { cmd: { op: 'put', key: 'a', value: 42 } }],
    ['huge key', { cmd: { op: 'put', key: 'k'.repeat(5000), value: 'x' } }],
    ['key of 4098 UTF-8 bytes in 1366 characters', { cmd: { op: 'put', key: '\u20ac'.repeat(1366), value: 'x' } }],
    ['value string over 4 MiB', { cmd: { op: 'put', key: 'a', value: 'v'.repeat(4 * 1024 * 1024 + 1) } }],
    ['value of 4 MiB + 2 UTF-8 bytes in fewer characters', { cmd: { op: 'put', key: 'a', value: '\u20ac'.repeat((4 * 1024 * 1024) / 3 + 1) } }],
    ['cas without compare', { cmd: { op: 'cas', key: 'a', value: 'x' } }],
    ['cas with bad revision', { cmd: { op: 'cas', key: 'a', compare: { modRevision: -1 }, value: 'x' } }],
    ['session without id', { cmd: { op: 'put', key: 'a', value: 'x' }, session: { seq: 1 } }],
    ['session seq 0', { cmd: { op: 'put', key: 'a', value: 'x' }, session: { id: 'c', seq: 0 } }],
    ['ack not below seq', { cmd: { op: 'put', key: 'a', value: 'x' }, session: { id: 'c', seq: 2, ack: 2 } }],
    ['put with a non-boolean prevKv', { cmd: { op: 'put', key: 'a', value: 'x', prevKv: 'yes' } }],
  ])('%s', (_name, req) => {
    const sm = new KvStateMachine();
    expect(() => sm.apply(entry(), req as KvRequest)).toThrow(InvalidArgumentError);
    expect(sm.currentRevision).toBe(0);
    expect(sm.size).toBe(0);
  });

  it('sizes are UTF-8 bytes: a key or value right at the limit is accepted', () => {
    const sm = new KvStateMachine();
    put(sm, '\u20ac'.repeat(1365), 'x'); // 4095 bytes
    put(sm, 'k'.repeat(4096), '\u20ac'.repeat(Math.floor((4 * 1024 * 1024) / 3)));
    expect(sm.size).toBe(2);
  });

  it('bad queries', () => {
    const sm = new KvStateMachine();
    expect(() => sm.query({ op: 'get' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query({ op: 'range', prefix: 'a', limit: 0 })).toThrow(InvalidArgumentError);
    expect(() => sm.query({ op: 'scan' } as never)).toThrow(InvalidArgumentError);
  });
});
