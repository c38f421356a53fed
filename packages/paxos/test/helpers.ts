import type { Envelope, LogEntry, NodeId } from '@consensus-kit/core';
import { expect } from 'vitest';
import type { PaxosMessage } from '../src/messages';
import { TestNetwork, type NodeOptions } from './network';

/** Helpers the scenario tests share: a cluster with short timeouts, a forced election, rounds of ticks. */

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** The type of a queued message. */
export const type = (env: Envelope): PaxosMessage['type'] => (env.msg as PaxosMessage).type;

/** A command's text, or the entry's type for the others. */
export const value = (e: LogEntry | undefined): string | undefined => (e === undefined ? undefined : e.type === 'command' ? dec.decode(e.data) : e.type);

/** A network of `ids` with an election timeout of 10 ticks and a heartbeat every tick. */
export function cluster(ids: NodeId[], options: NodeOptions = {}): TestNetwork {
  return new TestNetwork(ids, { electionTicks: 10, heartbeatTicks: 1, ...options });
}

/** `leader` wins phase 1 (forced, so stickiness does not delay the script) and everyone hears it a few times. */
export function elect(net: TestNetwork, leader: NodeId, rounds = 3): void {
  net.get(leader).node.campaign(true);
  net.deliver();
  settle(net, rounds);
  expect(net.get(leader).node.status().role).toBe('leader');
}

/** `rounds` times: one tick of each of `ids` that is up, then every queued message delivered. */
export function settle(net: TestNetwork, rounds: number, ids: NodeId[] = net.ids()): void {
  for (let i = 0; i < rounds; i++) {
    for (const id of ids) net.tick(id);
    net.deliver();
  }
}

/** Removes and returns the queued messages matching `pick`. */
export function steal(net: TestNetwork, pick: (env: Envelope) => boolean): Envelope[] {
  const out = net.queue.filter(pick);
  net.queue = net.queue.filter((e) => !pick(e));
  return out;
}

/** The replicas that are up. */
export const up = (net: TestNetwork): NodeId[] => net.ids().filter((id) => net.get(id).up);

/** A live replica that leads, if any. */
export const leaderOf = (net: TestNetwork): NodeId | undefined => up(net).find((id) => net.get(id).node.role === 'leader');

/** Ticks every live replica until `done` holds; returns the rounds it took (fails after `max`). */
export function until(net: TestNetwork, done: () => boolean, max: number): number {
  for (let i = 0; i < max; i++) {
    if (done()) return i;
    settle(net, 1, up(net));
  }
  expect(done(), `not reached within ${max} rounds`).toBe(true);
  return max;
}
