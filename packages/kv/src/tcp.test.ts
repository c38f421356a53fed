import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { tcpTransport } from '@consensus-kit/transport-tcp';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { KvStateMachine, type KvQueryResult } from './kv-state-machine';
import { createKvService } from './service';
import { createKvClient } from './index';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('createKvClient over TCP', () => {
  it('talks to a node through transport-tcp, moving past a dead endpoint', async () => {
    const transport = tcpTransport({ id: 'n1', clusterId: 'kv-tcp-test', listen: { host: '127.0.0.1', port: 0 }, peers: {} });
    const stateMachine = new KvStateMachine();
    const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({
      id: 'n1',
      peers: ['n1'],
      protocol: solo,
      storage: new MemoryStorage(),
      transport,
      stateMachine,
      tickMs: 5,
      electionTicks: 2,
    });
    transport.onRequest(createKvService({ node, stateMachine }));
    await node.start();
    cleanups.push(() => node.stop());
    await node.waitForLeader();

    // 127.0.0.1:1 refuses connections: the client must move on to the live node at once.
    const kv = createKvClient({ endpoints: ['127.0.0.1:1', transport.endpoint()], clusterId: 'kv-tcp-test' });
    cleanups.push(() => kv.close());
    expect(await kv.put('k', 'v')).toMatchObject({ revision: 1 });
    expect(await kv.get('k')).toMatchObject({ value: 'v', version: 1 });
    expect(await kv.cas('k', { version: 1 }, 'w')).toMatchObject({ succeeded: true });
    expect((await kv.range('')).map((x) => x.value)).toEqual(['w']);
  });
});
