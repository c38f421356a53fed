import { describe, expect, it } from 'vitest';
import type { Ready } from '@consensus-kit/core';
import { decodeHardState } from '../src/index';
import { electLeader, msgType, network, proposeAll, settle } from './helpers';

/**
 * Phase 2 on a follower (DSN 2011 section IV-B; ZooKeeper Learner.syncWithLeader): the synced history, then
 * currentEpoch, then the ACK of NEWLEADER, each durable (or sent) in its own Ready. ZooKeeper broke this order in
 * four ways, each losing committed transactions once a follower crashed between two of the steps:
 * ZOOKEEPER-3911 (the NEWLEADER ack sent before the DIFF was logged), ZOOKEEPER-4643 (currentEpoch updated before
 * the synced transactions were persisted, then TRUNC of committed ones), ZOOKEEPER-4646 (the same, then elected
 * by its higher epoch), ZOOKEEPER-4785 (the ack raced ahead of the asynchronous log flush during DIFF).
 *
 * The scenario: c leads epoch 1 and commits x1..x3 on everyone; a crashes; c commits y1, y2 with b; c crashes;
 * a restarts and syncs from b, the new leader (DIFF; TRUNC and SNAP below). a crashes after each of its Readys
 * from the moment the sync arrives, and in the middle of each (a torn save keeps a prefix). Then b crashes, a and c
 * restart and elect, and one more write goes in. Every transaction committed anywhere must survive, on everyone.
 * With currentEpoch or the ack ahead of the history, a restarts with the highest epoch and a log without y1, y2,
 * wins the election, and truncates them from c.
 */

type Mode = 'diff' | 'trunc' | 'snap';

function scenario(mode: Mode, crashAfter: number, torn: number | undefined) {
  const committed = new Map<number, string>();
  const seen = (rd: Ready) => {
    for (const e of rd.committed) if (e.type === 'command') committed.set(e.index, new TextDecoder().decode(e.data));
  };
  const net = network(['a', 'b', 'c'], {}, { afterReady: (_r, rd) => seen(rd) });
  // Epoch 1: c leads (equal zxids: the highest server id wins the vote order).
  let leader = electLeader(net).id;
  if (mode === 'trunc') {
    // a leads epoch 2 and logs w1 that nobody else receives (it never commits): a will be truncated.
    net.get(leader).node.transferLeadership('a');
    leader = electLeader(net, 'a').id;
    proposeAll(net, leader, ['x1', 'x2', 'x3']);
    net.partition(['a']);
    net.get('a').node.propose(new TextEncoder().encode('w1'));
    net.deliver();
    net.crash('a');
    net.heal();
    leader = electLeader(net).id;
  } else {
    proposeAll(net, leader, ['x1', 'x2', 'x3']);
    net.crash('a');
  }
  expect(leader).toBe('c');
  proposeAll(net, 'c', ['y1', 'y2']);
  settle(net, () => net.get('b').node.commit === net.get('c').node.log.lastIndex);
  if (mode === 'snap') {
    for (const id of ['b', 'c']) net.snapshot(id);
  }
  net.crash('c');
  net.restart('a');
  // Drive by hand from here: stop at a's Sync and crash a after `crashAfter` of its Readys (torn: in the next one).
  let readys = 0;
  let syncing = false;
  let crashed = false;
  const readysOfA: Ready[] = [];
  for (let i = 0; i < 2000 && !crashed; i++) {
    const env = net.queue.shift();
    if (env === undefined) {
      for (const id of ['a', 'b']) net.get(id).node.tick();
      while (!crashed && drive()) {
        /* Readys */
      }
      continue;
    }
    if (net.get(env.to).up && !net.isBlocked(env.from, env.to)) {
      // SNAP starts with its chunks (the Sync after them is the DIFF): crash points count from the first one.
      if (env.to === 'a' && (msgType(env) === 'Sync' || msgType(env) === 'SnapChunk')) syncing = true;
      net.get(env.to).node.step(env);
    }
    while (!crashed && drive()) {
      /* Readys */
    }
  }
  function drive(): boolean {
    let any = false;
    for (const id of ['a', 'b']) {
      const r = net.get(id);
      if (!r.up) continue;
      if (id === 'a' && syncing && readys === crashAfter) {
        if (torn !== undefined) net.crashMidSave('a', torn);
        else net.crash('a');
        crashed = true;
        return false;
      }
      const rd = r.driver.take();
      if (rd === undefined) continue;
      r.driver.persist(rd);
      r.driver.complete(rd);
      seen(rd);
      if (id === 'a' && syncing) {
        readysOfA.push(rd);
        readys++;
      }
      any = true;
    }
    return any;
  }
  expect(crashed).toBe(true);
  net.deliver();
  net.crash('b');
  net.restart('a');
  net.restart('c');
  leader = electLeader(net).id;
  proposeAll(net, leader, ['z']);
  settle(net, () => ['a', 'c'].every((id) => net.get(id).applied.at(-1) === 'z'));
  return { net, committed, readysOfA };
}

describe('synchronisation: history, then currentEpoch, then the NEWLEADER ack, each in its own Ready', () => {
  for (const mode of ['diff', 'trunc', 'snap'] as const) {
    it(`${mode.toUpperCase()}: a follower crashing between (or in the middle of) any two sync steps loses no committed transaction (ZOOKEEPER-3911, 4643, 4646, 4785)`, () => {
      // SNAP takes two more Readys: the install, then the ACKEPOCH asking for the DIFF.
      for (let k = 0; k <= (mode === 'snap' ? 6 : 4); k++) {
        for (const torn of [undefined, 0, 1, 2, 3]) {
          const { net, committed } = scenario(mode, k, torn);
          const expected = [...committed.entries()].sort((x, y) => x[0] - y[0]).map(([, v]) => v);
          expect(expected).toEqual(expect.arrayContaining(['x1', 'x2', 'x3', 'y1', 'y2', 'z']));
          for (const id of ['a', 'c']) expect(net.get(id).applied, `${mode} crash after ${k} Readys, torn ${torn}: ${id}`).toEqual(expected);
        }
      }
    });
  }

  it('the three steps are three Readys, in order, and nothing leaves before its step is durable', () => {
    const { readysOfA } = scenario('diff', 99, undefined);
    const history = readysOfA.findIndex((rd) => rd.entries.length > 0 || rd.snapshot !== undefined || rd.truncateAfter !== undefined);
    const epoch = readysOfA.findIndex((rd, i) => i > history && rd.hardState !== undefined && decodeHardState(rd.hardState).currentEpoch === 2);
    const ack = readysOfA.findIndex((rd) => rd.messages.some((m) => msgType(m) === 'AckNewLeader'));
    expect(history).toBe(0);
    expect(epoch).toBe(1);
    expect(ack).toBe(2);
    // The history's Ready does not carry the new currentEpoch; the epoch's carries no history and no ack.
    const h0 = readysOfA[0]?.hardState;
    expect(h0 === undefined || decodeHardState(h0).currentEpoch < 2).toBe(true);
    expect(readysOfA[1]?.entries).toEqual([]);
    expect(readysOfA[1]?.messages.some((m) => msgType(m) === 'AckNewLeader')).toBe(false);
    expect(readysOfA[2]?.entries).toEqual([]);
    expect(readysOfA[2]?.hardState).toBeUndefined();
  });
});
