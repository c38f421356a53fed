// The README example, kept runnable.
import { KvStateMachine } from '@consensus-kit/kv';

const kv = new KvStateMachine();
let index = 0;
const apply = (cmd: Parameters<KvStateMachine['apply']>[1]) => kv.apply({ index: ++index, term: 1, type: 'command', data: new Uint8Array() }, cmd);

console.log(apply({ cmd: { op: 'put', key: 'config/port', value: '7100' } })); // { op: 'put', revision: 1 }
console.log(apply({ cmd: { op: 'cas', key: 'leader', compare: { exists: false }, value: 'n1' } }).op); // cas
console.log(kv.query({ op: 'get', key: 'config/port' })); // { key, value: '7100', createRevision: 1, modRevision: 1, version: 1 }
console.log(kv.query({ op: 'range', prefix: 'config/' }));
// A retried request in a session is answered from the dedup table, not applied twice:
const req = { cmd: { op: 'put', key: 'counter', value: '1' }, session: { id: 'client-1', seq: 1 } } as const;
console.log(apply(req).revision === apply(req).revision); // true
