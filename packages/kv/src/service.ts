import { AbortedError } from '@consensus-kit/core';
import type { ConsensusNode, OperationOptions } from '@consensus-kit/core/host';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { admitCommand, admitQuery, validateCommand, validateQuery, validateSession } from './commands';
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
  const plain: OperationOptions = options.timeoutMs ? { timeoutMs: options.timeoutMs } : {};
  const serve = (body: unknown, ctx: { signal?: AbortSignal; connectionSignal?: AbortSignal } | undefined): Promise<unknown> | unknown => {
    validateWireRequest(body);
    // A client connection's signal is checked here but not watched: a proposed write cannot be taken back, a
    // read barrier settles within a round trip, and the answer to either is dropped once the connection is
    // gone. Watching it would only settle the operation a little before its commit (or timeout) does, at the
    // cost of an abort listener per request on a signal that many requests share. A per-request signal,
    // given without a connection signal, is watched.
    const connection = ctx?.connectionSignal;
    if (connection?.aborted) throw new AbortedError(connection.reason);
    const signal = connection === undefined ? ctx?.signal : undefined;
    const op = signal === undefined ? plain : { ...plain, signal };
    if (body.t === 'kv.write') {
      validateCommand(body.req.cmd);
      admitCommand(body.req.cmd);
      if (body.req.session !== undefined) validateSession(body.req.session);
      return node.propose(body.req, op);
    }
    validateQuery(body.q);
    admitQuery(body.q);
    if (body.consistency === 'serializable') return stateMachine.query(body.q);
    return node.read(body.q, op);
  };
  // Not an async function: it adds no promise of its own to each request's chain.
  return (body, ctx) => {
    try {
      const out = serve(body, ctx);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}
