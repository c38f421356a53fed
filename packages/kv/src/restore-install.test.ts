import { MemoryStorage, type RestoreJob } from '@consensus-kit/core';
import { ConsensusNode, LocalNetwork } from '@consensus-kit/core/host';
import { raft } from '@consensus-kit/raft';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyValue, KvQuery, KvRequest, KvResult } from './commands';
import { KvStateMachine, type KvQueryResult } from './kv-state-machine';

/** Counts how the host restores it: in slices (`beginRestore`) or at once (`restore`). */
class CountingKv extends KvStateMachine {
  restoreJobs = 0;
  steps = 0;
  wholeRestores = 0;
  override beginRestore(bytes: Uint8Array): RestoreJob {
    this.restoreJobs++;
    const job = super.beginRestore(bytes);
    return {
      step: (budget) => {
        this.steps++;
        return job.step(budget);
      },
      cancel: () => job.cancel(),
    };
  }
  override restore(bytes: Uint8Array): void {
    this.wholeRestores++;
    super.restore(bytes);
  }
}

type Node = ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>;
let running: Node[] = [];
afterEach(async () => {
  await Promise.all(running.map((n) => n.stop()));
  running = [];
});

describe('kv under raft: a follower installs the leader snapshot incrementally', () => {
  it('a joining node restores the snapshot in slices (beginRestore, never restore()), then applies what follows and serves reads from it', async () => {
    const network = new LocalNetwork();
    const machines = new Map<string, CountingKv>();
    const storages = new Map<string, MemoryStorage>();
    const make = (id: string, peers: string[]): Node => {
      const sm = new CountingKv();
      machines.set(id, sm);
      const storage = new MemoryStorage();
      storages.set(id, storage);
      const node = new ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>({ id, peers, protocol: raft, tickMs: 5, snapshotEvery: 50, snapshotKeep: 2, storage, transport: network.transport(id), stateMachine: sm });
      running.push(node);
      return node;
    };
    const ids = ['n1', 'n2', 'n3'];
    const nodes = ids.map((id) => make(id, ids));
    await Promise.all(nodes.map((n) => n.start()));
    const leaderId = await (nodes[0] as Node).waitForLeader();
    const leader = nodes[ids.indexOf(leaderId)] as Node;
    // Enough keys that the restore takes several steps of the host's 64 keys.
    for (let i = 0; i < 300; i++) await leader.propose({ cmd: { op: 'put', key: `k/${String(i).padStart(4, '0')}`, value: `v${i}` } });
    // The leader's log no longer starts at 1 (snapshotEvery 50, snapshotKeep 2): a newcomer needs a snapshot.
    for (let i = 0; i < 400 && (storages.get(leaderId)?.firstIndex() ?? 1) <= 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(storages.get(leaderId)?.firstIndex()).toBeGreaterThan(2);
    const n4 = make('n4', [...ids, 'n4']);
    await n4.start();
    await leader.changeMembership({ changes: [{ op: 'addLearner', node: 'n4' }] });
    await leader.propose({ cmd: { op: 'put', key: 'after', value: 'snapshot' } });
    await leader.changeMembership({ changes: [{ op: 'addVoter', node: 'n4' }] });
    const sm4 = machines.get('n4') as CountingKv;
    const keys = (await n4.read({ op: 'range', prefix: '' })) as KeyValue[];
    expect(keys).toHaveLength(301);
    expect(sm4.restoreJobs).toBeGreaterThanOrEqual(1);
    expect(sm4.steps).toBeGreaterThan(300 / 64);
    expect(sm4.wholeRestores).toBe(0);
    expect(((await n4.read({ op: 'get', key: 'after' })) as KeyValue).value).toBe('snapshot');
    expect(n4.status().appliedIndex).toBe(leader.status().appliedIndex);
  });
});
