// The README example, kept runnable.
import { KvStateMachine, RevisionCompactedError } from '@consensus-kit/kv';

const kv = new KvStateMachine();
let index = 0;
const apply = (cmd: Parameters<KvStateMachine['apply']>[1]) => kv.apply({ index: ++index, term: 1, type: 'command', data: new Uint8Array() }, cmd);

console.log(apply({ cmd: { op: 'put', key: 'config/port', value: '7100' } })); // { op: 'put', revision: 1 }
console.log(apply({ cmd: { op: 'cas', key: 'leader', compare: { exists: false }, value: 'n1' } }).op); // cas
console.log(kv.query({ op: 'get', key: 'config/port' })); // { key, value: '7100', createRevision: 1, modRevision: 1, version: 1, lease: 0 }
console.log(kv.query({ op: 'range', prefix: 'config/' }));
// A retried request in a session is answered from the dedup table, not applied twice:
const req = { cmd: { op: 'put', key: 'counter', value: '1' }, session: { id: 'client-1', seq: 1 } } as const;
console.log(apply(req).revision === apply(req).revision); // true

// A transaction: if config/port is still at version 1, move it and record who did, at one revision.
const t = apply({
  cmd: {
    op: 'txn',
    if: [{ key: 'config/port', target: 'version', cmp: '=', value: 1 }],
    then: [{ op: 'put', key: 'config/port', value: '7200' }, { op: 'put', key: 'config/by', value: 'ops' }],
    else: [{ op: 'get', key: 'config/port' }],
  },
});
console.log(t); // { op: 'txn', succeeded: true, revision: 4, responses: [{ op: 'put', revision: 4 }, { op: 'put', revision: 4 }] }
// History: the store as it was at revision 3, then compacted away.
console.log(kv.query({ op: 'get', key: 'config/port', revision: 3 })); // value '7100'
apply({ cmd: { op: 'compact', revision: 4 } });
try {
  kv.query({ op: 'get', key: 'config/port', revision: 3 });
} catch (e) {
  console.log(RevisionCompactedError.is(e), (e as Error).message); // true mvcc: required revision 3 has been compacted ...
}
