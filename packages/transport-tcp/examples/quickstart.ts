import { NotLeaderError } from '@consensus-kit/core';
import { createRpcClient, tcpTransport } from '@consensus-kit/transport-tcp';

// Two nodes of cluster "demo" on ephemeral ports, sharing a secret.
const a = tcpTransport({ id: 'a', clusterId: 'demo', listen: { host: '127.0.0.1', port: 0 }, peers: {}, secret: 's3cret' });
const b = tcpTransport({ id: 'b', clusterId: 'demo', listen: { host: '127.0.0.1', port: 0 }, peers: {}, secret: 's3cret' });
let received: (env: unknown) => void = () => {};
const got = new Promise<unknown>((resolve) => (received = resolve));
await a.start({ deliver: () => {} });
await b.start({ deliver: (env) => received(env) });
const peers = { a: a.endpoint(), b: b.endpoint() };
a.setPeers(peers);
b.setPeers(peers);

// Peer traffic: best effort, never throws.
a.send([{ from: 'a', to: 'b', msg: { type: 'Heartbeat', term: 1 } }]);
console.log('b received', await got);

// Client traffic: a is not the leader and redirects to b, which answers.
a.onRequest(() => {
  throw new NotLeaderError('b');
});
b.onRequest((body) => ({ ok: true, echo: body }));
const client = createRpcClient({ endpoints: [a.endpoint()], clusterId: 'demo', secret: 's3cret' });
console.log('answer', await client.request({ op: 'get', key: 'x' }, { timeoutMs: 2000 }));

await client.close();
await a.stop();
await b.stop();
