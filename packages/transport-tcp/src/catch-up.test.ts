import { MemoryStorage, seededRandom, type AnyProtocolModule, type Envelope, type LogEntry, type NodeId, type StateMachine, type Transport } from '@consensus-kit/core';
import { ConsensusNode } from '@consensus-kit/core/host';
import { paxos } from '@consensus-kit/paxos';
import { raft } from '@consensus-kit/raft';
import { zab } from '@consensus-kit/zab';
import { afterEach, describe, expect, it } from 'vitest';
import { tcpTransport, type TcpTransport } from './transport';

/**
 * A follower restarted behind the leader's compacted log catches up over real TCP from a snapshot of many chunks,
 * byte for byte, and nobody's leader or term changes meanwhile: the restarted node is no reason for an election.
 *
 * The links back off for about a second after a failed dial (the default jitters up to 2 s), longer than an
 * election timeout (10 ticks of 20 ms, randomised up to twice that): the leader's link to the stopped follower is
 * backing off when the follower comes back, and only the transport's redial on the follower's arrival lets the
 * leader's heartbeats through before the follower's election countdown runs out.
 */

const CHUNK = 64 * 1024;
const VALUE = 64 * 1024;
const VALUES = 40; // 2.5 MiB of state: a snapshot of about 40 chunks

type Put = { key: string; value: Uint8Array };

/** Keys to bytes; the snapshot is the keys in order, each followed by its value, length-prefixed. */
class Blobs implements StateMachine<Put, number, string, number | undefined> {
  readonly data = new Map<string, Uint8Array>();
  apply(_e: LogEntry, c: Put): number {
    this.data.set(c.key, c.value);
    return this.data.size;
  }
  query(key: string): number | undefined {
    return this.data.get(key)?.length;
  }
  snapshot(): Uint8Array {
    const keys = [...this.data.keys()].sort();
    const enc = new TextEncoder();
    const parts: Uint8Array[] = [];
    for (const k of keys) {
      const kb = enc.encode(k);
      const v = this.data.get(k) as Uint8Array;
      const head = new Uint8Array(8);
      new DataView(head.buffer).setUint32(0, kb.length);
      new DataView(head.buffer).setUint32(4, v.length);
      parts.push(head, kb, v);
    }
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  restore(bytes: Uint8Array): void {
    this.data.clear();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const dec = new TextDecoder();
    for (let at = 0; at < bytes.length; ) {
      const kl = view.getUint32(at);
      const vl = view.getUint32(at + 4);
      const key = dec.decode(bytes.subarray(at + 8, at + 8 + kl));
      this.data.set(key, bytes.slice(at + 8 + kl, at + 8 + kl + vl));
      at += 8 + kl + vl;
    }
  }
}

/** Counts the snapshot chunks a transport delivers (paxos SnapshotChunk, zab SnapChunk, raft InstallSnapshot). */
function counting(t: TcpTransport, seen: { chunks: number; maxBytes: number }): Transport {
  return {
    start: (handler) =>
      t.start({
        ...handler,
        deliver: (env: Envelope) => {
          const m = env.msg as { type?: unknown; data?: unknown; total?: unknown };
          if ((m.type === 'SnapshotChunk' || m.type === 'SnapChunk' || m.type === 'InstallSnapshot') && m.data instanceof Uint8Array && typeof m.total === 'number') {
            seen.chunks++;
            seen.maxBytes = Math.max(seen.maxBytes, m.data.length);
          }
          handler.deliver(env);
        },
      }),
    send: (envs) => t.send(envs),
    stop: () => t.stop(),
  };
}

interface Member {
  node: ConsensusNode<Put, number, string, number | undefined>;
  storage: MemoryStorage;
  sm: Blobs;
  transport: TcpTransport;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const IDS = ['n1', 'n2', 'n3'];

describe('a follower restarted behind a snapshot catches up over TCP, with no leader change', () => {
  const running: Member[] = [];
  afterEach(async () => {
    for (const m of running.splice(0)) await m.node.stop().catch(() => undefined);
  });

  function member(protocol: AnyProtocolModule, cluster: string, id: NodeId, i: number, o: { storage?: MemoryStorage; port?: number; peers?: Record<string, string>; seen?: { chunks: number; maxBytes: number } } = {}): Member {
    const transport = tcpTransport({
      id,
      clusterId: cluster,
      listen: { host: '127.0.0.1', port: o.port ?? 0 },
      peers: o.peers ?? {},
      backoff: { baseMs: 1000, capMs: 1000, random: () => 0.99 },
    });
    const storage = o.storage ?? new MemoryStorage();
    const sm = new Blobs();
    const node = new ConsensusNode<Put, number, string, number | undefined>({
      id,
      peers: IDS,
      protocol,
      storage,
      transport: o.seen === undefined ? transport : counting(transport, o.seen),
      stateMachine: sm,
      tickMs: 20,
      electionTicks: 10,
      snapshotEvery: 8,
      snapshotKeep: 0,
      protocolOptions: { snapshotChunkBytes: CHUNK },
      random: seededRandom(100 + i),
      timeoutMs: 10_000,
    });
    const m = { node, storage, sm, transport };
    running.push(m);
    return m;
  }

  for (const protocol of [paxos, zab, raft] as AnyProtocolModule[]) {
    it(`${protocol.name}: byte-identical state, the snapshot in chunks of snapshotChunkBytes, every node's leader and term unchanged`, async () => {
      const cluster = `catch-up-${protocol.name}`;
      const members = new Map(IDS.map((id, i) => [id, member(protocol, cluster, id, i)]));
      for (const m of members.values()) await m.node.start();
      const endpoints = Object.fromEntries([...members].map(([id, m]) => [id, m.transport.endpoint()]));
      for (const m of members.values()) m.transport.setPeers(endpoints);
      const leaderId = await members.get('n1')!.node.waitForLeader({ timeoutMs: 10_000 });
      await until(() => [...members.values()].every((m) => m.node.status().leader === leaderId), 'every node to follow the leader');
      const leader = members.get(leaderId)!;
      const followerId = IDS.filter((id) => id !== leaderId).at(-1)!;
      const follower = members.get(followerId)!;
      const others = IDS.filter((id) => id !== followerId).map((id) => members.get(id)!);

      await follower.node.stop();
      for (let i = 0; i < VALUES; i += 8) {
        const batch = [];
        for (let j = i; j < i + 8; j++) {
          const value = new Uint8Array(VALUE);
          for (let b = 0; b < VALUE; b += 4096) value[b] = (j * 31 + b) & 255;
          batch.push(leader.node.propose({ key: `k${String(j).padStart(3, '0')}`, value }));
        }
        await Promise.all(batch);
      }
      // The leader's log no longer holds what the follower lacks: it must send its snapshot.
      await until(() => leader.storage.firstIndex() > follower.storage.lastIndex() + 1, "the leader's compaction past the follower");
      const snapBytes = leader.storage.snapshot()!.data.length;
      expect(snapBytes).toBeGreaterThan(30 * CHUNK);

      const { term } = leader.node.status();
      const changes: string[] = [];
      for (const m of others) {
        m.node.on('leader', (l, t) => changes.push(`${m.node.id}: leader ${String(l)} term ${t}`));
      }
      const seen = { chunks: 0, maxBytes: 0 };
      const port = Number(endpoints[followerId]!.split(':').at(-1));
      const back = member(protocol, cluster, followerId, 9, { storage: new MemoryStorage(follower.storage.raw), port, peers: endpoints, seen });
      await back.node.start();
      const target = () => leader.node.status().appliedIndex ?? 0;
      await until(() => (back.node.status().appliedIndex ?? 0) >= target() && back.node.status().leader === leaderId, 'the follower to catch up');

      const [mine, theirs] = [back.sm.snapshot(), leader.sm.snapshot()];
      expect(mine.length).toBe(theirs.length);
      expect(Buffer.compare(mine, theirs)).toBe(0); // (vitest's deep equality walks megabytes slowly)
      expect(back.sm.data.size).toBe(VALUES);
      expect(seen.chunks).toBeGreaterThanOrEqual(Math.ceil(snapBytes / CHUNK));
      expect(seen.maxBytes).toBeLessThanOrEqual(CHUNK);
      expect(changes).toEqual([]);
      for (const m of [...others, back]) expect(m.node.status()).toMatchObject({ leader: leaderId, term });
    }, 30_000);
  }
});
