import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type LogEntry } from '@consensus-kit/core';
import { MAX_TXN_OPS, type KeyValue, type KvRequest, type KvResult, type TxnCompare, type TxnOp, type TxnResult } from './commands';
import { InvalidTxnError } from './errors';
import { KvStateMachine } from './kv-state-machine';

let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
const apply = (sm: KvStateMachine, req: KvRequest): KvResult => sm.apply(entry(), req);
const put = (sm: KvStateMachine, key: string, value: string) => apply(sm, { cmd: { op: 'put', key, value } });
const txn = (sm: KvStateMachine, t: { if?: TxnCompare[]; then?: TxnOp[]; else?: TxnOp[] }) => apply(sm, { cmd: { op: 'txn', ...t } }) as TxnResult;
const get = (sm: KvStateMachine, key: string) => sm.query({ op: 'get', key }) as KeyValue | undefined;

describe('txn: etcd v3 transactions', () => {
  it('then runs when every compare holds; all its writes share one revision; reads see earlier writes', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1'); // rev 1
    const r = txn(sm, {
      if: [
        { key: 'a', target: 'value', cmp: '=', value: '1' },
        { key: 'a', target: 'version', cmp: '=', value: 1 },
        { key: 'missing', target: 'version', cmp: '=', value: 0 },
      ],
      then: [
        { op: 'put', key: 'a', value: '2', prevKv: true },
        { op: 'put', key: 'b', value: 'x' },
        { op: 'get', key: 'a' },
        { op: 'range', prefix: '' },
        { op: 'get', key: 'nope' },
      ],
      else: [{ op: 'put', key: 'else', value: 'ran' }],
    });
    expect(r.succeeded).toBe(true);
    expect(r.revision).toBe(2);
    expect(r.responses).toEqual([
      { op: 'put', revision: 2, prev: { key: 'a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 } },
      { op: 'put', revision: 2 },
      { op: 'get', kv: { key: 'a', value: '2', createRevision: 1, modRevision: 2, version: 2, lease: 0 } },
      { op: 'range', kvs: [expect.objectContaining({ key: 'a', value: '2' }), expect.objectContaining({ key: 'b', value: 'x', modRevision: 2 })] },
      { op: 'get' },
    ]);
    expect(sm.currentRevision).toBe(2);
    expect(get(sm, 'else')).toBeUndefined();
    // Both writes are visible at revision 2 and neither at revision 1.
    expect(sm.query({ op: 'range', prefix: '', revision: 1 })).toEqual([expect.objectContaining({ key: 'a', value: '1' })]);
  });

  it('else runs when a compare fails; a txn that writes nothing moves no revision', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1');
    const r = txn(sm, { if: [{ key: 'a', target: 'value', cmp: '=', value: 'other' }], then: [{ op: 'put', key: 'a', value: 'then' }], else: [{ op: 'get', key: 'a' }, { op: 'delete', key: 'zzz' }] });
    expect(r).toEqual({ op: 'txn', succeeded: false, revision: 1, responses: [{ op: 'get', kv: expect.objectContaining({ value: '1' }) }, { op: 'delete', revision: 1, deleted: 0 }] });
    expect(sm.currentRevision).toBe(1);
    const w = txn(sm, { if: [{ key: 'a', target: 'modRevision', cmp: '>', value: 1 }], else: [{ op: 'put', key: 'e', value: 'e' }, { op: 'delete', key: 'a' }] });
    expect(w.succeeded).toBe(false);
    expect(w.revision).toBe(2);
    expect(w.responses).toEqual([{ op: 'put', revision: 2 }, { op: 'delete', revision: 2, deleted: 1 }]);
    // An empty txn with no compares succeeds and changes nothing.
    expect(txn(sm, {})).toEqual({ op: 'txn', succeeded: true, revision: 2, responses: [] });
  });

  it.each<[string, TxnCompare, boolean]>([
    ['version =', { key: 'k', target: 'version', cmp: '=', value: 2 }, true],
    ['version !=', { key: 'k', target: 'version', cmp: '!=', value: 2 }, false],
    ['version <', { key: 'k', target: 'version', cmp: '<', value: 3 }, true],
    ['version >', { key: 'k', target: 'version', cmp: '>', value: 2 }, false],
    ['createRevision =', { key: 'k', target: 'createRevision', cmp: '=', value: 1 }, true],
    ['modRevision >', { key: 'k', target: 'modRevision', cmp: '>', value: 2 }, true],
    ['modRevision <', { key: 'k', target: 'modRevision', cmp: '<', value: 3 }, false],
    ['lease = 0', { key: 'k', target: 'lease', cmp: '=', value: 0 }, true],
    ['value = (text)', { key: 'k', target: 'value', cmp: '=', value: 'v2' }, true],
    ['value != (text)', { key: 'k', target: 'value', cmp: '!=', value: 'v2' }, false],
    ['value < (bytes order)', { key: 'k', target: 'value', cmp: '<', value: 'v3' }, true],
    ['value > (bytes order)', { key: 'k', target: 'value', cmp: '>', value: 'v10' }, true],
    ['value = bytes of the same text is not equal (text vs bytes)', { key: 'k', target: 'value', cmp: '=', value: new TextEncoder().encode('v2') }, false],
    ['missing key: version = 0', { key: 'none', target: 'version', cmp: '=', value: 0 }, true],
    ['missing key: modRevision < 1', { key: 'none', target: 'modRevision', cmp: '<', value: 1 }, true],
    ['missing key: every value compare fails (=)', { key: 'none', target: 'value', cmp: '=', value: '' }, false],
    ['missing key: every value compare fails (!=)', { key: 'none', target: 'value', cmp: '!=', value: 'x' }, false],
  ])('compare %s', (_name, compare, holds) => {
    const sm = new KvStateMachine();
    put(sm, 'k', 'v1'); // rev 1
    put(sm, 'other', 'x'); // rev 2
    put(sm, 'k', 'v2'); // rev 3: k version 2, createRevision 1, modRevision 3
    expect(txn(sm, { if: [compare] }).succeeded).toBe(holds);
  });

  it('nested txns: every compare is evaluated before anything runs, and the branch taken runs in order', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1'); // rev 1
    const r = txn(sm, {
      then: [
        { op: 'put', key: 'a', value: '2' },
        // Evaluated against the store before the txn: a is still '1' here, as etcd evaluates nested compares first.
        { op: 'txn', if: [{ key: 'a', target: 'value', cmp: '=', value: '1' }], then: [{ op: 'put', key: 'seen-old', value: 'yes' }], else: [{ op: 'put', key: 'seen-new', value: 'yes' }] },
        { op: 'txn', if: [{ key: 'b', target: 'version', cmp: '>', value: 0 }], then: [{ op: 'get', key: 'b' }], else: [{ op: 'get', key: 'a' }] },
      ],
    });
    expect(r.succeeded).toBe(true);
    expect(r.revision).toBe(2);
    expect(r.responses).toEqual([
      { op: 'put', revision: 2 },
      { op: 'txn', succeeded: true, responses: [{ op: 'put', revision: 2 }] },
      { op: 'txn', succeeded: false, responses: [{ op: 'get', kv: expect.objectContaining({ value: '2', modRevision: 2 }) }] },
    ]);
    expect(get(sm, 'seen-old')?.value).toBe('yes');
    expect(get(sm, 'seen-new')).toBeUndefined();
  });

  it('compare-and-set is a one-compare txn with the answers it always had', () => {
    const sm = new KvStateMachine();
    expect(apply(sm, { cmd: { op: 'cas', key: 'l', compare: { exists: false }, value: 'n1' } })).toEqual({ op: 'cas', succeeded: true, revision: 1 });
    expect(apply(sm, { cmd: { op: 'cas', key: 'l', compare: { exists: false }, value: 'n2' } })).toEqual({
      op: 'cas',
      succeeded: false,
      revision: 1,
      current: { key: 'l', value: 'n1', createRevision: 1, modRevision: 1, version: 1, lease: 0 },
    });
    expect(apply(sm, { cmd: { op: 'cas', key: 'l', compare: { value: 'n1', version: 1 }, value: 'n3' } })).toMatchObject({ succeeded: true, revision: 2, current: { value: 'n1' } });
    expect(apply(sm, { cmd: { op: 'cas', key: 'l', compare: { modRevision: 2 }, value: null } })).toMatchObject({ succeeded: true, revision: 3, current: { value: 'n3' } });
    expect(get(sm, 'l')).toBeUndefined();
    // Deleting an absent key through cas: succeeded, nothing changed.
    expect(apply(sm, { cmd: { op: 'cas', key: 'l', compare: { version: 0 }, value: null } })).toEqual({ op: 'cas', succeeded: true, revision: 3 });
  });

  it('a txn in a session applies once: a retry gets the stored answer', () => {
    const sm = new KvStateMachine();
    const req: KvRequest = { cmd: { op: 'txn', if: [{ key: 'n', target: 'version', cmp: '=', value: 0 }], then: [{ op: 'put', key: 'n', value: '1' }], else: [{ op: 'put', key: 'n', value: 'again' }] }, session: { id: 's', seq: 1 } };
    const first = apply(sm, req);
    expect(apply(sm, req)).toEqual(first);
    expect(get(sm, 'n')?.value).toBe('1');
    expect(sm.currentRevision).toBe(1);
  });
});

describe('txn: malformed transactions are refused whole, with InvalidTxnError', () => {
  const ops = (n: number): TxnOp[] => Array.from({ length: n }, (_, i) => ({ op: 'put', key: `k${i}`, value: 'v' }));
  it.each<[string, Record<string, unknown>, string]>([
    [`more than ${MAX_TXN_OPS} ops`, { then: ops(MAX_TXN_OPS + 1) }, 'too-many-ops'],
    ['more ops than the bound across then, else and a nested txn', { then: ops(60), else: [...ops(60), { op: 'txn', then: ops(9) }] }, 'too-many-ops'],
    [`more than ${MAX_TXN_OPS} compares`, { if: Array.from({ length: MAX_TXN_OPS + 1 }, () => ({ key: 'a', target: 'version', cmp: '=', value: 0 })) }, 'too-many-compares'],
    ['a key put twice', { then: [{ op: 'put', key: 'a', value: '1' }, { op: 'put', key: 'a', value: '2' }] }, 'duplicate-key'],
    ['a put inside a deleted prefix', { then: [{ op: 'delete', key: 'p/', prefix: true }, { op: 'put', key: 'p/x', value: '1' }] }, 'duplicate-key'],
    ['a put then its delete', { else: [{ op: 'put', key: 'a', value: '1' }, { op: 'delete', key: 'a' }] }, 'duplicate-key'],
    ['a put in the branch and in a nested txn', { then: [{ op: 'put', key: 'a', value: '1' }, { op: 'txn', else: [{ op: 'put', key: 'a', value: '2' }] }] }, 'duplicate-key'],
    ['an unknown compare target', { if: [{ key: 'a', target: 'size', cmp: '=', value: 1 }] }, 'bad-compare'],
    ['an unknown compare operator', { if: [{ key: 'a', target: 'version', cmp: '>=', value: 1 }] }, 'bad-compare'],
    ['a version compared with text', { if: [{ key: 'a', target: 'version', cmp: '=', value: '1' }] }, 'bad-compare'],
    ['a value compared with a number', { if: [{ key: 'a', target: 'value', cmp: '=', value: 1 }] }, 'bad-compare'],
    ['a compare without a key', { if: [{ target: 'version', cmp: '=', value: 0 }] }, 'bad-compare'],
    ['if is not an array', { if: { key: 'a' } }, 'bad-compare'],
    ['then is not an array', { then: { op: 'put', key: 'a', value: '1' } }, 'bad-op'],
    ['an unknown op', { then: [{ op: 'incr', key: 'a' }] }, 'bad-op'],
    ['a put without a value', { then: [{ op: 'put', key: 'a' }] }, 'bad-op'],
    ['a range with limit 0', { then: [{ op: 'range', prefix: '', limit: 0 }] }, 'bad-op'],
  ])('%s', (_name, t, reason) => {
    const sm = new KvStateMachine();
    put(sm, 'a', 'before');
    let err: unknown;
    try {
      apply(sm, { cmd: { op: 'txn', ...t } as never });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidTxnError);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ reason });
    expect(sm.currentRevision).toBe(1);
    expect(get(sm, 'a')?.value).toBe('before');
  });

  it('the bound itself is accepted; a put in one branch and the same key in the other is fine (only one runs); deletes may overlap', () => {
    const sm = new KvStateMachine();
    expect(txn(sm, { then: ops(MAX_TXN_OPS) }).revision).toBe(1);
    expect(sm.size).toBe(MAX_TXN_OPS);
    expect(txn(sm, { then: [{ op: 'put', key: 'a', value: '1' }], else: [{ op: 'put', key: 'a', value: '2' }] }).succeeded).toBe(true);
    const r = txn(sm, { then: [{ op: 'delete', key: 'k', prefix: true }, { op: 'delete', key: 'k1' }] });
    expect(r.responses).toEqual([{ op: 'delete', revision: 3, deleted: MAX_TXN_OPS }, { op: 'delete', revision: 3, deleted: 0 }]);
  });
});
