/**
 * Apply throughput of the key-value state machine alone (no consensus): what one replica can absorb. Runs with
 * the default history retention (DEFAULT_HISTORY_REVISIONS), so every overwrite also keeps the old version and
 * compacts one revision, as on a real node.
 */
import { Bench } from 'tinybench';
import type { LogEntry } from '@consensus-kit/core';
import { DEFAULT_HISTORY_REVISIONS, KvStateMachine } from '@consensus-kit/kv';

const sm = new KvStateMachine();
const e: LogEntry = { index: 0, term: 1, type: 'command', data: new Uint8Array() };
const value = 'v'.repeat(256);
let i = 0;
for (let k = 0; k < 100_000; k++) sm.apply({ ...e, index: ++i }, { cmd: { op: 'put', key: `key/${k}`, value } });
// Fill the retained history, so reads at a past revision and compaction run at steady state.
for (let k = 0; k < DEFAULT_HISTORY_REVISIONS; k++) sm.apply({ ...e, index: ++i }, { cmd: { op: 'put', key: `key/${k % 100_000}`, value } });

const key = () => `key/${i % 100_000}`;
const bench = new Bench({ time: 1500, warmupTime: 200 });
bench
  .add('put, existing key (256 B)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: key(), value } });
  })
  .add('put in a session (dedup table)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: key(), value }, session: { id: `c${i % 16}`, seq: i, ack: i - 1 } });
  })
  .add('cas', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'cas', key: key(), compare: { exists: true }, value } });
  })
  .add('txn: 1 compare, then 1 put', () => {
    e.index = ++i;
    const k = key();
    sm.apply(e, { cmd: { op: 'txn', if: [{ key: k, target: 'version', cmp: '>', value: 0 }], then: [{ op: 'put', key: k, value }] } });
  })
  .add('txn: 2 compares, then 4 puts', () => {
    e.index = ++i;
    const b = (i * 4) % 100_000;
    sm.apply(e, {
      cmd: {
        op: 'txn',
        if: [
          { key: `key/${b}`, target: 'modRevision', cmp: '>', value: 0 },
          { key: `key/${b + 1}`, target: 'value', cmp: '=', value },
        ],
        then: [0, 1, 2, 3].map((d) => ({ op: 'put' as const, key: `key/${b + d}`, value })),
      },
    });
  })
  .add('txn: compare fails, else 1 get', () => {
    e.index = ++i;
    const k = key();
    sm.apply(e, { cmd: { op: 'txn', if: [{ key: k, target: 'version', cmp: '=', value: 0 }], then: [{ op: 'put', key: k, value }], else: [{ op: 'get', key: k }] } });
  })
  .add('get', () => {
    sm.query({ op: 'get', key: `key/${i++ % 100_000}` });
  })
  .add('get at a past revision (5,000 back)', () => {
    sm.query({ op: 'get', key: `key/${i++ % 100_000}`, revision: sm.currentRevision - 5000 });
  })
  .add('range by prefix (111 keys)', () => {
    sm.query({ op: 'range', prefix: `key/${(i++ % 900) + 100}` });
  })
  .add('range by prefix at a past revision (111 keys)', () => {
    sm.query({ op: 'range', prefix: `key/${(i++ % 900) + 100}`, revision: sm.currentRevision - 5000 });
  })
  .add('put, new key (then delete it)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: `new/${i}`, value } });
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'delete', key: `new/${i - 1}` } });
  });
await bench.run();
console.log(`KvStateMachine over 100,000 keys, ${DEFAULT_HISTORY_REVISIONS} revisions of history retained:`);
console.table(bench.table());
