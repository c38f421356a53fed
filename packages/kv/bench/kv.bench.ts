/** Apply throughput of the key-value state machine alone (no consensus): what one replica can absorb. */
import { Bench } from 'tinybench';
import type { LogEntry } from '@consensus-kit/core';
import { KvStateMachine } from '@consensus-kit/kv';

const sm = new KvStateMachine();
const e: LogEntry = { index: 0, term: 1, type: 'command', data: new Uint8Array() };
const value = 'v'.repeat(256);
let i = 0;
for (let k = 0; k < 100_000; k++) sm.apply({ ...e, index: ++i }, { cmd: { op: 'put', key: `key/${k}`, value } });

const bench = new Bench({ time: 1500, warmupTime: 200 });
bench
  .add('put, existing key (256 B)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: `key/${i % 100_000}`, value } });
  })
  .add('put in a session (dedup table)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: `key/${i % 100_000}`, value }, session: { id: `c${i % 16}`, seq: i, ack: i - 1 } });
  })
  .add('cas', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'cas', key: `key/${i % 100_000}`, compare: { exists: true }, value } });
  })
  .add('get', () => {
    sm.query({ op: 'get', key: `key/${i++ % 100_000}` });
  })
  .add('range by prefix (111 keys)', () => {
    sm.query({ op: 'range', prefix: `key/${(i++ % 900) + 100}` });
  })
  .add('put, new key (then delete it)', () => {
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'put', key: `new/${i}`, value } });
    e.index = ++i;
    sm.apply(e, { cmd: { op: 'delete', key: `new/${i - 1}` } });
  });
await bench.run();
console.log('KvStateMachine over 100,000 keys:');
console.table(bench.table());
