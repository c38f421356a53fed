import { MemoryStorage, NotLeaderError, type LogEntry, type StateMachine } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { solo } from '@consensus-kit/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createRpcClient, type RpcClient } from './rpc-client';
import { tcpTransport, type TcpTransport } from './transport';

type Command = { op: 'put'; key: string; value: string };

class KeyValue implements StateMachine<Command, string | undefined, string, string | undefined> {
  private readonly data = new Map<string, string>();
  apply(_entry: LogEntry, c: Command): string | undefined {
    const previous = this.data.get(c.key);
    this.data.set(c.key, c.value);
    return previous;
  }
  query(key: string): string | undefined {
    return this.data.get(key);
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]));
  }
  restore(bytes: Uint8Array): void {
    this.data.clear();
    for (const [k, v] of JSON.parse(new TextDecoder().decode(bytes)) as [string, string][]) this.data.set(k, v);
  }
}

describe('with core\'s ConsensusNode host', () => {
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });

  it('the host drives the transport, and clients reach the state machine through the client channel', async () => {
    const transport: TcpTransport = tcpTransport({ id: 'n1', clusterId: 'host', listen: { host: '127.0.0.1', port: 0 }, peers: {} });
    const node = new ConsensusNode({ id: 'n1', peers: ['n1'], protocol: solo, storage: new MemoryStorage(), transport, stateMachine: new KeyValue(), tickMs: 10 });
    await node.start();
    stops.push(() => node.stop());
    await node.waitForLeader();
    transport.onRequest((body, ctx) => {
      const b = body as { get?: string; put?: Command };
      if (b.get !== undefined) return node.read(b.get, { signal: ctx.signal });
      return node.propose(b.put!, { signal: ctx.signal });
    });
    // A second node that is not the leader: it redirects clients to n1.
    const follower = tcpTransport({ id: 'n2', clusterId: 'host', listen: { host: '127.0.0.1', port: 0 }, peers: { n1: transport.endpoint() } });
    await follower.start({ deliver() {} });
    stops.push(() => follower.stop());
    follower.onRequest(() => {
      throw new NotLeaderError('n1');
    });
    const client: RpcClient = createRpcClient({ endpoints: [follower.endpoint()], clusterId: 'host', connectTimeoutMs: 5000, handshakeTimeoutMs: 5000 });
    stops.push(() => client.close());
    expect(await client.request({ put: { op: 'put', key: 'k', value: 'v1' } })).toBeUndefined();
    expect(await client.request({ put: { op: 'put', key: 'k', value: 'v2' } })).toBe('v1');
    expect(await client.request({ get: 'k' })).toBe('v2');
    expect(client.preferred).toBe(transport.endpoint());
  });
});
