import type { ConsensusNode } from '@consensus-kit/core';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { validateCommand, validateQuery, validateSession } from './commands';
import type { KvQueryResult, KvStateMachine } from './kv-state-machine';
import { validateWireRequest } from './wire';

export interface KvServiceOptions {
  node: ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>;
  /** The node's state machine, for serializable (local) reads. */
  stateMachine: KvStateMachine;
  /** Timeout of one proposal or read barrier on this node. Default: the node's. */
  timeoutMs?: number;
}

/**
 * The server side of the kv client protocol: one function that answers a request body. Writes are proposed
 * (a follower throws `NotLeaderError` with the leader hint, which the transport turns into a redirect);
 * linearizable reads go through a read barrier; serializable reads answer from this node's state.
 * Bad requests are rejected before they reach the log.
 */
export function createKvService(
  options: KvServiceOptions,
): (body: unknown, ctx?: { signal?: AbortSignal; connectionSignal?: AbortSignal }) => Promise<unknown> {
  const { node, stateMachine } = options;
  return async (body, ctx) => {
    validateWireRequest(body);
    // The connection's signal when the transport offers one: a write cannot be taken back once proposed, and a
    // read finishes within a round trip, so a per-request cancel gains nothing the dropped answer does not,
    // while the client going away still releases what it left pending.
    const signal = ctx?.connectionSignal ?? ctx?.signal;
    const op = { ...(signal ? { signal } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) };
    if (body.t === 'kv.write') {
      validateCommand(body.req.cmd);
      if (body.req.session !== undefined) validateSession(body.req.session);
      return node.propose(body.req, op);
    }
    validateQuery(body.q);
    if (body.consistency === 'serializable') return stateMachine.query(body.q);
    return node.read(body.q, op);
  };
}
